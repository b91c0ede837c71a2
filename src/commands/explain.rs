//! `hookwire explain HOOK`: a request built from flags, run through [`pipeline::prepare`] (the
//! server's own stages before execution), and every decision printed. Nothing is executed.

use std::fmt::Write as _;
use std::io::Read as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::describe;
use crate::cli::ops::ExplainArgs;
use crate::config::{Hook, LoadOptions};
use crate::ops::request_log;
use crate::pipeline::request::Request;
use crate::pipeline::rules::{MatchKind, Rule, Trace};
use crate::pipeline::{self, Prepared, Verdict};
use crate::store::Received;

/// What `explain` concluded, as its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    /// The hook would run (exit 0).
    Runs,
    /// The hook would not run (exit 1).
    DoesNotRun,
    /// The hooks or the request could not be read (exit 2).
    Error,
}

impl From<Conclusion> for ExitCode {
    fn from(conclusion: Conclusion) -> Self {
        match conclusion {
            Conclusion::Runs => ExitCode::SUCCESS,
            Conclusion::DoesNotRun => ExitCode::from(1),
            Conclusion::Error => ExitCode::from(2),
        }
    }
}

/// Why `explain` cannot explain, as printed to stderr: whole lines, each with its `error: `.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// No hooks file merged; the report lists each file's errors.
    #[error("{0}")]
    Load(String),
    /// The hook is in none of the files; `problems` lists the files that failed.
    #[error(
        "{problems}error: no hook `{hook}` in {files}\n  = hint: the hooks loaded are: {known}\n"
    )]
    UnknownHook {
        problems: String,
        hook: String,
        files: String,
        known: String,
    },
    #[error("error: {0:?} is not a valid header name\n")]
    HeaderName(String),
    #[error("error: the value of header {0} is not valid\n")]
    HeaderValue(HeaderName),
    #[error("error: cannot start the runtime: {0}\n")]
    Runtime(std::io::Error),
    #[error("error: cannot read the body from stdin: {0}\n")]
    Stdin(std::io::Error),
    #[error("error: cannot read the body from {}: {error}\n", path.display())]
    BodyFile {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

/// Prints the explanation to stdout (problems reading the input to stderr).
pub fn run(args: &ExplainArgs) -> ExitCode {
    match explain(args) {
        Ok((text, conclusion)) => {
            super::emit(&text);
            conclusion.into()
        }
        Err(message) => {
            eprint!("{message}");
            Conclusion::Error.into()
        }
    }
}

/// The explanation and its conclusion, or the reason it cannot be given (load errors, an
/// unknown hook, an unreadable body).
pub fn explain(args: &ExplainArgs) -> Result<(String, Conclusion), ExplainError> {
    let options = LoadOptions {
        template: args.template,
    };
    let loaded = super::load(&args.hooks, &options);
    let mut problems = String::new();
    for error in &loaded.errors {
        problems.push_str(&describe::load_error(error));
    }
    let Some(hooks) = &loaded.hooks else {
        return Err(ExplainError::Load(problems));
    };
    let Some(hook) = hooks.get(&args.hook) else {
        let mut known: Vec<&str> = hooks.sorted().iter().map(|h| h.id.as_str()).collect();
        known.truncate(20);
        return Err(ExplainError::UnknownHook {
            problems,
            hook: args.hook.clone(),
            files: args
                .hooks
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            known: if known.is_empty() {
                "(none)".to_owned()
            } else {
                known.join(", ")
            },
        });
    };
    // A file that failed is skipped by the server too; say so, and explain with the rest.
    eprint!("{problems}");
    let received = received(args)?;
    let mut out = String::new();
    let _ = writeln!(out, "hook {} (from {})", hook.id, hook.source.display());
    let _ = writeln!(
        out,
        "request: {} from {}, {} byte(s) of body{}",
        received.method,
        received.remote_addr.ip(),
        received.body.len(),
        received
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|t| format!(", Content-Type {t}"))
            .unwrap_or_default()
    );
    let method = received.method.clone();
    if !hook.http_methods.is_empty() && !hook.http_methods.contains(&method) {
        let _ = writeln!(
            out,
            "\nverdict: method-not-allowed: the hook accepts {} only; the server answers 405 \
             before reading the body\nnothing was run.",
            hook.http_methods.join(", ")
        );
        return Ok((out, Conclusion::DoesNotRun));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(ExplainError::Runtime)?;
    let prepared = runtime.block_on(pipeline::prepare(hook, &received, true));
    let conclusion = write_prepared(&mut out, hook, &prepared);
    out.push_str("nothing was run.\n");
    Ok((out, conclusion))
}

/// Writes the trigger rule's trace, the notes and the verdict; returns the conclusion.
fn write_prepared(out: &mut String, hook: &Hook, prepared: &Prepared) -> Conclusion {
    match (&hook.trigger_rule, &prepared.trace, &prepared.request) {
        (Some(rule), Some(trace), Some(request)) => {
            let _ = writeln!(out, "\ntrigger rule: {}", describe::rule(rule));
            write_trace(out, rule, trace, request, 1);
        }
        (Some(rule), _, _) => {
            let _ = writeln!(
                out,
                "\ntrigger rule: {} (not evaluated)",
                describe::rule(rule)
            );
        }
        (None, _, _) => {
            let _ = writeln!(out, "\ntrigger rule: none, every request triggers the hook");
        }
    }
    if !prepared.notes.is_empty() {
        let _ = writeln!(out, "\nnotes:");
        for note in &prepared.notes {
            let _ = writeln!(out, "  {note}");
        }
    }
    let label = request_log::verdict_label(&prepared.verdict);
    // One arm per verdict: a new stage's verdict (a signature check, a duplicate) is one more.
    match &prepared.verdict {
        Verdict::SignatureFailed(error) => {
            let _ = writeln!(
                out,
                "\nverdict: {label}: {error}; the server answers 401 and runs nothing"
            );
            Conclusion::DoesNotRun
        }
        Verdict::DiscordPing => {
            let _ = writeln!(
                out,
                "\nverdict: {label}: a verified Discord PING; the server answers {{\"type\":1}} \
                 and runs nothing"
            );
            Conclusion::DoesNotRun
        }
        Verdict::Malformed(error) => {
            let _ = writeln!(
                out,
                "\nverdict: {label}: the body cannot be parsed ({error}); the server answers 400 \
                 (500 for a broken multipart body) and runs nothing"
            );
            Conclusion::DoesNotRun
        }
        Verdict::RuleError(error) => {
            let signatures = match (&hook.trigger_rule, &prepared.request) {
                (Some(rule), Some(request)) => rule_signatures(rule, request),
                _ => Vec::new(),
            };
            let error = scrub(&error.to_string(), signatures);
            let _ = writeln!(
                out,
                "\nverdict: {label}: {error}; the server answers 500 and runs nothing"
            );
            Conclusion::DoesNotRun
        }
        Verdict::NotTriggered => {
            let _ = writeln!(
                out,
                "\nverdict: {label}: the trigger rule is not satisfied; the server answers \
                 with trigger-rule-mismatch-http-response-code (default 200) and runs nothing"
            );
            Conclusion::DoesNotRun
        }
        Verdict::Triggered(plan) => {
            let working_directory = plan.working_directory.as_deref();
            let resolved = crate::engine::exec::resolve_program(&plan.command, working_directory);
            let _ = writeln!(out, "\nverdict: {label}: the command would run:");
            out.push_str(&describe::plan(plan, &resolved));
            Conclusion::Runs
        }
    }
}

/// One trace node per line, indented, with what it compared. `rule` is the node the trace
/// came from: its children are visited in order and stop at the one that decided, so the
/// trace's children pair with a prefix of the rule's.
fn write_trace(out: &mut String, rule: &Rule, trace: &Trace, request: &Request, depth: usize) {
    let detail = match rule {
        // A wildcard's trace counts the values that matched; show it with what was selected.
        Rule::Match(m) if m.parameter.is_wildcard() => {
            match (compared(m, request), &trace.detail) {
                (Some(got), Some(counted)) => Some(format!("{got}; {counted}")),
                (got, counted) => got.or_else(|| counted.clone()),
            }
        }
        Rule::Match(m) => compared(m, request).or_else(|| trace.detail.clone()),
        _ => trace.detail.clone(),
    };
    let _ = write!(
        out,
        "{:indent$}{}: {}",
        "",
        trace.label,
        scrub(&trace.verdict, rule_signatures(rule, request)),
        indent = depth * 2
    );
    if let Some(detail) = detail {
        let _ = write!(out, " ({detail})");
    }
    out.push('\n');
    let children: &[Rule] = match rule {
        Rule::And(rules) | Rule::Or(rules) => rules,
        Rule::Not(inner) => std::slice::from_ref(inner.as_ref()),
        Rule::Match(_) | Rule::Empty => &[],
    };
    for (child_rule, child_trace) in children.iter().zip(&trace.children) {
        write_trace(out, child_rule, child_trace, request, depth + 1);
    }
}

/// The signatures a rule node (and the nodes under it) read from the request, to be masked
/// wherever an error message quotes them.
fn rule_signatures(rule: &Rule, request: &Request) -> Vec<String> {
    match rule {
        Rule::And(rules) | Rule::Or(rules) => rules
            .iter()
            .flat_map(|r| rule_signatures(r, request))
            .collect(),
        Rule::Not(inner) => rule_signatures(inner, request),
        Rule::Match(m) => match &m.kind {
            MatchKind::PayloadHmac { .. } => m.parameter.get(request).ok().into_iter().collect(),
            _ => Vec::new(),
        },
        Rule::Empty => Vec::new(),
    }
}

/// `text` with every signature in `signatures` (and each of its comma-separated parts, as
/// the error messages list them) replaced by its masked form.
fn scrub(text: &str, signatures: Vec<String>) -> String {
    let mut text = text.to_owned();
    for signature in &signatures {
        for part in std::iter::once(signature.as_str()).chain(signature.split(',')) {
            for candidate in [part, part.split_once('=').map_or(part, |(_, d)| d)] {
                if !candidate.is_empty() {
                    text = text.replace(candidate, &describe::signature(candidate));
                }
            }
        }
    }
    text
}

/// What a match compared, with credentials and signatures masked: `got …, expected …`.
fn compared(m: &crate::pipeline::rules::MatchRule, request: &Request) -> Option<String> {
    let got = m.parameter.get(request).ok()?;
    let sensitive = describe::looks_sensitive(&m.parameter.name);
    Some(match &m.kind {
        MatchKind::Value(expected) => format!(
            "got {}, expected {}",
            describe::value(&got, sensitive),
            describe::value(expected, sensitive)
        ),
        MatchKind::Regex(_) => format!("got {}", describe::value(&got, sensitive)),
        MatchKind::PayloadHmac { .. } => format!("got {}", describe::signature(&got)),
        _ => return None,
    })
}

/// The request the flags describe.
fn received(args: &ExplainArgs) -> Result<Received, ExplainError> {
    let mut headers = HeaderMap::new();
    let mut add = |name: &str, value: &str| -> Result<(), ExplainError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ExplainError::HeaderName(name.to_owned()))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| ExplainError::HeaderValue(name.clone()))?;
        headers.append(name, value);
        Ok(())
    };
    for (name, value) in &args.headers {
        add(name, value)?;
    }
    if let Some(content_type) = &args.content_type {
        add("content-type", content_type)?;
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&args.query)
        .finish();
    let body = match &args.body {
        None => Vec::new(),
        Some(path) if path.as_os_str() == "-" => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(ExplainError::Stdin)?;
            body
        }
        Some(path) => std::fs::read(path).map_err(|error| ExplainError::BodyFile {
            path: path.clone(),
            error,
        })?,
    };
    Ok(Received {
        id: "explain".to_owned(),
        method: args.method.to_ascii_uppercase(),
        remote_addr: SocketAddr::new(args.remote_addr, 0),
        headers,
        query,
        body: Bytes::from(body),
    })
}
