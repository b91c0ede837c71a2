//! `hookwire check FILE...`: load hooks files as the server would and report on them.

use std::process::ExitCode;

use super::{describe, lint};
use crate::cli::ops::CheckArgs;
use crate::config::LoadOptions;

/// Prints the report to stdout; exits 1 when any file failed to load.
pub fn run(args: &CheckArgs) -> ExitCode {
    let (text, ok) = report(args);
    super::emit(&text);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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
        out.push_str(&format!(
            "{}: {} hook(s)\n\n",
            file.path.display(),
            file.hooks.len()
        ));
        for hook in &file.hooks {
            out.push_str(&describe::hook(hook, &args.urlprefix));
            out.push('\n');
        }
        hooks += file.hooks.len();
        let risky = lint::lint(file, &options);
        let mut found: Vec<_> = file.warnings.iter().chain(&risky).collect();
        // In file order, so the report reads top to bottom with the file.
        found.sort_by_key(|w| (w.line, w.column));
        for warning in &found {
            out.push_str(&describe::diagnostic("warning", warning));
            out.push('\n');
        }
        warnings += found.len();
    }
    for error in &loaded.errors {
        out.push_str(&describe::load_error(error));
        out.push('\n');
    }
    let errors = loaded.errors.len();
    out.push_str(&format!(
        "{hooks} hook(s), {errors} error(s), {warnings} warning(s)\n"
    ));
    (out, errors == 0)
}
