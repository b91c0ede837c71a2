//! The execution engine's flags (flattened into the server's) and the `hookwire runs`
//! subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::goflags;

const ENGINE: &str = "Execution (hookwire)";

/// How commands are run, limited, journaled and stopped.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Most commands running at once over all hooks; further runs wait their turn (0: no limit)
    #[arg(long = "max-concurrent-runs", default_value = "0", value_parser = goflags::parse_usize, value_name = "COUNT", help_heading = ENGINE)]
    pub max_concurrent_runs: usize,

    /// Time limit of a command for hooks without their own `timeout`, e.g. 15m (0: none); then
    /// SIGTERM to its process group, SIGKILL after -kill-grace
    #[arg(long = "command-timeout", default_value = "0", value_parser = parse_flag_duration, value_name = "DURATION", help_heading = ENGINE)]
    pub command_timeout: Duration,

    /// Time between SIGTERM and SIGKILL when a command's process group is ended
    #[arg(long = "kill-grace", default_value = "10s", value_parser = parse_flag_duration, value_name = "DURATION", help_heading = ENGINE)]
    pub kill_grace: Duration,

    /// Most output bytes kept per run: the tail is kept, the truncation marked
    #[arg(long = "max-output", default_value = "1048576", value_parser = goflags::parse_usize, value_name = "BYTES", help_heading = ENGINE)]
    pub max_output: usize,

    /// Runs kept in the history, per hook
    #[arg(long = "keep-runs", default_value = "100", value_parser = goflags::parse_usize, value_name = "COUNT", help_heading = ENGINE)]
    pub keep_runs: usize,

    /// How long running commands may finish at shutdown before their process groups are
    /// terminated (and the runs recorded as interrupted)
    #[arg(long = "shutdown-timeout", default_value = "30s", value_parser = parse_flag_duration, value_name = "DURATION", help_heading = ENGINE)]
    pub shutdown_timeout: Duration,

    /// File holding a token for the admin routes (/-/...): clients must send
    /// `Authorization: Bearer TOKEN`; without it only loopback clients are served
    #[arg(long = "admin-token-file", value_name = "FILE", help_heading = ENGINE)]
    pub admin_token_file: Option<PathBuf>,

    /// Keep the run journal; false loses accepted runs in a crash (for measuring its cost)
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub journal: bool,
}

/// `0`, or a duration with a unit (`500ms`, `30s`, `15m`).
fn parse_flag_duration(value: &str) -> Result<Duration, String> {
    if value.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    crate::config::engine::parse_duration(value)
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
    /// Run the request of a stored run again, as a new run, on the server at -url (which plans
    /// it with its current hooks and answers with the new run's id)
    Rerun {
        /// The run id (X-Hookwire-Run)
        run: String,
        /// The running server's base URL (http only)
        #[arg(long, default_value = "http://127.0.0.1:9000", value_name = "URL")]
        url: String,
        /// The server's -admin-token-file, when it has one
        #[arg(long = "admin-token-file", value_name = "FILE")]
        admin_token_file: Option<PathBuf>,
    },
}

impl StateLocation {
    /// `--state-dir`, else systemd's `$STATE_DIRECTORY` (its first entry), else `./.hookwire`:
    /// the same rule as the server's.
    pub fn directory(&self) -> PathBuf {
        super::state_directory(self.state_dir.as_ref())
    }
}
