use std::collections::HashMap;

use super::*;
use crate::pipeline::request::ParamError;

struct Fake {
    env: HashMap<&'static str, &'static str>,
    files: HashMap<&'static str, &'static str>,
}

impl Host for Fake {
    fn getenv(&self, name: &str) -> Option<String> {
        self.env.get(name).map(|v| v.to_string())
    }

    fn read_file(&self, path: &str) -> Option<String> {
        self.files.get(path).map(|v| v.to_string())
    }
}

fn fake() -> Fake {
    Fake {
        env: HashMap::from([
            ("SECRET", "s3cr\"et<&>='\\"),
            ("CREDENTIALS_DIRECTORY", "/creds"),
            ("ONLY_ENV", "from-env"),
        ]),
        files: HashMap::from([("/etc/token", "tok\n\n"), ("/creds/db", "pw\n")]),
    }
}

fn render(text: &str) -> Result<String, TemplateError> {
    render_with(text, &fake())
}

#[test]
fn renders_like_go_text_template() {
    let table = [
        ("plain text", "plain text"),
        (
            "a {{ getenv \"SECRET\" | js }} b",
            "a s3cr\\\"et\\u003C\\u0026\\u003E\\u003D\\'\\\\ b",
        ),
        ("{{ getenv `UNSET` }}|", "|"),
        ("{{ cat \"/etc/token\" }}|{{ cat \"/missing\" }}", "tok\n|"),
        (
            "{{ credential \"db\" }} {{ credential \"ONLY_ENV\" }}",
            "pw from-env",
        ),
        ("{{ \"a<b\" | html }}", "a&lt;b"),
        ("{{ urlquery \"a b&c/d\" }}", "a+b%26c%2Fd"),
        ("{{ print 1 2 \"x\" 3 true }}", "1 2x3 true"),
        (
            "{{ printf \"%s-%d-%q-%v%%\" \"a\" 7 \"q\\n\" true }}",
            "a-7-\"q\\n\"-true%",
        ),
        (
            "{{ printf \"%d\" \"x\" }}{{ printf \"%s\" }}",
            "%!d(string=x)%!s(MISSING)",
        ),
        (
            "{{ printf \"%s:%s\" (getenv \"ONLY_ENV\") (cat \"/creds/db\") }}",
            "from-env:pw",
        ),
        ("a  \n {{- \"x\" -}} \n  b", "axb"),
        ("a {{- /* gone */ -}} b", "ab"),
        ("{{/* multi\nline */}}x", "x"),
        ("{{ \"}}\" }}", "}}"),
        ("{{ \"\\x41\\u00e9\\101\" }}", "AéA"),
        ("{{ -3 }}", "-3"),
        (
            "{{ print 0x1F 0o17 017 0b101 1_000 -0x10 +5 'a' '\\n' }}",
            "31 15 15 5 1000 -16 5 97 10",
        ),
        ("{{ println 1 \"a\" 2 }}", "1 a 2\n"),
        (
            "{{ html \"<a>\" 1 }}{{ js 1 2 }}{{ urlquery }}",
            "&lt;a&gt;11 2",
        ),
        (
            "{{ printf \"%s|%s|%q|%v %v\" 5 true 65 1 }}{{ printf \"x\" nil 1 }}",
            "%!s(int=5)|%!s(bool=true)|'A'|1 %!v(MISSING)x%!(EXTRA <nil>, int=1)",
        ),
    ];
    for (input, expected) in table {
        assert_eq!(render(input).as_deref(), Ok(expected), "{input:?}");
    }
}

/// Renders each input and compares with what webhook 2.8.0 (Go 1.19) renders.
fn assert_renders(table: &[(&str, &str)]) {
    for (input, expected) in table {
        assert_eq!(render(input).as_deref(), Ok(*expected), "{input:?}");
    }
}

/// Each input fails on its line with a message containing the needle.
fn assert_fails(table: &[(&str, usize, &str)]) {
    for (input, line, needle) in table {
        let err = render(input).expect_err(input);
        assert_eq!(err.line, *line, "{input:?}: {err:?}");
        assert!(err.message.contains(needle), "{input:?}: {err:?}");
    }
}

#[test]
fn if_else_if_and_else_choose_one_branch() {
    assert_renders(&[
        ("{{ if true }}yes{{ end }}|", "yes|"),
        ("{{ if false }}yes{{ end }}|", "|"),
        ("{{ if false }}a{{ else }}b{{ end }}", "b"),
        (
            "{{ if eq (getenv \"ONLY_ENV\") \"x\" }}x{{ else if eq (getenv \"ONLY_ENV\") \"from-env\" }}env{{ else }}none{{ end }}",
            "env",
        ),
        (
            "{{ if 0 }}1{{ else if \"\" }}2{{ else if 3 }}3{{ else }}4{{ end }}",
            "3",
        ),
        ("{{ if 0 }}1{{ else if \"\" }}2{{ end }}|", "|"),
        ("{{if(eq 1 1)}}no space{{end}}", "no space"),
        ("{{ if\n  true }}multi-line{{ end }}", "multi-line"),
        (
            "{{ if 1 }}{{ if 0 }}a{{ else }}{{ with \"w\" }}{{ . }}{{ end }}{{ end }}{{ end }}",
            "w",
        ),
    ]);
}

#[test]
fn with_sets_dot_and_has_an_else() {
    assert_renders(&[
        (
            "{{ with getenv \"ONLY_ENV\" }}[{{ . }}]{{ end }}",
            "[from-env]",
        ),
        (
            "{{ with getenv \"UNSET\" }}[{{ . }}]{{ else }}unset{{ end }}",
            "unset",
        ),
        // Inside the else, `.` is the outer one: nil at the top.
        ("{{ with 0 }}{{ else }}{{ . }}{{ end }}", "<no value>"),
        (
            "{{ with 1 }}{{ with \"s\" }}{{ . }}{{ end }}{{ . }}{{ end }}",
            "s1",
        ),
        // `$` stays the data.
        ("{{ with \"v\" }}{{ $ }}{{ end }}", "<no value>"),
    ]);
}

#[test]
fn truth_is_gos() {
    let table = [
        ("false", false),
        ("0", false),
        ("\"\"", false),
        ("(and nil)", false),
        (".", false),
        ("$", false),
        ("(getenv \"UNSET\")", false),
        ("true", true),
        ("1", true),
        ("-1", true),
        ("\"0\"", true),
        ("\"false\"", true),
        ("(getenv \"ONLY_ENV\")", true),
    ];
    for (value, truth) in table {
        let input = format!("{{{{ if {value} }}}}T{{{{ else }}}}F{{{{ end }}}}");
        let expected = if truth { "T" } else { "F" };
        assert_eq!(render(&input).as_deref(), Ok(expected), "{input:?}");
        let input = format!("{{{{ not {value} }}}}");
        assert_eq!(render(&input), Ok((!truth).to_string()), "{input:?}");
    }
}

#[test]
fn and_or_return_the_deciding_argument_and_stop_there() {
    assert_renders(&[
        ("{{ and 1 \"x\" 3 }}", "3"),
        ("{{ and 1 \"\" 3 }}", ""),
        ("{{ and 1 0 }}", "0"),
        ("{{ or 0 \"\" \"z\" false }}", "z"),
        ("{{ or 0 false }}", "false"),
        ("{{ or \"\" 0 }}", "0"),
        ("{{ and 1 . }}", "<no value>"),
        ("{{ print (or 0 .) }}", "<nil>"),
        ("{{ or (getenv \"UNSET\") \"default\" }}", "default"),
        // The piped value is the last argument.
        (
            "{{ 0 | and 1 }}|{{ 1 | and 0 }}|{{ \"p\" | or 0 }}",
            "0|0|p",
        ),
        // Go 1.18+ short-circuits: the failing comparison never runs.
        ("{{ or 1 (eq 1 \"x\") }} {{ and 0 (len 3) }}", "1 0"),
    ]);
    assert_fails(&[
        ("{{ and 1 (eq 1 \"x\") }}", 1, "incompatible types"),
        ("{{ and }}", 1, "want at least 1 got 0"),
        ("{{ or }}", 1, "want at least 1 got 0"),
        ("{{ not }}", 1, "want 1 got 0"),
        ("{{ not 1 2 }}", 1, "want 1 got 2"),
    ]);
}

#[test]
fn comparisons_follow_go() {
    assert_renders(&[
        (
            "{{ eq \"a\" \"a\" }} {{ eq 1 2 }} {{ eq true true }}",
            "true false true",
        ),
        // eq against several: true when the first equals any.
        (
            "{{ eq \"a\" \"b\" \"c\" \"a\" }} {{ eq 1 2 3 }}",
            "true false",
        ),
        // It stops at the first match, before a later argument of another type.
        ("{{ eq 1 1 \"x\" }}", "true"),
        // Nil equals only nil and may be compared with anything.
        (
            "{{ eq . nil }} {{ eq . \"a\" }} {{ eq \"a\" . }} {{ ne . 1 }}",
            "true false false true",
        ),
        ("{{ ne 1 2 }} {{ ne \"a\" \"a\" }}", "true false"),
        (
            "{{ lt 1 2 }} {{ lt \"b\" \"a\" }} {{ lt -1 0 }}",
            "true false true",
        ),
        (
            "{{ le 2 2 }} {{ le \"b\" \"a\" }} {{ gt 3 2 }} {{ gt 2 2 }}",
            "true false true false",
        ),
        ("{{ ge 1 2 }} {{ ge \"b\" \"b\" }}", "false true"),
        (
            "{{ len \"héllo\" }} {{ len \"\" }} {{ getenv \"ONLY_ENV\" | len }}",
            "6 0 8",
        ),
        ("{{ eq (len \"ab\") 2 }}", "true"),
    ]);
    assert_fails(&[
        (
            "{{ eq 1 \"x\" 1 }}",
            1,
            "error calling eq: incompatible types for comparison",
        ),
        ("{{ eq true 1 }}", 1, "incompatible types"),
        ("{{ ne \"1\" 1 }}", 1, "incompatible types"),
        ("{{ lt 1 \"a\" }}", 1, "incompatible types"),
        ("{{ lt true false }}", 1, "invalid type for comparison"),
        ("{{ ge . 1 }}", 1, "invalid type for comparison"),
        ("{{ gt 1 nil }}", 1, "invalid type for comparison"),
        ("{{ eq 1 }}", 1, "missing argument for comparison"),
        ("{{ eq }}", 1, "want at least 1 got 0"),
        (
            "{{ ne 1 2 3 }}",
            1,
            "wrong number of args for ne: want 2 got 3",
        ),
        ("{{ lt 1 }}", 1, "want 2 got 1"),
        ("{{ len 3 }}", 1, "len of type int"),
        ("{{ len . }}", 1, "len of nil"),
    ]);
}

#[test]
fn variables_are_scoped_like_go() {
    assert_renders(&[
        (
            "{{ $x := 1 }}{{ $x }}{{ $x = \"s\" }}{{ $x }}{{ $x := true }}{{ $x }}",
            "1strue",
        ),
        ("{{$x:=getenv \"ONLY_ENV\"}}{{$x}}", "from-env"),
        // Assigning inside a structure changes the outer variable ...
        (
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
            "2",
        ),
        // ... declaring shadows it until the structure's end.
        (
            "{{ $x := \"out\" }}{{ with \"in\" }}{{ $x := . }}{{ $x }}{{ end }}{{ $x }}",
            "inout",
        ),
        // A condition's variables live through the else branches.
        (
            "{{ if $x := getenv \"ONLY_ENV\" }}[{{ $x }}]{{ end }}",
            "[from-env]",
        ),
        (
            "{{ if $a := 0 }}{{ else if $b := 1 }}{{ $a }}{{ $b }}{{ end }}",
            "01",
        ),
        ("{{ if $a := \"\" }}{{ else }}{{ print $a }}{{ end }}", ""),
        ("{{ with $x := \"v\" }}{{ $x }}{{ . }}{{ end }}", "vv"),
        // In parentheses too, and in scope for the rest of the action.
        ("{{ print ($x := 1) $x }}", "1 1"),
        ("{{ $ = 1 }}{{ $ }}", "1"),
        ("{{ $x := . }}{{ $x }}", "<no value>"),
        // Never run, so never an error (Go too).
        ("{{ if false }}{{ $z = 1 }}{{ $z }}{{ end }}ok", "ok"),
    ]);
    assert_fails(&[
        // A variable declared inside a structure is gone after its end: a parse error.
        (
            "{{ if true }}{{ $y := 3 }}{{ end }}\n{{ $y }}",
            2,
            "undefined variable `$y`",
        ),
        ("{{ $x }}", 1, "undefined variable `$x`"),
        (
            "\n{{ if false }}{{ else }}{{ $x.Foo }}{{ end }}",
            2,
            "undefined variable `$x`",
        ),
        ("{{ \"x\" | $x := print }}", 1, "undefined variable"),
        // Declared in a branch not taken, used in the else: an error when it runs.
        (
            "{{ if false }}{{ $y := 1 }}{{ else }}\n{{ $y }}{{ end }}",
            2,
            "undefined variable: $y",
        ),
        ("{{ $z = 1 }}", 1, "undefined variable: $z"),
        ("{{ $x := $x }}", 1, "undefined variable: $x"),
        ("{{ $a, $b := 1 }}", 1, "too many declarations"),
        ("{{ $x := 1 }}{{ $x 2 }}", 1, "non-function"),
        ("{{ $x := }}", 1, "missing value"),
    ]);
}

#[test]
fn dot_and_fields_of_nil_are_nil() {
    assert_renders(&[
        (
            "{{ . }}|{{ $ }}|{{ print . }}",
            "<no value>|<no value>|<nil>",
        ),
        (
            "{{ .Foo }}|{{ .Foo.Bar }}|{{ $.Foo }}|{{ print .Foo }}",
            "<no value>|<no value>|<no value>|<nil>",
        ),
        // A field of nil takes arguments as a method would, unused.
        (
            "{{ .Foo 1 }}|{{ \"x\" | .Foo }}|{{ (.).Foo }}",
            "<no value>|<no value>|<no value>",
        ),
        ("{{ $x := . }}{{ $x.Foo }}", "<no value>"),
        (
            "{{ html . }}|{{ js nil }}|{{ urlquery . }}",
            "&lt;no value&gt;|\\u003Cno value\\u003E|%3Cno+value%3E",
        ),
        (
            "{{ print nil 1 }}|{{ printf \"%v|%s|%d\" . nil . }}",
            "<nil> 1|<nil>|%!s(<nil>)|%!d(<nil>)",
        ),
    ]);
    assert_fails(&[
        (
            "{{ with \"x\" }}{{ .Foo }}{{ end }}",
            1,
            "can't evaluate field Foo in type string",
        ),
        (
            "{{ $x := 1 }}{{ $x.Foo }}",
            1,
            "can't evaluate field Foo in type int",
        ),
        ("{{ (print \"x\").Foo }}", 1, "in type string"),
        ("{{ \"x\".Foo }}", 1, "after a constant"),
        ("{{ nil }}", 1, "nil is not a command"),
        ("{{ getenv . }}", 1, "invalid value; expected string"),
        ("{{ getenv nil }}", 1, "invalid value; expected string"),
    ]);
}

#[test]
fn range_runs_its_else_over_nil_and_nothing_else_can_be_ranged() {
    assert_renders(&[
        ("{{ range . }}x{{ else }}empty{{ end }}", "empty"),
        ("{{ range .Items }}x{{ end }}|", "|"),
        (
            "{{ range $i, $e := . }}{{ $i }}{{ else }}{{ print $i $e }}{{ end }}",
            "<nil> <nil>",
        ),
        (
            "{{ range $e := $ }}{{ if $e }}{{ break }}{{ end }}{{ continue }}{{ end }}ok",
            "ok",
        ),
    ]);
    assert_fails(&[
        (
            "\n{{ range \"abc\" }}{{ end }}",
            2,
            "range can't iterate over abc",
        ),
        ("{{ range 3 }}{{ end }}", 1, "range can't iterate over 3"),
        (
            "{{ range . }}{{ end }}{{ break }}",
            1,
            "`{{break}}` outside `{{range}}`",
        ),
        (
            "{{ if 1 }}{{ continue }}{{ end }}",
            1,
            "`{{continue}}` outside `{{range}}`",
        ),
        (
            "{{ range . }}{{ else }}{{ continue }}{{ end }}",
            1,
            "outside `{{range}}`",
        ),
        (
            "{{ range $a, 1 := . }}{{ end }}",
            1,
            "range can only initialize variables",
        ),
    ]);
}

#[test]
fn trim_markers_work_around_control_actions() {
    assert_renders(&[
        (
            "a  {{- if true -}}  b  {{- else -}}  c  {{- end -}}  d",
            "abd",
        ),
        (
            "a  {{- if false -}}  b  {{- else -}}  c  {{- end -}}  d",
            "acd",
        ),
        ("a  {{ if true -}}  b  {{ end }}  d", "a  b    d"),
        ("{{ if true }}a{{- else if false -}} b {{ end }}", "a"),
        ("x {{- $x := 1 -}} y {{- /* c */ -}} z", "xyz"),
        (
            "list:\n{{- range . }}\n- item\n{{- else }}\n- none\n{{- end }}\n",
            "list:\n- none\n",
        ),
        (
            "a:\n  {{- with getenv \"ONLY_ENV\" }}\n  b: {{ . }}\n  {{- end }}\n",
            "a:\n  b: from-env\n",
        ),
    ]);
}

#[test]
fn structural_errors_name_their_line() {
    assert_fails(&[
        ("a\n\n{{ end }}", 3, "unexpected `{{end}}`"),
        ("a\n{{ else }}", 2, "unexpected `{{else}}`"),
        (
            "{{ with 1 }}{{ end }}\n{{ else if 1 }}",
            2,
            "unexpected `{{else}}`",
        ),
        ("x\n{{ if true }}\nx", 2, "unclosed `{{if}}`"),
        ("{{ with 1 }}\n{{ else }}\n", 1, "unclosed `{{with}}`"),
        (
            "{{ if 1 }}{{ else if 2 }}\n{{ range . }}",
            2,
            "unclosed `{{range}}`",
        ),
        (
            "{{ if 1 }}{{ else }}\n{{ else }}{{ end }}",
            2,
            "found another `{{else}}`",
        ),
        (
            "{{ with 0 }}\n{{ else if 1 }}{{ end }}",
            2,
            "`{{else if}}` can only continue an `{{if}}`",
        ),
        // `else with` is newer Go than webhook 2.8's.
        (
            "{{ with 0 }}\n{{ else with 1 }}{{ end }}",
            2,
            "unexpected `with 1` in `{{else}}`",
        ),
        ("{{ if true }}{{ end 1 }}", 1, "unexpected `1` in `{{end}}`"),
        ("{{ if }}{{ end }}", 1, "missing value for if"),
        ("{{ with }}{{ end }}", 1, "missing value for with"),
        ("{{ print if }}", 1, "unexpected `if` in a command"),
        (
            "{{ print | \"x\" }}",
            1,
            "non executable command in pipeline stage 2",
        ),
        ("{{ print \"a\"\"b\" }}", 1, "after an operand"),
        ("{{ print(1) }}", 1, "after an operand"),
    ]);
    let deep = format!(
        "{}x{}",
        "{{ if 1 }}".repeat(100_000),
        "{{ end }}".repeat(100_000)
    );
    assert!(render(&deep).unwrap_err().message.contains("nested"));
    let ok = format!(
        "{}x{}",
        "{{ with 1 }}".repeat(MAX_NESTING),
        "{{ end }}".repeat(MAX_NESTING)
    );
    assert_eq!(render(&ok).as_deref(), Ok("x"));
    // An else-if chain is one level, however long.
    let chain = format!(
        "{{{{ if 0 }}}}{}{{{{ else }}}}last{{{{ end }}}}",
        "{{ else if 0 }}".repeat(1000)
    );
    assert_eq!(render(&chain).as_deref(), Ok("last"));
}

#[test]
fn errors_in_branches_not_taken_are_gos() {
    // Wrong argument counts and types are found when an action runs ...
    assert_renders(&[(
        "{{ if false }}{{ \"a\" \"b\" }}{{ getenv 1 2 }}{{ lt true 1 }}{{ range 3 }}{{ end }}{{ end }}ok",
        "ok",
    )]);
    // ... unknown functions and undeclared variables when the file is parsed, and a
    // parse error anywhere wins over an error running an earlier action.
    assert_fails(&[
        (
            "{{ if false }}\n{{ env \"A\" }}{{ end }}",
            2,
            "function `env`",
        ),
        (
            "{{ len 3 }}\n{{ if false }}{{ $nope }}{{ end }}",
            2,
            "undefined variable",
        ),
    ]);
}

#[test]
fn unsupported_actions_name_themselves_and_their_line() {
    let table = [
        ("x\n\n{{ env \"A\" }}", 3, "function `env`"),
        ("{{ index \"abc\" 1 }}", 1, "function `index`"),
        (
            "\n{{ define \"x\" }}X{{ end }}",
            2,
            "`{{define}}` is not supported",
        ),
        ("{{ template \"x\" }}", 1, "`{{template}}` is not supported"),
        (
            "{{ block \"x\" . }}{{ end }}",
            1,
            "`{{block}}` is not supported",
        ),
        ("a\n{{ getenv", 2, "unclosed action"),
        ("{{ getenv 1 }}", 1, "expected string; got int"),
        ("{{ getenv \"A\" \"B\" }}", 1, "want 1 got 2"),
        ("{{ }}", 1, "missing value"),
        ("{{ \"a\" \"b\" }}", 1, "non-function"),
        ("{{ printf \"%5s\" \"a\" }}", 1, "not supported"),
        ("{{ 1.5 }}", 1, "integers only"),
        ("{{ 'ab' }}", 1, "invalid character constant"),
    ];
    for (input, line, needle) in table {
        let err = render(input).expect_err(input);
        assert_eq!(err.line, line, "{input:?}: {err:?}");
        assert!(err.message.contains(needle), "{input:?}: {err:?}");
    }
    let deep = format!(
        "{{{{ {}\"x\"{} }}}}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert!(
        render(&deep)
            .unwrap_err()
            .message
            .contains("nested parentheses")
    );
}

#[test]
fn output_and_values_are_bounded() {
    let doubling = format!(
        "{{{{ $x := \"0123456789abcdef\" }}}}{}",
        "{{ $x = print $x $x }}".repeat(30)
    );
    assert!(render(&doubling).unwrap_err().message.contains("exceed"));
    let repeated = format!(
        "{{{{ $x := \"0123456789abcdef\" }}}}{}{}",
        "{{ $x = print $x $x }}".repeat(19),
        "{{ $x }}".repeat(40)
    );
    assert!(render(&repeated).unwrap_err().message.contains("exceed"));
}

#[test]
fn never_panics_on_truncated_or_corrupted_templates() {
    let sample = "{{- $x := getenv `A` -}}{{ if and $x (eq (len $x) 3) }}{{ $x | js }}{{ else if .Foo.Bar }}{{ with $y := printf \"%q\" 'a' }}{{ . }}{{ end }}{{ else }}{{ range $i, $e := . }}{{ break }}{{ else }}{{ or 0 nil }}{{ end }}{{ end }}{{/* c */}}";
    let bytes = sample.as_bytes();
    for end in 0..=bytes.len() {
        if let Ok(prefix) = std::str::from_utf8(&bytes[..end]) {
            let _ = render(prefix);
        }
    }
    for at in 0..bytes.len() {
        for replacement in [
            "{", "}", "(", ")", "$", ".", "|", "=", ":", ",", "'", "\"", "-", " ",
        ] {
            let mut corrupted = sample.to_owned();
            if corrupted.is_char_boundary(at) && corrupted.is_char_boundary(at + 1) {
                corrupted.replace_range(at..at + 1, replacement);
                let _ = render(&corrupted);
            }
        }
    }
}

/// A request as a template value sees it: `source:name` pairs.
struct FakeRequest;

impl Host for FakeRequest {
    fn getenv(&self, _: &str) -> Option<String> {
        Some("leaked".into())
    }

    fn read_file(&self, _: &str) -> Option<String> {
        Some("leaked".into())
    }

    fn request(&self, source: &str, name: &str) -> Result<String, FuncError> {
        match (source, name) {
            ("payload", "repo") => Ok("team/app".into()),
            ("header", "X-Event") => Ok("push".into()),
            ("request", "path") => Err(FuncError::Request(ParamError::Hard(
                "unsupported request key: \"path\"".into(),
            ))),
            _ => Ok(String::new()),
        }
    }
}

#[test]
fn template_values_read_the_request_and_nothing_else() {
    let value = |text: &str| render_value(text, &FakeRequest);
    assert_eq!(
        value(r#"{{ payload "repo" }}@{{ header "X-Event" }}"#).as_deref(),
        Ok("team/app@push")
    );
    assert_eq!(
        value(r#"{{ if payload "none" }}x{{ else }}empty{{ end }}"#).as_deref(),
        Ok("empty")
    );
    assert_eq!(
        value(r#"{{ payload "repo" | urlquery }}"#).as_deref(),
        Ok("team%2Fapp")
    );
    let unknown = value(r#"{{ getenv "HOME" }}"#).unwrap_err();
    assert!(
        unknown
            .message
            .contains("function `getenv` is not supported by a `template` source"),
        "{unknown:?}"
    );
    assert_eq!(
        value("\n{{ request \"path\" }}").unwrap_err(),
        TemplateError {
            line: 2,
            message: "unsupported request key: \"path\"".into()
        }
    );
    // The hooks-file template has no request to read.
    assert!(
        render(r#"{{ payload "repo" }}"#)
            .unwrap_err()
            .message
            .contains("function `payload` is not supported by hookwire's -template")
    );
}
