//! The store: the state directory and its one SQLite database (`hookwire.db`), which holds the
//! durable run journal and the dedupe table.
//!
//! The journal keeps every accepted run with the request it came from (so it can be planned and
//! run again after a crash), its status, attempts, exit, times and captured output.
//! [`Journal`] is the narrow interface the engine uses: append an [`Event`], list what was left
//! unfinished at start, and read the history. [`SqliteJournal`] implements it on the embedded
//! database (WAL, `synchronous=FULL`, so a commit is on disk when it returns). All writes go
//! through one thread that commits whatever is waiting in one transaction: under load many
//! accepted runs share one fsync (group commit). Events that need not reach the disk wait up to
//! 25 ms for company. A later backend (a distributed queue) implements the same trait; nothing
//! else changes.
//!
//! [`History`] opens the same file for reading only, for `hookwire runs`. The history is shown
//! through [`redact`], which masks credentials.
//!
//! - [`state_dir`]: the directory and the database file, set up once for every user.
//! - `sqlite`: the writer thread and the read connection; `schema`: the tables and their
//!   migrations; `queries`: reading runs back; `headers`: how request headers are stored.
//! - [`dedupe`]: delivery ids seen recently.

pub mod dedupe;
pub(crate) mod headers;
mod queries;
pub mod redact;
mod schema;
mod sqlite;
pub mod state_dir;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;
use serde::Serialize;
use tokio::sync::oneshot;

pub use sqlite::{History, SqliteJournal};
pub use state_dir::{FILE_NAME, prepare_database};

/// A request as received, before any parsing: what the pipeline starts from and what the
/// journal keeps, so a run can be planned again after a crash or on a rerun.
#[derive(Debug, Clone)]
pub struct Received {
    /// Log correlation id.
    pub id: String,
    pub method: String,
    /// The client address (the TCP peer, or the client behind trusted proxies).
    pub remote_addr: SocketAddr,
    pub headers: HeaderMap,
    /// The raw query string, without `?`.
    pub query: String,
    pub body: Bytes,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Accepted, waiting to start (or to be retried).
    Queued,
    Running,
    /// Exited with status 0.
    Succeeded,
    /// Exited with another status, was killed by a signal, or could not start.
    Failed,
    /// Killed at its timeout.
    TimedOut,
    /// Killed because a newer run of the same hook arrived (`concurrency: cancel`).
    Cancelled,
    /// Never started: a newer run took its place (`latest`, `cancel`).
    Superseded,
    /// Stopped by hookwire's shutdown or lost in a crash, with no retry left.
    Interrupted,
    /// Never started: its hook was removed, or its request no longer triggers it.
    Skipped,
}

impl Status {
    /// Every status, in the order above.
    pub const ALL: [Status; 9] = [
        Status::Queued,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::TimedOut,
        Status::Cancelled,
        Status::Superseded,
        Status::Interrupted,
        Status::Skipped,
    ];

    /// The name used in the database, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::TimedOut => "timed-out",
            Status::Cancelled => "cancelled",
            Status::Superseded => "superseded",
            Status::Interrupted => "interrupted",
            Status::Skipped => "skipped",
        }
    }

    /// Reads a status name (`timed_out` and `timedout` are accepted for `timed-out`).
    pub fn parse(name: &str) -> Option<Status> {
        let name = name.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        let name = if name == "timedout" {
            "timed-out"
        } else {
            &name
        };
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the journal could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("the run journal failed: {0}")]
    Store(String),
    #[error("the run journal is closed")]
    Closed,
    #[error("run {0} is not in the journal")]
    Missing(String),
    #[error("{0}")]
    Open(String),
    /// The file is not a database, or a damaged one: a start must stop, never serve without it.
    #[error("{0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for JournalError {
    fn from(error: rusqlite::Error) -> Self {
        JournalError::Store(error.to_string())
    }
}

/// A newly accepted run.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: String,
    pub hook: String,
    pub concurrency_key: Option<String>,
    /// Answered before it finished: must be on disk before the answer.
    pub background: bool,
    /// The run this one repeats (`hookwire runs rerun`).
    pub rerun_of: Option<String>,
    pub accepted_at: SystemTime,
    pub request: Received,
}

/// How an attempt (or a run that never started) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why, when the status alone does not say (the start error, the superseding run, ...).
    pub reason: Option<String>,
    pub output: Vec<u8>,
    /// Bytes dropped from the front of `output`.
    pub truncated: u64,
}

impl RunResult {
    /// A result without a process: superseded, skipped, interrupted before starting.
    pub fn without_process(status: Status, reason: impl Into<String>) -> Self {
        Self {
            status,
            exit_code: None,
            signal: None,
            reason: Some(reason.into()),
            output: Vec::new(),
            truncated: 0,
        }
    }
}

/// What the engine tells the journal.
#[derive(Debug, Clone)]
pub enum Event {
    /// A run was accepted and waits to start.
    Accepted(Box<NewRun>),
    /// Attempt number `attempt` (1-based) starts now. Fails with [`JournalError::Missing`] when
    /// the run was never recorded.
    Started {
        id: String,
        attempt: u32,
        at: SystemTime,
        /// The node running it (`-node-name`), when several share a NATS store.
        node: Option<String>,
    },
    /// An attempt ended (or the run ended without one). With `retry_at`, the run waits again
    /// (status queued) until then; otherwise `result.status` is final.
    Ended {
        id: String,
        hook: String,
        result: RunResult,
        at: SystemTime,
        retry_at: Option<SystemTime>,
    },
}

/// Resolves when the event it belongs to is committed (on disk).
#[derive(Debug)]
pub struct Ack(Option<oneshot::Receiver<Result<(), JournalError>>>);

impl Ack {
    /// An event that needs no waiting (the journal is off).
    pub fn done() -> Self {
        Ack(None)
    }

    /// An event whose commit is reported through the returned sender.
    pub fn pending() -> (oneshot::Sender<Result<(), JournalError>>, Self) {
        let (sender, receiver) = oneshot::channel();
        (sender, Ack(Some(receiver)))
    }

    /// Waits for the commit.
    pub async fn committed(self) -> Result<(), JournalError> {
        match self.0 {
            None => Ok(()),
            Some(receiver) => receiver.await.unwrap_or(Err(JournalError::Closed)),
        }
    }
}

/// A run as stored, with its request: for recovery and reruns.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub id: String,
    pub hook: String,
    pub status: Status,
    pub attempts: u32,
    pub background: bool,
    pub next_attempt_at: Option<SystemTime>,
    pub request: Received,
    /// Why the request body could not be read back (`request.body` is then empty).
    pub body_lost: Option<String>,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub hook: Option<String>,
    /// Empty: any status.
    pub statuses: Vec<Status>,
    /// Most runs returned, newest first.
    pub limit: usize,
    /// Only runs older than this run id (ids sort by arrival): the next page.
    pub before: Option<String>,
}

/// What the history says of one hook, for the console.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HookStats {
    pub hook: String,
    /// Runs kept in the history.
    pub runs: u64,
    /// Of those, the ones that ended, and those that succeeded.
    pub ended: u64,
    pub succeeded: u64,
    /// The newest run.
    pub last: Option<RunRecord>,
}

/// A run for the history (API and CLI).
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub hook: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// Answered before it finished (a background run).
    pub background: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub accepted_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// From the start of the last attempt to its end.
    pub duration_ms: Option<u64>,
    /// Bytes of output dropped from the front.
    pub output_truncated: u64,
    /// The node that ran the last attempt, when several share a NATS store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Only for a single run: the captured output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Only for a single run: the request as received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestView>,
}

/// A stored request, for reading.
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    pub id: String,
    pub method: String,
    pub remote_addr: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Why the body could not be read back (`body` is then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_lost: Option<String>,
}

/// The journal as the engine sees it. Implementations must keep events of one run in the order
/// they were recorded.
pub trait Journal: Send + Sync + fmt::Debug {
    /// Records an event; the [`Ack`] resolves once it is durable.
    fn record(&self, event: Event) -> Ack;
    /// Records an event that need not survive a power loss (the history of a run whose client
    /// waits for its outcome): committed like the others, but without waiting for the disk.
    fn record_volatile(&self, event: Event) -> Ack {
        self.record(event)
    }
    /// Records an event that must be durable but that nobody waits for (the end of a
    /// background run): the journal may hold it back a moment to sync it with others.
    fn record_unawaited(&self, event: Event) -> Ack {
        self.record(event)
    }
    /// Runs left queued or running, oldest first, for recovery at start.
    fn unfinished(&self) -> Result<Vec<StoredRun>, JournalError>;
    /// A run with its request, for a rerun.
    fn stored(&self, id: &str) -> Result<Option<StoredRun>, JournalError>;
    /// The history, newest first.
    fn runs(&self, filter: &Filter) -> Result<Vec<RunRecord>, JournalError>;
    /// One run with its output and request.
    fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError>;
    /// Per hook: runs kept, ended and succeeded, and the newest run.
    fn hook_stats(&self) -> Result<Vec<HookStats>, JournalError>;
    /// Commits what is pending and stops writing.
    fn close(&self);
}

/// No journal (`--journal=false`): nothing is kept, nothing survives a restart.
#[derive(Debug, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn record(&self, _event: Event) -> Ack {
        Ack::done()
    }
    fn unfinished(&self) -> Result<Vec<StoredRun>, JournalError> {
        Ok(Vec::new())
    }
    fn stored(&self, _id: &str) -> Result<Option<StoredRun>, JournalError> {
        Ok(None)
    }
    fn runs(&self, _filter: &Filter) -> Result<Vec<RunRecord>, JournalError> {
        Ok(Vec::new())
    }
    fn run(&self, _id: &str) -> Result<Option<RunRecord>, JournalError> {
        Ok(None)
    }
    fn hook_stats(&self) -> Result<Vec<HookStats>, JournalError> {
        Ok(Vec::new())
    }
    fn close(&self) {}
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_millis(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

fn timestamp(millis: i64) -> String {
    humantime::format_rfc3339_millis(from_millis(millis)).to_string()
}
