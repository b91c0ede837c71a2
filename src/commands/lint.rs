//! `hookwire check`'s warnings about hooks that load fine but are risky: a hook anyone can
//! trigger, a secret written into the file, a command that cannot run, a shell running `-c`
//! with values from the request, a request value in a variable such as `LD_PRELOAD`.
//!
//! Most checks read the compiled [`Hook`]; two need the file as written (whether a hook has a
//! `signature` key, and whether a `secret` is a plain string rather than `{env: …}`,
//! `{file: …}` or `{credential: …}`), so the file's tree is read again here with the loader's
//! own reader.

use std::path::Path;
use std::rc::Rc;

use crate::config::format::{self, Format, Kind, Node, Pos};
use crate::config::{Diagnostic, Hook, LoadOptions, LoadedFile, template};
use crate::pipeline::plan;
use crate::pipeline::request::Source;

/// Shells whose `-c` runs its argument as a script.
const SHELLS: [&str; 9] = [
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox",
];

/// What the file says about one hook object, as written.
#[derive(Debug, Default)]
struct RawHook {
    id: String,
    pos: Pos,
    command_pos: Option<Pos>,
    has_signature: bool,
    /// Where a `secret` is a plain string, with the key's path inside the hook.
    inline_secrets: Vec<(Pos, String)>,
}

/// Every risky-setup warning for the hooks of `file`.
pub fn lint(file: &LoadedFile, options: &LoadOptions) -> Vec<Diagnostic> {
    let raw = raw_hooks(&file.path, options);
    let mut warnings = Vec::new();
    for hook in &file.hooks {
        let written = raw.iter().find(|r| r.id == hook.id);
        let at = |pos: Option<Pos>, message: String, hint: &str| Diagnostic {
            file: file.path.clone(),
            line: pos.map_or(0, |p| p.line),
            column: pos.map_or(0, |p| p.column),
            hook: Some(hook.id.clone()),
            field: None,
            message,
            hint: Some(hint.to_owned()),
        };
        let hook_pos = written.map(|r| r.pos);
        if hook.trigger_rule.is_none() && !written.is_some_and(|r| r.has_signature) {
            warnings.push(at(
                hook_pos,
                "has no trigger-rule and no signature: anyone who can reach the server can run it"
                    .into(),
                "add `signature: {provider: …, secret: {env: …}}` or a trigger-rule checking a \
                 token or an HMAC",
            ));
        }
        for (pos, path) in written.map_or(&[][..], |r| &r.inline_secrets) {
            warnings.push(Diagnostic {
                field: Some(path.clone()),
                ..at(
                    Some(*pos),
                    "the secret is written in the hooks file".into(),
                    "anyone who can read the file (backups, a git repository) can forge \
                     requests: use {env: NAME}, {file: PATH} or {credential: NAME}",
                )
            });
        }
        let command_pos = written.and_then(|r| r.command_pos).or(hook_pos);
        let working_directory = (!hook.command_working_directory.is_empty())
            .then(|| Path::new(&hook.command_working_directory));
        if let Err(error) =
            crate::engine::exec::resolve_program(&hook.execute_command, working_directory)
        {
            warnings.push(Diagnostic {
                field: Some("execute-command".into()),
                ..at(
                    command_pos,
                    format!("cannot be run: {error}"),
                    "checked as this user with this PATH; the service's user and PATH may \
                     differ. Give an absolute path to an executable file",
                )
            });
        }
        for (field, name) in risky_variables(hook) {
            warnings.push(Diagnostic {
                field: Some(field),
                ..at(
                    hook_pos,
                    format!(
                        "sets {name} from the request: it changes how the command or the \
                         programs it starts run (the library path, the startup script, the \
                         interpreter's options)"
                    ),
                    "pick another `envname` (the value still reaches the command)",
                )
            });
        }
        if let Some(message) = shell_with_request_values(hook) {
            warnings.push(Diagnostic {
                field: Some("pass-arguments-to-command".into()),
                ..at(
                    command_pos,
                    message,
                    "pass request values as environment variables \
                     (pass-environment-to-command) and quote them in the script (\"$HOOK_ref\"), \
                     or run a script file with the values as its arguments",
                )
            });
        }
    }
    warnings
}

/// Environment variables that change how programs start: the search path, the dynamic
/// loader, shell startup files, interpreters' options. Exact names, then prefixes.
const RISKY_VARIABLES: [&str; 5] = ["PATH", "BASH_ENV", "ENV", "NODE_OPTIONS", "IFS"];
const RISKY_PREFIXES: [&str; 3] = ["LD_", "PYTHON", "PERL5"];

/// The variables (field path, name) that take a value from the request, from
/// `pass-environment-to-command` or as the path of a `pass-file-to-command` file, and are
/// [risky](RISKY_VARIABLES).
fn risky_variables(hook: &Hook) -> Vec<(String, String)> {
    let environment = hook
        .pass_environment_to_command
        .iter()
        .enumerate()
        .map(|(i, a)| (i, a, "pass-environment-to-command", plan::env_name(a)));
    let files = hook
        .pass_file_to_command
        .iter()
        .enumerate()
        .map(|(i, a)| (i, a, "pass-file-to-command", plan::file_env_name(a)));
    environment
        .chain(files)
        .filter(|(_, argument, _, name)| {
            argument.source != Source::String
                && (RISKY_VARIABLES.contains(&name.as_str())
                    || RISKY_PREFIXES.iter().any(|p| name.starts_with(p)))
        })
        .map(|(i, _, list, name)| (format!("{list}[{i}].envname"), name))
        .collect()
}

/// A shell run with `-c` (or `-ec`, `-lc`, ...) and arguments taken from the request: the
/// script text, or values a script may expand unquoted.
fn shell_with_request_values(hook: &Hook) -> Option<String> {
    let program = Path::new(&hook.execute_command).file_name()?.to_str()?;
    if !SHELLS.contains(&program) {
        return None;
    }
    let args = &hook.pass_arguments_to_command;
    let dash_c = args.iter().position(|a| {
        a.source == Source::String
            && a.name.starts_with('-')
            && !a.name.starts_with("--")
            && a.name.contains('c')
    })?;
    let from_request = |a: &&crate::pipeline::request::Argument| a.source != Source::String;
    let script = args.get(dash_c + 1);
    if let Some(script) = script.filter(from_request) {
        return Some(format!(
            "runs {program} {} with its script taken from the request ({}): whoever sends \
             the request chooses the commands",
            args[dash_c].name,
            super::describe::argument(script)
        ));
    }
    let values: Vec<String> = args[dash_c + 1..]
        .iter()
        .filter(from_request)
        .map(super::describe::argument)
        .collect();
    (!values.is_empty()).then(|| {
        format!(
            "runs {program} {} with values from the request ({}): a script that expands \
             them unquoted runs whatever they contain",
            args[dash_c].name,
            values.join(", ")
        )
    })
}

/// The file as written and its tree, read with the loader's own reader; `None` when it cannot
/// be read, rendered or parsed.
fn written_tree(path: &Path, options: &LoadOptions) -> Option<(String, Rc<Node>)> {
    let text = std::fs::read_to_string(path).ok()?;
    let rendered = if options.template {
        template::render(&text).ok()?
    } else {
        text.clone()
    };
    let root = format::parse(Format::of(path), &rendered).ok()?.root?;
    Some((text, root))
}

/// The hook objects of the file as written. Empty when the file cannot be read again (it just
/// loaded, so only a race could make that happen).
fn raw_hooks(path: &Path, options: &LoadOptions) -> Vec<RawHook> {
    let Some((text, root)) = written_tree(path, options) else {
        return Vec::new();
    };
    // YAML and JSON: a list of hooks; TOML: `[[hooks]]`.
    let items = match &root.kind {
        Kind::Seq(items) => items,
        Kind::Map(entries) => match entries.iter().find(|e| e.key == "hooks") {
            Some(entry) => match &entry.value.kind {
                Kind::Seq(items) => items,
                _ => return Vec::new(),
            },
            None => return Vec::new(),
        },
        Kind::Scalar(_) => return Vec::new(),
    };
    let original: Vec<&str> = text.lines().collect();
    items
        .iter()
        .filter_map(|item| {
            let Kind::Map(entries) = &item.kind else {
                return None;
            };
            let mut hook = RawHook {
                pos: item.pos,
                ..RawHook::default()
            };
            for entry in entries {
                match entry.key.to_ascii_lowercase().as_str() {
                    "id" => {
                        hook.id = entry
                            .value
                            .as_scalar()
                            .map(|s| s.go_string())
                            .unwrap_or_default();
                    }
                    "execute-command" => hook.command_pos = Some(entry.value.pos),
                    "signature" => hook.has_signature = !entry.value.is_null(),
                    _ => {}
                }
            }
            find_inline_secrets(item, "", &mut hook.inline_secrets);
            // A secret that a template filled in (`{{ getenv "X" }}`) is not written inline.
            hook.inline_secrets.retain(|(pos, _)| {
                !(options.template
                    && original
                        .get(pos.line.saturating_sub(1))
                        .is_some_and(|line| line.contains("{{")))
            });
            Some(hook)
        })
        .collect()
}

/// The secret values in a hooks file, for the report to mask: every plain-string `secret`,
/// and the `value` of a `match` whose parameter's name looks like a credential (the token a
/// `value` rule compares, which `describe` shows by length only). `None` when the file cannot
/// be parsed, so the caller masks by the line's look instead.
pub fn written_secrets(path: &Path, options: &LoadOptions) -> Option<Vec<String>> {
    let (_, root) = written_tree(path, options)?;
    let mut found = Vec::new();
    collect_secrets(&root, false, &mut found);
    Some(found)
}

fn collect_secrets(node: &Node, is_match: bool, out: &mut Vec<String>) {
    match &node.kind {
        Kind::Map(entries) => {
            let entry = |key: &str| entries.iter().find(|e| e.key.eq_ignore_ascii_case(key));
            let token_compared = is_match
                && entry("parameter")
                    .and_then(|parameter| match &parameter.value.kind {
                        Kind::Map(fields) => {
                            fields.iter().find(|f| f.key.eq_ignore_ascii_case("name"))
                        }
                        _ => None,
                    })
                    .and_then(|name| name.value.as_scalar())
                    .is_some_and(|name| super::describe::looks_sensitive(&name.go_string()));
            for entry in entries {
                let key = entry.key.to_ascii_lowercase();
                if key == "secret" || (token_compared && key == "value") {
                    // A scalar, or a list of them (key rotation).
                    let items: Vec<&Node> = match &entry.value.kind {
                        Kind::Seq(items) => items.iter().map(AsRef::as_ref).collect(),
                        _ => vec![entry.value.as_ref()],
                    };
                    for scalar in items.iter().filter_map(|item| item.as_scalar()) {
                        out.extend([scalar.text.clone(), scalar.go_string()]);
                    }
                }
                collect_secrets(&entry.value, key == "match", out);
            }
        }
        Kind::Seq(items) => {
            for item in items {
                collect_secrets(item, false, out);
            }
        }
        Kind::Scalar(_) => {}
    }
}

/// Every `secret` key under `node` whose value is a plain string (or a list holding one).
fn find_inline_secrets(node: &Node, path: &str, out: &mut Vec<(Pos, String)>) {
    match &node.kind {
        Kind::Map(entries) => {
            for entry in entries {
                let here = if path.is_empty() {
                    entry.key.clone()
                } else {
                    format!("{path}.{}", entry.key)
                };
                if entry.key.eq_ignore_ascii_case("secret") {
                    let candidates: Vec<&Node> = match &entry.value.kind {
                        Kind::Seq(items) => items.iter().map(AsRef::as_ref).collect(),
                        _ => vec![entry.value.as_ref()],
                    };
                    for candidate in candidates {
                        if let Some(scalar) = candidate.as_scalar()
                            && !candidate.is_null()
                            && !scalar.go_string().is_empty()
                        {
                            out.push((candidate.pos, here.clone()));
                        }
                    }
                } else {
                    find_inline_secrets(&entry.value, &here, out);
                }
            }
        }
        Kind::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                find_inline_secrets(item, &format!("{path}[{index}]"), out);
            }
        }
        Kind::Scalar(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(yaml: &str) -> Hook {
        let file = crate::config::compile::compile_file(
            Path::new("hooks.yaml"),
            yaml.as_bytes(),
            &LoadOptions::default(),
        )
        .expect("loads");
        file.hooks.into_iter().next().expect("one hook")
    }

    #[test]
    fn shell_dash_c_with_request_values() {
        let script = hook(
            "- id: a\n  execute-command: /bin/bash\n  pass-arguments-to-command:\n    - {source: string, name: -ec}\n    - {source: header, name: X-Script}\n",
        );
        let message = shell_with_request_values(&script).expect("warned");
        assert!(
            message.contains("script taken from the request"),
            "{message}"
        );

        let values = hook(
            "- id: a\n  execute-command: sh\n  pass-arguments-to-command:\n    - {source: string, name: -c}\n    - {source: string, name: 'deploy \"$1\"'}\n    - {source: string, name: _}\n    - {source: payload, name: ref}\n",
        );
        let message = shell_with_request_values(&values).expect("warned");
        assert!(
            message.contains("values from the request ({payload ref})"),
            "{message}"
        );

        for quiet in [
            // Constants only.
            "- id: a\n  execute-command: /bin/sh\n  pass-arguments-to-command:\n    - {source: string, name: -c}\n    - {source: string, name: date}\n",
            // A script file, not -c.
            "- id: a\n  execute-command: /bin/sh\n  pass-arguments-to-command:\n    - {source: string, name: deploy.sh}\n    - {source: payload, name: ref}\n",
            // Not a shell.
            "- id: a\n  execute-command: /usr/bin/python3\n  pass-arguments-to-command:\n    - {source: string, name: -c}\n    - {source: payload, name: code}\n",
        ] {
            assert_eq!(shell_with_request_values(&hook(quiet)), None, "{quiet}");
        }
    }

    #[test]
    fn inline_secrets_are_found_in_maps_and_lists() {
        let parsed = format::parse(
            Format::Yaml,
            "a:\n  secret: plain\nb:\n  secret: {env: X}\nc:\n  secret: [one, {file: f}]\nd:\n  secret: ~\n",
        )
        .expect("parses");
        let mut found = Vec::new();
        find_inline_secrets(parsed.root.as_ref().expect("root"), "", &mut found);
        let paths: Vec<&str> = found.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(paths, ["a.secret", "c.secret"]);
        assert_eq!(found[0].0.line, 2);
        assert_eq!(found[1].0.line, 6);
    }

    #[test]
    fn request_values_in_variables_that_change_how_programs_start() {
        let risky = hook(
            "- id: a\n  execute-command: /bin/true\n  pass-environment-to-command:\n    - {source: header, name: X-A, envname: SAFE}\n    - {source: payload, name: p, envname: LD_PRELOAD}\n    - {source: string, name: /usr/bin, envname: PATH}\n    - {source: query, name: q, envname: PATH}\n    - {source: header, name: X-B, envname: PYTHONSTARTUP}\n  pass-file-to-command:\n    - {source: payload, name: script, envname: BASH_ENV}\n    - {source: payload, name: env}\n",
        );
        assert_eq!(
            risky_variables(&risky),
            [
                ("pass-environment-to-command[1].envname", "LD_PRELOAD"),
                ("pass-environment-to-command[3].envname", "PATH"),
                ("pass-environment-to-command[4].envname", "PYTHONSTARTUP"),
                ("pass-file-to-command[0].envname", "BASH_ENV"),
            ]
            .map(|(field, name)| (field.to_owned(), name.to_owned()))
        );
    }
}
