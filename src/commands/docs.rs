//! `hookwire completions SHELL` and `hookwire man`: documents generated from the clap
//! definition in [`crate::cli`], so they never drift from the flags the binary accepts.
//!
//! Completions and the man page show flags as `--flag`; the Go-style `-flag` spellings work
//! too (see [`crate::cli::goflags`]).

use std::process::ExitCode;

use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::cli::ops::Shell;

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: Shell) -> ExitCode {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(
        generator,
        &mut Cli::command(),
        "hookwire",
        &mut std::io::stdout(),
    );
    ExitCode::SUCCESS
}

/// Writes the man page (roff) to stdout.
pub fn man() -> ExitCode {
    match man_page() {
        Ok(page) => {
            use std::io::Write as _;
            match std::io::stdout().write_all(&page) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: cannot write the man page: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            eprintln!("error: cannot render the man page: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The man page, `hookwire(1)`, as roff bytes.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    Ok(page)
}
