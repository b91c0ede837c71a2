//! Parameter sources and string forms (reference §3.3): what each `{source, name}` reads from a
//! request, as the command receives it.

use crate::harness::{Checks, Record, Server, fixtures};

const HOOKS: &str = r#"
- id: payload
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: ref}
    - {source: payload, name: head_commit.author.name}
    - {source: payload, name: commits.0.id}
    - {source: payload, name: commits.1.modified.0}
    - {source: payload, name: commits.2.id}
    - {source: payload, name: commits.x}
    - {source: payload, name: repository.name.first}
    - {source: payload, name: a.b}
    - {source: payload, name: a.b.c}
    - {source: payload, name: x.y.z}
    - {source: payload, name: ""}
- id: forms
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: price}
    - {source: payload, name: big}
    - {source: payload, name: negative}
    - {source: payload, name: small}
    - {source: payload, name: truth}
    - {source: payload, name: falsity}
    - {source: payload, name: nothing}
    - {source: payload, name: text}
    - {source: payload, name: object}
    - {source: payload, name: list}
    - {source: payload, name: empty-object}
    - {source: payload, name: unicode}
- id: request
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: header, name: x-custom-header}
    - {source: header, name: X-REPEATED}
    - {source: header, name: host}
    - {source: url, name: q}
    - {source: query, name: q}
    - {source: query, name: encoded}
    - {source: query, name: missing}
    - {source: request, name: method}
    - {source: request, name: Remote-Addr}
    - {source: request, name: path}
    - {source: string, name: "a constant, with spaces"}
    - {source: raw-request-body}
    - {source: nowhere, name: x}
- id: entire
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: entire-payload}
    - {source: entire-headers}
    - {source: entire-query}
- id: environment
  execute-command: {fixtures}/record.sh
  response-message: queued
  pass-environment-to-command:
    - {source: header, name: X-Event}
    - {source: url, name: branch.name}
    - {source: payload, name: head_commit.id}
    - {source: entire-query, envname: EXTRA_QUERY}
    - {source: request, name: method, envname: EXTRA_METHOD}
  pass-file-to-command:
    - {source: payload, name: head_commit.id}
    - {source: raw-request-body, name: body}
    - {source: entire-headers, envname: EXTRA_HEADERS_FILE}
- id: json-parameters
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  parse-parameters-as-json:
    - {source: payload, name: payload}
    - {source: header, name: x-meta}
    - {source: url, name: filter}
    - {source: payload, name: nested.inner}
    - {source: payload, name: not-json}
    - {source: payload, name: an-array}
  pass-arguments-to-command:
    - {source: payload, name: payload.repository.full_name}
    - {source: header, name: X-Meta.build.number}
    - {source: url, name: filter.branch}
    - {source: payload, name: nested.inner.deep}
    - {source: payload, name: not-json}
    - {source: payload, name: an-array}
  trigger-rule:
    match: {type: value, value: team/app, parameter: {source: payload, name: payload.repository.full_name}}
"#;

fn args(s: &Server, path: &str, content_type: &str, body: &str) -> Vec<String> {
    let before = s.records().len();
    let r = s.post(path, content_type, body);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    let records = s.wait_for_records(before + 1);
    records.last().expect("a record").args.clone()
}

/// Dotted names walk objects and arrays; a literal key containing the dot wins over the walk;
/// anything not there is an empty argument (its position kept).
#[test]
fn payload_names_walk_objects_arrays_and_literal_dotted_keys() {
    let s = Server::start(HOOKS);
    let body = r#"{
        "ref": "refs/heads/main",
        "head_commit": {"author": {"name": "Ada"}},
        "commits": [{"id": "c1"}, {"modified": ["README.md", "src/lib.rs"]}],
        "repository": {"name": "app"},
        "a.b": "literal key",
        "a": {"b": {"c": "walked"}},
        "x": {"y.z": "literal below"},
        "": "empty key"
    }"#;
    assert_eq!(
        args(&s, "/hooks/payload", "application/json", body),
        [
            "refs/heads/main",
            "Ada",
            "c1",
            "README.md",
            "",
            "",
            "",
            "literal key",
            "walked",
            "literal below",
            "empty key",
        ]
    );
}

/// String forms: numbers as the digits sent, booleans, `<nil>` for null, objects and arrays as
/// Go's compact JSON (sorted keys, `<>&` escaped).
#[test]
fn values_reach_commands_in_adnanh_string_form() {
    let s = Server::start(HOOKS);
    let body = r#"{"price": 1.50, "big": 123456789012345678901234567890, "negative": -0.0,
        "small": 1.5e-7, "truth": true, "falsity": false, "nothing": null, "text": "<b>&</b>",
        "object": {"z": [1, 2.50], "a": {"y": null, "b": "<&>"}}, "list": ["b", {"k": 1}],
        "empty-object": {}, "unicode": "żółw ✓"}"#;
    assert_eq!(
        args(&s, "/hooks/forms", "application/json", body),
        [
            "1.50",
            "123456789012345678901234567890",
            "-0.0",
            "1.5e-7",
            "true",
            "false",
            "<nil>",
            "<b>&</b>",
            r#"{"a":{"b":"\u003c\u0026\u003e","y":null},"z":[1,2.50]}"#,
            r#"["b",{"k":1}]"#,
            "{}",
            "żółw ✓",
        ]
    );
}

/// Headers by canonical name (any case, first value, no Host); query parameters decoded
/// (first value, `+` as space); `request` gives the method and the peer `ip:port`; unknown
/// sources and request names give empty arguments.
#[test]
fn headers_query_request_string_and_raw_body() {
    let s = Server::start(HOOKS);
    let before = s.records().len();
    let r = s
        .request("PUT", "/hooks/request?q=first&q=second&encoded=a+b%2Fc%26d")
        .header("X-CUSTOM-HEADER", "custom")
        .header("x-repeated", "one")
        .header("X-Repeated", "two")
        .header("Content-Type", "text/plain")
        .body("raw body\nwith two lines")
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let record = &s.wait_for_records(before + 1)[before];
    let port = record.args[8]
        .strip_prefix("127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok());
    assert!(port.is_some(), "remote-addr {:?}", record.args[8]);
    let mut args = record.args.clone();
    args[8] = "127.0.0.1:PORT".into();
    assert_eq!(
        args,
        [
            "custom",
            "one",
            "",
            "first",
            "first",
            "a b/c&d",
            "",
            "PUT",
            "127.0.0.1:PORT",
            "",
            "a constant, with spaces",
            "raw body\nwith two lines",
            "",
        ]
    );
}

/// remote-addr of an IPv6 peer is bracketed, as Go prints it.
#[test]
fn remote_addr_of_an_ipv6_peer() {
    let s = Server::builder(HOOKS).args(&["-ip", "[::1]"]).start();
    let args = args(&s, "/hooks/request", "text/plain", "");
    assert!(args[8].starts_with("[::1]:"), "{:?}", args[8]);
}

/// entire-payload, entire-headers and entire-query as Go's JSON encoder writes them; `null`
/// without a payload and `{}` without a query.
#[test]
fn entire_sources_render_as_go_json() {
    let s = Server::start(HOOKS);
    let before = s.records().len();
    let body = r#"{"b":2,"a":{"d":null,"c":[true,"<>"]}}"#;
    let r = s
        .request("POST", "/hooks/entire?z=1&a=%3Cx%3E&a=2")
        .header("Content-Type", "application/json")
        .header("x-lower", "v")
        .header("X-Html", "<i>&</i>")
        .body(body)
        .send();
    assert_eq!(r.status, 200);
    let record = &s.wait_for_records(before + 1)[before];
    assert_eq!(
        record.args,
        [
            r#"{"a":{"c":[true,"\u003c\u003e"],"d":null},"b":2}"#,
            &format!(
                r#"{{"Connection":"close","Content-Length":"{}","Content-Type":"application/json","X-Html":"\u003ci\u003e\u0026\u003c/i\u003e","X-Lower":"v"}}"#,
                body.len()
            ),
            r#"{"a":"\u003cx\u003e","z":"1"}"#,
        ]
    );
    // Nothing sent: a null payload and an empty query object.
    let before = s.records().len();
    assert_eq!(s.get("/hooks/entire").status, 200);
    let record = &s.wait_for_records(before + 1)[before];
    assert_eq!(record.args[0], "null");
    assert_eq!(record.args[2], "{}");
}

/// Environment names are `HOOK_` + the name as written (dots kept); file names are upper-cased;
/// every source works in both lists.
#[test]
fn environment_and_files_from_every_source() {
    let s = Server::start(HOOKS);
    let r = s
        .request("POST", "/hooks/environment?branch.name=main")
        .header("Content-Type", "application/json")
        .header("X-Event", "push")
        .body(r#"{"head_commit":{"id":"c0ffee"}}"#)
        .send();
    assert_eq!((r.status, r.text().as_str()), (200, "queued"));
    let records = s.wait_for_records(1);
    let Record { env, files, .. } = &records[0];
    let mut checks = Checks::default();
    for (name, value) in [
        ("HOOK_X-Event", "push"),
        ("HOOK_branch.name", "main"),
        ("HOOK_head_commit.id", "c0ffee"),
        ("EXTRA_QUERY", r#"{"branch.name":"main"}"#),
        ("EXTRA_METHOD", "POST"),
    ] {
        checks.that(
            env.get(name).map(String::as_str) == Some(value),
            format!("{name}: expected {value:?}, got {:?}", env.get(name)),
        );
    }
    for (name, contents) in [
        ("HOOK_HEAD_COMMIT.ID", r#"c0ffee"#),
        ("HOOK_BODY", r#"{"head_commit":{"id":"c0ffee"}}"#),
    ] {
        checks.that(
            files.get(name).map(String::as_str) == Some(contents),
            format!(
                "file {name}: expected {contents:?}, got {:?}",
                files.get(name)
            ),
        );
    }
    checks.that(
        files
            .get("EXTRA_HEADERS_FILE")
            .is_some_and(|h| h.contains(r#""X-Event":"push""#)),
        format!("EXTRA_HEADERS_FILE: {:?}", files.get("EXTRA_HEADERS_FILE")),
    );
    checks.assert();
}

/// parse-parameters-as-json decodes a JSON object held in a payload field, header or query
/// parameter before the rules run; arrays and invalid JSON stay strings. A dotted payload name
/// works (adnanh 2.8 panics on it: README, "Migrating").
#[test]
fn parse_parameters_as_json_top_level_and_dotted() {
    let s = Server::start(HOOKS);
    let push = std::fs::read_to_string(fixtures().join("payloads/github-push.json")).unwrap();
    let body = format!(
        r#"{{"payload": {}, "nested": {{"inner": "{{\"deep\": 1.50}}"}}, "not-json": "{{oops", "an-array": "[1, 2]"}}"#,
        json_string(&push)
    );
    let before = s.records().len();
    let r = s
        .request(
            "POST",
            "/hooks/json-parameters?filter=%7B%22branch%22%3A%22main%22%7D",
        )
        .header("Content-Type", "application/json")
        .header("X-Meta", r#"{"build": {"number": 17}}"#)
        .body(body)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let record = &s.wait_for_records(before + 1)[before];
    assert_eq!(
        record.args,
        ["team/app", "17", "main", "1.50", "{oops", "[1, 2]"]
    );
    // The rule reads the decoded value too: another repository does not fire.
    let other = push.replace("team/app", "team/other");
    let body = format!(r#"{{"payload": {}}}"#, json_string(&other));
    let r = s.post("/hooks/json-parameters", "application/json", body);
    assert_eq!(r.text(), "Hook rules were not satisfied.");
}

/// `value` as a JSON string literal.
fn json_string(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}
