//! Text shared by `check` and `explain`: load errors and warnings with their place in the file
//! and a caret, one-line rule summaries, hook summaries, and the process a plan would start.
//!
//! Secrets never reach this output: rule summaries name a secret's rule but not its value, and
//! values that look like credentials (a name containing `token`, `secret`, `signature`, ...)
//! are shown by length only.

use std::fmt::Write as _;
use std::path::Path;

use crate::config::process::{ProcessOptions, RunAs, StdinSource};
use crate::config::{Diagnostic, Hook, LoadError};
use crate::pipeline::plan::Plan;
use crate::pipeline::request::{Argument, Source};
use crate::pipeline::rules::{self, MatchKind, Rule};

/// An error or warning, rendered as `just` renders its errors: the message, then
/// `--> FILE:LINE:COLUMN`, the line of the file with a caret under the column, and the hint.
pub fn diagnostic(level: &str, diagnostic: &Diagnostic) -> String {
    let mut out = String::new();
    let _ = write!(out, "{level}: ");
    if let Some(hook) = &diagnostic.hook {
        let _ = write!(out, "hook `{hook}`: ");
    }
    if let Some(field) = &diagnostic.field {
        let _ = write!(out, "`{field}`: ");
    }
    let _ = writeln!(out, "{}", diagnostic.message);
    let file = diagnostic.file.display();
    if diagnostic.line == 0 {
        let _ = writeln!(out, "  --> {file}");
    } else {
        let _ = writeln!(
            out,
            "  --> {file}:{}:{}",
            diagnostic.line, diagnostic.column
        );
        if let Some(text) = source_line(&diagnostic.file, diagnostic.line) {
            let number = diagnostic.line.to_string();
            let pad = " ".repeat(number.len());
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{number} | {}", text.trim_end());
            if diagnostic.column > 0 {
                // The caret sits under the column's character; tabs keep their width.
                let lead: String = text
                    .chars()
                    .take(diagnostic.column - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{pad} | {lead}^");
            }
        }
    }
    if let Some(hint) = &diagnostic.hint {
        let _ = writeln!(out, "  = hint: {hint}");
    }
    out
}

/// A load error, with [`diagnostic`]'s layout where it has a place in a file.
pub fn load_error(error: &LoadError) -> String {
    match error {
        LoadError::Invalid(d) => diagnostic("error", d),
        LoadError::Io { path, source } => format!(
            "error: cannot read {}: {source}\n  = hint: check the path and that this user may \
             read the file\n",
            path.display()
        ),
        LoadError::DuplicateId { .. } => format!(
            "error: {error}\n  = hint: rename one of them; the server refuses to start (or to \
             reload) with both\n"
        ),
        LoadError::Pattern { .. } => format!(
            "error: {error}\n  = hint: write `*`, `?` and `[abc]` as in a shell; `[[]` matches a \
             literal `[`\n"
        ),
    }
}

/// Line `line` (1-based) of `path`, if the file can be read and has it.
fn source_line(path: &Path, line: usize) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().nth(line - 1).map(str::to_owned)
}

/// Whether a parameter's value is likely a credential, judged by its name: such values are
/// shown by length only.
pub fn looks_sensitive(name: &str) -> bool {
    const WORDS: [&str; 8] = [
        "token",
        "secret",
        "signature",
        "sig",
        "key",
        "auth",
        "pass",
        "hmac",
    ];
    let name = name.to_ascii_lowercase();
    WORDS.iter().any(|word| name.contains(word))
}

/// A value for display: quoted, or `<N chars>` when `sensitive`.
pub fn value(text: &str, sensitive: bool) -> String {
    if sensitive {
        format!("<{} chars>", text.chars().count())
    } else {
        quote(text)
    }
}

/// A signature as sent, with the digest hidden: `sha256=<64 chars>`.
pub fn signature(text: &str) -> String {
    match text.split_once('=') {
        Some((scheme, digest)) if scheme.len() <= 10 && !scheme.contains(',') => {
            format!("\"{scheme}=<{} chars>\"", digest.chars().count())
        }
        _ => format!("<{} chars>", text.chars().count()),
    }
}

/// A string quoted as Rust's Debug does (escapes visible), cut at 120 characters.
pub fn quote(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// An argument as `{source name}`, or the literal for a `string` source.
pub fn argument(argument: &Argument) -> String {
    match argument.source {
        Source::String => quote(&argument.name),
        Source::Template => format!("{{template {}}}", quote(&argument.name)),
        Source::EntirePayload
        | Source::EntireHeaders
        | Source::EntireQuery
        | Source::RawRequestBody => {
            format!("{{{}}}", argument.source.as_str())
        }
        _ => format!("{{{} {}}}", argument.source.as_str(), argument.name),
    }
}

/// A rule on one line: `{payload ref} == "refs/heads/main" and {header X-Hub-Signature-256} is
/// payload-hmac-sha256 of the body`. Credential-like expected values are not shown.
pub fn rule(rule: &Rule) -> String {
    fn join(rules: &[Rule], word: &str, empty: &str) -> String {
        if rules.is_empty() {
            return empty.to_owned();
        }
        let parts: Vec<String> = rules.iter().map(nested).collect();
        parts.join(&format!(" {word} "))
    }
    fn nested(inner: &Rule) -> String {
        match inner {
            Rule::And(rules) | Rule::Or(rules) if rules.len() > 1 => {
                format!("({})", self::rule(inner))
            }
            _ => self::rule(inner),
        }
    }
    match rule {
        Rule::And(rules) => join(rules, "and", "(empty and: always true)"),
        Rule::Or(rules) => join(rules, "or", "(empty or: never true)"),
        Rule::Not(inner) => format!("not {}", nested(inner)),
        Rule::Empty => "(empty rule: never true)".to_owned(),
        Rule::Match(m) => {
            let parameter = match (m.parameter.is_wildcard(), m.all) {
                (false, _) => argument(&m.parameter),
                (true, false) => format!("any of {}", argument(&m.parameter)),
                (true, true) => format!("every one (at least one) of {}", argument(&m.parameter)),
            };
            match &m.kind {
                MatchKind::Value(expected) => format!(
                    "{parameter} == {}",
                    value(expected, looks_sensitive(&m.parameter.name))
                ),
                MatchKind::Regex(Ok(re)) => format!("{parameter} =~ /{}/", re.as_str()),
                MatchKind::Regex(Err(_)) => format!("{parameter} =~ (invalid regex)"),
                MatchKind::PayloadHmac { algorithm, .. } => format!(
                    "{parameter} is payload-hmac-{} of the body",
                    algorithm.name()
                ),
                MatchKind::IpWhitelist(entries) => {
                    format!("client ip in [{}]", rules::ip_ranges(entries).join(", "))
                }
                MatchKind::ScalrSignature { .. } => "scalr-signature".to_owned(),
                MatchKind::Unknown(kind) => format!("unknown match type {kind:?} (never true)"),
            }
        }
    }
}

/// `hookwire check`'s summary of one hook.
pub fn hook(hook: &Hook, urlprefix: &str) -> String {
    let mut out = String::new();
    let route = if urlprefix.is_empty() {
        format!("/{}", hook.id)
    } else {
        format!("/{}/{}", urlprefix.trim_matches('/'), hook.id)
    };
    let methods = if hook.http_methods.is_empty() {
        "any method (or the server's -http-methods)".to_owned()
    } else {
        hook.http_methods.join(", ")
    };
    let _ = writeln!(out, "hook {}", hook.id);
    let _ = writeln!(out, "  route:      {route}");
    let _ = writeln!(out, "  methods:    {methods}");
    let rule_text = hook
        .trigger_rule
        .as_ref()
        .map_or_else(|| "(none: every request triggers)".to_owned(), rule);
    let _ = writeln!(out, "  rule:       {rule_text}");
    let mut command = vec![quote(&hook.execute_command)];
    command.extend(hook.pass_arguments_to_command.iter().map(argument));
    let _ = writeln!(out, "  command:    {}", command.join(" "));
    if !hook.command_working_directory.is_empty() {
        let _ = writeln!(out, "  cwd:        {}", hook.command_working_directory);
    }
    for arg in &hook.pass_environment_to_command {
        let name = if arg.envname.is_empty() {
            format!("HOOK_{}", arg.name)
        } else {
            arg.envname.clone()
        };
        let _ = writeln!(out, "  env:        {name}={}", argument(arg));
    }
    for arg in &hook.pass_file_to_command {
        let name = if arg.envname.is_empty() {
            format!("HOOK_{}", arg.name.to_uppercase())
        } else {
            arg.envname.clone()
        };
        let decode = if arg.base64decode {
            " (base64-decoded)"
        } else {
            ""
        };
        let _ = writeln!(out, "  file:       ${name} <- {}{decode}", argument(arg));
    }
    let response = if hook.include_command_output_in_response {
        "the command's output, after it finishes".to_owned()
    } else if hook.response_message.is_empty() {
        "at once, empty body".to_owned()
    } else {
        format!("at once, {}", quote(&hook.response_message))
    };
    let _ = writeln!(out, "  response:   {response}");
    process_summary(&mut out, &hook.process);
    for notification in &hook.notify {
        let _ = writeln!(out, "  notify:     {}", notify(notification));
    }
    for extension in extensions(hook) {
        let _ = writeln!(out, "  extension:  {extension}");
    }
    out
}

/// The lines of `stdin`, `exit-code-status` and `run-as`, when set.
fn process_summary(out: &mut String, process: &ProcessOptions) {
    match process.stdin {
        Some(StdinSource::Body) => {
            let _ = writeln!(out, "  stdin:      the request body, as received");
        }
        Some(StdinSource::Payload) => {
            let _ = writeln!(out, "  stdin:      the parsed payload, as JSON");
        }
        None => {}
    }
    if let Some(mapping) = &process.exit_code_status {
        let _ = writeln!(out, "  status:     by exit code {}", mapping.describe());
    }
    if let Some(user) = &process.run_as {
        let _ = writeln!(out, "  run as:     {}", run_as(user));
    }
}

/// `deploy (uid 1001, gid 1001, groups 1001,27)`.
fn run_as(user: &RunAs) -> String {
    let groups: Vec<String> = user.groups.iter().map(u32::to_string).collect();
    format!(
        "{} (uid {}, gid {}, groups {})",
        user.written,
        user.uid,
        user.gid,
        groups.join(",")
    )
}

/// A `notify` entry: when, and where to (a URL by its scheme and host only: it is a secret).
fn notify(notification: &crate::config::notify::Notification) -> String {
    use crate::config::notify::Target;
    let on: Vec<&str> = notification
        .on
        .iter()
        .map(|status| status.as_str())
        .collect();
    let target = match &notification.target {
        Target::Command(command) => format!("run {}", quote(command)),
        Target::Url { url, format } => format!("POST {} to {}/...", format.name(), url.origin()),
    };
    format!("on {}: {target}", on.join(", "))
}

/// hookwire's extension settings of a hook that differ from the defaults, as their debug
/// form (secrets inside print as `Secret(***)`). Generic on purpose: a new extension shows up
/// here without a change to this file.
fn extensions(hook: &Hook) -> Vec<String> {
    fn changed<T: std::fmt::Debug + Default>(value: &T) -> Option<String> {
        let text = format!("{value:?}");
        (text != format!("{:?}", T::default())).then_some(text)
    }
    [changed(&hook.scheduling), changed(&hook.security)]
        .into_iter()
        .flatten()
        .collect()
}

/// The process a plan would start: program, argv, working directory, environment, files.
/// `resolved` is where the program was found (or why not, in the executor's words).
pub fn plan(plan: &Plan, resolved: &Result<std::path::PathBuf, impl std::fmt::Display>) -> String {
    let mut out = String::new();
    let found = match resolved {
        Ok(path) => format!("found at {}", path.display()),
        Err(error) => format!("NOT RUNNABLE: {error}"),
    };
    let _ = writeln!(out, "  program:  {} ({found})", quote(&plan.command));
    let _ = writeln!(out, "  argv[0]:  {}", quote(&plan.command));
    for (index, arg) in plan.args.iter().enumerate() {
        let _ = writeln!(out, "  argv[{}]:  {}", index + 1, quote(arg));
    }
    let cwd = plan
        .working_directory
        .as_deref()
        .map_or_else(|| "hookwire's own".to_owned(), |d| d.display().to_string());
    let _ = writeln!(out, "  cwd:      {cwd}");
    match &plan.stdin {
        Some(bytes) => {
            let preview = String::from_utf8_lossy(bytes);
            let _ = writeln!(
                out,
                "  stdin:    {} bytes: {}",
                bytes.len(),
                quote(&preview)
            );
        }
        None => {
            let _ = writeln!(out, "  stdin:    /dev/null");
        }
    }
    if let Some(user) = &plan.run_as {
        let _ = writeln!(out, "  user:     {}", run_as(user));
    }
    if plan.env.is_empty() {
        let _ = writeln!(out, "  env:      hookwire's own, nothing added");
    } else {
        let _ = writeln!(out, "  env:      hookwire's own, plus:");
    }
    for (name, text) in &plan.env {
        let _ = writeln!(out, "    {name}={}", value(text, looks_sensitive(name)));
    }
    for file in &plan.files {
        let preview = String::from_utf8_lossy(&file.contents);
        let _ = writeln!(
            out,
            "  file:     ${} names a temporary file of {} bytes: {}",
            file.envname,
            file.contents.len(),
            value(&preview, looks_sensitive(&file.envname))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_like_names_are_masked() {
        assert!(looks_sensitive("X-Gitlab-Token"));
        assert!(looks_sensitive("X-Hub-Signature-256"));
        assert!(!looks_sensitive("ref"));
        assert_eq!(value("hunter2", true), "<7 chars>");
        assert_eq!(value("main", false), "\"main\"");
        assert_eq!(signature("sha256=abcd"), "\"sha256=<4 chars>\"");
        assert_eq!(signature("0a1b2c"), "<6 chars>");
    }
}
