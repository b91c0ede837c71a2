//! Request bodies (reference §4.2): the parser chosen by content type (or the hook's
//! `incoming-payload-content-type`), and the payload each one yields, with realistic provider
//! payloads from `tests/fixtures/payloads`.

use crate::harness::{
    Checks, NOT_SATISFIED, Part, RULE_ERROR, Server, fixtures, hmac_hex, multipart, multipart_type,
};

const HOOKS: &str = r#"
- id: dump
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  parse-parameters-as-json:
    - {source: payload, name: settings}
  pass-arguments-to-command:
    - {source: entire-payload}
- id: github
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: head_commit.id}
    - {source: payload, name: pusher.name}
    - {source: payload, name: repository.full_name}
    - {source: payload, name: head_commit.modified.0}
  trigger-rule:
    and:
      - match: {type: payload-hmac-sha256, secret: github-secret, parameter: {source: header, name: X-Hub-Signature-256}}
      - match: {type: value, value: refs/heads/main, parameter: {source: payload, name: ref}}
      - match: {type: value, value: push, parameter: {source: header, name: X-GitHub-Event}}
- id: gitlab
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: project.path_with_namespace}
    - {source: payload, name: commits.1.author.email}
    - {source: payload, name: total_commits_count}
  trigger-rule:
    and:
      - match: {type: value, value: gitlab-token, parameter: {source: header, name: X-Gitlab-Token}}
      - match: {type: value, value: push, parameter: {source: payload, name: object_kind}}
- id: xml
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: app.-id}
    - {source: payload, name: app.name}
    - {source: payload, name: app.users.user.0.-name}
    - {source: payload, name: app.users.user.1.#text}
    - {source: payload, name: app.owner.-name}
    - {source: payload, name: app.users.user.2.-name}
- id: form
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: name}
    - {source: payload, name: email}
    - {source: payload, name: tag}
    - {source: payload, name: message}
  trigger-rule:
    match: {type: value, value: s3cret, parameter: {source: payload, name: token}}
- id: as-json
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  incoming-payload-content-type: application/json
  pass-arguments-to-command:
    - {source: entire-payload}
- id: as-form
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  incoming-payload-content-type: application/x-www-form-urlencoded
  pass-arguments-to-command:
    - {source: entire-payload}
- id: query-only
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: url, name: version}
    - {source: entire-payload}
  trigger-rule:
    match: {type: regex, regex: '^v\d+\.\d+$', parameter: {source: url, name: version}}
- id: multipart-signed
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: field}
    - {source: raw-request-body}
  trigger-rule:
    match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
"#;

fn payload(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("payloads").join(name)).unwrap()
}

/// The command's output (its arguments, one per line) for a POST.
fn output(s: &Server, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> String {
    let r = s.post(path, content_type, body);
    assert_eq!(r.status, 200, "{path} ({content_type}): {}", r.text());
    r.text()
}

/// JSON by substring `json` in the content type; a root array becomes `{"root": [...]}`.
#[test]
fn json_bodies_and_root_arrays() {
    let s = Server::start(HOOKS);
    let mut checks = Checks::default();
    for (content_type, body, expected) in [
        (
            "application/json",
            r#"{"b":1,"a":[]}"#,
            "{\"a\":[],\"b\":1}\n",
        ),
        (
            "application/json; charset=utf-8",
            r#"[{"id":1},"two"]"#,
            "{\"root\":[{\"id\":1},\"two\"]}\n",
        ),
        (
            "application/vnd.api+json",
            r#"{"x":null}"#,
            "{\"x\":null}\n",
        ),
        ("text/json", "\n  []", "{\"root\":[]}\n"),
        ("application/json", "", "null\n"),
        ("application/json", "null", "null\n"),
    ] {
        let got = output(&s, "/hooks/dump", content_type, body);
        checks.that(
            got == expected,
            format!("{content_type} {body:?}: expected {expected:?}, got {got:?}"),
        );
    }
    checks.assert();
}

/// Regression: a `\u` escape holding half a surrogate pair is U+FFFD, as Go decodes it; it
/// was a 400.
#[test]
fn lone_surrogate_escapes_decode_as_replacement_characters() {
    let s = Server::start(HOOKS);
    let got = output(
        &s,
        "/hooks/dump",
        "application/json",
        r#"{"pair":"\ud83d\ude00","lone":"\ud800x","low":"\udc00"}"#,
    );
    assert_eq!(
        got,
        "{\"lone\":\"\u{fffd}x\",\"low\":\"\u{fffd}\",\"pair\":\"😀\"}\n"
    );
}

/// A signed GitHub push (the fixture, byte for byte) runs with its fields as arguments.
#[test]
fn a_signed_github_push() {
    let s = Server::start(HOOKS);
    let body = payload("github-push.json");
    let signature = format!("sha256={}", hmac_hex("sha256", b"github-secret", &body));
    let send = |event: &str, signature: &str, body: &[u8]| {
        s.request("POST", "/hooks/github")
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", event)
            .header("X-Hub-Signature-256", signature)
            .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
            .body(body.to_vec())
            .send()
    };
    let r = send("push", &signature, &body);
    assert_eq!(
        (r.status, r.text().as_str()),
        (
            200,
            "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c\nada\nteam/app\nREADME.md\n"
        )
    );
    assert_eq!(send("ping", &signature, &body).text(), NOT_SATISFIED);
    // Re-indenting the JSON changes the bytes, so the signature no longer matches.
    let reformatted = String::from_utf8(body.clone()).unwrap().replace("  ", " ");
    let r = send("push", &signature, reformatted.as_bytes());
    assert_eq!((r.status, r.text().as_str()), (500, RULE_ERROR));
}

#[test]
fn a_gitlab_push_with_its_token() {
    let s = Server::start(HOOKS);
    let send = |token: &str| {
        s.request("POST", "/hooks/gitlab")
            .header("Content-Type", "application/json")
            .header("X-Gitlab-Token", token)
            .header("X-Gitlab-Event", "Push Hook")
            .body(payload("gitlab-push.json"))
            .send()
            .text()
    };
    assert_eq!(
        send("gitlab-token"),
        "mike/diaspora\ngitlabdev@dv6700.(none)\n2\n"
    );
    assert_eq!(send("wrong"), NOT_SATISFIED);
}

/// Forms: first value of a repeated key, `+` and `%XX` decoded.
#[test]
fn form_bodies_keep_the_first_value() {
    let s = Server::start(HOOKS);
    let got = output(
        &s,
        "/hooks/form",
        "application/x-www-form-urlencoded",
        payload("contact-form.txt"),
    );
    assert_eq!(got, "Ada Lovelace\nada@example.com\nfirst\nhello & bye\n");
    let got = output(
        &s,
        "/hooks/form",
        "application/x-www-form-urlencoded; charset=utf-8",
        "token=wrong&token=s3cret",
    );
    assert_eq!(got, NOT_SATISFIED);
    assert_eq!(
        output(&s, "/hooks/dump", "application/x-www-form-urlencoded", ""),
        "{}\n",
        "an empty form is an empty payload"
    );
}

/// XML as mxj maps it: the root element is the top key, attributes `-name`, text `#text`,
/// repeated elements an array, a single child an object.
#[test]
fn xml_bodies_map_like_mxj() {
    let s = Server::start(HOOKS);
    let got = output(&s, "/hooks/xml", "application/xml", payload("app.xml"));
    assert_eq!(got, "42\nhookwire\nada\nsecond\ncarol\n\n");
    let got = output(&s, "/hooks/dump", "text/xml", "<a x=\"1\">t<b>2</b></a>");
    assert_eq!(got, "{\"a\":{\"#text\":\"t\",\"-x\":\"1\",\"b\":\"2\"}}\n");
}

/// Multipart: form values (first value), file parts parsed as JSON when their type is
/// `application/json` or their field is in parse-parameters-as-json; other files ignored.
#[test]
fn multipart_values_and_json_file_parts() {
    let s = Server::start(HOOKS);
    let body = multipart(&[
        Part::Field("name", "Ada"),
        Part::Field("name", "Bob"),
        Part::Field("note", "<&>"),
        Part::File("meta", "meta.json", "application/json", r#"{"v":1.50}"#),
        Part::File(
            "settings",
            "s.bin",
            "application/octet-stream",
            r#"{"k":"v"}"#,
        ),
        Part::File("upload", "photo.jpg", "image/jpeg", "\u{1}\u{2}binary"),
        Part::File("other", "x.json", "application/json; charset=utf-8", "{}"),
    ]);
    let got = output(&s, "/hooks/dump", &multipart_type(), body);
    assert_eq!(
        got,
        "{\"meta\":{\"v\":1.50},\"name\":\"Ada\",\"note\":\"\\u003c\\u0026\\u003e\",\"settings\":{\"k\":\"v\"}}\n"
    );
}

/// Divergence (README): the HMAC and raw-request-body of a multipart request use the real
/// body; adnanh uses an empty one, so any multipart request signed "as empty" passes there.
#[test]
fn multipart_hmac_covers_the_real_body() {
    let s = Server::start(HOOKS);
    let body = multipart(&[Part::Field("field", "value")]);
    let send = |signature: String| {
        s.request("POST", "/hooks/multipart-signed")
            .header("Content-Type", &multipart_type())
            .header("X-Signature", &format!("sha256={signature}"))
            .body(body.clone())
            .send()
    };
    let r = send(hmac_hex("sha256", b"s3cret", &body));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        format!("value\n{}\n", String::from_utf8_lossy(&body))
    );
    let r = send(hmac_hex("sha256", b"s3cret", b""));
    assert_eq!((r.status, r.text().as_str()), (500, RULE_ERROR));
}

/// A GET with only a query string: no payload (`null`), the query drives the rule.
#[test]
fn get_with_only_a_query_string() {
    let s = Server::start(HOOKS);
    let r = s.get("/hooks/query-only?version=v1.2");
    assert_eq!((r.status, r.text().as_str()), (200, "v1.2\nnull\n"));
    assert_eq!(s.get("/hooks/query-only?version=1.2").text(), NOT_SATISFIED);
}

/// `incoming-payload-content-type` replaces the request's content type for choosing the
/// parser, whatever (or whether) the client sent.
#[test]
fn incoming_payload_content_type_overrides_the_header() {
    let s = Server::start(HOOKS);
    let mut checks = Checks::default();
    for (path, content_type, body, expected) in [
        (
            "/hooks/as-json",
            Some("text/plain"),
            r#"{"a":1}"#,
            "{\"a\":1}\n",
        ),
        ("/hooks/as-json", None, r#"[1]"#, "{\"root\":[1]}\n"),
        (
            "/hooks/as-json",
            Some("application/x-www-form-urlencoded"),
            r#"{"a":"b=c"}"#,
            "{\"a\":\"b=c\"}\n",
        ),
        (
            "/hooks/as-form",
            Some("application/json"),
            "a=1&a=2",
            "{\"a\":\"1\"}\n",
        ),
        ("/hooks/dump", Some("text/plain"), r#"{"a":1}"#, "null\n"),
        ("/hooks/dump", None, r#"{"a":1}"#, "null\n"),
    ] {
        let mut request = s.request("POST", path).body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let r = request.send();
        checks.answer(&format!("{path} as {content_type:?}"), &r, 200, expected);
    }
    checks.assert();
}
