//! `hookwire check FILE...`: load hooks files (or directories, or glob patterns) as the server
//! would and report on them.

use std::path::Path;
use std::process::ExitCode;

use super::{describe, lint};
use crate::cli::ops::CheckArgs;
use crate::config::{LoadError, LoadOptions};

/// Prints the report to stdout; exits 1 when any file failed to load, or with `--strict` when
/// anything was warned about.
pub fn run(args: &CheckArgs) -> ExitCode {
    let (text, ok) = report(args);
    super::emit(&text);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What a secret is shown as: nothing of it, not even its length.
const MASK: &str = "********";

/// Part of the report about the file at `path` with the file's secrets masked: every secret
/// `lint` finds in the file, wherever the text quotes it (a source line under a warning, a
/// message). A file that does not parse has no tree to find them in, so on each line the
/// value after a `secret` or `value` key is masked instead.
fn mask_secrets(text: &str, path: Option<&Path>, options: &LoadOptions) -> String {
    let Some(path) = path else {
        return text.to_owned();
    };
    match lint::written_secrets(path, options) {
        Some(mut secrets) => {
            // Longest first, so a secret that contains another is masked whole.
            secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
            secrets.dedup();
            secrets
                .iter()
                .filter(|secret| !secret.is_empty())
                .fold(text.to_owned(), |text, secret| mask_token(&text, secret))
        }
        None => text.lines().map(mask_after_secret_key).fold(
            String::with_capacity(text.len()),
            |mut out, line| {
                out.push_str(&line);
                out.push('\n');
                out
            },
        ),
    }
}

/// `text` with each occurrence of `secret` that stands alone (not part of a longer word)
/// replaced by [`MASK`].
fn mask_token(text: &str, secret: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, _) in text.match_indices(secret) {
        let end = start + secret.len();
        let alone = !text[..start].chars().next_back().is_some_and(is_word)
            && !text[end..].chars().next().is_some_and(is_word);
        if alone && start >= copied {
            out.push_str(&text[copied..start]);
            out.push_str(MASK);
            copied = end;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// A line with whatever follows a `secret:`/`secret =`/`"value":` key masked.
fn mask_after_secret_key(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    let lower = lower.as_str();
    let value_start = ["secret", "value"]
        .iter()
        .flat_map(|key| {
            lower
                .match_indices(key)
                .map(move |(start, _)| &lower[start + key.len()..])
        })
        .filter_map(|rest| {
            let rest = rest.trim_start_matches(['"', '\'']).trim_start();
            rest.starts_with([':', '='])
                .then(|| lower.len() - rest.len() + 1)
        })
        .min();
    match value_start {
        Some(separator) => format!("{} {MASK}", &line[..separator]),
        None => line.to_owned(),
    }
}

/// The whole report, and whether everything loaded. Per file: its hooks, the loader's warnings
/// (unknown keys and the like), then the risky-setup warnings; then every error; then a
/// one-line total.
pub fn report(args: &CheckArgs) -> (String, bool) {
    let options = LoadOptions {
        template: args.template,
    };
    let loaded = super::load(&args.files, &options);
    let mut out = String::new();
    let mut warnings = 0;
    let mut hooks = 0;
    for file in &loaded.files {
        let mut section = format!("{}: {} hook(s)\n\n", file.path.display(), file.hooks.len());
        for hook in &file.hooks {
            section.push_str(&describe::hook(hook, &args.urlprefix));
            section.push('\n');
        }
        hooks += file.hooks.len();
        let risky = lint::lint(file, &options);
        let mut found: Vec<_> = file.warnings.iter().chain(&risky).collect();
        // In file order, so the report reads top to bottom with the file.
        found.sort_by_key(|w| (w.line, w.column));
        for warning in &found {
            section.push_str(&describe::diagnostic("warning", warning));
            section.push('\n');
        }
        warnings += found.len();
        out.push_str(&mask_secrets(&section, Some(&file.path), &options));
    }
    for warning in &loaded.warnings {
        out.push_str(&describe::diagnostic("warning", warning));
        out.push('\n');
    }
    warnings += loaded.warnings.len();
    for error in &loaded.errors {
        let place = match error {
            LoadError::Invalid(diagnostic) => Some(diagnostic.file.as_path()),
            _ => None,
        };
        out.push_str(&mask_secrets(&describe::load_error(error), place, &options));
        out.push('\n');
    }
    let errors = loaded.errors.len();
    out.push_str(&format!(
        "{hooks} hook(s), {errors} error(s), {warnings} warning(s)\n"
    ));
    let strict_failure = args.strict && warnings > 0;
    if strict_failure {
        out.push_str("failed: --strict treats warnings as errors\n");
    }
    (out, errors == 0 && !strict_failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_as_whole_tokens() {
        assert_eq!(
            mask_token("secret: s3cr3t, x: s3cr3ts, s3cr3t", "s3cr3t"),
            "secret: ********, x: s3cr3ts, ********"
        );
    }

    #[test]
    fn lines_of_unparsable_files_lose_what_follows_a_secret_key() {
        assert_eq!(
            mask_after_secret_key("  - match: {type: value, value: tok, secret: s"),
            "  - match: {type: value, value: ********"
        );
        assert_eq!(
            mask_after_secret_key(r#"  "secret" : "abc","#),
            r#"  "secret" : ********"#
        );
        assert_eq!(
            mask_after_secret_key("  id: secret-hook"),
            "  id: secret-hook"
        );
    }
}
