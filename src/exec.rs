//! The execute stage: runs a [`Plan`] as a real process in its own process group, with the
//! hook's temporary files, and captures stdout and stderr interleaved through one pipe (as Go's
//! `CombinedOutput` does), keeping at most a fixed number of bytes (the tail).

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;

use crate::plan::Plan;

/// Variables of hookwire's own supervisor that a hook command must not inherit.
const PRIVATE_ENV: &[&str] = &["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// The process exited with this code.
    Exited(i32),
    /// The process was killed by this signal.
    Signaled(i32),
    /// The process could not be started (not found, not executable, ...).
    NotStarted(String),
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub termination: Termination,
    /// Combined stdout and stderr, in write order; the tail when it exceeded the limit.
    pub output: Vec<u8>,
    /// Bytes dropped from the front of the output to stay within the limit.
    pub truncated: u64,
    pub duration: Duration,
}

impl Outcome {
    /// Exit status 0.
    pub fn succeeded(&self) -> bool {
        self.termination == Termination::Exited(0)
    }
}

/// Limits applied to every run.
#[derive(Debug, Clone, Copy)]
pub struct ExecOptions {
    /// Most output bytes kept per run.
    pub output_limit: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            output_limit: 1 << 20,
        }
    }
}

/// Runs `plan` to completion.
pub async fn run(plan: &Plan, options: ExecOptions) -> Outcome {
    let started = Instant::now();
    let finish = |termination, output, truncated| Outcome {
        termination,
        output,
        truncated,
        duration: started.elapsed(),
    };
    let program = match resolve_program(&plan.command, plan.working_directory.as_deref()) {
        Ok(program) => program,
        Err(error) => {
            if plan.command.contains(' ') {
                tracing::warn!(
                    "`execute-command` is never split on spaces: use `pass-arguments-to-command` for the arguments of {:?}",
                    plan.command.split_whitespace().next().unwrap_or_default()
                );
            }
            return finish(Termination::NotStarted(error), Vec::new(), 0);
        }
    };

    // Kept alive until the process has exited; dropping them deletes the files.
    let (_files, file_env) = write_files(plan);

    match spawn_and_wait(plan, &program, file_env, options).await {
        Ok((termination, output, truncated)) => finish(termination, output, truncated),
        Err(error) => finish(
            Termination::NotStarted(format!("cannot start {}: {error}", program.display())),
            Vec::new(),
            0,
        ),
    }
}

async fn spawn_and_wait(
    plan: &Plan,
    program: &Path,
    file_env: Vec<(String, String)>,
    options: ExecOptions,
) -> std::io::Result<(Termination, Vec<u8>, u64)> {
    // One pipe for both streams keeps them interleaved in write order.
    let (writer, mut reader) = tokio::net::unix::pipe::pipe()?;
    let stdout = writer.into_blocking_fd()?;
    let stderr = stdout.try_clone()?;

    let mut command = tokio::process::Command::new(program);
    command
        .arg0(&plan.command)
        .args(&plan.args)
        .envs(plan.env.iter().cloned())
        .envs(file_env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        // Its own group, so a whole tree can be signalled at once, and a Ctrl-C meant for
        // hookwire's terminal does not reach it.
        .process_group(0);
    for name in PRIVATE_ENV {
        command.env_remove(name);
    }
    if let Some(directory) = &plan.working_directory {
        command.current_dir(directory);
    }
    let mut child = command.spawn()?;
    // Close our copies of the pipe's write end, or reading would never see end-of-file.
    drop(command);

    let (status, (output, truncated)) =
        tokio::join!(child.wait(), read_tail(&mut reader, options.output_limit));
    let status = status?;
    let termination = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(signal)) => Termination::Signaled(signal),
        (None, None) => Termination::Exited(-1),
    };
    Ok((termination, output, truncated))
}

/// Reads to end-of-file, keeping the last `limit` bytes.
async fn read_tail(reader: &mut tokio::net::unix::pipe::Receiver, limit: usize) -> (Vec<u8>, u64) {
    let mut output = Vec::new();
    let mut truncated = 0u64;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                output.extend_from_slice(&chunk[..n]);
                // Trim in large steps so a chatty command costs amortised O(1) per byte.
                if output.len() > limit.saturating_mul(2).max(64 * 1024) {
                    let excess = output.len() - limit;
                    output.drain(..excess);
                    truncated += excess as u64;
                }
            }
        }
    }
    if output.len() > limit {
        let excess = output.len() - limit;
        output.drain(..excess);
        truncated += excess as u64;
    }
    (output, truncated)
}

/// Writes the plan's files (mode 0600) in the working directory, else the temp directory, and
/// returns them with the variables naming their paths. A file that cannot be written is logged
/// and left out, as adnanh does.
fn write_files(plan: &Plan) -> (Vec<tempfile::NamedTempFile>, Vec<(String, String)>) {
    let directory = plan
        .working_directory
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let mut files = Vec::new();
    let mut env = Vec::new();
    for planned in &plan.files {
        let written = tempfile::Builder::new()
            .prefix(&planned.envname)
            .tempfile_in(&directory)
            .and_then(|mut file| {
                file.write_all(&planned.contents)?;
                file.flush()?;
                Ok(file)
            });
        match written {
            Ok(file) => {
                let path = std::path::absolute(file.path()).unwrap_or_else(|_| file.path().into());
                env.push((planned.envname.clone(), path.to_string_lossy().into_owned()));
                files.push(file);
            }
            Err(error) => tracing::error!(
                "cannot write the file for {} in {}: {error}",
                planned.envname,
                directory.display()
            ),
        }
    }
    (files, env)
}

/// Finds the program as adnanh does with Go's `exec.LookPath`: a relative command is looked up
/// inside `command-working-directory` when one is set (no `$PATH`); otherwise a name with a
/// slash is taken as a path and a bare name is searched in `$PATH`. The result is absolute, so
/// it does not depend on the child's working directory.
pub fn resolve_program(command: &str, working_directory: Option<&Path>) -> Result<PathBuf, String> {
    let candidate = match working_directory {
        Some(directory) if !Path::new(command).is_absolute() => directory.join(command),
        _ => PathBuf::from(command),
    };
    if candidate.as_os_str().is_empty() {
        return Err("exec: no command".to_string());
    }
    if candidate.to_string_lossy().contains('/') {
        return match check_executable(&candidate) {
            Ok(()) => Ok(std::path::absolute(&candidate).unwrap_or(candidate)),
            Err(error) => Err(format!(
                "exec: {:?}: {error}",
                candidate.display().to_string()
            )),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for directory in std::env::split_paths(&path) {
        let directory = if directory.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            directory
        };
        let full = directory.join(&candidate);
        if check_executable(&full).is_ok() {
            return Ok(std::path::absolute(&full).unwrap_or(full));
        }
    }
    Err(format!(
        "exec: {command:?}: executable file not found in $PATH"
    ))
}

fn check_executable(path: &Path) -> Result<(), String> {
    let metadata = std::fs::metadata(path).map_err(|error| error.to_string())?;
    if metadata.is_dir() {
        return Err("is a directory".to_string());
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err("permission denied".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(command: &str, args: &[&str]) -> Plan {
        Plan {
            command: command.to_string(),
            working_directory: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![],
            files: vec![],
            problems: vec![],
        }
    }

    #[test]
    fn lookup_follows_go_rules() {
        assert!(resolve_program("sh", None).unwrap().is_absolute());
        assert!(resolve_program("no-such-program-xyz", None).is_err());
        assert!(resolve_program("/bin/sh arg", None).is_err());
        // With a working directory, a relative name is looked up there only.
        assert!(resolve_program("sh", Some(Path::new("/"))).is_err());
        assert!(resolve_program("bin/sh", Some(Path::new("/"))).is_ok());
        assert!(resolve_program("/tmp", None).is_err());
    }

    #[tokio::test]
    async fn output_is_interleaved_and_capped() {
        let outcome = run(
            &plan(
                "/bin/sh",
                &["-c", "echo out; echo err >&2; echo out2; exit 3"],
            ),
            ExecOptions::default(),
        )
        .await;
        assert_eq!(outcome.termination, Termination::Exited(3));
        assert_eq!(outcome.output, b"out\nerr\nout2\n");

        let outcome = run(
            &plan(
                "/bin/sh",
                &["-c", "head -c 300000 /dev/zero | tr '\\0' a; printf END"],
            ),
            ExecOptions { output_limit: 1000 },
        )
        .await;
        assert!(outcome.succeeded());
        assert_eq!(outcome.output.len(), 1000);
        assert!(outcome.output.ends_with(b"aEND"));
        assert_eq!(outcome.truncated, 300003 - 1000);
    }

    #[tokio::test]
    async fn signals_and_start_failures_are_reported() {
        let outcome = run(
            &plan("/bin/sh", &["-c", "kill -9 $$"]),
            ExecOptions::default(),
        )
        .await;
        assert_eq!(outcome.termination, Termination::Signaled(9));
        let outcome = run(&plan("/nonexistent/cmd", &[]), ExecOptions::default()).await;
        assert!(matches!(outcome.termination, Termination::NotStarted(_)));
    }
}
