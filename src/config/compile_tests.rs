//! Table-driven tests of the whole loader: bytes in, hooks and diagnostics out. Behaviour that
//! mirrors adnanh cites what was measured on Debian's webhook 2.8.0.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;

#[allow(clippy::result_large_err)]
fn load_as(name: &str, text: &str) -> Result<LoadedFile, LoadError> {
    compile_file(Path::new(name), text.as_bytes(), &LoadOptions::default())
}

fn load(text: &str) -> LoadedFile {
    load_as("hooks.yaml", text).unwrap_or_else(|e| panic!("loads: {e}"))
}

fn invalid(name: &str, text: &str, options: &LoadOptions) -> Diagnostic {
    match compile_file(Path::new(name), text.as_bytes(), options) {
        Err(LoadError::Invalid(d)) => d,
        other => panic!("expected an invalid file, got {other:?}"),
    }
}

fn warning_containing<'a>(file: &'a LoadedFile, needle: &str) -> &'a Diagnostic {
    file.warnings
        .iter()
        .find(|w| w.message.contains(needle))
        .unwrap_or_else(|| panic!("no warning with {needle:?} in {:#?}", file.warnings))
}

/// A hook's Debug form with the source path blanked, to compare hooks from different files.
fn shape(hook: &Hook) -> String {
    let mut hook = hook.clone();
    hook.source = Arc::from(Path::new(""));
    format!("{hook:?}")
}

const FULL_YAML: &str = r#"
- id: deploy
  execute-command: /srv/deploy.sh
  command-working-directory: /srv
  response-message: Deploying
  response-headers:
    - {name: X-A, value: b}
  success-http-response-code: 201
  trigger-rule-mismatch-http-response-code: 403
  incoming-payload-content-type: application/json
  http-methods: [" post ", Put]
  include-command-output-in-response: true
  include-command-output-in-response-on-error: true
  pass-arguments-to-command:
    - {source: payload, name: head_commit.id}
    - {source: string, name: literal}
  pass-environment-to-command:
    - {source: header, name: X-Event, envname: EVENT}
  pass-file-to-command:
    - {source: payload, name: file, envname: FILE, base64decode: true}
  parse-parameters-as-json:
    - {source: url, name: payload}
  trigger-signature-soft-failures: true
  trigger-rule:
    and:
      - match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Hub-Signature-256}}
      - or:
          - match: {type: value, value: refs/heads/main, parameter: {source: payload, name: ref}}
          - match: {type: regex, regex: "^v[0-9]+", parameter: {source: query, name: tag}}
      - not:
          match: {type: ip-whitelist, ip-range: "10.0.0.0/8 192.168.1.1"}
"#;

const FULL_TOML: &str = r#"
[[hooks]]
id = "deploy"
execute-command = "/srv/deploy.sh"
command-working-directory = "/srv"
response-message = "Deploying"
response-headers = [{name = "X-A", value = "b"}]
success-http-response-code = 201
trigger-rule-mismatch-http-response-code = 403
incoming-payload-content-type = "application/json"
http-methods = [" post ", "Put"]
include-command-output-in-response = true
include-command-output-in-response-on-error = true
pass-arguments-to-command = [
  {source = "payload", name = "head_commit.id"},
  {source = "string", name = "literal"},
]
pass-environment-to-command = [{source = "header", name = "X-Event", envname = "EVENT"}]
pass-file-to-command = [{source = "payload", name = "file", envname = "FILE", base64decode = true}]
parse-parameters-as-json = [{source = "url", name = "payload"}]
trigger-signature-soft-failures = true

[[hooks.trigger-rule.and]]
match = {type = "payload-hmac-sha256", secret = "s3cret", parameter = {source = "header", name = "X-Hub-Signature-256"}}

[[hooks.trigger-rule.and]]
or = [
  {match = {type = "value", value = "refs/heads/main", parameter = {source = "payload", name = "ref"}}},
  {match = {type = "regex", regex = "^v[0-9]+", parameter = {source = "query", name = "tag"}}},
]

[[hooks.trigger-rule.and]]
not = {match = {type = "ip-whitelist", ip-range = "10.0.0.0/8 192.168.1.1"}}
"#;

const FULL_JSON: &str = "\u{feff}[\n\t{\n\t\t\"id\": \"deploy\",\n\t\t\"execute-command\": \"/srv/deploy.sh\",\n\t\t\"command-working-directory\": \"/srv\",\n\t\t\"response-message\": \"Deploying\",\n\t\t\"response-headers\": [{\"name\": \"X-A\", \"value\": \"b\"},],\n\t\t\"success-http-response-code\": 201,\n\t\t\"trigger-rule-mismatch-http-response-code\": 403,\n\t\t\"incoming-payload-content-type\": \"application/json\",\n\t\t\"http-methods\": [\" post \", \"Put\"],\n\t\t\"include-command-output-in-response\": true,\n\t\t\"include-command-output-in-response-on-error\": true,\n\t\t\"pass-arguments-to-command\": [{\"source\": \"payload\", \"name\": \"head_commit.id\"}, {\"source\": \"string\", \"name\": \"literal\"}],\n\t\t\"pass-environment-to-command\": [{\"source\": \"header\", \"name\": \"X-Event\", \"envname\": \"EVENT\"}],\n\t\t\"pass-file-to-command\": [{\"source\": \"payload\", \"name\": \"file\", \"envname\": \"FILE\", \"base64decode\": true}],\n\t\t\"parse-parameters-as-json\": [{\"source\": \"url\", \"name\": \"payload\"}],\n\t\t\"trigger-signature-soft-failures\": true,\n\t\t\"trigger-rule\": {\"and\": [\n\t\t\t{\"match\": {\"type\": \"payload-hmac-sha256\", \"secret\": \"s3cret\", \"parameter\": {\"source\": \"header\", \"name\": \"X-Hub-Signature-256\"}}},\n\t\t\t{\"or\": [\n\t\t\t\t{\"match\": {\"type\": \"value\", \"value\": \"refs/heads/main\", \"parameter\": {\"source\": \"payload\", \"name\": \"ref\"}}},\n\t\t\t\t{\"match\": {\"type\": \"regex\", \"regex\": \"^v[0-9]+\", \"parameter\": {\"source\": \"query\", \"name\": \"tag\"}}},\n\t\t\t]},\n\t\t\t{\"not\": {\"match\": {\"type\": \"ip-whitelist\", \"ip-range\": \"10.0.0.0/8 192.168.1.1\"}}},\n\t\t]},\n\t},\n]\n";

#[test]
fn every_field_compiles() {
    let file = load(FULL_YAML);
    assert!(file.warnings.is_empty(), "{:#?}", file.warnings);
    let [hook] = &file.hooks[..] else {
        panic!("one hook")
    };
    assert_eq!(hook.id, "deploy");
    assert_eq!(hook.execute_command, "/srv/deploy.sh");
    assert_eq!(hook.command_working_directory, "/srv");
    assert_eq!(hook.response_message, "Deploying");
    assert_eq!(
        hook.response_headers,
        vec![ResponseHeader {
            name: "X-A".into(),
            value: "b".into()
        }]
    );
    assert_eq!(
        (
            hook.success_http_response_code,
            hook.trigger_rule_mismatch_http_response_code
        ),
        (201, 403)
    );
    assert_eq!(hook.incoming_payload_content_type, "application/json");
    assert_eq!(hook.http_methods, ["POST", "PUT"]);
    assert!(
        hook.include_command_output_in_response && hook.include_command_output_in_response_on_error
    );
    assert!(hook.trigger_signature_soft_failures);
    assert_eq!(hook.pass_arguments_to_command[0].source, Source::Payload);
    assert_eq!(hook.pass_arguments_to_command[1].source, Source::String);
    assert_eq!(hook.pass_environment_to_command[0].envname, "EVENT");
    assert!(hook.pass_file_to_command[0].base64decode);
    assert_eq!(hook.parse_parameters_as_json[0].source, Source::Query);
    assert_eq!(&*hook.source, Path::new("hooks.yaml"));
    let Some(Rule::And(children)) = &hook.trigger_rule else {
        panic!("and rule")
    };
    let Rule::Match(MatchRule {
        kind:
            MatchKind::PayloadHmac {
                algorithm,
                secret,
                deprecated_alias,
            },
        parameter,
        ..
    }) = &children[0]
    else {
        panic!("hmac first")
    };
    assert_eq!(
        (*algorithm, secret.expose(), *deprecated_alias),
        (HmacAlgorithm::Sha256, &b"s3cret"[..], false)
    );
    assert_eq!(parameter.name, "X-Hub-Signature-256");
    let Rule::Or(alternatives) = &children[1] else {
        panic!("or second")
    };
    let Rule::Match(MatchRule {
        kind: MatchKind::Regex(Ok(regex)),
        ..
    }) = &alternatives[1]
    else {
        panic!("regex")
    };
    assert!(
        regex.is_match("v12 and more"),
        "unanchored like Go's MatchString"
    );
    let Rule::Not(inner) = &children[2] else {
        panic!("not third")
    };
    let Rule::Match(MatchRule {
        kind: MatchKind::IpWhitelist(ranges),
        ..
    }) = inner.as_ref()
    else {
        panic!("ip")
    };
    let ranges: Vec<String> = ranges
        .iter()
        .map(|r| r.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(ranges, ["10.0.0.0/8", "192.168.1.1/32"]);
}

#[test]
fn toml_and_json_equivalents_produce_identical_hooks() {
    let yaml = load(FULL_YAML);
    let toml = load_as("hooks.toml", FULL_TOML).unwrap();
    let json = load_as("hooks.json", FULL_JSON).unwrap();
    assert!(
        toml.warnings.is_empty() && json.warnings.is_empty(),
        "{:#?}{:#?}",
        toml.warnings,
        json.warnings
    );
    assert_eq!(shape(&yaml.hooks[0]), shape(&toml.hooks[0]));
    assert_eq!(shape(&yaml.hooks[0]), shape(&json.hooks[0]));
    let inline = load_as(
        "inline.toml",
        "hooks = [{id = \"a\", execute-command = \"/bin/true\"}]\n",
    )
    .unwrap();
    assert_eq!(inline.hooks[0].id, "a");
}

#[test]
fn yaml_1_1_scalars_reach_every_field_type() {
    // Measured on webhook 2.8.0: `- id: y` is hook `true`; 0x12C → 300; 201.0 → 201; `yes`
    // turns the output on.
    let file = load(
        "- id: y\n  execute-command: 0755\n  success-http-response-code: 0x12C\n  \
         trigger-rule-mismatch-http-response-code: 201.0\n  include-command-output-in-response: yes\n  \
         trigger-signature-soft-failures: off\n  response-message: ~\n  http-methods: [1.10, on]\n  \
         trigger-rule: {match: {type: value, value: 1_000, parameter: {source: string, name: 0x1F}}}\n",
    );
    let hook = &file.hooks[0];
    assert_eq!(
        (hook.id.as_str(), hook.execute_command.as_str()),
        ("true", "493")
    );
    assert_eq!(
        (
            hook.success_http_response_code,
            hook.trigger_rule_mismatch_http_response_code
        ),
        (300, 201)
    );
    assert!(hook.include_command_output_in_response && !hook.trigger_signature_soft_failures);
    assert_eq!(hook.response_message, "");
    assert_eq!(hook.http_methods, ["1.1", "TRUE"]);
    let Some(Rule::Match(MatchRule {
        kind: MatchKind::Value(value),
        parameter,
        ..
    })) = &hook.trigger_rule
    else {
        panic!()
    };
    assert_eq!((value.as_str(), parameter.name.as_str()), ("1000", "31"));
}

#[test]
fn type_errors_name_file_line_column_hook_and_field() {
    // Each of these makes webhook 2.8.0 refuse the file ("cannot unmarshal ... into Go struct
    // field Hook.success-http-response-code of type int", measured).
    let table: &[(&str, usize, usize, &str, &str, &str)] = &[
        (
            "- id: a\n  success-http-response-code: abc\n",
            2,
            31,
            "success-http-response-code",
            "expected an integer, found `abc`",
            "write an integer",
        ),
        (
            "- id: a\n  success-http-response-code: \"200\"\n",
            2,
            31,
            "success-http-response-code",
            "found the string \"200\"",
            "remove the quotes",
        ),
        (
            "- id: a\n  success-http-response-code: 1.5\n",
            2,
            31,
            "success-http-response-code",
            "found `1.5`",
            "integer",
        ),
        (
            "- id: a\n  include-command-output-in-response: \"true\"\n",
            2,
            39,
            "include-command-output-in-response",
            "expected true or false",
            "remove the quotes",
        ),
        (
            "- id: a\n  include-command-output-in-response: 1\n",
            2,
            39,
            "include-command-output-in-response",
            "found `1`",
            "true or false",
        ),
        (
            "- id: a\n  response-message: {a: 1}\n",
            2,
            21,
            "response-message",
            "expected a string, found a mapping",
            "string",
        ),
        (
            "- id: a\n  http-methods: POST\n",
            2,
            17,
            "http-methods",
            "expected a list, found `POST`",
            "list",
        ),
        (
            "- id: a\n  trigger-rule:\n    match: {type: value, value: [1]}\n",
            3,
            33,
            "trigger-rule.match.value",
            "found a list",
            "string",
        ),
        (
            "- id: a\n  trigger-rule: {and: {match: {}}}\n",
            2,
            23,
            "trigger-rule.and",
            "expected a list of rules",
            "list",
        ),
        (
            "- id: a\n  pass-arguments-to-command: [payload]\n",
            2,
            31,
            "pass-arguments-to-command[0]",
            "expected a argument object",
            "argument",
        ),
    ];
    for (text, line, column, field, message, hint) in table {
        let d = invalid("hooks.yaml", text, &LoadOptions::default());
        assert_eq!((d.line, d.column), (*line, *column), "{text:?}: {d}");
        assert_eq!(d.hook.as_deref(), Some("a"), "{text:?}");
        assert_eq!(d.field.as_deref(), Some(*field), "{text:?}");
        assert!(d.message.contains(message), "{text:?}: {d}");
        assert!(
            d.hint.as_deref().unwrap_or_default().contains(hint),
            "{text:?}: {d}"
        );
        assert_eq!(d.file, PathBuf::from("hooks.yaml"));
    }
}

#[test]
fn diagnostics_render_with_place_hook_and_field() {
    let d = invalid(
        "hooks.yaml",
        "- id: a\n  success-http-response-code: abc\n",
        &LoadOptions::default(),
    );
    assert_eq!(
        d.to_string(),
        "hooks.yaml:2:31: hook `a`: `success-http-response-code`: expected an integer, found `abc` \
         (hint: write an integer here; adnanh does not load a file with this error)"
    );
}

#[test]
fn misspelt_trigger_rule_is_a_loud_warning_with_a_hint() {
    // Measured on webhook 2.8.0: the misspelt key is ignored and the hook fires for everyone.
    let file = load(
        "- id: open\n  execute-command: /bin/true\n  trigger-rules:\n    match: {type: value}\n",
    );
    assert!(file.hooks[0].trigger_rule.is_none());
    let w = warning_containing(&file, "`trigger-rules`");
    assert!(
        w.message.contains("NO trigger rule") && w.message.contains("EVERY request"),
        "{w}"
    );
    assert_eq!(w.hint.as_deref(), Some("did you mean `trigger-rule`?"));
    assert_eq!((w.line, w.column, w.hook.as_deref()), (3, 3, Some("open")));
    assert_eq!(w.field.as_deref(), Some("trigger-rules"));
}

#[test]
fn unknown_keys_warn_everywhere_but_extensions_do_not() {
    let file = load(
        "- execute-comand: /x\n  id: a\n  timeout: 5m\n  signature: {provider: github, secret: s}\n  \
         pass-arguments-to-command: [{source: payload, name: x, context: y}]\n  \
         trigger-rule: {match: {type: value, valeu: x, parameter: {source: header, name: h}}}\n",
    );
    let w = warning_containing(&file, "`execute-comand`");
    assert_eq!(
        (w.line, w.column, w.hook.as_deref()),
        (1, 3, Some("a")),
        "hook id known later still named"
    );
    assert_eq!(w.hint.as_deref(), Some("did you mean `execute-command`?"));
    let w = warning_containing(&file, "`context`");
    assert!(
        w.hint.as_deref().unwrap().contains("`source`, `name`"),
        "{w}"
    );
    assert_eq!(
        w.field.as_deref(),
        Some("pass-arguments-to-command[0].context")
    );
    let w = warning_containing(&file, "`valeu`");
    assert_eq!(w.hint.as_deref(), Some("did you mean `value`?"));
    assert!(
        !file
            .warnings
            .iter()
            .any(|w| w.message.contains("timeout") || w.message.contains("signature"))
    );
}

#[test]
fn keys_match_case_insensitively_like_go() {
    // Measured on webhook 2.8.0: `ID`, `Execute-Command`, `Response-Message` work.
    let file = load("- ID: upper\n  Execute-Command: /bin/echo\n  id: lower\n");
    assert_eq!(
        file.hooks[0].id, "lower",
        "Go sees sorted keys: `id` after `ID` wins"
    );
    assert_eq!(file.hooks[0].execute_command, "/bin/echo");
    let w = warning_containing(&file, "`Execute-Command` is read as `execute-command`");
    assert_eq!(w.hint.as_deref(), Some("write `execute-command`"));
}

#[test]
fn invalid_regex_and_cidr_load_with_warnings() {
    // Measured on webhook 2.8.0: the file loads; a request reaching the regex rule gets 500.
    let file = load(
        "- id: a\n  execute-command: /x\n  trigger-rule:\n    or:\n      \
         - match: {type: regex, regex: \"(\", parameter: {source: url, name: a}}\n      \
         - match: {type: ip-whitelist, ip-range: \"10.0.0.5/24 ::1 bogus 2001:db8::/32\"}\n",
    );
    let Some(Rule::Or(rules)) = &file.hooks[0].trigger_rule else {
        panic!()
    };
    let Rule::Match(MatchRule {
        kind: MatchKind::Regex(Err(message)),
        ..
    }) = &rules[0]
    else {
        panic!()
    };
    assert!(!message.to_string().is_empty());
    let w = warning_containing(&file, "invalid regex");
    assert_eq!((w.line, w.column), (5, 37));
    assert_eq!(w.field.as_deref(), Some("trigger-rule.or[0].match.regex"));
    let Rule::Match(MatchRule {
        kind: MatchKind::IpWhitelist(ranges),
        ..
    }) = &rules[1]
    else {
        panic!()
    };
    let shown: Vec<String> = ranges
        .iter()
        .map(|r| {
            r.as_ref()
                .map_or_else(ToString::to_string, ToString::to_string)
        })
        .collect();
    assert_eq!(
        shown,
        [
            "10.0.0.0/24",
            "::1/128",
            "invalid CIDR address: bogus",
            "2001:db8::/32"
        ]
    );
    warning_containing(&file, "invalid CIDR address: bogus");
    let w = warning_containing(&file, "bare IPv6 address `::1`");
    assert!(w.hint.as_deref().unwrap().contains("/32"));
}

#[test]
fn rule_precedence_and_empty_rules() {
    // Measured on webhook 2.8.0: `{match: ..., and: []}` fires for any request (`and` wins);
    // `and: []` fires; `not: {}` fires; `trigger-rule: ~` has no rule.
    let file = load(
        "- id: both\n  trigger-rule: {match: {type: value, value: x, parameter: {source: url, name: a}}, and: []}\n\
         - id: empty\n  trigger-rule: {}\n\
         - id: null-rule\n  trigger-rule: ~\n\
         - id: not-empty\n  trigger-rule: {not: {}}\n\
         - id: null-branches\n  trigger-rule: {and: ~, or: [], match: {type: value}}\n",
    );
    let rule = |i: usize| file.hooks[i].trigger_rule.as_ref();
    assert!(matches!(rule(0), Some(Rule::And(v)) if v.is_empty()));
    let w = warning_containing(&file, "`match` is ignored");
    assert_eq!(w.hook.as_deref(), Some("both"));
    warning_containing(&file, "an empty list always holds");
    assert!(matches!(rule(1), Some(Rule::Empty)));
    warning_containing(&file, "this rule is empty");
    assert!(rule(2).is_none());
    assert!(matches!(rule(3), Some(Rule::Not(inner)) if matches!(**inner, Rule::Empty)));
    assert!(
        matches!(rule(4), Some(Rule::Or(v)) if v.is_empty()),
        "null `and` is unset, so `or` wins"
    );
}

#[test]
fn match_types_and_sources() {
    let file = load(
        "- id: a\n  execute-command: /x\n  trigger-rule:\n    and:\n      \
         - match: {type: payload-hash-sha1, secret: s, parameter: {source: header, name: X-Sig}}\n      \
         - match: {type: payload-hmac-sha512, parameter: {source: header, name: X-Sig}}\n      \
         - match: {type: scalr-signature, secret: s}\n      \
         - match: {type: valeu, parameter: {source: headers, name: x}}\n      \
         - match: {type: value, value: x, parameter: {source: headers, name: x}}\n  \
         pass-arguments-to-command: [{source: request, name: method}, {source: raw-request-body}, \
         {source: entire-payload}, {source: entire-headers}, {source: entire-query}, {name: nosource}]\n",
    );
    let Some(Rule::And(rules)) = &file.hooks[0].trigger_rule else {
        panic!()
    };
    let kinds: Vec<&MatchKind> = rules
        .iter()
        .map(|r| match r {
            Rule::Match(m) => &m.kind,
            _ => panic!(),
        })
        .collect();
    assert!(matches!(
        kinds[0],
        MatchKind::PayloadHmac {
            algorithm: HmacAlgorithm::Sha1,
            deprecated_alias: true,
            ..
        }
    ));
    assert!(matches!(
        kinds[1],
        MatchKind::PayloadHmac {
            algorithm: HmacAlgorithm::Sha512,
            deprecated_alias: false,
            ..
        }
    ));
    assert!(matches!(kinds[2], MatchKind::ScalrSignature { .. }));
    assert!(matches!(kinds[3], MatchKind::Unknown(t) if t == "valeu"));
    assert_eq!(
        warning_containing(&file, "`payload-hash-sha1` is deprecated")
            .hint
            .as_deref(),
        Some("write `payload-hmac-sha1`; it works the same")
    );
    warning_containing(&file, "has no `secret`");
    assert_eq!(
        warning_containing(&file, "unknown match type `valeu`")
            .hint
            .as_deref(),
        Some("did you mean `value`?")
    );
    assert_eq!(
        warning_containing(&file, "unknown source `headers`")
            .hint
            .as_deref(),
        Some("did you mean `header`?")
    );
    let sources: Vec<&Source> = file.hooks[0]
        .pass_arguments_to_command
        .iter()
        .map(|a| &a.source)
        .collect();
    assert_eq!(
        sources,
        [
            &Source::Request,
            &Source::RawRequestBody,
            &Source::EntirePayload,
            &Source::EntireHeaders,
            &Source::EntireQuery,
            &Source::Other(String::new())
        ]
    );
    warning_containing(&file, "has no `source`");
}

#[test]
fn hook_level_checks() {
    // Measured on webhook 2.8.0: the same id twice serves the first; a `-` (null) entry is a
    // hook with an empty id, served at `/hooks/`.
    let file = load(
        "- id: a\n  response-message: first\n- id: a\n  response-message: second\n-\n- id: b\n  execute-command: /x\n  success-http-response-code: 70000\n",
    );
    assert_eq!(file.hooks.len(), 3);
    assert_eq!(file.hooks[0].response_message, "first");
    let w = warning_containing(&file, "hook id `a` is already used at line 1");
    assert_eq!((w.line, w.hook.as_deref()), (3, Some("a")));
    assert_eq!(file.hooks[1].id, "");
    warning_containing(&file, "this hook has no `id`");
    warning_containing(&file, "no `execute-command`");
    assert_eq!(file.hooks[2].success_http_response_code, 0);
    warning_containing(&file, "70000 is not an HTTP status code");
}

#[test]
fn empty_files_and_wrong_top_levels() {
    for text in ["", "\n# only a comment\n", "~\n", "[]\n"] {
        let file = load(text);
        assert!(
            file.hooks.is_empty() && file.warnings.is_empty(),
            "{text:?}"
        );
    }
    assert!(load_as("empty.toml", "").unwrap().hooks.is_empty());
    // Measured: "cannot unmarshal object into Go value of type hook.Hooks".
    let d = invalid(
        "hooks.yaml",
        "id: a\nexecute-command: /x\n",
        &LoadOptions::default(),
    );
    assert!(
        d.message
            .contains("expected a list of hooks at the top level, found a mapping"),
        "{d}"
    );
    assert_eq!((d.line, d.column), (1, 1));
    let d = invalid("hooks.yaml", "- just a string\n", &LoadOptions::default());
    assert!(d.message.contains("expected a hook object"), "{d}");
    let d = invalid("hooks.toml", "[hooks]\nid = 'a'\n", &LoadOptions::default());
    assert!(d.hint.unwrap().contains("[[hooks]]"));
}

#[test]
fn syntax_errors_and_bad_encodings_are_invalid() {
    let d = invalid(
        "hooks.json",
        "[{\"id\": \"a\",, }]",
        &LoadOptions::default(),
    );
    assert!(
        d.message.contains("YAML syntax error") && d.line == 1,
        "{d}"
    );
    let d = invalid("hooks.toml", "[[hooks]]\nid = \n", &LoadOptions::default());
    assert!(
        d.message.contains("TOML syntax error") && d.line == 2,
        "{d}"
    );
    let d = match compile_file(
        Path::new("h.yaml"),
        b"- id: a\n  x: \xff\n",
        &LoadOptions::default(),
    ) {
        Err(LoadError::Invalid(d)) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!((d.line, d.column), (2, 6));
}

#[test]
fn templates_render_before_parsing() {
    let options = LoadOptions { template: true };
    let text = "- id: {{ print \"t\" 1 }}\n  execute-command: \"{{ getenv \"HOOKWIRE_TEST_SURELY_UNSET\" | js }}\"\n  {{- /* comment */}}\n  response-message: '{{ \"a\" }}'\n";
    let file = compile_file(Path::new("t.yaml"), text.as_bytes(), &options).unwrap();
    assert_eq!(
        (
            file.hooks[0].id.as_str(),
            file.hooks[0].execute_command.as_str()
        ),
        ("t1", "")
    );
    assert_eq!(file.hooks[0].response_message, "a");
    let d = invalid(
        "t.yaml",
        "- id: a\n\n  response-message: {{ env \"X\" }}\n",
        &options,
    );
    assert_eq!(d.line, 3);
    assert!(
        d.message.starts_with("template error: function `env`"),
        "{d}"
    );
    // Without -template the braces are just text (a YAML flow mapping here).
    assert!(
        load("- id: a\n  response-message: '{{ env }}'\n").hooks[0].response_message == "{{ env }}"
    );
}

#[test]
fn never_panics_on_truncated_or_corrupted_files() {
    // A cheap stand-in for the fuzzer: every prefix of each sample, and each sample with one
    // byte replaced by characters that matter to the readers.
    let samples = [
        ("h.yaml", FULL_YAML),
        ("h.json", FULL_JSON),
        ("h.toml", FULL_TOML),
        (
            "t.yaml",
            "- id: {{ printf \"%s\" (getenv `X`) | js }}\n  a: &x [*x]\n  <<: *x\n",
        ),
    ];
    let both = [
        LoadOptions { template: false },
        LoadOptions { template: true },
    ];
    for (name, text) in samples {
        let bytes = text.as_bytes();
        for options in &both {
            for end in (0..bytes.len()).step_by(3) {
                let _ = compile_file(Path::new(name), &bytes[..end], options);
            }
            for at in (0..bytes.len()).step_by(11) {
                for replacement in [b'{', b'"', b'\'', b'-', b':', b'[', b'\\', b'&', b'*', 0xff] {
                    let mut corrupted = bytes.to_vec();
                    corrupted[at] = replacement;
                    let _ = compile_file(Path::new(name), &corrupted, options);
                }
            }
        }
    }
}

#[test]
fn hostile_toml_nesting_is_rejected() {
    let deep_table = format!(
        "hooks = [{}1{}]",
        "{a = ".repeat(10_000),
        "}".repeat(10_000)
    );
    assert!(load_as("h.toml", &deep_table).is_err());
}

#[test]
fn file_names_that_leave_the_working_directory_are_refused() {
    let options = LoadOptions::default();
    for (text, line, column, field) in [
        (
            "- id: a\n  pass-file-to-command:\n    - {source: payload, name: x, envname: ../../x}\n",
            3,
            43,
            "pass-file-to-command[0].envname",
        ),
        (
            "- id: a\n  pass-file-to-command:\n    - source: payload\n      name: x\n      envname: etc/x\n",
            5,
            16,
            "pass-file-to-command[0].envname",
        ),
        (
            "- id: a\n  pass-file-to-command:\n    - {source: payload, name: \"a\\0b\", envname: \"B\\0C\"}\n",
            3,
            48,
            "pass-file-to-command[0].envname",
        ),
        // Without `envname` the name itself becomes the file name (`HOOK_` + upper case).
        (
            "- id: a\n  pass-file-to-command:\n    - {source: payload, name: ../x}\n",
            3,
            31,
            "pass-file-to-command[0].name",
        ),
    ] {
        let error = invalid("hooks.yaml", text, &options);
        assert_eq!(
            (error.line, error.column, error.field.as_deref()),
            (line, column, Some(field)),
            "{text}: {error}"
        );
        assert!(
            error.message.contains("outside the working directory"),
            "{error}"
        );
        assert_eq!(error.hook.as_deref(), Some("a"));
    }
    // Dots inside a name are fine, and environment variables may hold anything.
    let file = load(
        "- id: a\n  pass-file-to-command:\n    - {source: payload, name: head_commit.id}\n  pass-environment-to-command:\n    - {source: payload, name: x, envname: ../x}\n",
    );
    assert_eq!(file.hooks.len(), 1);
}
