//! Hooks-file quirks of adnanh's loader (reference §2, ghodss/yaml over go-yaml v2), seen
//! through the running server, and `-template` functions.

use std::time::Duration;

use crate::harness::{Checks, FIRED, NOT_SATISFIED, Server};

/// JSON files are read as YAML flow syntax: trailing commas load, tabs are fine.
#[test]
fn json_hooks_files_accept_trailing_commas() {
    let hooks = "[\n\t{\n\t\t\"id\": \"json\",\n\t\t\"execute-command\": \"/bin/true\",\n\t\t\"response-message\": \"from json\",\n\t\t\"pass-arguments-to-command\": [\n\t\t\t{\"source\": \"string\", \"name\": \"x\"},\n\t\t],\n\t},\n]\n";
    let s = Server::builder(hooks).file_name("hooks.json").start();
    assert_eq!(s.get("/hooks/json").text(), "from json");
}

/// Plain scalars resolve as YAML 1.1 and are then printed back as strings: `yes` is `true`,
/// `0x1F` is `31`, `0755` is `493`, `1.10` is `1.1`; quoted scalars stay as written.
#[test]
fn yaml_1_1_scalars_in_string_fields() {
    let hooks = r#"
- &fired
  id: yes-rule
  execute-command: /bin/true
  response-message: fired
  trigger-rule:
    match: {type: value, value: yes, parameter: {source: url, name: v}}
- <<: *fired
  id: hex-rule
  trigger-rule:
    match: {type: value, value: 0x1F, parameter: {source: url, name: v}}
- <<: *fired
  id: octal-rule
  trigger-rule:
    match: {type: value, value: 0755, parameter: {source: url, name: v}}
- <<: *fired
  id: float-rule
  trigger-rule:
    match: {type: value, value: 1.10, parameter: {source: url, name: v}}
- <<: *fired
  id: exponent-rule
  trigger-rule:
    match: {type: value, value: 1e3, parameter: {source: url, name: v}}
- <<: *fired
  id: quoted-rule
  trigger-rule:
    match: {type: value, value: "yes", parameter: {source: url, name: v}}
- id: off
  execute-command: /bin/true
  response-message: fired
"#;
    let s = Server::start(hooks);
    let mut checks = Checks::default();
    for (path, expected) in [
        ("/hooks/yes-rule?v=true", FIRED),
        ("/hooks/yes-rule?v=yes", NOT_SATISFIED),
        ("/hooks/hex-rule?v=31", FIRED),
        ("/hooks/hex-rule?v=0x1F", NOT_SATISFIED),
        ("/hooks/octal-rule?v=493", FIRED),
        ("/hooks/float-rule?v=1.1", FIRED),
        ("/hooks/float-rule?v=1.10", NOT_SATISFIED),
        ("/hooks/exponent-rule?v=1e3", FIRED),
        ("/hooks/quoted-rule?v=yes", FIRED),
        // A hook id is a string field too.
        ("/hooks/false", FIRED),
    ] {
        checks.answer(path, &s.get(path), 200, expected);
    }
    checks.answer("/hooks/off", &s.get("/hooks/off"), 404, "Hook not found.");
    checks.assert();
}

/// Anchors and `<<:` merge keys work, explicit keys override merged ones, and a repeated key
/// keeps its last value.
#[test]
fn merge_keys_and_duplicate_keys() {
    let hooks = r#"
- &base
  id: base
  execute-command: /bin/true
  response-message: from base
  success-http-response-code: 202
- <<: *base
  id: derived
  response-message: from derived
- id: duplicated
  execute-command: /bin/true
  response-message: first
  response-message: second
"#;
    let s = Server::start(hooks);
    let r = s.get("/hooks/derived");
    assert_eq!((r.status, r.text().as_str()), (202, "from derived"));
    assert_eq!(s.get("/hooks/base").text(), "from base");
    assert_eq!(s.get("/hooks/duplicated").text(), "second");
}

/// Unknown keys still load (as in adnanh), but hookwire warns with the line and the nearest
/// known key; a misspelt `trigger-rule` leaves the hook open, loudly.
#[test]
fn unknown_keys_are_warned_about_with_a_hint() {
    let hooks = r#"
- id: open
  execute-command: /bin/true
  response-message: fired
  trigger-rules:
    match: {type: value, value: secret, parameter: {source: url, name: token}}
- id: typo
  execute-command: /bin/true
  response-mesage: typo
  pass-arguments-to-command:
    - {source: payload, name: x, context: y}
"#;
    let s = Server::start(hooks);
    // adnanh ignores the misspelt key, so the hook has no rule and fires for everyone.
    assert_eq!(s.get("/hooks/open").text(), "fired");
    assert_eq!(s.get("/hooks/typo").text(), "");
    let logs = s.logs();
    let missing: Vec<&str> = [
        "unknown key `trigger-rules` is ignored, so this hook has NO trigger rule",
        "did you mean `trigger-rule`?",
        "hooks.yaml:5:",
        "unknown key `response-mesage`",
        "did you mean `response-message`?",
        "unknown key `context`",
    ]
    .into_iter()
    .filter(|needle| !logs.contains(needle))
    .collect();
    assert!(missing.is_empty(), "the log lacks {missing:?}:\n{logs}");
    assert!(
        logs.lines()
            .filter(|l| l.contains("`trigger-rules`"))
            .all(|l| l.contains("WARN")),
        "the unknown-key line is not a warning:\n{logs}"
    );
}

/// A UTF-8 byte order mark before the first line is accepted (webhook accepts it).
#[test]
fn a_byte_order_mark_is_accepted() {
    let hooks = "\u{feff}- id: bom\n  execute-command: /bin/true\n  response-message: bom ok\n";
    let s = Server::start(hooks);
    assert_eq!(s.get("/hooks/bom").text(), "bom ok");
    let s = Server::builder(
        "\u{feff}[{\"id\": \"bom\", \"execute-command\": \"/bin/true\", \"response-message\": \"json bom\"}]",
    )
    .file_name("hooks.json")
    .start();
    assert_eq!(s.get("/hooks/bom").text(), "json bom");
}

/// An empty file is zero hooks, not an error: the server runs (with -verbose) and answers 404.
#[test]
fn an_empty_file_is_zero_hooks() {
    for content in ["", "\n# only a comment\n"] {
        let s = Server::start(content);
        assert_eq!(s.get("/").text(), "OK");
        assert_eq!(s.get("/hooks/anything").text(), "Hook not found.");
        assert!(s.logs().contains("loaded 0 hook"), "{}", s.logs());
    }
}

/// The same id twice in one file is not a start-up error in adnanh: the first one is served.
#[test]
fn a_repeated_id_in_one_file_serves_the_first() {
    let hooks = r#"
- id: twice
  execute-command: /bin/true
  response-message: first
- id: twice
  execute-command: /bin/true
  response-message: second
"#;
    let s = Server::start(hooks);
    assert_eq!(s.get("/hooks/twice").text(), "first");
}

/// `-template`: getenv, cat (one trailing newline removed, missing file empty) and credential
/// (`$CREDENTIALS_DIRECTORY/NAME`, else the environment), piped through `js` for JSON safety.
#[test]
fn template_functions_getenv_cat_and_credential() {
    let hooks = r#"
- id: getenv
  execute-command: /bin/true
  response-message: '{{ getenv "GREETING" }}|{{ getenv "UNSET_VARIABLE_XYZ" }}|'
- id: cat
  execute-command: /bin/true
  response-message: '{{ cat "{dir}/secret.txt" }}|{{ cat "{dir}/missing.txt" }}|'
- id: cat-newlines
  execute-command: /bin/true
  response-message: "{{ cat "{dir}/lines.txt" | js }}|"
- id: credential
  execute-command: /bin/true
  response-message: '{{ credential "token" }}|{{ credential "FROM_ENV" }}|'
- id: guarded
  execute-command: /bin/true
  response-message: fired
  trigger-rule:
    match:
      type: value
      value: "{{ credential "token" | js }}"
      parameter: {source: header, name: X-Token}
"#;
    let s = Server::builder(hooks)
        .arg("-template")
        .env("GREETING", "hello")
        .env("CREDENTIALS_DIRECTORY", "{dir}/credentials")
        .env("FROM_ENV", "env fallback")
        .before_start(|dir| {
            std::fs::write(dir.join("secret.txt"), "top secret\n").unwrap();
            std::fs::write(dir.join("lines.txt"), "a\n\n").unwrap();
            std::fs::create_dir(dir.join("credentials")).unwrap();
            std::fs::write(dir.join("credentials/token"), "t0k3n\n").unwrap();
        })
        .start();
    let mut checks = Checks::default();
    checks.answer("getenv", &s.get("/hooks/getenv"), 200, "hello||");
    checks.answer("cat", &s.get("/hooks/cat"), 200, "top secret||");
    // Only one trailing newline goes; `js` escapes the other for the YAML string.
    checks.answer("cat | js", &s.get("/hooks/cat-newlines"), 200, "a\n|");
    checks.answer(
        "credential",
        &s.get("/hooks/credential"),
        200,
        "t0k3n|env fallback|",
    );
    let r = s
        .request("GET", "/hooks/guarded")
        .header("X-Token", "t0k3n")
        .send();
    checks.answer("credential in a rule", &r, 200, FIRED);
    let r = s
        .request("GET", "/hooks/guarded")
        .header("X-Token", "other")
        .send();
    checks.answer("wrong token", &r, 200, NOT_SATISFIED);
    checks.assert();
}

/// A template error makes the file fail to load (logged), as in adnanh.
#[test]
fn a_template_error_fails_the_file() {
    let hooks =
        "- id: broken\n  execute-command: /bin/true\n  response-message: '{{ nosuchfunction }}'\n";
    let s = Server::builder(hooks).arg("-template").no_wait().start();
    assert!(
        s.wait_for_log("nosuchfunction", Duration::from_secs(10)),
        "{}",
        s.logs()
    );
}
