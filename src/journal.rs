//! The durable store of runs: every accepted run with the request it came from (so it can be
//! planned and run again after a crash), its status, attempts, exit, times and captured output.
//!
//! [`Journal`] is the narrow interface the engine uses: append an [`Event`], list what was left
//! unfinished at start, and read the history. [`SqliteJournal`] implements it on an embedded
//! SQLite database (`hookwire.db` in the state directory; WAL, `synchronous=FULL`, so a commit is
//! on disk when it returns). All writes go through one thread that commits whatever is waiting
//! in one transaction: under load many accepted runs share one fsync (group commit). Events that
//! need not reach the disk wait up to 25 ms for company. A later backend (a distributed queue)
//! implements the same trait; nothing else changes.
//!
//! [`History`] opens the same file for reading only, for `hookwire runs`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, Row, params, params_from_iter};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::pipeline::Received;
use crate::redact;

/// The database's file name inside the state directory.
pub const FILE_NAME: &str = "hookwire.db";

/// Most events committed in one transaction.
const MAX_BATCH: usize = 4096;

/// How long a volatile event may wait before it is committed: the history of runs whose
/// client waits lags this much at most (except for this process's own reads, which flush).
const VOLATILE_LINGER: Duration = Duration::from_millis(25);

/// The schema version kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id              TEXT PRIMARY KEY,   -- the X-Hookwire-Run id (UUID v7: sorts by arrival)
    hook            TEXT NOT NULL,
    status          TEXT NOT NULL,
    concurrency_key TEXT,
    background      INTEGER NOT NULL,   -- answered before it finished
    rerun_of        TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    exit_code       INTEGER,
    signal          INTEGER,
    reason          TEXT,
    accepted_at     INTEGER NOT NULL,   -- milliseconds since the Unix epoch
    started_at      INTEGER,
    finished_at     INTEGER,
    next_attempt_at INTEGER,
    output          BLOB,
    truncated       INTEGER NOT NULL DEFAULT 0,
    request_id      TEXT NOT NULL,
    method          TEXT NOT NULL,
    remote_addr     TEXT NOT NULL,
    headers         BLOB NOT NULL,      -- 'Name: value' lines, as on the wire
    query           TEXT NOT NULL,
    body            BLOB NOT NULL,
    body_lost       TEXT                -- why `body` is empty: lost before schema 3
);
CREATE INDEX IF NOT EXISTS runs_by_hook ON runs (hook, id);
CREATE INDEX IF NOT EXISTS runs_unfinished ON runs (status) WHERE status IN ('queued', 'running');
";

/// Schema 2 kept some bodies in segment files (`bodies/<segment>.seg` in the state directory,
/// `body_length` bytes from `body_offset`); schema 3 keeps every body in its row.
const LEGACY_SEGMENT_DIR: &str = "bodies";

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

/// What the writer thread is sent.
enum Job {
    /// An event, who waits for its commit, and whether the commit must reach the disk.
    Record {
        event: Event,
        ack: oneshot::Sender<Result<(), JournalError>>,
        durable: bool,
    },
    /// Answered once everything sent before it is committed: reads see what was recorded.
    Flush(mpsc::SyncSender<()>),
}

impl Job {
    /// Whether the writer must commit it without lingering.
    fn is_urgent(&self) -> bool {
        !matches!(self, Job::Record { durable: false, .. })
    }
}

/// The SQLite journal: one writer thread with group commit, one connection for reads.
#[derive(Debug)]
pub struct SqliteJournal {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The writer, to unpark when an urgent job is sent while it lingers.
    writer_thread: std::thread::Thread,
    reader: Mutex<Connection>,
}

impl SqliteJournal {
    /// Opens (or creates) `hookwire.db` in `state_dir` ([`prepare_database`]). `keep_runs`
    /// finished runs are kept per hook.
    pub fn open(state_dir: &Path, keep_runs: usize) -> Result<Self, JournalError> {
        let path = state_dir.join(FILE_NAME);
        let fail = |what: &str, error: &dyn fmt::Display| {
            JournalError::Open(format!(
                "cannot {what} the run journal {}: {error} (choose a writable directory with -state-dir)",
                path.display()
            ))
        };
        prepare_database(state_dir).map_err(|error| fail("set up", &error))?;
        let sql_fail = |what: &str, error: rusqlite::Error| {
            if is_corrupt(&error) {
                corrupt(&path, &error)
            } else {
                fail(what, &error)
            }
        };
        let mut writer = Connection::open(&path).map_err(|error| sql_fail("open", error))?;
        // temp_store: the temporary tables a statement may need stay in memory rather than
        // costing a commit a temporary file.
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;
                 PRAGMA temp_store = MEMORY;",
            )
            .map_err(|error| sql_fail("configure", error))?;
        migrate(&mut writer, state_dir).map_err(|error| sql_fail("set up", error))?;
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| c.execute_batch("PRAGMA busy_timeout = 5000;").map(|()| c))
        .map_err(|error| sql_fail("open", error))?;
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("hookwire-journal".into())
            .spawn(move || write_loop(writer, &receiver, Retention::new(keep_runs)))
            .map_err(|error| fail("start the writer of", &error))?;
        Ok(Self {
            path,
            sender: Mutex::new(Some(sender)),
            writer_thread: thread.thread().clone(),
            writer: Mutex::new(Some(thread)),
            reader: Mutex::new(reader),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queries the database once everything recorded so far is committed.
    fn read<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let (flushed, flush) = mpsc::sync_channel(1);
        if self.enqueue(Job::Flush(flushed)) {
            // An error means the writer stopped, after committing what it had.
            let _ = flush.recv();
        }
        let connection = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(query(&connection)?)
    }
}

impl SqliteJournal {
    fn enqueue(&self, job: Job) -> bool {
        let urgent = job.is_urgent();
        let sent = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|sender| sender.send(job).is_ok());
        if sent && urgent {
            self.writer_thread.unpark();
        }
        sent
    }

    fn send(&self, event: Event, durable: bool) -> Ack {
        let (ack, receiver) = oneshot::channel();
        if self.enqueue(Job::Record {
            event,
            ack,
            durable,
        }) {
            Ack(Some(receiver))
        } else {
            let (ack, receiver) = oneshot::channel();
            let _ = ack.send(Err(JournalError::Closed));
            Ack(Some(receiver))
        }
    }
}

impl Journal for SqliteJournal {
    fn record(&self, event: Event) -> Ack {
        self.send(event, true)
    }

    fn record_volatile(&self, event: Event) -> Ack {
        self.send(event, false)
    }

    fn unfinished(&self) -> Result<Vec<StoredRun>, JournalError> {
        self.read(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {STORED_COLUMNS} FROM runs WHERE status IN ('queued', 'running') ORDER BY id"
            ))?;
            statement
                .query_map([], stored_run)?
                .collect()
        })
    }

    fn stored(&self, id: &str) -> Result<Option<StoredRun>, JournalError> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {STORED_COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                stored_run,
            )
            .optional()
        })
    }

    fn runs(&self, filter: &Filter) -> Result<Vec<RunRecord>, JournalError> {
        self.read(|c| query_runs(c, filter))
    }

    fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError> {
        self.read(|c| query_run(c, id, STORED_COLUMNS))
    }

    fn hook_stats(&self) -> Result<Vec<HookStats>, JournalError> {
        self.read(query_hook_stats)
    }

    fn close(&self) {
        // Dropping the sender ends the writer once it has committed what was sent.
        drop(
            self.sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        self.writer_thread.unpark();
        if let Some(thread) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            && thread.join().is_err()
        {
            tracing::error!("the journal writer panicked");
        }
    }
}

impl Drop for SqliteJournal {
    fn drop(&mut self) {
        self.close();
    }
}

/// Read-only access to a journal file, for `hookwire runs`.
#[derive(Debug)]
pub struct History {
    connection: Connection,
    /// The request columns this file has (it is not migrated by a reader).
    stored_columns: &'static str,
}

impl History {
    /// Opens `hookwire.db` in `state_dir`; it must exist.
    pub fn open(state_dir: &Path) -> Result<Self, JournalError> {
        let path = state_dir.join(FILE_NAME);
        if !path.exists() {
            return Err(JournalError::Open(format!(
                "no run journal at {} (pass the server's -state-dir, or run this from the server's working directory)",
                path.display()
            )));
        }
        let connection = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.execute_batch("PRAGMA busy_timeout = 5000;").map(|()| c))
            .map_err(|error| {
                JournalError::Open(format!("cannot open {}: {error}", path.display()))
            })?;
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|error| {
                if is_corrupt(&error) {
                    corrupt(&path, &error)
                } else {
                    JournalError::Open(format!("cannot read {}: {error}", path.display()))
                }
            })?;
        let stored_columns = match version {
            ..=1 => STORED_COLUMNS_V1,
            2 => STORED_COLUMNS_V2,
            _ => STORED_COLUMNS,
        };
        Ok(Self {
            connection,
            stored_columns,
        })
    }

    /// The history, newest first.
    pub fn runs(&self, filter: &Filter) -> Result<Vec<RunRecord>, JournalError> {
        Ok(query_runs(&self.connection, filter)?)
    }

    /// One run with its output and request.
    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError> {
        Ok(query_run(&self.connection, id, self.stored_columns)?)
    }
}

/// Sets up the state directory and its database file (`hookwire.db`, shared by the run journal
/// and the dedupe table) for the owner only: the directory, when missing, is created with mode
/// 0700; the file is created with mode 0600 before SQLite opens it, so it is never readable by
/// others, not even briefly (SQLite gives its -wal and -shm files the same mode). An existing
/// file readable by others is made 0600: it holds request bodies. Returns the file's path.
pub fn prepare_database(state_dir: &Path) -> std::io::Result<PathBuf> {
    let path = state_dir.join(FILE_NAME);
    let context = |what: String| {
        move |error: std::io::Error| std::io::Error::new(error.kind(), format!("{what}: {error}"))
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(context(format!("cannot create {}", state_dir.display())))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(context(format!("cannot create {}", path.display())))?;
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(context(format!("cannot chmod 600 {}", path.display())))?;
        tracing::warn!(
            "{} was readable by others (mode {mode:o}); it holds request bodies: made it 0600",
            path.display()
        );
    }
    Ok(path)
}

/// SQLite found the file is not a database, or a damaged one.
fn is_corrupt(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

/// Says the journal at `path` is corrupt, and how to get going again.
fn corrupt(path: &Path, error: &dyn fmt::Display) -> JournalError {
    let path = path.display();
    JournalError::Corrupt(format!(
        "the run journal {path} is corrupt ({error}). To recover what it holds, stop hookwire and run \
         `sqlite3 {path} .recover | sqlite3 {path}.recovered`, then move {path}.recovered to {path}; \
         or move {path} (and its -wal and -shm files) aside to start with an empty journal"
    ))
}

fn migrate(connection: &mut Connection, state_dir: &Path) -> rusqlite::Result<()> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the journal was written by a newer hookwire (schema {version}, this one knows {SCHEMA_VERSION})"
        )));
    }
    // Nothing to write: a start does not wait for the disk.
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    // One transaction, one sync.
    let transaction = connection.transaction()?;
    match version {
        0 => transaction.execute_batch(SCHEMA)?,
        1 => transaction.execute_batch("ALTER TABLE runs ADD COLUMN body_lost TEXT;")?,
        _ => move_segment_bodies_into_rows(&transaction, state_dir)?,
    }
    transaction.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
    transaction.commit()?;
    if version == 2 {
        let segments = state_dir.join(LEGACY_SEGMENT_DIR);
        match std::fs::remove_dir_all(&segments) {
            Ok(()) => tracing::info!(
                "journal: request bodies moved from {} into {FILE_NAME}",
                segments.display()
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(
                "journal: cannot delete {} (its bodies are in {FILE_NAME} now): {error}",
                segments.display()
            ),
        }
    }
    Ok(())
}

/// Schema 2 to 3: reads each body kept in a segment file into its row, once. A body that cannot
/// be read back (a power cut lost it, the file is gone) leaves its row with an empty body and
/// `body_lost` saying why: the history shows it, and recovery skips such a run with that reason
/// rather than run it with an empty body.
fn move_segment_bodies_into_rows(
    transaction: &rusqlite::Transaction<'_>,
    state_dir: &Path,
) -> rusqlite::Result<()> {
    transaction.execute_batch("ALTER TABLE runs ADD COLUMN body_lost TEXT;")?;
    let stored: Vec<(String, u64, u64, u64)> = transaction
        .prepare(
            "SELECT id, body_segment, body_offset, body_length FROM runs
             WHERE body_segment IS NOT NULL",
        )?
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut update =
        transaction.prepare("UPDATE runs SET body = ?2, body_lost = ?3 WHERE id = ?1")?;
    for (id, segment, offset, length) in stored {
        let path = state_dir
            .join(LEGACY_SEGMENT_DIR)
            .join(format!("{segment:010}.seg"));
        match read_segment(&path, offset, length) {
            Ok(body) => update.execute(params![id, body, None::<String>])?,
            Err(error) => {
                let lost = format!(
                    "the stored request body is lost ({}: {error})",
                    path.display()
                );
                tracing::warn!("journal: run {id}: {lost}");
                update.execute(params![id, Vec::<u8>::new(), lost])?
            }
        };
    }
    transaction.execute_batch(
        "ALTER TABLE runs DROP COLUMN body_segment;
         ALTER TABLE runs DROP COLUMN body_offset;
         ALTER TABLE runs DROP COLUMN body_length;",
    )
}

/// `length` bytes at `offset` in a schema 2 segment file.
fn read_segment(path: &Path, offset: u64, length: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut body = Vec::new();
    file.take(length).read_to_end(&mut body)?;
    if body.len() as u64 != length {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{} of {length} bytes left", body.len()),
        ));
    }
    Ok(body)
}

/// The writer thread: takes what is waiting, commits it in one transaction, acknowledges.
/// Volatile events linger up to [`VOLATILE_LINGER`] for company, so that a waiting run's accept,
/// start and end mostly share one transaction.
fn write_loop(
    mut connection: Connection,
    receiver: &mpsc::Receiver<Job>,
    mut retention: Retention,
) {
    // The connection opens with synchronous=FULL.
    let mut synced = true;
    while let Ok(first) = receiver.recv() {
        let linger_until = Instant::now() + VOLATILE_LINGER;
        let mut batch = vec![first];
        loop {
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let left = linger_until.saturating_duration_since(Instant::now());
            if batch.len() >= MAX_BATCH || left.is_zero() || batch.iter().any(Job::is_urgent) {
                break;
            }
            // Parked rather than blocked in the channel, so volatile events do not wake the
            // thread one by one; an urgent job unparks it.
            std::thread::park_timeout(left);
        }
        let mut records = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for job in batch {
            match job {
                Job::Record {
                    event,
                    ack,
                    durable,
                } => records.push((event, ack, durable)),
                Job::Flush(flushed) => flushes.push(flushed),
            }
        }
        // In WAL mode, `synchronous=NORMAL` commits without an fsync; a later FULL commit
        // makes everything before it durable too.
        let durable = records.iter().any(|(_, _, durable)| *durable);
        if !records.is_empty() && durable != synced {
            let mode = if durable { "FULL" } else { "NORMAL" };
            match connection.execute_batch(&format!("PRAGMA synchronous = {mode}")) {
                Ok(()) => synced = durable,
                Err(error) => tracing::warn!("cannot set the journal's synchronous mode: {error}"),
            }
        }
        let events: Vec<&Event> = records.iter().map(|(event, _, _)| event).collect();
        let results = commit(&mut connection, &events, &mut retention);
        for ((_, ack, _), result) in records.into_iter().zip(results) {
            let _ = ack.send(result);
        }
        for flushed in flushes {
            let _ = flushed.send(());
        }
    }
    // A clean stop leaves no -wal file behind.
    if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::debug!("journal checkpoint at close: {error}");
    }
}

/// Writes `batch` in one transaction. All of it is committed or none of it: a failed write
/// (a full disk) fails every event of the batch, so none is reported stored while it is not.
/// Only a start of a run never recorded fails alone.
fn commit(
    connection: &mut Connection,
    batch: &[&Event],
    retention: &mut Retention,
) -> Vec<Result<(), JournalError>> {
    if batch.is_empty() {
        return Vec::new();
    }
    let failed = |error: JournalError| {
        tracing::error!("cannot write the run journal: {error}");
        vec![Err(error); batch.len()]
    };
    let transaction = match connection.transaction() {
        Ok(transaction) => transaction,
        Err(error) => return failed(error.into()),
    };
    let mut results = Vec::with_capacity(batch.len());
    for event in batch {
        match write(&transaction, event) {
            Err(JournalError::Missing(id)) => results.push(Err(JournalError::Missing(id))),
            // Dropping the transaction rolls back what this batch wrote.
            Err(error) => return failed(error),
            Ok(()) => results.push(Ok(())),
        }
    }
    let ended_hooks = batch.iter().filter_map(|event| match event {
        Event::Ended { hook, .. } => Some(hook.as_str()),
        _ => None,
    });
    for hook in retention.due(ended_hooks) {
        if let Err(error) = prune(&transaction, &hook, retention.keep) {
            tracing::warn!("cannot prune the history of {hook}: {error}");
        }
    }
    match transaction.commit() {
        Ok(()) => results,
        Err(error) => failed(error.into()),
    }
}

/// Writes a new run's row, or the start or end of a recorded run.
fn write(transaction: &rusqlite::Transaction<'_>, event: &Event) -> Result<(), JournalError> {
    match event {
        Event::Accepted(run) => {
            let request = &run.request;
            transaction
                .prepare_cached(
                    "INSERT INTO runs (id, hook, status, concurrency_key, background, rerun_of,
                     accepted_at, request_id, method, remote_addr, headers, query, body)
                     VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    run.id,
                    run.hook,
                    run.concurrency_key,
                    run.background,
                    run.rerun_of,
                    millis(run.accepted_at),
                    request.id,
                    request.method,
                    request.remote_addr.to_string(),
                    encode_headers(&request.headers),
                    request.query,
                    &request.body[..],
                ])?;
        }
        Event::Started { id, attempt, at } => {
            let changed = transaction
                .prepare_cached(
                    "UPDATE runs SET status = 'running', attempts = ?2, started_at = ?3,
                     finished_at = NULL, next_attempt_at = NULL WHERE id = ?1",
                )?
                .execute(params![id, attempt, millis(*at)])?;
            if changed == 0 {
                return Err(JournalError::Missing(id.clone()));
            }
        }
        Event::Ended {
            id,
            result,
            at,
            retry_at,
            ..
        } => {
            let status = status_after(result, *retry_at);
            transaction
                .prepare_cached(
                    "UPDATE runs SET status = ?2, exit_code = ?3, signal = ?4, reason = ?5,
                     output = ?6, truncated = ?7, finished_at = ?8, next_attempt_at = ?9
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    status.as_str(),
                    result.exit_code,
                    result.signal,
                    result.reason,
                    stored_output(result),
                    i64::try_from(result.truncated).unwrap_or(i64::MAX),
                    millis(*at),
                    retry_at.map(millis),
                ])?;
        }
    }
    Ok(())
}

/// A run's status once an attempt ended: waiting again when a retry is scheduled.
fn status_after(result: &RunResult, retry_at: Option<SystemTime>) -> Status {
    if retry_at.is_some() {
        Status::Queued
    } else {
        result.status
    }
}

/// The output as stored: a line saying what was dropped, then the tail.
fn stored_output(result: &RunResult) -> Vec<u8> {
    if result.truncated == 0 {
        return result.output.clone();
    }
    let mut output = format!(
        "[hookwire: output truncated, the first {} bytes were dropped]\n",
        result.truncated
    )
    .into_bytes();
    output.extend_from_slice(&result.output);
    output
}

/// When to prune each hook's history: every `step` ended runs, so deleting old rows (which
/// touches old pages) is paid once per step rather than in every commit. A hook's history holds
/// between `keep` and `keep + step - 1` runs.
#[derive(Debug)]
struct Retention {
    keep: usize,
    step: usize,
    ended: HashMap<String, usize>,
}

impl Retention {
    fn new(keep: usize) -> Self {
        let keep = keep.max(1);
        Self {
            keep,
            step: (keep / 4).clamp(1, 64),
            ended: HashMap::new(),
        }
    }

    /// Counts the ended runs of a commit; returns the hooks whose history is due for pruning.
    fn due<'h>(&mut self, ended: impl IntoIterator<Item = &'h str>) -> BTreeSet<String> {
        let mut due = BTreeSet::new();
        for hook in ended {
            let count = self.ended.entry(hook.to_owned()).or_default();
            *count += 1;
            if *count >= self.step {
                *count = 0;
                due.insert(hook.to_owned());
            }
        }
        due
    }
}

/// Keeps the newest `keep` runs of `hook`; waiting and running ones are never removed.
fn prune(transaction: &rusqlite::Transaction<'_>, hook: &str, keep: usize) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            // Older than the `keep`-th newest: a range of the (hook, id) index, no temporary
            // table of the kept ids.
            "DELETE FROM runs WHERE hook = ?1 AND status NOT IN ('queued', 'running')
             AND id < (SELECT id FROM runs WHERE hook = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2 - 1)",
        )?
        .execute(params![hook, i64::try_from(keep).unwrap_or(i64::MAX)])?;
    Ok(())
}

const SUMMARY_COLUMNS: &str = "id, hook, status, concurrency_key, background, rerun_of, attempts,
    exit_code, signal, reason, accepted_at, started_at, finished_at, next_attempt_at, truncated";

const STORED_COLUMNS: &str = "id, hook, status, attempts, background, next_attempt_at,
    request_id, method, remote_addr, headers, query, body, body_lost";

/// The same, from a file of schema 1 that no server has upgraded yet.
const STORED_COLUMNS_V1: &str = "id, hook, status, attempts, background, next_attempt_at,
    request_id, method, remote_addr, headers, query, body, NULL";

/// The same, from a file of schema 2 that no server has upgraded yet: a body in a segment file
/// is read into its row by the server's next start, not by a reader.
const STORED_COLUMNS_V2: &str = "id, hook, status, attempts, background, next_attempt_at,
    request_id, method, remote_addr, headers, query, body,
    CASE WHEN body_segment IS NOT NULL THEN 'the request body is in bodies/ beside the journal; \
    start hookwire once on this -state-dir to move it into the journal' END";

fn query_runs(connection: &Connection, filter: &Filter) -> rusqlite::Result<Vec<RunRecord>> {
    let mut conditions = Vec::new();
    let mut values: Vec<String> = Vec::new();
    if let Some(hook) = &filter.hook {
        values.push(hook.clone());
        conditions.push(format!("hook = ?{}", values.len()));
    }
    if let Some(before) = &filter.before {
        values.push(before.clone());
        conditions.push(format!("id < ?{}", values.len()));
    }
    if !filter.statuses.is_empty() {
        let placeholders: Vec<String> = filter
            .statuses
            .iter()
            .map(|status| {
                values.push(status.as_str().to_owned());
                format!("?{}", values.len())
            })
            .collect();
        conditions.push(format!("status IN ({})", placeholders.join(", ")));
    }
    let condition = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let mut statement = connection.prepare(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM runs {condition} ORDER BY id DESC LIMIT {limit}"
    ))?;
    statement
        .query_map(params_from_iter(values), summary)?
        .collect()
}

fn query_hook_stats(connection: &Connection) -> rusqlite::Result<Vec<HookStats>> {
    let mut statement = connection.prepare(
        "SELECT hook, COUNT(*),
                SUM(status NOT IN ('queued', 'running')),
                SUM(status = 'succeeded'),
                MAX(id)
         FROM runs GROUP BY hook ORDER BY hook",
    )?;
    let rows: Vec<(HookStats, String)> = statement
        .query_map([], |row| {
            Ok((
                HookStats {
                    hook: row.get(0)?,
                    runs: row.get(1)?,
                    ended: row.get(2)?,
                    succeeded: row.get(3)?,
                    last: None,
                },
                row.get(4)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut last =
        connection.prepare(&format!("SELECT {SUMMARY_COLUMNS} FROM runs WHERE id = ?1"))?;
    rows.into_iter()
        .map(|(mut stats, newest)| {
            stats.last = last.query_row([newest], summary).optional()?;
            Ok(stats)
        })
        .collect()
}

fn query_run(
    connection: &Connection,
    id: &str,
    stored_columns: &str,
) -> rusqlite::Result<Option<RunRecord>> {
    connection
        .query_row(
            &format!("SELECT {SUMMARY_COLUMNS}, output, {stored_columns} FROM runs WHERE id = ?1"),
            [id],
            |row| {
                let mut record = summary(row)?;
                let output: Option<Vec<u8>> = row.get(15)?;
                record.output =
                    Some(String::from_utf8_lossy(&output.unwrap_or_default()).into_owned());
                let (request, body_lost) = stored_request(row, 16 + 6)?;
                // Shown, not replayed: credentials are masked (a rerun reads `stored`).
                record.request = Some(RequestView {
                    id: request.id,
                    method: request.method,
                    remote_addr: request.remote_addr.to_string(),
                    query: redact::query(&request.query),
                    headers: request
                        .headers
                        .iter()
                        .map(|(name, value)| {
                            let value = String::from_utf8_lossy(value.as_bytes());
                            (
                                name.as_str().to_owned(),
                                redact::header_value(name.as_str(), &value).into_owned(),
                            )
                        })
                        .collect(),
                    body: String::from_utf8_lossy(&request.body).into_owned(),
                    body_lost,
                });
                Ok(record)
            },
        )
        .optional()
}

fn summary(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = row.get(2)?;
    let accepted_at: i64 = row.get(10)?;
    let started_at: Option<i64> = row.get(11)?;
    let finished_at: Option<i64> = row.get(12)?;
    let truncated: i64 = row.get(14)?;
    Ok(RunRecord {
        id: row.get(0)?,
        hook: row.get(1)?,
        status: Status::parse(&status).unwrap_or(Status::Failed),
        concurrency_key: row.get(3)?,
        background: row.get(4)?,
        rerun_of: row.get(5)?,
        attempts: row.get(6)?,
        exit_code: row.get(7)?,
        signal: row.get(8)?,
        reason: row.get(9)?,
        accepted_at: timestamp(accepted_at),
        started_at: started_at.map(timestamp),
        finished_at: finished_at.map(timestamp),
        next_attempt_at: row.get::<_, Option<i64>>(13)?.map(timestamp),
        duration_ms: started_at
            .zip(finished_at)
            .and_then(|(start, end)| u64::try_from(end - start).ok()),
        output_truncated: u64::try_from(truncated).unwrap_or(0),
        output: None,
        request: None,
    })
}

fn stored_run(row: &Row<'_>) -> rusqlite::Result<StoredRun> {
    let status: String = row.get(2)?;
    let (request, body_lost) = stored_request(row, 6)?;
    Ok(StoredRun {
        id: row.get(0)?,
        hook: row.get(1)?,
        status: Status::parse(&status).unwrap_or(Status::Queued),
        attempts: row.get(3)?,
        background: row.get(4)?,
        next_attempt_at: row.get::<_, Option<i64>>(5)?.map(from_millis),
        request,
        body_lost,
    })
}

/// The request columns, starting at column `first`, and why its body is missing, if it is.
fn stored_request(row: &Row<'_>, first: usize) -> rusqlite::Result<(Received, Option<String>)> {
    let remote: String = row.get(first + 2)?;
    let headers: Vec<u8> = row.get(first + 3)?;
    let body: Vec<u8> = row.get(first + 5)?;
    let body_lost: Option<String> = row.get(first + 6)?;
    let request = Received {
        id: row.get(first)?,
        method: row.get(first + 1)?,
        remote_addr: remote
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
        headers: decode_headers(&headers),
        query: row.get(first + 4)?,
        body: Bytes::from(body),
    };
    Ok((request, body_lost))
}

/// Headers as `Name: value` lines: exact (values are bytes) and readable in the `sqlite3` shell.
fn encode_headers(headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn decode_headers(bytes: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in bytes.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    headers
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

#[cfg(test)]
mod tests {
    use super::*;

    fn received(body: &str) -> Received {
        let mut headers = HeaderMap::new();
        headers.insert("x-event", HeaderValue::from_static("push"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_bytes(b"b\xff").unwrap());
        Received {
            id: "abc123".into(),
            method: "POST".into(),
            remote_addr: "127.0.0.1:4321".parse().unwrap(),
            headers,
            query: "a=1&b=2".into(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn accept(journal: &SqliteJournal, id: &str, hook: &str) -> Ack {
        journal.record(Event::Accepted(Box::new(NewRun {
            id: id.into(),
            hook: hook.into(),
            concurrency_key: Some("main".into()),
            background: true,
            rerun_of: None,
            accepted_at: SystemTime::now(),
            request: received("{\"x\":1}"),
        })))
    }

    fn ended(id: &str, hook: &str, status: Status) -> Event {
        Event::Ended {
            id: id.into(),
            hook: hook.into(),
            result: RunResult {
                status,
                exit_code: Some(0),
                signal: None,
                reason: None,
                output: b"tail".to_vec(),
                truncated: 10,
            },
            at: SystemTime::now(),
            retry_at: None,
        }
    }

    #[tokio::test]
    async fn runs_survive_a_reopen_with_their_request() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        {
            let journal = SqliteJournal::open(&state, 100).unwrap();
            accept(&journal, "r1", "deploy").committed().await.unwrap();
            accept(&journal, "r2", "deploy").committed().await.unwrap();
            journal
                .record(Event::Started {
                    id: "r1".into(),
                    attempt: 1,
                    at: SystemTime::now(),
                })
                .committed()
                .await
                .unwrap();
            journal.close();
        }
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join(FILE_NAME)), 0o600);

        let journal = SqliteJournal::open(&state, 100).unwrap();
        let unfinished = journal.unfinished().unwrap();
        assert_eq!(unfinished.len(), 2);
        assert_eq!(
            (unfinished[0].status, unfinished[0].attempts),
            (Status::Running, 1)
        );
        assert_eq!(unfinished[1].status, Status::Queued);
        let (got, sent) = (&unfinished[1].request, received("{\"x\":1}"));
        assert_eq!(
            (
                &got.id,
                &got.method,
                got.remote_addr,
                &got.headers,
                &got.query,
                &got.body
            ),
            (
                &sent.id,
                &sent.method,
                sent.remote_addr,
                &sent.headers,
                &sent.query,
                &sent.body
            )
        );
    }

    /// The events of a waiting run with one retry, at fixed times.
    fn retried_run(id: &str) -> Vec<Event> {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms);
        let mut first_end = ended(id, "deploy", Status::Failed);
        if let Event::Ended {
            at: end, retry_at, ..
        } = &mut first_end
        {
            (*end, *retry_at) = (at(20), Some(at(1000)));
        }
        let mut last_end = ended(id, "deploy", Status::Succeeded);
        if let Event::Ended { at: end, .. } = &mut last_end {
            *end = at(1100);
        }
        vec![
            Event::Accepted(Box::new(NewRun {
                id: id.into(),
                hook: "deploy".into(),
                concurrency_key: None,
                background: false,
                rerun_of: None,
                accepted_at: at(0),
                request: received("{\"x\":1}"),
            })),
            Event::Started {
                id: id.into(),
                attempt: 1,
                at: at(5),
            },
            first_end,
            Event::Started {
                id: id.into(),
                attempt: 2,
                at: at(1001),
            },
            last_end,
        ]
    }

    /// The stored run as JSON, without its id.
    fn stored_json(journal: &SqliteJournal, id: &str) -> serde_json::Value {
        let mut run = serde_json::to_value(journal.run(id).unwrap().unwrap()).unwrap();
        run.as_object_mut().unwrap().remove("id");
        run
    }

    #[tokio::test]
    async fn events_of_a_run_in_one_batch_store_what_events_committed_one_by_one_store() {
        let dir = tempfile::tempdir().unwrap();
        let journal = SqliteJournal::open(dir.path(), 100).unwrap();
        for event in retried_run("apart") {
            journal.record(event).committed().await.unwrap();
        }
        // Volatile events sent together share a batch.
        let acks: Vec<Ack> = retried_run("batched")
            .into_iter()
            .map(|event| journal.record_volatile(event))
            .collect();
        for ack in acks {
            ack.committed().await.unwrap();
        }
        let batched = stored_json(&journal, "batched");
        assert_eq!(batched, stored_json(&journal, "apart"));
        assert_eq!(
            (&batched["status"], &batched["attempts"], &batched["output"]),
            (
                &serde_json::json!("succeeded"),
                &serde_json::json!(2),
                &serde_json::json!(
                    "[hookwire: output truncated, the first 10 bytes were dropped]\ntail"
                )
            )
        );
        assert_eq!(batched["duration_ms"], serde_json::json!(99));
    }

    /// A write that fails (here a second row with the same id; in production a full disk) fails
    /// the whole batch: no event of it is reported stored, and none is.
    #[test]
    fn a_failed_write_fails_its_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteJournal::open(dir.path(), 100).unwrap());
        let mut connection = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        let mut retention = Retention::new(100);
        let first = new_run("first", "deploy", 10, true);
        let results = commit(&mut connection, &[&first], &mut retention);
        assert_eq!(results, [Ok(())]);
        let other = new_run("other", "deploy", 10, true);
        let start_of_unknown = Event::Started {
            id: "unknown".into(),
            attempt: 1,
            at: SystemTime::now(),
        };
        let batch = [&other, &start_of_unknown, &first];
        let results = commit(&mut connection, &batch, &mut retention);
        assert!(results.iter().all(Result::is_err), "{results:?}");
        let ids: Vec<String> = connection
            .prepare("SELECT id FROM runs")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ids, ["first"]);
        // A start of a run never recorded fails alone.
        let results = commit(
            &mut connection,
            &[&start_of_unknown, &other],
            &mut retention,
        );
        assert_eq!(
            results,
            [Err(JournalError::Missing("unknown".into())), Ok(())]
        );
    }

    #[tokio::test]
    async fn reads_see_volatile_events_at_once_and_other_readers_soon() {
        let dir = tempfile::tempdir().unwrap();
        let journal = SqliteJournal::open(dir.path(), 100).unwrap();
        let [accepted, ..] = <[Event; 5]>::try_from(retried_run("w1")).unwrap();
        // Not awaited: the read itself must wait for the commit.
        let _ack = journal.record_volatile(accepted);
        let run = journal
            .run("w1")
            .unwrap()
            .expect("the run, read through the journal");
        assert_eq!(run.status, Status::Queued);

        let _ack = journal.record_volatile(ended("w1", "deploy", Status::Succeeded));
        let history = History::open(dir.path()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while history.run("w1").unwrap().unwrap().status != Status::Succeeded {
            assert!(Instant::now() < deadline, "the end never reached the file");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[tokio::test]
    async fn a_start_of_an_unrecorded_run_fails() {
        let dir = tempfile::tempdir().unwrap();
        let journal = SqliteJournal::open(dir.path(), 100).unwrap();
        let result = journal
            .record(Event::Started {
                id: "nope".into(),
                attempt: 1,
                at: SystemTime::now(),
            })
            .committed()
            .await;
        assert_eq!(result, Err(JournalError::Missing("nope".into())));
    }

    #[tokio::test]
    async fn history_filters_and_retention() {
        let dir = tempfile::tempdir().unwrap();
        let journal = SqliteJournal::open(dir.path(), 3).unwrap();
        let mut acks = Vec::new();
        for n in 0..5 {
            let id = format!("a{n}");
            acks.push(accept(&journal, &id, "a"));
            acks.push(journal.record(ended(&id, "a", Status::Succeeded)));
        }
        acks.push(accept(&journal, "b0", "b"));
        acks.push(accept(&journal, "b1", "b"));
        acks.push(journal.record(ended("b1", "b", Status::TimedOut)));
        // A waiting run is kept however old; it still counts among the newest.
        acks.push(accept(&journal, "c0", "c"));
        for n in 1..5 {
            let id = format!("c{n}");
            acks.push(accept(&journal, &id, "c"));
            acks.push(journal.record(ended(&id, "c", Status::Failed)));
        }
        for ack in acks {
            ack.committed().await.unwrap();
        }
        let kept: Vec<_> = journal
            .runs(&Filter {
                hook: Some("c".into()),
                limit: 100,
                ..Filter::default()
            })
            .unwrap()
            .into_iter()
            .map(|run| run.id)
            .collect();
        assert_eq!(kept, ["c4", "c3", "c2", "c0"]);
        let all = journal
            .runs(&Filter {
                limit: 100,
                ..Filter::default()
            })
            .unwrap();
        let ids: Vec<_> = all.iter().map(|r| r.id.as_str()).collect();
        // Only the newest 3 of `a` are kept; `b0` is queued and would be kept anyway.
        assert_eq!(ids, ["c4", "c3", "c2", "c0", "b1", "b0", "a4", "a3", "a2"]);
        let next_page: Vec<_> = journal
            .runs(&Filter {
                limit: 3,
                before: Some("b1".into()),
                ..Filter::default()
            })
            .unwrap()
            .into_iter()
            .map(|run| run.id)
            .collect();
        assert_eq!(next_page, ["b0", "a4", "a3"]);
        let stats = journal.hook_stats().unwrap();
        let hooks: Vec<_> = stats
            .iter()
            .map(|s| {
                (
                    s.hook.as_str(),
                    s.runs,
                    s.last.as_ref().map(|r| r.id.as_str()),
                )
            })
            .collect();
        assert_eq!(
            hooks,
            [
                ("a", 3, Some("a4")),
                ("b", 2, Some("b1")),
                ("c", 4, Some("c4"))
            ]
        );
        let timed_out = journal
            .runs(&Filter {
                hook: Some("b".into()),
                statuses: vec![Status::TimedOut],
                limit: 10,
                before: None,
            })
            .unwrap();
        assert_eq!(timed_out.len(), 1);
        assert_eq!(timed_out[0].output_truncated, 10);
        let one = journal.run("b1").unwrap().unwrap();
        assert_eq!(
            one.output.as_deref(),
            Some("[hookwire: output truncated, the first 10 bytes were dropped]\ntail")
        );
        let request = one.request.unwrap();
        assert_eq!(request.body, "{\"x\":1}");
        assert!(
            request
                .headers
                .contains(&("x-multi".into(), "b\u{fffd}".into()))
        );
        assert!(journal.run("zzz").unwrap().is_none());
        let json = serde_json::to_string(&one.status).unwrap();
        assert_eq!(json, "\"timed-out\"");
        journal.close();
        let history = History::open(dir.path()).unwrap();
        assert_eq!(
            history
                .runs(&Filter {
                    limit: 2,
                    ..Filter::default()
                })
                .unwrap()
                .len(),
            2
        );
    }

    /// A run with a body of `size` bytes, waiting (`background: false`) or not.
    fn new_run(id: &str, hook: &str, size: usize, background: bool) -> Event {
        let mut request = received("");
        request.body = Bytes::from(vec![b'a' + (id.len() % 26) as u8; size]);
        Event::Accepted(Box::new(NewRun {
            id: id.into(),
            hook: hook.into(),
            concurrency_key: None,
            background,
            rerun_of: None,
            accepted_at: SystemTime::now(),
            request,
        }))
    }

    /// The schema 2 table: bodies above 2 KiB of runs whose client waited were in segment files.
    const SCHEMA_2: &str = "
        CREATE TABLE runs (
            id TEXT PRIMARY KEY, hook TEXT NOT NULL, status TEXT NOT NULL, concurrency_key TEXT,
            background INTEGER NOT NULL, rerun_of TEXT, attempts INTEGER NOT NULL DEFAULT 0,
            exit_code INTEGER, signal INTEGER, reason TEXT, accepted_at INTEGER NOT NULL,
            started_at INTEGER, finished_at INTEGER, next_attempt_at INTEGER, output BLOB,
            truncated INTEGER NOT NULL DEFAULT 0, request_id TEXT NOT NULL, method TEXT NOT NULL,
            remote_addr TEXT NOT NULL, headers BLOB NOT NULL, query TEXT NOT NULL,
            body BLOB NOT NULL, body_segment INTEGER, body_offset INTEGER, body_length INTEGER
        );
        PRAGMA user_version = 2;";

    /// A run of an old journal: id, status, body in the row, and (segment, offset, length).
    type OldRun<'a> = (&'a str, &'a str, &'a str, Option<(u64, u64, u64)>);

    /// Writes a schema `version` journal (1 or 2) with these runs.
    fn old_journal(dir: &Path, version: i64, runs: &[OldRun<'_>]) {
        let connection = Connection::open(dir.join(FILE_NAME)).unwrap();
        connection.execute_batch(SCHEMA_2).unwrap();
        for (id, status, body, segment) in runs {
            connection
                .execute(
                    "INSERT INTO runs (id, hook, status, background, accepted_at, request_id,
                     method, remote_addr, headers, query, body, body_segment, body_offset,
                     body_length)
                     VALUES (?1, 'deploy', ?2, 0, 0, 'q', 'POST', '127.0.0.1:1', X'', '',
                     CAST(?3 AS BLOB), ?4, ?5, ?6)",
                    params![
                        id,
                        status,
                        body,
                        segment.map(|s| s.0),
                        segment.map(|s| s.1),
                        segment.map(|s| s.2)
                    ],
                )
                .unwrap();
        }
        if version == 1 {
            connection
                .execute_batch(
                    "ALTER TABLE runs DROP COLUMN body_segment;
                     ALTER TABLE runs DROP COLUMN body_offset;
                     ALTER TABLE runs DROP COLUMN body_length;
                     PRAGMA user_version = 1;",
                )
                .unwrap();
        }
    }

    fn schema_version(dir: &Path) -> i64 {
        Connection::open(dir.join(FILE_NAME))
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_schema_1_journal_is_read_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        old_journal(dir.path(), 1, &[("old", "queued", "old body", None)]);
        let before = History::open(dir.path()).unwrap().run("old").unwrap();
        assert_eq!(before.unwrap().request.unwrap().body, "old body");
        let journal = SqliteJournal::open(dir.path(), 100).unwrap();
        let stored = journal.stored("old").unwrap().unwrap();
        assert_eq!(
            (&stored.request.body[..], stored.body_lost),
            (&b"old body"[..], None)
        );
        journal
            .record_volatile(new_run("new", "deploy", 5000, false))
            .committed()
            .await
            .unwrap();
        assert_eq!(
            journal.stored("new").unwrap().unwrap().request.body.len(),
            5000
        );
        assert_eq!(schema_version(dir.path()), SCHEMA_VERSION);
    }

    /// Bodies a schema 2 journal kept in segment files are moved into their rows at the first
    /// start, the segment files deleted; a body whose segment is gone is marked lost.
    #[tokio::test]
    async fn a_schema_2_journal_gets_its_segment_bodies_back_into_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let segments = dir.path().join(LEGACY_SEGMENT_DIR);
        std::fs::create_dir(&segments).unwrap();
        std::fs::write(segments.join("0000000001.seg"), "first|second").unwrap();
        old_journal(
            dir.path(),
            2,
            &[
                ("inline", "succeeded", "in the row", None),
                ("first", "succeeded", "", Some((1, 0, 5))),
                ("second", "queued", "", Some((1, 6, 6))),
                ("gone", "queued", "", Some((7, 0, 10))),
                ("short", "failed", "", Some((1, 6, 60))),
            ],
        );
        // A reader does not migrate: it says where the body is and what to do.
        let unmigrated = History::open(dir.path()).unwrap().run("first").unwrap();
        let lost = unmigrated.unwrap().request.unwrap().body_lost.unwrap();
        assert!(lost.contains("start hookwire once"), "{lost}");

        let journal = SqliteJournal::open(dir.path(), 100).unwrap();
        let body = |id: &str| {
            let stored = journal.stored(id).unwrap().unwrap();
            (
                String::from_utf8(stored.request.body.to_vec()).unwrap(),
                stored.body_lost,
            )
        };
        assert_eq!(body("inline"), ("in the row".into(), None));
        assert_eq!(body("first"), ("first".into(), None));
        assert_eq!(body("second"), ("second".into(), None));
        for id in ["gone", "short"] {
            let (body, lost) = body(id);
            assert_eq!(body, "", "{id}");
            let lost = lost.unwrap_or_default();
            assert!(
                lost.starts_with("the stored request body is lost"),
                "{id}: {lost}"
            );
        }
        assert!(!segments.exists(), "the segment files are deleted");
        assert_eq!(schema_version(dir.path()), SCHEMA_VERSION);
        let unfinished: Vec<_> = journal
            .unfinished()
            .unwrap()
            .into_iter()
            .map(|run| (run.id, run.body_lost.is_some()))
            .collect();
        assert_eq!(
            unfinished,
            [("gone".into(), true), ("second".into(), false)]
        );
        journal.close();
        let history = History::open(dir.path()).unwrap();
        assert_eq!(
            history
                .run("second")
                .unwrap()
                .unwrap()
                .request
                .unwrap()
                .body,
            "second"
        );
    }

    #[test]
    fn status_names_round_trip() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("TIMED_OUT"), Some(Status::TimedOut));
        assert_eq!(Status::parse("done"), None);
    }

    #[test]
    fn history_of_a_missing_directory_says_what_to_do() {
        let error = History::open(Path::new("/nonexistent/state")).unwrap_err();
        assert!(error.to_string().contains("-state-dir"), "{error}");
    }
}
