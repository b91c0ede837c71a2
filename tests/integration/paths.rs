//! hookwire's additions to parameter names and sources: `*` segments that select every element
//! of a payload array (rules with any/`all`, arguments as one JSON array) and
//! `{source: template}` values built from several parts of a request.

use crate::harness::{Server, run_in};

const HOOKS: &str = r#"
- id: deploy
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: commits.*.modified.*}
    - {source: payload, name: commits.*.id}
  pass-environment-to-command:
    - {source: payload, name: commits.*.modified.*, envname: EXTRA_FILES}
  pass-file-to-command:
    - {source: payload, name: commits.*.id, envname: EXTRA_IDS_FILE}
  trigger-rule:
    match:
      type: regex
      regex: ^src/
      parameter: {source: payload, name: commits.*.modified.*}
- id: docs-only
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  trigger-rule:
    match:
      type: regex
      regex: ^docs/
      all: true
      parameter: {source: payload, name: commits.*.modified.*}
- id: by-author
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  trigger-rule:
    match:
      type: value
      value: ada
      parameter: {source: payload, name: commits.*.author.username}
- id: templated
  execute-command: {fixtures}/record.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: template, name: '{{ payload "repository.full_name" }}@{{ payload "head_commit.id" }}'}
    - {source: template, name: '{{ header "X-GitHub-Event" }} by {{ request "method" }}'}
    - {source: template, name: '[{{ payload "no.such.field" }}]'}
    - {source: template, name: '{{ if payload "draft" }}draft{{ else }}final{{ end }}'}
  pass-environment-to-command:
    - {source: template, name: 'v{{ query "v" }}', envname: EXTRA_VERSION}
  trigger-rule:
    match:
      type: value
      value: team/app@push
      parameter: {source: template, name: '{{ payload "repository.full_name" }}@{{ header "X-GitHub-Event" }}'}
"#;

/// A GitHub-like push whose commits modified `files` (one list per commit).
fn push(files: &[&[&str]]) -> String {
    let commits: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(i, modified)| {
            let modified: Vec<String> = modified.iter().map(|f| format!("{f:?}")).collect();
            format!(
                r#"{{"id": "c{i}", "author": {{"username": "{}"}}, "added": [], "removed": [], "modified": [{}]}}"#,
                if i == 0 { "bob" } else { "ada" },
                modified.join(", ")
            )
        })
        .collect();
    format!(
        r#"{{"ref": "refs/heads/main", "repository": {{"full_name": "team/app"}}, "commits": [{}]}}"#,
        commits.join(", ")
    )
}

/// Posts `body` to the hook; whether its command ran (the answer waits for it).
fn fires(s: &Server, hook: &str, body: &str) -> bool {
    let before = s.records().len();
    let r = s.post(
        &format!("/hooks/{hook}"),
        "application/json",
        body.to_owned(),
    );
    match r.text().as_str() {
        "Hook rules were not satisfied." => {
            assert_eq!(s.records().len(), before, "{hook}: rule unmet yet a run");
            false
        }
        text => {
            assert_eq!(r.status, 200, "{hook}: {text}");
            s.wait_for_records(before + 1);
            true
        }
    }
}

/// The docs' example: deploy only when a push touched `src/`, with every modified file of every
/// commit passed on as one JSON array, in the arguments, the environment and a file.
#[test]
fn a_push_that_touches_src_deploys_and_passes_every_modified_file() {
    let s = Server::start(HOOKS);
    assert!(!fires(
        &s,
        "deploy",
        &push(&[&["docs/a.md"], &["README.md"]])
    ));
    assert!(fires(
        &s,
        "deploy",
        &push(&[&["docs/a.md"], &["README.md", "src/main.rs"]])
    ));
    let record = s.records().pop().unwrap();
    assert_eq!(
        record.args,
        [
            r#"["docs/a.md","README.md","src/main.rs"]"#,
            r#"["c0","c1"]"#
        ]
    );
    assert_eq!(
        record.env["EXTRA_FILES"],
        r#"["docs/a.md","README.md","src/main.rs"]"#
    );
    assert_eq!(record.files["EXTRA_IDS_FILE"], r#"["c0","c1"]"#);
    // No commits: nothing selected, no deploy.
    assert!(!fires(&s, "deploy", &push(&[])));
}

/// `all: true` needs every selected value to match, and an empty selection never does.
#[test]
fn all_needs_every_selected_value_and_an_empty_selection_matches_nothing() {
    let s = Server::start(HOOKS);
    assert!(fires(
        &s,
        "docs-only",
        &push(&[&["docs/a.md"], &["docs/b.md"]])
    ));
    assert!(!fires(
        &s,
        "docs-only",
        &push(&[&["docs/a.md"], &["src/x.rs"]])
    ));
    assert!(!fires(&s, "docs-only", &push(&[&[], &[]])));
    assert!(!fires(&s, "docs-only", &push(&[])));
    assert!(!fires(&s, "docs-only", r#"{"ref": "refs/heads/main"}"#));
    // `value` over a wildcard: any one commit by ada.
    assert!(fires(&s, "by-author", &push(&[&[], &[]])));
    assert!(!fires(&s, "by-author", &push(&[&[]])));
}

/// A template value joins payload, header, query and request values; a missing one is empty;
/// it works as an argument, a variable and a match parameter.
#[test]
fn a_template_builds_one_value_from_several() {
    let s = Server::start(HOOKS);
    let body = r#"{"repository": {"full_name": "team/app"}, "head_commit": {"id": "f00d"}}"#;
    let send = |event: &str| {
        s.request("POST", "/hooks/templated?v=1.2")
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", event)
            .body(body)
            .send()
    };
    assert_eq!(send("ping").text(), "Hook rules were not satisfied.");
    let r = send("push");
    assert_eq!(r.status, 200, "{}", r.text());
    let record = s.wait_for_records(1).pop().expect("a run");
    assert_eq!(
        record.args,
        ["team/app@f00d", "push by POST", "[]", "final"]
    );
    assert_eq!(record.env["EXTRA_VERSION"], "v1.2");
}

fn check(files: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let mut args = vec!["check"];
    args.extend(files.iter().map(|(name, _)| *name));
    let (stdout, stderr, code) = run_in(dir.path(), &args);
    (code, format!("{stdout}{stderr}"))
}

/// `check` describes a wildcard rule and a template argument.
#[test]
fn check_describes_wildcards_and_templates() {
    let (code, text) = check(&[("hooks.yaml", &HOOKS.replace("{fixtures}", "/bin"))]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("any of {payload commits.*.modified.*} =~ /^src//"),
        "{text}"
    );
    assert!(
        text.contains("every one (at least one) of {payload commits.*.modified.*} =~ /^docs//"),
        "{text}"
    );
    assert!(
        text.contains(r#"{template "{{ payload \"repository.full_name\" }}@{{ payload \"head_commit.id\" }}"}"#),
        "{text}"
    );
}

/// Bad templates and misplaced wildcards fail the load with their place and what to do.
#[test]
fn bad_templates_and_misplaced_wildcards_are_load_errors_with_their_place() {
    let head = "- id: a\n  execute-command: /bin/true\n";
    let cases = [
        (
            "  pass-arguments-to-command:\n    - {source: template, name: '{{ env \"HOME\" }}'}\n",
            "bad.yaml:4:32",
            "function `env` is not supported by a `template` source",
        ),
        (
            "  pass-arguments-to-command:\n    - {source: template, name: '{{ payload \"x\" '}\n",
            "bad.yaml:4:32",
            "bad template",
        ),
        (
            "  pass-environment-to-command:\n    - {source: template, name: '{{ request \"path\" }}', envname: P}\n",
            "bad.yaml:4:32",
            "unsupported request key: \"path\"",
        ),
        (
            "  trigger-rule:\n    match: {type: value, value: x, all: true, parameter: {source: payload, name: ref}}\n",
            "bad.yaml:4:41",
            "`all` applies to a `value` or `regex` match whose parameter is a payload name with a `*` segment",
        ),
        (
            "  trigger-rule:\n    match: {type: payload-hmac-sha256, secret: s, parameter: {source: payload, name: sigs.*}}\n",
            "bad.yaml:4:62",
            "checks one signature",
        ),
        (
            "  pass-file-to-command:\n    - {source: template, name: '{{ payload \"x\" }}'}\n",
            "bad.yaml:4:7",
            "a `template` value needs an `envname`",
        ),
        (
            "  parse-parameters-as-json:\n    - {source: payload, name: commits.*.meta}\n",
            "bad.yaml:4:31",
            "parse-parameters-as-json replaces one",
        ),
    ];
    for (body, place, message) in cases {
        let (code, text) = check(&[("bad.yaml", &format!("{head}{body}"))]);
        assert_eq!(code, Some(1), "{body}\n{text}");
        assert!(text.contains(place), "{place} in:\n{text}");
        assert!(text.contains(message), "{message} in:\n{text}");
    }
}

/// `explain` shows what a wildcard selected and how many values matched.
#[test]
fn explain_shows_the_selection_and_the_count() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooks.yaml"),
        HOOKS.replace("{fixtures}", "/bin"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("push.json"),
        push(&[&["docs/a.md"], &["src/b.rs"]]),
    )
    .unwrap();
    let (stdout, stderr, code) = run_in(
        dir.path(),
        &[
            "explain",
            "deploy",
            "--hooks",
            "hooks.yaml",
            "--body",
            "push.json",
            "--content-type",
            "application/json",
        ],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(r#"got "[\"docs/a.md\",\"src/b.rs\"]"; 1 of 2 selected values match"#),
        "{stdout}"
    );
}
