//! The operating subcommands: `check`, `explain`, `sign`, `completions`, `man` and `runs`.
//!
//! Each one is a function from its parsed flags to an exit status that writes to stdout and
//! stderr. `check` and `explain` load hooks files exactly as the server does ([`load`]) and
//! share the printing helpers in [`describe`]; the risky-setup lints live in [`lint`].

pub mod check;
pub mod describe;
pub mod docs;
pub mod explain;
pub mod lint;
pub mod runs;
pub mod sign;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::Command;
use crate::config::{self, Diagnostic, HookSet, LoadError, LoadOptions, LoadedFile, sources};

/// Runs a subcommand and returns the process exit status.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Check(args) => check::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Sign(args) => sign::run(&args),
        Command::Completions(args) => docs::completions(args.shell),
        Command::Man => docs::man(),
        Command::Runs(args) => runs::run(&args),
    }
}

/// Writes `text` to stdout. A closed pipe (`hookwire sign ... | head -1`) is not an error:
/// the reader has what it wanted.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write to standard output: {error}");
    }
}

/// Hooks files as the server loads them: each file read and compiled on its own (one that
/// fails is reported and skipped), then merged, where an id defined twice is an error.
#[derive(Debug)]
pub struct Loaded {
    /// The files that loaded, in the order given.
    pub files: Vec<LoadedFile>,
    /// Every error: files that failed, then a failed merge.
    pub errors: Vec<LoadError>,
    /// The merged hook set, unless the merge failed.
    pub hooks: Option<HookSet>,
    /// Directories and patterns that hold no hooks file.
    pub warnings: Vec<Diagnostic>,
}

/// Loads `paths` (files, directories, glob patterns) with the server's own functions
/// ([`sources::expand`] to list the files, [`config::load_file`] per file,
/// [`HookSet::from_files`] to merge).
pub fn load(paths: &[PathBuf], options: &LoadOptions) -> Loaded {
    let expansion = sources::expand(paths);
    let mut files = Vec::new();
    let mut errors = expansion.errors;
    for path in &expansion.files {
        match config::load_file(path, options) {
            Ok(file) => files.push(file),
            Err(error) => errors.push(error),
        }
    }
    let hooks = match HookSet::from_files(files.clone()) {
        Ok(hooks) => Some(hooks),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    Loaded {
        files,
        errors,
        hooks,
        warnings: expansion.warnings,
    }
}
