//! How commands are run: the flags (flattened into the server's) and the `hookwire runs`
//! subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::goflags;

const EXECUTION: &str = "Execution (hookwire)";

/// How commands are run, limited, journaled and stopped.
#[derive(Debug, Clone, Args)]
pub struct ExecutionArgs {
    /// Most commands running at once over all hooks; further runs wait their turn (0: no limit)
    #[arg(long = "max-concurrent-runs", default_value = "0", value_parser = goflags::parse_usize, value_name = "COUNT", help_heading = EXECUTION)]
    pub max_concurrent_runs: usize,

    /// Time limit of a command for hooks without their own `timeout`, e.g. 15m (0: none); then
    /// SIGTERM to its process group, SIGKILL after -kill-grace
    #[arg(long = "command-timeout", default_value = "0", value_parser = parse_flag_duration, value_name = "DURATION", help_heading = EXECUTION)]
    pub command_timeout: Duration,

    /// Time between SIGTERM and SIGKILL when a command's process group is ended
    #[arg(long = "kill-grace", default_value = "10s", value_parser = parse_flag_duration, value_name = "DURATION", help_heading = EXECUTION)]
    pub kill_grace: Duration,

    /// Most output bytes kept per run: the tail is kept, the truncation marked
    #[arg(long = "max-output", default_value = "1048576", value_parser = goflags::parse_usize, value_name = "BYTES", help_heading = EXECUTION)]
    pub max_output: usize,

    /// Runs kept in the history, per hook
    #[arg(long = "keep-runs", default_value = "100", value_parser = goflags::parse_usize, value_name = "COUNT", help_heading = EXECUTION)]
    pub keep_runs: usize,

    /// How long running commands may finish at shutdown before their process groups are
    /// terminated (and the runs recorded as interrupted)
    #[arg(long = "shutdown-timeout", default_value = "30s", value_parser = parse_flag_duration, value_name = "DURATION", help_heading = EXECUTION)]
    pub shutdown_timeout: Duration,

    /// Keep the run journal; false loses accepted runs in a crash (for measuring its cost)
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub journal: bool,
}

/// `0`, or a duration with a unit (`500ms`, `30s`, `15m`).
fn parse_flag_duration(value: &str) -> Result<Duration, goflags::FlagError> {
    if value.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    Ok(crate::config::scheduling::parse_duration(value)?)
}

/// Lists the run history, shows one run, or runs one again.
#[derive(Debug, Clone, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: Option<RunsAction>,

    /// Only runs of this hook
    #[arg(long, value_name = "ID")]
    pub hook: Option<String>,

    /// Only runs with this status: queued, running, succeeded, failed, timed-out, cancelled,
    /// superseded, interrupted or skipped (comma-separated for several)
    #[arg(long, value_name = "STATUS", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub status: Vec<String>,

    /// Most runs listed, newest first
    #[arg(long, default_value = "20", value_parser = goflags::parse_usize, value_name = "COUNT")]
    pub limit: usize,

    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub location: StateLocation,
}

/// Where the journal is.
#[derive(Debug, Clone, Args)]
pub struct StateLocation {
    /// The server's state directory [default: $STATE_DIRECTORY under systemd, else ./.hookwire]
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// What `hookwire runs` does besides listing.
#[derive(Debug, Clone, Subcommand)]
pub enum RunsAction {
    /// Show one run: status, attempts, exit, times, the request and the captured output
    Show {
        /// The run id (X-Hookwire-Run)
        run: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: StateLocation,
    },
    /// Run the request of a stored run again, as a new run, on the running server (which plans
    /// it with its current hooks and answers with the new run's id)
    Rerun {
        /// The run id (X-Hookwire-Run)
        run: String,
        #[command(flatten)]
        server: AdminClient,
    },
    /// Print a run's output as the command writes it, until the run ends; exits 0 when it
    /// succeeded, 1 otherwise
    Follow {
        /// The run id (X-Hookwire-Run)
        run: String,
        #[command(flatten)]
        server: AdminClient,
    },
}

/// How `hookwire runs` reaches a running server's admin listener.
#[derive(Debug, Clone, Args)]
pub struct AdminClient {
    /// The server's admin listener as a URL, when it is on TCP (-admin-listen
    /// 127.0.0.1:9001: http://127.0.0.1:9001) [default: the admin socket in the state
    /// directory]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The server's -admin-token-file, when it has one
    #[arg(long = "admin-token-file", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub location: StateLocation,
}

impl StateLocation {
    /// `--state-dir`, else systemd's `$STATE_DIRECTORY` (its first entry), else `./.hookwire`:
    /// the same rule as the server's.
    pub fn directory(&self) -> PathBuf {
        super::state_directory(self.state_dir.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;
    use crate::cli::{Cli, Command, try_parse};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let argv = std::iter::once("hookwire")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        try_parse(argv)
    }

    /// What clap prints for a command line it refuses.
    fn parse_error(args: &[&str]) -> String {
        parse(args).unwrap_err().render().to_string()
    }

    fn runs(args: &[&str]) -> RunsArgs {
        match parse(args).map(|cli| cli.command) {
            Ok(Some(Command::Runs(runs))) => runs,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn engine_flags_have_defaults_and_go_spellings() {
        let defaults = parse(&[]).unwrap().serve.execution;
        assert_eq!(defaults.max_concurrent_runs, 0);
        assert_eq!(defaults.command_timeout, Duration::ZERO);
        assert_eq!(defaults.kill_grace, Duration::from_secs(10));
        assert_eq!(defaults.max_output, 1 << 20);
        assert_eq!(defaults.keep_runs, 100);
        assert_eq!(defaults.shutdown_timeout, Duration::from_secs(30));
        assert!(defaults.journal);
        let set = parse(&[
            "-max-concurrent-runs",
            "4",
            "-command-timeout",
            "15m",
            "--kill-grace=500ms",
            "-max-output",
            "4096",
            "-keep-runs",
            "7",
            "-shutdown-timeout",
            "1m",
            "-journal=false",
        ])
        .unwrap()
        .serve
        .execution;
        assert_eq!(set.max_concurrent_runs, 4);
        assert_eq!(set.command_timeout, Duration::from_secs(900));
        assert_eq!(set.kill_grace, Duration::from_millis(500));
        assert_eq!((set.max_output, set.keep_runs), (4096, 7));
        assert_eq!(set.shutdown_timeout, Duration::from_secs(60));
        assert!(!set.journal);
    }

    #[test]
    fn durations_need_a_unit_except_zero() {
        assert_eq!(
            parse(&["-command-timeout", "0"])
                .unwrap()
                .serve
                .execution
                .command_timeout,
            Duration::ZERO
        );
        let error = parse_error(&["-command-timeout", "30"]);
        assert!(error.contains("`30` has no unit: write `30s`"), "{error}");
    }

    #[test]
    fn runs_lists_shows_and_reruns() {
        let list = runs(&[
            "runs",
            "-hook",
            "deploy",
            "-status",
            "failed,timed-out",
            "-state-dir",
            "/s",
        ]);
        assert!(list.action.is_none());
        assert_eq!(list.hook.as_deref(), Some("deploy"));
        assert_eq!(list.status, ["failed", "timed-out"]);
        assert_eq!(list.location.directory(), PathBuf::from("/s"));
        assert_eq!(list.limit, 20);
        match runs(&["runs", "show", "0190-ab", "-state-dir", "/s", "--json"]).action {
            Some(RunsAction::Show {
                run,
                json,
                location,
            }) => {
                assert_eq!((run.as_str(), json), ("0190-ab", true));
                assert_eq!(location.state_dir, Some(PathBuf::from("/s")));
            }
            other => panic!("{other:?}"),
        }
        match runs(&["runs", "rerun", "0190-ab", "-url", "http://h:1"]).action {
            Some(RunsAction::Rerun { run, server }) => {
                assert_eq!(
                    (run.as_str(), server.url.as_deref()),
                    ("0190-ab", Some("http://h:1"))
                );
                assert!(server.admin_token_file.is_none());
            }
            other => panic!("{other:?}"),
        }
        // Serving flags still work at the top level, and `runs` does not take them.
        assert!(parse(&["-port", "1"]).unwrap().command.is_none());
        assert!(parse_error(&["runs", "-port", "1"]).contains("-port"));
    }
}
