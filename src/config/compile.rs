//! Schema to domain: builds [`Hook`](super::Hook)s from the parsed file, compiling regexes,
//! CIDRs and rules once, and recording warnings with their place in the file.
//!
//! adnanh validates nothing at load: an invalid regex or CIDR, an unknown match type or source
//! only shows up when a request reaches it. hookwire loads the same files the same way (a
//! broken regex stays broken until a request hits it), but says so at load, with the line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use ipnet::IpNet;
use regex::RegexBuilder;

use super::format::{self, Format, Kind, Node, Pos, Problem};
use super::schema::{self, ARGUMENT, HEADER, HOOK, MATCH, Object, RULE, Reader};
use super::{Diagnostic, Hook, LoadError, LoadOptions, LoadedFile, ResponseHeader, template};
use crate::pipeline::request::json::Selection;
use crate::pipeline::request::{Argument, Source};
use crate::pipeline::rules::{InvalidIpRange, MatchKind, MatchRule, Rule};
use crate::pipeline::signature::HmacAlgorithm;
use crate::secret::Secret;

/// Compiled size limit for one `regex` rule: generous for real patterns, and a bound on the
/// memory a hostile hooks file can make us spend.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The `source` names adnanh knows (`url` and `query` are one source).
const SOURCES: &[&str] = &[
    "payload",
    "header",
    "url",
    "query",
    "request",
    "raw-request-body",
    "entire-payload",
    "entire-headers",
    "entire-query",
    "string",
    "template",
];

/// The match `type`s adnanh 2.8 knows.
const MATCH_TYPES: &[&str] = &[
    "value",
    "regex",
    "payload-hmac-sha1",
    "payload-hmac-sha256",
    "payload-hmac-sha512",
    "payload-hash-sha1",
    "payload-hash-sha256",
    "payload-hash-sha512",
    "ip-whitelist",
    "scalr-signature",
];

/// Parses and compiles the bytes of one hooks file.
// The signature is shared with `config::load_file`; `LoadError::Invalid` is large by design.
#[allow(clippy::result_large_err)]
pub fn compile_file(
    path: &Path,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<LoadedFile, LoadError> {
    let invalid = |problem: Problem| LoadError::Invalid(problem_diagnostic(path, problem));
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(utf8_problem(bytes, &e)))?;
    let rendered;
    let text = if options.template {
        rendered = template::render(text).map_err(|e| {
            invalid(Problem {
                pos: Pos { line: e.line, column: 0 },
                message: format!("template error: {}", e.message),
                hint: Some("hookwire's -template runs Go's text/template without define, template, block, floats, index, slice and call (see docs/hooks.md, \"Templates\")".into()),
            })
        })?;
        rendered.as_str()
    } else {
        text
    };
    let format = Format::of(path);
    let parsed = format::parse(format, text).map_err(invalid)?;
    let mut reader = Reader::new(path);
    reader.warnings.extend(
        parsed
            .warnings
            .into_iter()
            .map(|p| problem_diagnostic(path, p)),
    );
    let hooks = match &parsed.root {
        Some(root) => compile_hooks(&mut reader, root, format, &Arc::from(path))
            .map_err(|d| LoadError::Invalid(*d))?,
        None => Vec::new(),
    };
    Ok(LoadedFile {
        path: path.to_path_buf(),
        hooks,
        warnings: reader.warnings,
    })
}

fn problem_diagnostic(path: &Path, problem: Problem) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        line: problem.pos.line,
        column: problem.pos.column,
        hook: None,
        field: None,
        message: problem.message,
        hint: problem.hint,
    }
}

fn utf8_problem(bytes: &[u8], error: &std::str::Utf8Error) -> Problem {
    let valid = &bytes[..error.valid_up_to()];
    let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count()
        + 1;
    Problem {
        pos: Pos { line, column },
        message: "the file is not valid UTF-8".into(),
        hint: Some("save the hooks file as UTF-8".into()),
    }
}

/// The top level: a list of hooks. A repeated id keeps the first hook, as adnanh serves it.
fn compile_hooks(
    reader: &mut Reader<'_>,
    root: &Node,
    format: Format,
    source: &Arc<Path>,
) -> Result<Vec<Hook>, Box<Diagnostic>> {
    let items = match &root.kind {
        Kind::Seq(items) => items,
        _ if root.is_null() => return Ok(Vec::new()),
        _ => {
            let hint = match format {
                Format::Toml => "write each hook as a `[[hooks]]` table",
                Format::Yaml => {
                    "start each hook with `- id: ...` (YAML) or wrap the hooks in `[...]` (JSON)"
                }
            };
            let mut error = reader.type_error(root, "", "a list of hooks at the top level");
            error.hint = Some(hint.into());
            return Err(error);
        }
    };
    let mut hooks: Vec<Hook> = Vec::with_capacity(items.len());
    let mut first_seen: HashMap<String, Pos> = HashMap::new();
    for item in items {
        let hook = compile_hook(reader, item, source)?;
        if let Some(first) = first_seen.get(&hook.id) {
            let message = format!(
                "hook id `{}` is already used at line {}; this hook is ignored",
                hook.id, first.line
            );
            let hint = "adnanh serves the first hook with an id (and refuses to reload such a file); rename one";
            reader.warn(item.pos, "id", message, Some(hint.into()));
            continue;
        }
        first_seen.insert(hook.id.clone(), item.pos);
        hooks.push(hook);
    }
    reader.hook = None;
    Ok(hooks)
}

fn compile_hook(
    reader: &mut Reader<'_>,
    node: &Node,
    source: &Arc<Path>,
) -> Result<Hook, Box<Diagnostic>> {
    reader.hook = None;
    let first_warning = reader.warnings.len();
    let object = reader
        .object(node, &HOOK, "")?
        .unwrap_or_else(|| Object::empty(node.pos, ""));
    let id = reader.string(&object, "id")?;
    if !id.is_empty() {
        reader.hook = Some(id.clone());
        // Warnings about keys came before the id was known.
        for warning in &mut reader.warnings[first_warning..] {
            warning.hook.get_or_insert_with(|| id.clone());
        }
    }
    let mut hook = Hook {
        execute_command: reader.string(&object, "execute-command")?,
        command_working_directory: reader.string(&object, "command-working-directory")?,
        response_message: reader.string(&object, "response-message")?,
        response_headers: response_headers(reader, &object)?,
        success_http_response_code: status_code(reader, &object, "success-http-response-code")?,
        trigger_rule_mismatch_http_response_code: status_code(
            reader,
            &object,
            "trigger-rule-mismatch-http-response-code",
        )?,
        incoming_payload_content_type: reader.string(&object, "incoming-payload-content-type")?,
        http_methods: http_methods(reader, &object)?,
        include_command_output_in_response: reader
            .bool(&object, "include-command-output-in-response")?,
        include_command_output_in_response_on_error: reader
            .bool(&object, "include-command-output-in-response-on-error")?,
        pass_arguments_to_command: arguments(reader, &object, "pass-arguments-to-command")?,
        pass_environment_to_command: arguments(reader, &object, "pass-environment-to-command")?,
        pass_file_to_command: arguments(reader, &object, "pass-file-to-command")?,
        parse_parameters_as_json: arguments(reader, &object, "parse-parameters-as-json")?,
        trigger_rule: match object.present("trigger-rule") {
            Some(rule) => Some(compile_rule(reader, rule, "trigger-rule")?),
            None => None,
        },
        trigger_signature_soft_failures: reader.bool(&object, "trigger-signature-soft-failures")?,
        scheduling: super::scheduling::compile(reader, &object)?,
        security: super::security::compile(reader, &object)?,
        process: super::process::compile(reader, &object)?,
        notify: super::notify::compile(reader, &object)?,
        source: Arc::clone(source),
        payload_selection: Selection::All,
        id,
    };
    hook.payload_selection = hook.payload_selection();
    check_hook(reader, &object, &hook);
    Ok(hook)
}

/// What adnanh accepts silently but what cannot work as the author meant.
fn check_hook(reader: &mut Reader<'_>, object: &Object<'_>, hook: &Hook) {
    if hook.id.is_empty() {
        reader.warn(
            object.pos_of("id"),
            "id",
            "this hook has no `id`",
            Some("adnanh serves it at the bare prefix (`/hooks/`); give it an `id`".into()),
        );
    }
    if hook.execute_command.is_empty() {
        reader.warn(
            object.pos_of("execute-command"),
            "execute-command",
            "this hook has no `execute-command`, so every triggered request fails to run a command",
            Some("set `execute-command` to the program to run".into()),
        );
    }
    if hook.include_command_output_in_response_on_error && !hook.include_command_output_in_response
    {
        reader.warn(
            object.pos_of("include-command-output-in-response-on-error"),
            "include-command-output-in-response-on-error",
            "has no effect without `include-command-output-in-response: true`",
            None,
        );
    }
}

fn response_headers(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
) -> Result<Vec<ResponseHeader>, Box<Diagnostic>> {
    let path = object.path_of("response-headers");
    indexed(reader.list(object, "response-headers")?, &path)
        .map(|(node, path)| {
            let header = reader
                .object(node, &HEADER, &path)?
                .unwrap_or_else(|| Object::empty(node.pos, &path));
            Ok(ResponseHeader {
                name: reader.string(&header, "name")?,
                value: reader.string(&header, "value")?,
            })
        })
        .collect()
}

/// `http-methods`: each entry trimmed and upper-cased, as adnanh compares them.
fn http_methods(reader: &Reader<'_>, object: &Object<'_>) -> Result<Vec<String>, Box<Diagnostic>> {
    let path = object.path_of("http-methods");
    indexed(reader.list(object, "http-methods")?, &path)
        .map(|(node, path)| Ok(reader.string_value(node, &path)?.trim().to_uppercase()))
        .collect()
}

/// A status code field. adnanh keeps any int and answers 200 at request time when Go knows no
/// reason phrase for it; codes that cannot be statuses at all are stored as 0 (not set).
fn status_code(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
    key: &str,
) -> Result<u16, Box<Diagnostic>> {
    let Some((code, pos)) = reader.int(object, key)? else {
        return Ok(0);
    };
    if !(100..=599).contains(&code) {
        reader.warn(
            pos,
            &object.path_of(key),
            format!("{code} is not an HTTP status code; responses use 200 instead, as in adnanh"),
            Some("use a status between 100 and 599".into()),
        );
    }
    Ok(u16::try_from(code).unwrap_or(0))
}

/// List items with their paths (`key[0]`, `key[1]`, ...).
fn indexed<'n>(items: &'n [Rc<Node>], path: &str) -> impl Iterator<Item = (&'n Node, String)> {
    let path = path.to_owned();
    items
        .iter()
        .enumerate()
        .map(move |(i, node)| (node.as_ref(), format!("{path}[{i}]")))
}

fn arguments(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
    key: &str,
) -> Result<Vec<Argument>, Box<Diagnostic>> {
    let path = object.path_of(key);
    indexed(reader.list(object, key)?, &path)
        .map(|(node, path)| {
            let argument = argument(reader, Some(node), node.pos, &path, true)?;
            if key == "pass-file-to-command" {
                check_file_name(reader, node, &path, &argument)?;
            }
            let names_a_variable = matches!(
                key,
                "pass-environment-to-command" | "pass-file-to-command"
            );
            if names_a_variable && argument.source == Source::Template && argument.envname.is_empty() {
                return Err(Box::new(reader.diagnostic(
                    node.pos,
                    &path,
                    "a `template` value needs an `envname`: the variable cannot be named after the template",
                    Some("add `envname: NAME`".into()),
                )));
            }
            if key == "parse-parameters-as-json" && argument.is_wildcard() {
                return Err(Box::new(reader.diagnostic(
                    node_entry(node, "name").unwrap_or(node.pos),
                    &format!("{path}.name"),
                    format!("`{}`: a `*` segment selects many values, but parse-parameters-as-json replaces one", argument.name),
                    Some("name one value (`commits.0.message`), or read the selection as JSON where it is passed on".into()),
                )));
            }
            Ok(argument)
        })
        .collect()
}

/// Where the value of `key` is in a mapping (keys match case-insensitively, as in Go).
fn node_entry(node: &Node, key: &str) -> Option<Pos> {
    match &node.kind {
        Kind::Map(entries) => entries
            .iter()
            .rev()
            .find(|entry| entry.key.eq_ignore_ascii_case(key))
            .map(|entry| entry.value.pos),
        _ => None,
    }
}

/// A `pass-file-to-command` file is created in the working directory with its variable's name
/// as the start of its file name, so the name must not lead anywhere else.
fn check_file_name(
    reader: &Reader<'_>,
    node: &Node,
    path: &str,
    argument: &Argument,
) -> Result<(), Box<Diagnostic>> {
    let name = crate::pipeline::plan::file_env_name(argument);
    if !name.contains(['/', '\0']) && !name.contains("..") {
        return Ok(());
    }
    let (field, pos) = match node_entry(node, "envname") {
        Some(pos) if !argument.envname.is_empty() => (format!("{path}.envname"), pos),
        _ => (
            format!("{path}.name"),
            node_entry(node, "name").unwrap_or(node.pos),
        ),
    };
    Err(Box::new(reader.diagnostic(
        pos,
        &field,
        format!(
            "the file for {name:?} would be written outside the working directory: its name \
             holds `/`, `..` or a NUL"
        ),
        Some("give `envname` a plain variable name such as `PAYLOAD_FILE`".into()),
    )))
}

/// An argument object; `node` is `None` when the key is absent (Go's zero value). With
/// `check_source`, an argument whose value can never be found is warned about.
pub(super) fn argument(
    reader: &mut Reader<'_>,
    node: Option<&Node>,
    pos: Pos,
    path: &str,
    check_source: bool,
) -> Result<Argument, Box<Diagnostic>> {
    let object = match node {
        Some(node) => reader.object(node, &ARGUMENT, path)?,
        None => None,
    }
    .unwrap_or_else(|| Object::empty(pos, path));
    let source_text = reader.string(&object, "source")?;
    let source = Source::parse(&source_text);
    if check_source && matches!(source, Source::Other(_)) {
        let (message, hint) = if source_text.is_empty() {
            (
                "this argument has no `source`, so its value is never found".to_owned(),
                None,
            )
        } else {
            let hint = schema::did_you_mean(&source_text, SOURCES.iter())
                .map(|s| format!("did you mean `{s}`?"));
            (
                format!("unknown source `{source_text}`, so this value is never found"),
                hint,
            )
        };
        let hint = hint.or_else(|| {
            Some(format!(
                "`source` is one of {}",
                schema::backticked(SOURCES)
            ))
        });
        reader.warn(
            object.pos_of("source"),
            &object.path_of("source"),
            message,
            hint,
        );
    }
    let name = reader.string(&object, "name")?;
    if source == Source::Template {
        check_template(reader, &object, &name)?;
    }
    Ok(Argument {
        source,
        name,
        envname: reader.string(&object, "envname")?,
        base64decode: reader.bool(&object, "base64decode")?,
    })
}

/// A `{source: template}` value must parse and run (against an empty request) at load.
fn check_template(
    reader: &Reader<'_>,
    object: &Object<'_>,
    text: &str,
) -> Result<(), Box<Diagnostic>> {
    let Err(error) = crate::pipeline::request::source::check_template(text) else {
        return Ok(());
    };
    let place = if text.contains('\n') {
        format!(" (line {} of the template)", error.line)
    } else {
        String::new()
    };
    Err(Box::new(reader.diagnostic(
        object.pos_of("name"),
        &object.path_of("name"),
        format!("bad template{place}: {}", error.message),
        Some("a template value calls `payload`, `header`, `query` or `request` with a quoted name, e.g. `{{ payload \"head_commit.id\" }}`".into()),
    )))
}

/// A rule object. Go decodes every key (so each is type-checked) but evaluates only the first
/// set one of `and`, `or`, `not`, `match`; a `null` counts as unset.
fn compile_rule(reader: &mut Reader<'_>, node: &Node, path: &str) -> Result<Rule, Box<Diagnostic>> {
    let object = reader
        .object(node, &RULE, path)?
        .unwrap_or_else(|| Object::empty(node.pos, path));
    let mut chosen: Option<(&str, Rule)> = None;
    for key in RULE.keys {
        let Some(child) = object.present(key) else {
            continue;
        };
        let child_path = object.path_of(key);
        let rule = match *key {
            "and" => Rule::And(rule_list(reader, child, &child_path, true)?),
            "or" => Rule::Or(rule_list(reader, child, &child_path, false)?),
            "not" => Rule::Not(Box::new(compile_rule(reader, child, &child_path)?)),
            _ => Rule::Match(compile_match(reader, child, &child_path)?),
        };
        match &chosen {
            Some((winner, _)) => reader.warn(
                object.pos_of(key),
                &child_path,
                format!("`{key}` is ignored: this rule also has `{winner}`, which comes first"),
                Some("a rule object takes one of `and`, `or`, `not`, `match` (adnanh uses the first in that order); nest them instead".into()),
            ),
            None => chosen = Some((key, rule)),
        }
    }
    Ok(chosen.map_or_else(
        || {
            reader.warn(
                object.pos,
                path,
                "this rule is empty, so it never matches and the hook never runs",
                Some("give it one of `and`, `or`, `not`, `match`; to run on every request, remove `trigger-rule`".into()),
            );
            Rule::Empty
        },
        |(_, rule)| rule,
    ))
}

/// The children of `and` (`all` = true) or `or`.
fn rule_list(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
    all: bool,
) -> Result<Vec<Rule>, Box<Diagnostic>> {
    let Kind::Seq(items) = &node.kind else {
        return Err(reader.type_error(node, path, "a list of rules"));
    };
    if items.is_empty() {
        let effect = if all { "always holds" } else { "never holds" };
        reader.warn(node.pos, path, format!("an empty list {effect}"), None);
    }
    indexed(items, path)
        .map(|(child, path)| compile_rule(reader, child, &path))
        .collect()
}

fn compile_match(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<MatchRule, Box<Diagnostic>> {
    let object = reader
        .object(node, &MATCH, path)?
        .unwrap_or_else(|| Object::empty(node.pos, path));
    // Go decodes every field whatever the type, so each is type-checked.
    let kind_name = reader.string(&object, "type")?;
    let value = reader.string(&object, "value")?;
    let pattern = reader.string(&object, "regex")?;
    let secret = super::secret::read_field(reader, &object, "secret")?;
    let ip_range = reader.string(&object, "ip-range")?;
    let uses_parameter =
        matches!(kind_name.as_str(), "value" | "regex") || kind_name.starts_with("payload-h");
    let parameter = argument(
        reader,
        object.get("parameter"),
        object.pos,
        &object.path_of("parameter"),
        uses_parameter,
    )?;
    let all = reader.bool(&object, "all")?;
    check_selection(reader, &object, &kind_name, &parameter, all)?;
    let kind = match kind_name.as_str() {
        "value" => MatchKind::Value(value),
        "regex" => MatchKind::Regex(compile_regex(reader, &object, &pattern)),
        "ip-whitelist" => MatchKind::IpWhitelist(ip_ranges(reader, &object, &ip_range)),
        "scalr-signature" => MatchKind::ScalrSignature {
            secret: checked_secret(reader, &object, secret),
        },
        name => match hmac_kind(name) {
            Some((algorithm, deprecated_alias)) => {
                if deprecated_alias {
                    reader.warn(
                        object.pos_of("type"),
                        &object.path_of("type"),
                        format!("`{name}` is deprecated"),
                        Some(format!(
                            "write `{}`; it works the same",
                            name.replace("hash", "hmac")
                        )),
                    );
                }
                MatchKind::PayloadHmac {
                    algorithm,
                    secret: checked_secret(reader, &object, secret),
                    deprecated_alias,
                }
            }
            None => {
                let hint = schema::did_you_mean(name, MATCH_TYPES.iter()).map_or_else(
                    || format!("`type` is one of {}", schema::backticked(MATCH_TYPES)),
                    |t| format!("did you mean `{t}`?"),
                );
                reader.warn(
                    object.pos_of("type"),
                    &object.path_of("type"),
                    format!("unknown match type `{name}`: this match never holds"),
                    Some(hint),
                );
                MatchKind::Unknown(name.to_owned())
            }
        },
    };
    Ok(MatchRule {
        kind,
        parameter,
        all,
    })
}

/// A `*` selection is compared by `value` and `regex` matches only, and `all` needs one.
fn check_selection(
    reader: &Reader<'_>,
    object: &Object<'_>,
    kind_name: &str,
    parameter: &Argument,
    all: bool,
) -> Result<(), Box<Diagnostic>> {
    let compares = matches!(kind_name, "value" | "regex");
    let (key, message, hint) = if parameter.is_wildcard() && kind_name.starts_with("payload-h") {
        (
            "parameter",
            format!(
                "`{}` selects many values, but a `{kind_name}` match checks one signature",
                parameter.name
            ),
            "name the one header or payload field that holds the signature",
        )
    } else if all && !(compares && parameter.is_wildcard()) {
        (
            "all",
            "`all` applies to a `value` or `regex` match whose parameter is a payload name with a `*` segment".to_owned(),
            "remove `all`, or select many values, e.g. `{source: payload, name: commits.*.modified.*}`",
        )
    } else {
        return Ok(());
    };
    Err(Box::new(reader.diagnostic(
        object.pos_of(key),
        &object.path_of(key),
        message,
        Some(hint.to_owned()),
    )))
}

fn hmac_kind(name: &str) -> Option<(HmacAlgorithm, bool)> {
    let (algorithm, deprecated) = match name.strip_prefix("payload-hmac-") {
        Some(rest) => (rest, false),
        None => (name.strip_prefix("payload-hash-")?, true),
    };
    let algorithm = match algorithm {
        "sha1" => HmacAlgorithm::Sha1,
        "sha256" => HmacAlgorithm::Sha256,
        "sha512" => HmacAlgorithm::Sha512,
        _ => return None,
    };
    Some((algorithm, deprecated))
}

fn checked_secret(reader: &mut Reader<'_>, object: &Object<'_>, secret: Secret) -> Secret {
    if secret.is_empty() {
        reader.warn(
            object.pos_of("secret"),
            &object.path_of("secret"),
            "this signature check has no `secret`, so every request reaching it fails with 500",
            Some("set `secret`, e.g. `{env: NAME}`".into()),
        );
    }
    secret
}

/// Compiles a `regex` rule now; an invalid pattern is kept as its error (adnanh fails only
/// when a request reaches it) and warned about.
fn compile_regex(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
    pattern: &str,
) -> Result<regex::Regex, regex::Error> {
    let compiled = RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build();
    if let Err(error) = &compiled {
        let message = error.to_string();
        reader.warn(
            object.pos_of("regex"),
            &object.path_of("regex"),
            format!("invalid regex: {}", message.lines().last().unwrap_or(&message)),
            Some("requests reaching this rule get a 500 (as in adnanh); fix the pattern (RE2 syntax)".into()),
        );
    }
    compiled
}

/// `ip-range`: whitespace-separated CIDRs or addresses. A bare IPv4 address is a /32 (adnanh
/// appends `/32`); a bare IPv6 address is a /128 here, where adnanh also appends `/32` and so
/// silently allows a whole /32 network: a deliberate divergence, warned about.
fn ip_ranges(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
    ip_range: &str,
) -> Vec<Result<IpNet, InvalidIpRange>> {
    let pos = object.pos_of("ip-range");
    let path = object.path_of("ip-range");
    if ip_range.split_whitespace().next().is_none() {
        reader.warn(
            pos,
            &path,
            "`ip-range` is empty, so this match never holds",
            None,
        );
    }
    ip_range
        .split_whitespace()
        .map(|entry| {
            let parsed = parse_ip_entry(entry);
            match &parsed {
                Err(error) => reader.warn(
                    pos,
                    &path,
                    error.to_string(),
                    Some("requests reaching this rule get a 500 (as in adnanh); write an address or a CIDR like 10.0.0.0/8".into()),
                ),
                Ok(IpNet::V6(net)) if !entry.contains('/') => reader.warn(
                    pos,
                    &path,
                    format!("bare IPv6 address `{entry}` allows that one address ({net})"),
                    Some("adnanh would read it as a /32 network; write the prefix length explicitly to silence this".into()),
                ),
                Ok(_) => {}
            }
            parsed
        })
        .collect()
}

fn parse_ip_entry(entry: &str) -> Result<IpNet, InvalidIpRange> {
    let invalid = || InvalidIpRange(entry.to_owned());
    if entry.contains('/') {
        return entry
            .parse::<IpNet>()
            .map(|net| net.trunc())
            .map_err(|_| invalid());
    }
    match entry.parse::<IpAddr>().map_err(|_| invalid())? {
        addr @ IpAddr::V4(_) => IpNet::new(addr, 32),
        addr @ IpAddr::V6(_) => IpNet::new(addr, 128),
    }
    .map_err(|_| invalid())
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
