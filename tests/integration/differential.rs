//! Differential test: one hooks file served by hookwire and by Debian's `webhook` 2.8.0
//! (`/usr/bin/webhook`), the same requests sent to both, and every difference in status, body,
//! chosen response headers and command effects (the `record.sh` records) reported together.
//!
//! Requests whose answers hookwire changes on purpose (README, "Migrating") are in
//! [`divergences`], where the test asserts hookwire's documented behaviour instead and checks
//! that webhook really answers differently (so the list cannot go stale silently).

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{
    NOT_SATISFIED, Part, Record, Request, Response, Server, expand, fixtures, hmac_hex, multipart,
    multipart_type, read_records, scalr_date, wait_until,
};

const WEBHOOK: &str = "/usr/bin/webhook";

/// Flags given to both servers (besides -hooks, -ip, -port, -verbose).
const ARGS: &[&str] = &["-header", "X-Global=global=1"];

/// Environment given to both servers (their commands inherit it).
const ENV: &[(&str, &str)] = &[
    ("EXTRA_INHERITED", "from the server"),
    ("EXTRA_KEPT", "kept"),
];

/// Response headers compared (besides the status and body).
const COMPARED_HEADERS: &[&str] = &[
    "Content-Type",
    "Location",
    "X-Content-Type-Options",
    "X-Global",
    "X-Custom",
];

/// The hooks file both servers load. `always` carries an anchor that most rule hooks merge in
/// (`<<: *fired`), so YAML merge keys are exercised by both parsers too.
const HOOKS: &str = r#"
- &fired
  id: always
  execute-command: /bin/true
  response-message: fired
- id: ping
  execute-command: /bin/true
  response-message: pong
- id: deploy/staging
  execute-command: /bin/true
  response-message: nested id
- id: post-only
  execute-command: /bin/true
  response-message: posted
  http-methods: [" post ", PUT]
- id: empty-message
  execute-command: /bin/true
- id: sniffed
  execute-command: /bin/true
  response-message: "<html><body>hi</body></html>"
- id: coded
  execute-command: /bin/true
  response-message: accepted
  success-http-response-code: 202
  trigger-rule-mismatch-http-response-code: 418
  trigger-rule:
    match: {type: value, value: please, parameter: {source: url, name: token}}
- id: bad-codes
  execute-command: /bin/true
  success-http-response-code: 999
  trigger-rule-mismatch-http-response-code: 299
  trigger-rule:
    match: {type: value, value: ok, parameter: {source: url, name: t}}
- id: output
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: hello}
    - {source: url, name: who}
- id: stderr-too
  execute-command: /bin/sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: "echo out; echo err >&2; echo out2"}
- id: failing
  execute-command: /bin/sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: "echo partial; exit 3"}
- id: failing-with-output
  execute-command: /bin/sh
  include-command-output-in-response: true
  include-command-output-in-response-on-error: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: "echo partial; exit 3"}
- id: missing-command
  execute-command: /nonexistent/command
  include-command-output-in-response: true
- id: missing-command-on-error
  execute-command: /nonexistent/command
  include-command-output-in-response: true
  include-command-output-in-response-on-error: true
- id: missing-command-background
  execute-command: /nonexistent/command
  response-message: fine
- id: headers
  execute-command: /bin/true
  response-message: '{"ok":true}'
  response-headers:
    - {name: Content-Type, value: application/json}
    - {name: X-Custom, value: from-hook}
    - {name: X-Global, value: hook-wins}
  trigger-rule:
    match: {type: value, value: "1", parameter: {source: url, name: go}}
- id: duplicate-keys
  execute-command: /bin/true
  response-message: first
  response-message: last
- {"id": "flow-style", "execute-command": "/bin/true", "response-message": "json flow",}
- id: 0x10
  execute-command: /bin/true
  response-message: hex id
- id: on
  execute-command: /bin/true
  response-message: boolean id
- id: with space/and?question
  execute-command: /bin/true
  response-message: encoded id
- id: binary-output
  execute-command: /usr/bin/printf
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: '\001\002bin'}
- id: xml-output
  execute-command: /usr/bin/printf
  include-command-output-in-response: true
  success-http-response-code: 201
  pass-arguments-to-command:
    - {source: string, name: '<?xml version="1.0"?><a/>'}
- id: html-output
  execute-command: /usr/bin/printf
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: '  <!DOCTYPE html><p>x</p>'}
- id: failing-with-headers
  execute-command: /bin/false
  include-command-output-in-response: true
  response-headers:
    - {name: X-Custom, value: on-failure}
    - {name: Content-Type, value: application/json}
- id: in-fixtures
  execute-command: record.sh
  command-working-directory: {fixtures}
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: relative}
- id: path-lookup
  execute-command: printf
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: 'found %s'}
    - {source: string, name: in PATH}
- id: split-command
  execute-command: /usr/bin/printf hello
  include-command-output-in-response: true
- id: inherited-env
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-environment-to-command:
    - {source: string, name: overridden by the hook, envname: EXTRA_INHERITED}
  pass-file-to-command:
    - {source: payload, name: b, base64decode: true}
    - {source: payload, name: c, base64decode: true, envname: EXTRA_C}

# Rules
- <<: *fired
  id: and
  trigger-rule:
    and:
      - match: {type: value, value: a, parameter: {source: header, name: x-a}}
      - match: {type: value, value: b, parameter: {source: url, name: b}}
- <<: *fired
  id: or
  trigger-rule:
    or:
      - match: {type: value, value: x, parameter: {source: payload, name: missing}}
      - match: {type: value, value: b, parameter: {source: url, name: b}}
- <<: *fired
  id: or-hard-error
  trigger-rule:
    or:
      - match: {type: value, value: x, parameter: {source: payload, name: missing}}
      - match: {type: regex, regex: "(", parameter: {source: url, name: b}}
      - match: {type: value, value: b, parameter: {source: url, name: b}}
- <<: *fired
  id: not-missing
  trigger-rule:
    not:
      match: {type: value, value: x, parameter: {source: url, name: missing}}
- <<: *fired
  id: not-missing-in-and
  trigger-rule:
    and:
      - not:
          match: {type: value, value: x, parameter: {source: url, name: missing}}
      - match: {type: value, value: b, parameter: {source: url, name: b}}
- <<: *fired
  id: not-missing-in-or
  trigger-rule:
    or:
      - not:
          match: {type: value, value: x, parameter: {source: url, name: missing}}
      - match: {type: value, value: never, parameter: {source: url, name: b}}
- <<: *fired
  id: not-present
  trigger-rule:
    not:
      match: {type: value, value: x, parameter: {source: url, name: b}}
- <<: *fired
  id: empty-rule
  trigger-rule: {}
- <<: *fired
  id: empty-and
  trigger-rule: {and: []}
- <<: *fired
  id: empty-or
  trigger-rule: {or: []}
- <<: *fired
  id: unknown-type
  trigger-rule:
    match: {type: nope, value: b, parameter: {source: url, name: b}}
- <<: *fired
  id: value-number
  trigger-rule:
    match: {type: value, value: 42, parameter: {source: payload, name: num}}
- <<: *fired
  id: name-n
  trigger-rule:
    match: {type: value, value: "x", parameter: {source: payload, name: n}}
- <<: *fired
  id: value-bool
  trigger-rule:
    match: {type: value, value: true, parameter: {source: payload, name: flag}}
- <<: *fired
  id: value-yes
  trigger-rule:
    match: {type: value, value: yes, parameter: {source: url, name: v}}
- <<: *fired
  id: value-hex
  trigger-rule:
    match: {type: value, value: 0x1F, parameter: {source: url, name: v}}
- <<: *fired
  id: value-octal
  trigger-rule:
    match: {type: value, value: 0755, parameter: {source: url, name: v}}
- <<: *fired
  id: value-float
  trigger-rule:
    match: {type: value, value: 1.10, parameter: {source: url, name: v}}
- <<: *fired
  id: value-quoted
  trigger-rule:
    match: {type: value, value: "0x1F", parameter: {source: url, name: v}}
- <<: *fired
  id: regex
  trigger-rule:
    match: {type: regex, regex: "heads/ma", parameter: {source: payload, name: ref}}
- <<: *fired
  id: regex-anchored
  trigger-rule:
    match: {type: regex, regex: "^main$", parameter: {source: payload, name: ref}}
- <<: *fired
  id: regex-invalid
  trigger-rule:
    match: {type: regex, regex: "(unclosed", parameter: {source: payload, name: ref}}
- <<: *fired
  id: hmac-sha1
  trigger-rule:
    match: {type: payload-hmac-sha1, secret: s3cret, parameter: {source: header, name: X-Hub-Signature}}
- <<: *fired
  id: hmac-sha256
  trigger-rule:
    match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Hub-Signature-256}}
- <<: *fired
  id: hmac-sha512
  trigger-rule:
    match: {type: payload-hmac-sha512, secret: s3cret, parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: hash-sha256
  trigger-rule:
    match: {type: payload-hash-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: hmac-empty-secret
  trigger-rule:
    match: {type: payload-hmac-sha256, secret: "", parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: soft-or
  trigger-signature-soft-failures: true
  trigger-rule:
    or:
      - match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
      - match: {type: value, value: "1", parameter: {source: url, name: fallback}}
- <<: *fired
  id: hard-or
  trigger-rule:
    or:
      - match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
      - match: {type: value, value: "1", parameter: {source: url, name: fallback}}
- <<: *fired
  id: soft-and
  trigger-signature-soft-failures: true
  trigger-rule:
    and:
      - match: {type: value, value: "1", parameter: {source: url, name: fallback}}
      - match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: soft-alone
  trigger-signature-soft-failures: true
  trigger-rule:
    match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: ip-cidr
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "127.0.0.0/8"}
- <<: *fired
  id: ip-other
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "10.0.0.0/8 192.168.0.0/16"}
- <<: *fired
  id: ip-bare
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "10.1.2.3   127.0.0.1"}
- <<: *fired
  id: ip-invalid
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "not-an-ip 127.0.0.1"}
- <<: *fired
  id: scalr
  trigger-rule:
    match: {type: scalr-signature, secret: s3cret}
- <<: *fired
  id: method
  trigger-rule:
    match: {type: value, value: PATCH, parameter: {source: request, name: Method}}
- <<: *fired
  id: remote-addr
  trigger-rule:
    match: {type: regex, regex: '^127\.0\.0\.1:[0-9]+$', parameter: {source: request, name: remote-addr}}
- <<: *fired
  id: request-bogus
  trigger-rule:
    match: {type: value, value: x, parameter: {source: request, name: bogus}}
- <<: *fired
  id: source-bogus
  trigger-rule:
    match: {type: value, value: x, parameter: {source: nope, name: x}}
- <<: *fired
  id: header-case
  trigger-rule:
    match: {type: value, value: t0k3n, parameter: {source: header, name: x-TOKEN}}
- <<: *fired
  id: query-first
  trigger-rule:
    match: {type: value, value: first, parameter: {source: query, name: q}}

# Sources, string forms, environment and files
- id: sources
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: head_commit.id}
    - {source: payload, name: commits.0.author.name}
    - {source: payload, name: commits.1.id}
    - {source: payload, name: repository.owner.email}
    - {source: payload, name: repository.private}
    - {source: payload, name: repository.id}
    - {source: payload, name: repository.owner}
    - {source: payload, name: head_commit.modified}
    - {source: payload, name: repository.description}
    - {source: header, name: x-github-event}
    - {source: url, name: q}
    - {source: request, name: METHOD}
    - {source: string, name: constant value}
    - {source: nope, name: x}
- id: forms
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: a.b}
    - {source: payload, name: a.c}
    - {source: payload, name: price}
    - {source: payload, name: big}
    - {source: payload, name: exp}
    - {source: payload, name: list.1.x}
    - {source: payload, name: list.2.x}
    - {source: payload, name: list.-1}
    - {source: payload, name: nul}
    - {source: payload, name: t}
    - {source: payload, name: esc}
    - {source: payload, name: obj}
    - {source: payload, name: list}
    - {source: payload, name: unicode}
    - {source: payload, name: empty}
- id: entire
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: entire-payload}
    - {source: entire-headers}
    - {source: entire-query}
    - {source: raw-request-body}
- id: env-files
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-environment-to-command:
    - {source: payload, name: head_commit.id}
    - {source: payload, name: x-deploy-env}
    - {source: payload, name: a, envname: CUSTOM_A}
    - {source: payload, name: missing, envname: CUSTOM_MISSING}
    - {source: header, name: X-Token}
  pass-file-to-command:
    - {source: payload, name: data}
    - {source: payload, name: encoded, envname: CUSTOM_FILE, base64decode: true}
    - {source: payload, name: missing}
- id: background
  execute-command: {fixtures}/record.sh
  response-message: queued
  pass-arguments-to-command:
    - {source: payload, name: a}
  pass-environment-to-command:
    - {source: url, name: tag, envname: EXTRA_TAG}
- id: json-params
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  parse-parameters-as-json:
    - {source: payload, name: data}
    - {source: header, name: X-Data}
    - {source: url, name: q}
    - {source: payload, name: list}
  pass-arguments-to-command:
    - {source: payload, name: data.repo.name}
    - {source: header, name: X-Data.ref}
    - {source: url, name: q.k}
    - {source: payload, name: list}
  trigger-rule:
    match: {type: value, value: hookwire, parameter: {source: payload, name: data.repo.name}}

# Bodies
- id: dump
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  parse-parameters-as-json:
    - {source: payload, name: named}
  pass-arguments-to-command:
    - {source: entire-payload}
- id: xml
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: app.-id}
    - {source: payload, name: app.name}
    - {source: payload, name: app.users.user.1.-name}
    - {source: payload, name: app.users.user.0.#text}
    - {source: payload, name: app.owner.-name}
- id: override
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  incoming-payload-content-type: application/json
  pass-arguments-to-command:
    - {source: payload, name: a}
- id: query-only
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: url, name: a}
    - {source: url, name: space}
    - {source: entire-payload}
- id: multipart-hmac
  execute-command: /bin/true
  response-message: signed
  trigger-rule:
    match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
- id: json-params-dotted
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  parse-parameters-as-json:
    - {source: payload, name: outer.inner}
  pass-arguments-to-command:
    - {source: payload, name: outer.inner.k}
"#;

/// One request, sent identically to both servers.
#[derive(Clone)]
struct Case {
    name: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Commands expected to finish and leave a record (0 or 1); waited for on both sides.
    records: usize,
}

impl Case {
    fn new(name: &str, method: &str, path: &str) -> Case {
        Case {
            name: name.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            records: 0,
        }
    }

    fn get(path: &str) -> Case {
        Case::new(path, "GET", path)
    }

    fn post(path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Case {
        Case::new(path, "POST", path)
            .header("Content-Type", content_type)
            .body(body)
    }

    fn json(path: &str, body: &str) -> Case {
        Case::post(path, "application/json", body)
    }

    fn named(mut self, name: &str) -> Case {
        self.name = format!("{} ({name})", self.path);
        self
    }

    fn header(mut self, name: &str, value: &str) -> Case {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = body.into();
        self
    }

    /// The command leaves a record.
    fn records(mut self) -> Case {
        self.records = 1;
        self
    }

    fn send(&self, addr: SocketAddr) -> Response {
        self.headers
            .iter()
            .fold(Request::new(addr, &self.method, &self.path), |r, (n, v)| {
                r.header(n, v)
            })
            .body(self.body.clone())
            .send()
    }
}

fn github_push() -> String {
    std::fs::read_to_string(fixtures().join("payloads/github-push.json")).unwrap()
}

fn signed(path: &str, header: &str, value: String, body: &str) -> Case {
    Case::json(path, body).header(header, &value)
}

/// The requests both servers must answer alike.
fn cases() -> Vec<Case> {
    let push = github_push();
    let body = r#"{"ref":"refs/heads/main","n":42,"flag":true}"#;
    let sha1 = hmac_hex("sha1", b"s3cret", body.as_bytes());
    let sha256 = hmac_hex("sha256", b"s3cret", body.as_bytes());
    let sha512 = hmac_hex("sha512", b"s3cret", body.as_bytes());
    let scalr_body = r#"{"event":"deploy"}"#;
    let fresh = scalr_date(0);
    let stale = scalr_date(-3600);
    let scalr_sig =
        |date: &str| hmac_hex("sha1", b"s3cret", format!("{scalr_body}{date}").as_bytes());
    let forms_body = r#"{"a.b":"literal","a":{"b":"nested","c":"walked"},"price":1.50,
        "big":12345678901234567890,"exp":-1.5e+3,"list":[{"x":1},{"x":2.0}],"nul":null,"t":true,
        "esc":"<a&b>","obj":{"z":1,"a":"<&>","m":[1,"x",null,{"k":false}]},"unicode":"é✓","empty":""}"#;
    let env_body = r#"{"head_commit":{"id":"c0ffee"},"x-deploy-env":"prod","a":"alpha",
        "data":"file contents\nline 2","encoded":"aGVsbG8gZmlsZQ=="}"#;
    let json_params = r#"{"data":"{\"repo\":{\"name\":\"hookwire\"}}","list":"[1,2]"}"#;
    let multipart_body = multipart(&[
        Part::Field("a", "first"),
        Part::Field("a", "second"),
        Part::Field("name", "Ada Lovelace"),
        Part::File(
            "meta",
            "meta.json",
            "application/json",
            r#"{"version":"1.50","ok":true}"#,
        ),
        Part::File(
            "named",
            "named.bin",
            "application/octet-stream",
            r#"{"k":"v"}"#,
        ),
        Part::File("ignored", "notes.txt", "text/plain", "just text"),
    ]);
    vec![
        // Routing (`/` is in the divergences: -header applies there too).
        Case::get("/hooks"),
        Case::get("/other/path"),
        Case::get("/hooks/nope"),
        Case::get("/hooks/"),
        Case::get("/hooks/ping/"),
        Case::get("/hooks/PING"),
        Case::get("/hooks//ping"),
        Case::get("/hooks/./ping?x=1"),
        Case::get("/hooks/a/../ping"),
        Case::get("/hooks/deploy/staging"),
        Case::get("/hooks/deploy%2Fstaging"),
        Case::get("/hooks/post-only"),
        Case::new("/hooks/post-only", "POST", "/hooks/post-only").named("POST"),
        Case::new("/hooks/post-only", "PUT", "/hooks/post-only").named("PUT"),
        Case::new("/hooks/post-only", "Post", "/hooks/post-only").named("Post"),
        Case::new("/hooks/ping", "HEAD", "/hooks/ping").named("HEAD"),
        Case::new("/hooks/ping", "OPTIONS", "/hooks/ping").named("OPTIONS"),
        Case::new("/hooks/ping", "DELETE", "/hooks/ping").named("DELETE"),
        // A failed command keeps the hook's own Content-Type (Go sets text/plain too late).
        Case::get("/hooks/failing-with-headers"),
        // Responses.
        Case::get("/hooks/ping"),
        Case::get("/hooks/empty-message"),
        Case::get("/hooks/sniffed"),
        Case::get("/hooks/coded?token=please"),
        Case::get("/hooks/coded?token=no"),
        Case::get("/hooks/coded"),
        Case::get("/hooks/bad-codes?t=ok"),
        Case::get("/hooks/bad-codes?t=no"),
        Case::get("/hooks/output?who=world").records(),
        Case::get("/hooks/stderr-too"),
        Case::get("/hooks/failing"),
        Case::get("/hooks/failing-with-output"),
        Case::get("/hooks/missing-command"),
        Case::get("/hooks/missing-command-on-error"),
        Case::get("/hooks/missing-command-background"),
        Case::get("/hooks/binary-output"),
        Case::get("/hooks/xml-output"),
        Case::get("/hooks/html-output"),
        Case::new("/hooks/xml-output", "HEAD", "/hooks/xml-output").named("HEAD"),
        Case::get("/hooks/in-fixtures").records(),
        Case::get("/hooks/path-lookup"),
        Case::get("/hooks/split-command"),
        Case::json(
            "/hooks/inherited-env",
            r#"{"b":"aGVsbG8gd29ybGQ=","c":"aGVs!!!!"}"#,
        )
        .records(),
        Case::get("/hooks/headers?go=1"),
        Case::get("/hooks/headers?go=0"),
        // Hooks-file quirks, through both parsers.
        Case::get("/hooks/duplicate-keys"),
        Case::get("/hooks/flow-style"),
        Case::get("/hooks/16"),
        Case::get("/hooks/0x10"),
        Case::get("/hooks/true"),
        Case::get("/hooks/on"),
        // Rules.
        Case::get("/hooks/and?b=b").header("X-A", "a"),
        Case::get("/hooks/and?b=b")
            .header("X-A", "z")
            .named("false"),
        Case::get("/hooks/and?b=b").named("missing"),
        Case::get("/hooks/or?b=b"),
        Case::get("/hooks/or?b=z"),
        Case::get("/hooks/or-hard-error?b=b"),
        Case::get("/hooks/not-missing"),
        Case::get("/hooks/not-missing-in-and?b=b"),
        Case::get("/hooks/not-missing-in-or?b=b"),
        Case::get("/hooks/not-present?b=b"),
        Case::get("/hooks/not-present?b=x"),
        Case::get("/hooks/empty-rule"),
        Case::get("/hooks/empty-and"),
        Case::get("/hooks/empty-or"),
        Case::get("/hooks/unknown-type?b=b"),
        Case::get("/hooks/unknown-type"),
        Case::json("/hooks/value-number", r#"{"num":42}"#),
        Case::json("/hooks/value-number", r#"{"num":42.0}"#).named("42.0"),
        Case::json("/hooks/value-number", r#"{"num":"42"}"#).named("string"),
        // YAML 1.1: a plain `n` is the boolean false, so the name is "false".
        Case::json("/hooks/name-n", r#"{"n":"x"}"#),
        Case::json("/hooks/name-n", r#"{"false":"x"}"#).named("false"),
        Case::json("/hooks/value-bool", r#"{"flag":true}"#),
        Case::json("/hooks/value-bool", r#"{"flag":"True"}"#).named("True"),
        Case::get("/hooks/value-yes?v=true"),
        Case::get("/hooks/value-yes?v=yes"),
        Case::get("/hooks/value-hex?v=31"),
        Case::get("/hooks/value-hex?v=0x1F"),
        Case::get("/hooks/value-octal?v=493"),
        Case::get("/hooks/value-float?v=1.1"),
        Case::get("/hooks/value-float?v=1.10"),
        Case::get("/hooks/value-quoted?v=0x1F"),
        Case::json("/hooks/regex", body),
        Case::json("/hooks/regex-anchored", body),
        Case::json("/hooks/regex-anchored", r#"{"ref":"main"}"#).named("exact"),
        Case::json("/hooks/regex-invalid", body),
        Case::json("/hooks/regex-invalid", "{}").named("missing"),
        signed(
            "/hooks/hmac-sha1",
            "X-Hub-Signature",
            format!("sha1={sha1}"),
            body,
        ),
        signed("/hooks/hmac-sha1", "X-Hub-Signature", sha1.clone(), body).named("bare"),
        signed(
            "/hooks/hmac-sha1",
            "X-Hub-Signature",
            sha1.to_uppercase(),
            body,
        )
        .named("upper"),
        signed(
            "/hooks/hmac-sha256",
            "X-Hub-Signature-256",
            format!("sha256={sha256}"),
            body,
        ),
        signed(
            "/hooks/hmac-sha256",
            "X-Hub-Signature-256",
            format!("sha256=bad,sha256={sha256}"),
            body,
        )
        .named("list"),
        signed(
            "/hooks/hmac-sha256",
            "X-Hub-Signature-256",
            format!("sha256=bad, sha256={sha256}"),
            body,
        )
        .named("list with a space"),
        signed(
            "/hooks/hmac-sha256",
            "X-Hub-Signature-256",
            format!("bad,{sha256}"),
            body,
        )
        .named("unprefixed list"),
        signed(
            "/hooks/hmac-sha256",
            "X-Hub-Signature-256",
            format!("sha1={sha256}"),
            body,
        )
        .named("wrong prefix"),
        Case::json("/hooks/hmac-sha256", body).named("missing"),
        signed(
            "/hooks/hmac-sha512",
            "X-Signature",
            format!("sha512={sha512}"),
            body,
        ),
        signed("/hooks/hmac-sha512", "X-Signature", "0".repeat(128), body).named("wrong"),
        signed("/hooks/hash-sha256", "X-Signature", sha256.clone(), body),
        signed(
            "/hooks/hmac-empty-secret",
            "X-Signature",
            sha256.clone(),
            body,
        ),
        signed(
            "/hooks/soft-or?fallback=1",
            "X-Signature",
            "bad".into(),
            body,
        ),
        signed(
            "/hooks/soft-or?fallback=0",
            "X-Signature",
            "bad".into(),
            body,
        ),
        signed("/hooks/soft-or", "X-Signature", sha256.clone(), body).named("valid"),
        signed(
            "/hooks/hard-or?fallback=1",
            "X-Signature",
            "bad".into(),
            body,
        ),
        signed(
            "/hooks/soft-and?fallback=1",
            "X-Signature",
            "bad".into(),
            body,
        ),
        signed("/hooks/soft-alone", "X-Signature", "bad".into(), body),
        Case::get("/hooks/ip-cidr"),
        Case::get("/hooks/ip-other"),
        Case::get("/hooks/ip-bare"),
        Case::get("/hooks/ip-invalid"),
        Case::json("/hooks/scalr", scalr_body)
            .header("Date", &fresh)
            .header("X-Signature", &scalr_sig(&fresh)),
        Case::json("/hooks/scalr", scalr_body)
            .header("Date", &stale)
            .header("X-Signature", &scalr_sig(&stale))
            .named("stale"),
        Case::json("/hooks/scalr", scalr_body)
            .header("Date", &fresh)
            .header("X-Signature", "0123")
            .named("bad signature"),
        Case::json("/hooks/scalr", scalr_body)
            .header("Date", &fresh)
            .named("no signature"),
        Case::new("/hooks/method", "PATCH", "/hooks/method"),
        Case::get("/hooks/method"),
        Case::get("/hooks/remote-addr"),
        Case::get("/hooks/request-bogus"),
        Case::get("/hooks/source-bogus"),
        Case::get("/hooks/header-case").header("X-TOKEN", "t0k3n"),
        Case::get("/hooks/header-case")
            .header("x-token", "T0K3N")
            .named("value case"),
        Case::get("/hooks/query-first?q=first&q=second"),
        Case::get("/hooks/query-first?q=second&q=first").named("second"),
        // Sources and string forms.
        Case::json("/hooks/sources?q=1&q=2", &push)
            .header("X-GitHub-Event", "push")
            .records(),
        Case::json("/hooks/forms", forms_body).records(),
        Case::json("/hooks/entire?b=2&a=1&a=3&e=%3C%26%3E", forms_body)
            .header("X-Multi", "one")
            .header("x-multi", "two")
            .header("X-Html", "<b>&amp;</b>")
            .records(),
        Case::get("/hooks/entire").records().named("nothing"),
        Case::json("/hooks/env-files", env_body)
            .header("X-Token", "t")
            .records(),
        Case::json("/hooks/background?tag=v1", r#"{"a":"in the background"}"#).records(),
        Case::json("/hooks/json-params?q=%7B%22k%22%3A%22v%22%7D", json_params)
            .header("X-Data", r#"{"ref":"main"}"#)
            .records(),
        Case::json(
            "/hooks/json-params",
            r#"{"data":"{\"repo\":{\"name\":\"other\"}}"}"#,
        )
        .named("mismatch"),
        // Bodies.
        Case::json("/hooks/dump", &push).records(),
        Case::json("/hooks/dump", r#"[{"name":"first"},2,"three"]"#)
            .records()
            .named("root array"),
        Case::post("/hooks/dump", "application/json; charset=utf-8", "  [1]")
            .records()
            .named("charset"),
        Case::post("/hooks/dump", "application/vnd.github+json", r#"{"a":1}"#)
            .records()
            .named("vnd"),
        Case::post(
            "/hooks/dump",
            "application/x-www-form-urlencoded",
            std::fs::read(fixtures().join("payloads/contact-form.txt")).unwrap(),
        )
        .records()
        .named("form"),
        Case::post(
            "/hooks/dump",
            "application/xml",
            std::fs::read(fixtures().join("payloads/app.xml")).unwrap(),
        )
        .records()
        .named("xml"),
        Case::post(
            "/hooks/xml",
            "text/xml; charset=utf-8",
            std::fs::read(fixtures().join("payloads/app.xml")).unwrap(),
        )
        .records(),
        Case::post("/hooks/dump", &multipart_type(), multipart_body)
            .records()
            .named("multipart"),
        Case::post("/hooks/dump", "text/plain", r#"{"a":1}"#)
            .records()
            .named("text/plain"),
        Case::post("/hooks/dump", "Application/JSON", r#"{"a":1}"#)
            .records()
            .named("upper-case type"),
        Case::post(
            "/hooks/dump",
            "multipart/form-data",
            "no boundary, no parser",
        )
        .records()
        .named("multipart without parameters"),
        Case::json("/hooks/dump", "").records().named("empty"),
        Case::json("/hooks/dump", "null").records().named("null"),
        Case::post("/hooks/dump", "text/json", "\n  []")
            .records()
            .named("text/json"),
        Case::post(
            "/hooks/dump",
            "text/xml",
            "<a x=\"1\">t<b>2</b><b>3</b></a>",
        )
        .records()
        .named("mixed XML"),
        Case::post(
            "/hooks/dump",
            &multipart_type(),
            multipart(&[
                Part::File("other", "x.json", "application/json; charset=utf-8", "{}"),
                Part::Field("empty", ""),
            ]),
        )
        .records()
        .named("multipart JSON part with a charset"),
        Case::post("/hooks/override", "text/plain", r#"{"a":"overridden"}"#).records(),
        Case::get("/hooks/query-only?a=1&space=a+b%20c").records(),
        Case::post(
            "/hooks/always",
            "multipart/form-data; boundary=xyz",
            "garbage",
        )
        .named("malformed multipart"),
        // Edges: encoded paths, odd queries and headers, JSON escapes, XML and multipart corners.
        Case::get("/hooks/with%20space/and%3Fquestion"),
        Case::get("/hooks//with%20space/and%3Fquestion?x=%20y"),
        Case::get("/hooks/x/%2E%2E/ping"),
        Case::get("/hooks/./caf%C3%A9!(x)*'$&+,:;=@~"),
        Case::get("/hooks/entire?a&=empty-key&b=1;c=2&d=%zz&e=%E2%9C%93&f=1+2")
            .records()
            .named("odd query"),
        Case::get("/hooks/entire")
            .header("X-Spaces", "  padded  ")
            .header("X-Empty", "")
            .header("x_under_score", "u")
            .header("X-Utf8", "żółw")
            .records()
            .named("odd headers"),
        Case::json("/hooks/dump", r#"{"a":1,"a":2}"#)
            .records()
            .named("duplicate keys"),
        Case::json("/hooks/dump", r#"{"pair":"\ud83d\ude00","lone":"\ud800x","rev":"\udc00"}"#)
            .records()
            .named("surrogates"),
        Case::json("/hooks/dump", "{\"ls\":\"\u{2028}\u{2029}\",\"ctl\":\"\\b\\f\\u0001\\u001f\\t\\n\\r\\/\"}")
            .records()
            .named("separators and controls"),
        Case::post("/hooks/dump", "application/json", b"{\"bad\":\"\xff\xfe\",\"ok\":\"\xc3\xa9\"}".to_vec())
            .records()
            .named("invalid UTF-8"),
        Case::json("/hooks/dump", r#"{"big":123456789e-400,"neg":-0,"frac":0.000000000000000000001}"#)
            .records()
            .named("extreme numbers"),
        Case::post(
            "/hooks/dump",
            "application/xml",
            r#"<?xml version="1.0"?><!-- c --><r xmlns:x="urn:x" x:a="1"><x:b>ns</x:b><c><![CDATA[<raw>&]]></c><d>&amp;&lt;&#65;</d><e/><f>  spaced  </f><g> </g></r>"#,
        )
        .records()
        .named("XML namespaces, CDATA, entities, empty elements"),
        Case::post(
            "/hooks/dump",
            "application/xml",
            r#"<r><i k="1"/><i>two</i><i><j>3</j></i></r>"#,
        )
        .records()
        .named("XML repeated elements of mixed shapes"),
        Case::post(
            "/hooks/dump",
            &multipart_type(),
            multipart(&[
                Part::Field("dup", "value"),
                Part::File("dup", "d.json", "application/json", r#"{"from":"file"}"#),
                Part::File("broken", "b.json", "application/json", "{not json"),
                Part::File("list", "l.json", "application/json", "[1,2]"),
                Part::File("twice", "1.json", "application/json", r#"{"n":1}"#),
                Part::File("twice", "2.json", "application/json", r#"{"n":2}"#),
            ]),
        )
        .records()
        .named("multipart JSON parts: collisions, broken, arrays, repeats"),
        Case::post(
            "/hooks/dump",
            "application/x-www-form-urlencoded",
            "a=%2B+x&b&&c=1&c=2&=e",
        )
        .records()
        .named("odd form"),
    ]
}

/// What hookwire answers instead of webhook, on purpose (README, "Migrating").
struct Divergence {
    case: Case,
    /// Why, in the README's words.
    reason: &'static str,
    status: u16,
    /// hookwire's body (exact).
    body: &'static str,
    /// hookwire's `X-Global` header (the `-header` flag).
    global_header: Option<&'static str>,
}

fn divergences() -> Vec<Divergence> {
    let multipart_body = multipart(&[Part::Field("a", "1")]);
    let real = hmac_hex("sha256", b"s3cret", &multipart_body);
    let empty = hmac_hex("sha256", b"s3cret", b"");
    vec![
        Divergence {
            case: Case::json("/hooks/dump", r#"{"exp":1E3,"low":1e3,"big":1E400}"#)
                .records()
                .named("exponents"),
            reason: "known limitation, not a choice: serde_json rewrites an exponent as e+N \
                     (docs/design.md); mantissa digits are kept",
            status: 200,
            body: "{\"big\":1e+400,\"exp\":1e+3,\"low\":1e+3}\n",
            global_header: Some("global=1"),
        },
        Divergence {
            case: Case::get("/").named("-header"),
            reason: "-header headers are on / too, as in webhook 2.8.2",
            status: 200,
            body: "OK",
            global_header: Some("global=1"),
        },
        Divergence {
            case: Case::json("/hooks/always", r#"{"a": "#).named("broken JSON"),
            reason: "an unparsable body is 400 and runs nothing",
            status: 400,
            body: "The request body is not valid JSON.",
            global_header: Some("global=1"),
        },
        Divergence {
            case: Case::post(
                "/hooks/always",
                "application/x-www-form-urlencoded",
                "a=%zz",
            )
            .named("bad form escape"),
            reason: "an unparsable body is 400 and runs nothing",
            status: 400,
            body: "The request body is not a valid form.",
            global_header: Some("global=1"),
        },
        Divergence {
            case: Case::post("/hooks/always", "application/xml", "<a><b></a>")
                .named("malformed XML"),
            reason: "an unparsable body is 400 and runs nothing",
            status: 400,
            body: "The request body is not valid XML.",
            global_header: Some("global=1"),
        },
        Divergence {
            case: Case::post(
                "/hooks/multipart-hmac",
                &multipart_type(),
                multipart_body.clone(),
            )
            .header("X-Signature", &format!("sha256={real}"))
            .named("signed over the real body"),
            reason: "multipart HMACs cover the real body",
            status: 200,
            body: "signed",
            global_header: Some("global=1"),
        },
        Divergence {
            case: Case::post("/hooks/multipart-hmac", &multipart_type(), multipart_body)
                .header("X-Signature", &format!("sha256={empty}"))
                .named("signed as if empty"),
            reason: "multipart HMACs cover the real body",
            status: 500,
            body: "Error occurred while evaluating hook rules.",
            global_header: Some("global=1"),
        },
        Divergence {
            case: Case::json(
                "/hooks/json-params-dotted",
                r#"{"outer":{"inner":"{\"k\":\"v\"}"}}"#,
            )
            .records(),
            reason: "parse-parameters-as-json with a dotted name replaces the nested value",
            status: 200,
            body: "v\n",
            global_header: Some("global=1"),
        },
    ]
}

/// Debian's webhook, started on a free port with its own `RECORD_DIR`; killed on drop.
struct Reference {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Reference {
    fn start(hooks: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Reference {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("records")).unwrap();
        let hooks_path = dir.path().join("hooks.yaml");
        std::fs::write(&hooks_path, expand(hooks, dir.path())).unwrap();
        // The listening address: `-ip` in `args` (Go's last value wins), else loopback.
        let ip = args
            .windows(2)
            .rev()
            .find(|pair| pair[0] == "-ip")
            .map(|pair| pair[1].to_string())
            .unwrap_or_else(|| "127.0.0.1".to_string());
        let port = TcpListener::bind(format!("{ip}:0"))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("webhook.log")).unwrap();
        let child = Command::new(WEBHOOK)
            .arg("-hooks")
            .arg(&hooks_path)
            .args(["-ip", "127.0.0.1", "-port", &port.to_string(), "-verbose"])
            .args(args)
            .envs(ENV.iter().chain(extra_env).copied())
            .env("RECORD_DIR", dir.path().join("records"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start /usr/bin/webhook");
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let reference = Reference { child, addr, dir };
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect(addr).is_ok()),
            "webhook did not start; log:\n{}",
            reference.log()
        );
        reference
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("webhook.log")).unwrap_or_default()
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One server under test: its address, where its commands record, and its directory (for
/// normalising paths in records).
struct Side {
    addr: SocketAddr,
    records: PathBuf,
    dir: PathBuf,
    seen: usize,
}

/// A response and the records its request left, normalised for comparison.
#[derive(Debug, PartialEq)]
struct Observed {
    status: u16,
    body: String,
    headers: Vec<(&'static str, Option<String>)>,
    records: Vec<Record>,
}

impl Side {
    /// Sends `case`; with `wait`, waits for the records the case expects.
    fn observe(&mut self, case: &Case, wait: bool) -> Observed {
        let response = case.send(self.addr);
        if wait && case.records > 0 {
            wait_until(Duration::from_secs(5), || {
                read_records(&self.records).len() >= self.seen + case.records
            });
        }
        let all = read_records(&self.records);
        let new: Vec<Record> = all[self.seen.min(all.len())..]
            .iter()
            .map(|r| normalise(r, &self.dir))
            .collect();
        self.seen = all.len();
        Observed {
            status: response.status,
            body: response.text(),
            headers: COMPARED_HEADERS
                .iter()
                .map(|name| (*name, response.header(name).map(str::to_string)))
                .collect(),
            records: new,
        }
    }
}

/// Paths differ between the two servers: the working directory is replaced by `{dir}` and
/// variables naming temporary files by `{file}` (their contents are compared).
fn normalise(record: &Record, dir: &Path) -> Record {
    let dir = dir.display().to_string();
    let mut record = record.clone();
    record.cwd = record.cwd.replace(&dir, "{dir}");
    for (name, value) in record.env.iter_mut() {
        if record.files.contains_key(name) {
            *value = "{file}".to_string();
        }
    }
    record
}

fn describe(case: &Case) -> String {
    format!("{} {} [{}]", case.method, case.path, case.name)
}

/// Fails unless the reference binary is there.
fn require_reference() {
    assert!(
        Path::new(WEBHOOK).exists(),
        "{WEBHOOK} is not installed (apt-get install webhook)"
    );
}

/// Serves `hooks` with `args` from both servers, sends every case and divergence, and returns
/// the number of mismatches and their report.
fn differ(
    hooks: &str,
    args: &[&str],
    cases: &[Case],
    divergences: &[Divergence],
) -> (usize, String) {
    differ_with_env(hooks, args, &[], cases, divergences)
}

/// [`differ`], with `extra_env` given to both servers besides [`ENV`].
fn differ_with_env(
    hooks: &str,
    args: &[&str],
    extra_env: &[(&str, &str)],
    cases: &[Case],
    divergences: &[Divergence],
) -> (usize, String) {
    let reference = Reference::start(hooks, args, extra_env);
    let mut ours = Server::builder(hooks).args(args);
    for (name, value) in ENV.iter().chain(extra_env) {
        ours = ours.env(name, value);
    }
    let ours = ours.start();
    let mut theirs_side = Side {
        addr: reference.addr,
        records: reference.dir.path().join("records"),
        dir: reference.dir.path().to_path_buf(),
        seen: 0,
    };
    let mut ours_side = Side {
        addr: ours.addr(),
        records: ours.dir.path().join("records"),
        dir: ours.dir.path().to_path_buf(),
        seen: 0,
    };

    let mut report = String::new();
    let mut mismatches = 0;
    for case in cases {
        let theirs = theirs_side.observe(case, true);
        let mine = ours_side.observe(case, true);
        if std::env::var_os("HOOKWIRE_DIFF_SHOW").is_some() {
            eprintln!("{}: {} {:?}", describe(case), mine.status, mine.body);
        }
        if theirs != mine {
            mismatches += 1;
            writeln!(
                report,
                "\n== {}\n   webhook:  {theirs:?}\n   hookwire: {mine:?}",
                describe(case)
            )
            .unwrap();
        }
    }

    for divergence in divergences {
        let case = &divergence.case;
        // webhook's answer differs by definition: do not wait for records it may not leave.
        let theirs = theirs_side.observe(case, false);
        let mine = ours_side.observe(case, true);
        let global = mine.headers.iter().find(|(n, _)| *n == "X-Global");
        let expected_global = divergence.global_header.map(str::to_string);
        if mine.status != divergence.status
            || mine.body != divergence.body
            || global.map(|(_, v)| v) != Some(&expected_global)
        {
            mismatches += 1;
            writeln!(
                report,
                "\n== {} (divergence: {})\n   expected: {} {:?} X-Global {:?}\n   hookwire: {mine:?}",
                describe(case),
                divergence.reason,
                divergence.status,
                divergence.body,
                divergence.global_header
            )
            .unwrap();
        }
        if theirs == mine {
            mismatches += 1;
            writeln!(
                report,
                "\n== {} (divergence: {}): webhook answers the same; remove it from the list",
                describe(case),
                divergence.reason
            )
            .unwrap();
        }
    }
    if mismatches > 0 {
        write!(
            report,
            "\n\n--- webhook log:\n{}\n--- hookwire log:\n{}",
            reference.log(),
            ours.logs()
        )
        .unwrap();
    }
    (mismatches, report)
}

#[test]
#[ignore = "needs adnanh/webhook 2.8 (apt-get install webhook)"]
fn hookwire_answers_like_webhook_2_8() {
    require_reference();
    let cases = cases();
    assert!(cases.len() >= 60, "only {} requests", cases.len());
    let divergences = divergences();
    let (mismatches, report) = differ(HOOKS, ARGS, &cases, &divergences);
    assert!(
        mismatches == 0,
        "{mismatches} of {} requests differ from webhook 2.8.0:{report}",
        cases.len() + divergences.len(),
    );
}

/// Over IPv6 loopback: remote-addr is bracketed in both; a bare IPv6 address in ip-whitelist
/// is one address in hookwire and a /32 network in webhook (README, "Migrating").
#[test]
#[ignore = "needs adnanh/webhook 2.8 (apt-get install webhook)"]
fn hookwire_answers_like_webhook_2_8_over_ipv6() {
    require_reference();
    let hooks = r#"
- &fired
  id: remote-addr
  execute-command: /bin/true
  response-message: fired
  trigger-rule:
    match: {type: regex, regex: '^\[::1\]:[0-9]+$', parameter: {source: request, name: remote-addr}}
- <<: *fired
  id: cidr
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "::1/128"}
- <<: *fired
  id: bare-loopback
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "::1"}
- <<: *fired
  id: ipv4-only
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "127.0.0.0/8"}
- <<: *fired
  id: bare-unspecified
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "::"}
"#;
    let cases = [
        Case::get("/hooks/remote-addr"),
        Case::get("/hooks/cidr"),
        Case::get("/hooks/bare-loopback"),
        Case::get("/hooks/ipv4-only"),
    ];
    let divergences = [Divergence {
        case: Case::get("/hooks/bare-unspecified"),
        reason: "a bare IPv6 address in ip-whitelist is that one address (/128), not a /32",
        status: 200,
        body: NOT_SATISFIED,
        global_header: None,
    }];
    let (mismatches, report) = differ(hooks, &["-ip", "[::1]"], &cases, &divergences);
    assert!(
        mismatches == 0,
        "{mismatches} of {} requests differ from webhook 2.8.0:{report}",
        cases.len() + divergences.len()
    );
}

/// A second configuration: another URL prefix and default methods.
#[test]
#[ignore = "needs adnanh/webhook 2.8 (apt-get install webhook)"]
fn hookwire_answers_like_webhook_2_8_with_a_prefix_and_default_methods() {
    require_reference();
    let hooks = r#"
- id: ping
  execute-command: /bin/true
  response-message: pong
- id: own-methods
  execute-command: /bin/true
  response-message: own
  http-methods: [get]
- id: no-methods
  execute-command: /bin/true
  response-message: none listed
  http-methods: []
"#;
    let cases = [
        Case::get("/api/v2/ping"),
        Case::new("/api/v2/ping", "POST", "/api/v2/ping").named("POST"),
        Case::new("/api/v2/ping", "PUT", "/api/v2/ping").named("PUT"),
        Case::new("/api/v2/ping", "PATCH", "/api/v2/ping").named("PATCH"),
        Case::get("/api/v2/own-methods"),
        Case::new("/api/v2/own-methods", "POST", "/api/v2/own-methods").named("POST"),
        Case::get("/api/v2/no-methods"),
        Case::new("/api/v2/no-methods", "POST", "/api/v2/no-methods").named("POST"),
        Case::get("/hooks/ping"),
        Case::get("/api/ping"),
        Case::get("/api/v2"),
        Case::get("/api/v2/"),
        Case::get("/api//v2/ping"),
        Case::get("/api/v2/nope"),
    ];
    let args = ["-urlprefix", "api/v2", "-http-methods", " post, Put "];
    let (mismatches, report) = differ(hooks, &args, &cases, &[]);
    assert!(
        mismatches == 0,
        "{mismatches} of {} requests differ from webhook 2.8.0:{report}",
        cases.len()
    );
}

/// `-template`: one templated hooks file using every construct hookwire's renderer supports
/// (if/else if/else, with/else, variables and their scopes, `.` and fields of nil data, range
/// over nil, comparisons, and/or, trim markers around control actions), rendered by both
/// servers with the environment set two ways, then asked the same questions.
#[test]
#[ignore = "needs adnanh/webhook 2.8 (apt-get install webhook)"]
fn hookwire_renders_templates_like_webhook_2_8() {
    require_reference();
    let hooks = r#"{{- /* Rendered by both servers: every construct hookwire's -template supports. */ -}}
{{- $mode := getenv "TMPL_MODE" -}}
{{- $token := or (getenv "TMPL_TOKEN") "fallback" -}}
{{- $unset := getenv "TMPL_UNSET" -}}
{{- $count := 0 -}}
{{- if $mode }}{{ $count = len $mode }}{{ $inner := "gone at end" }}{{ end }}
- id: mode
  execute-command: /bin/true
  response-message: '{{ if eq $mode "dev" "test" }}non-prod{{ else if eq $mode "prod" }}production{{ else }}unknown{{ end }}'
- id: fallback
  execute-command: /bin/true
  response-message: '{{ or $unset "fallback used" }}|{{ or (getenv "TMPL_ALSO_UNSET") 0 }}|{{ and 1 "x" $mode }}|{{ and $mode $unset "never" }}|{{ print (and 0 .) }}'
- id: truth
  execute-command: /bin/true
  response-message: '{{ if 0 }}0{{ end }}{{ if "" }}empty{{ end }}{{ if "0" }}zero-string{{ end }} {{ if $unset }}unset{{ end }}{{ if not . }}nil-data{{ end }} {{ if -1 }}minus-one{{ end }} {{ not $mode }}'
- id: compare
  execute-command: /bin/true
  response-message: '{{ lt 1 2 }} {{ le "a" "b" }} {{ gt (len $mode) 3 }} {{ ge 2 2 }} {{ ne $mode "dev" }} {{ eq . nil }} {{ eq 1 2 3 1 }} {{ eq $mode "a" "b" }}'
- id: scoping
  execute-command: /bin/true
  response-message: '{{ $count }} {{ with "x" }}{{ $count := 2 }}{{ $count }} {{ . }}{{ end }} {{ $count }} {{ with $w := $mode }}{{ $w }}{{ $count = 7 }}{{ end }} {{ $count }}'
- id: nil-data
  execute-command: /bin/true
  response-message: '{{ .Foo }} {{ $.Foo.Bar }} {{ print . }} {{ . }} {{ html . }} {{ printf "%v %s" . $ }}'
- id: functions
  execute-command: /bin/true
  response-message: '{{ $token | printf "%q" }} {{ html "<b>&" }} {{ urlquery "a b&c" }} {{ js "<x>" }} {{ print 1 2 "s" 0x10 }} {{ printf "%d-%s-%t" (len $token) $mode (eq 1 1) }}'
- id: secret-rule
  execute-command: /bin/true
  response-message: allowed
  trigger-rule:
    match:
      type: value
      value: '{{ $token }}'
      parameter: {source: url, name: token}
{{- if eq $mode "prod" }}
- id: prod-only
  execute-command: /bin/true
  response-message: only in production
{{- else }}
- id: dev-only
  execute-command: /bin/true
  response-message: only outside production
{{- end }}
{{- with getenv "TMPL_PORT" }}
- id: with-value
  execute-command: /bin/true
  response-message: 'port {{ . }}{{ if lt (len .) 5 }} (short){{ end }}'
{{- end }}
{{- with $unset }}
- id: never
{{- else }}
- id: with-else
  execute-command: /bin/true
  response-message: 'else: {{ . }}'
{{- end }}
{{- range . }}
- id: never-ranged
{{- else }}
- id: range-else
  execute-command: /bin/true
  response-message: nothing to range over
{{- end }}
{{- range $i, $e := $ }}{{ break }}{{ end }}
"#;
    let cases: Vec<Case> = [
        "mode",
        "fallback",
        "truth",
        "compare",
        "scoping",
        "nil-data",
        "functions",
        "secret-rule?token=s3cret",
        "secret-rule?token=fallback",
        "prod-only",
        "dev-only",
        "with-value",
        "with-else",
        "range-else",
        "never",
        "never-ranged",
    ]
    .iter()
    .map(|id| Case::get(&format!("/hooks/{id}")))
    .collect();
    let environments: [&[(&str, &str)]; 2] = [
        &[
            ("TMPL_MODE", "prod"),
            ("TMPL_TOKEN", "s3cret"),
            ("TMPL_PORT", "8080"),
        ],
        &[("TMPL_MODE", "test"), ("TMPL_PORT", "")],
    ];
    // The file renders (not merely fails alike in both).
    let mut ours = Server::builder(hooks).arg("-template");
    for (name, value) in environments[0] {
        ours = ours.env(name, value);
    }
    let ours = ours.start();
    assert_eq!(ours.get("/hooks/mode").text(), "production");
    assert_eq!(ours.get("/hooks/scoping").text(), "4 2 x 4 prod 7");
    drop(ours);
    for env in environments {
        let (mismatches, report) = differ_with_env(hooks, &["-template"], env, &cases, &[]);
        assert!(
            mismatches == 0,
            "{mismatches} of {} requests differ from webhook 2.8.0 with {env:?}:{report}",
            cases.len()
        );
    }
}
