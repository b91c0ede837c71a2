//! The SQLite journal: one writer thread with group commit, one read connection.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};
use tokio::sync::oneshot;

use super::headers::encode_headers;
use super::queries::{
    STORED_COLUMNS, STORED_COLUMNS_V1, STORED_COLUMNS_V2, SUMMARY_COLUMNS, SUMMARY_COLUMNS_V3,
    query_hook_stats, query_run, query_runs, stored_run,
};
use super::schema::migrate;
use super::state_dir::{FILE_NAME, prepare_database};
use super::{
    Ack, Event, Filter, HookStats, Journal, JournalError, NewRun, RunRecord, RunResult, Status,
    StoredRun, millis,
};

/// Most events committed in one transaction.
const MAX_BATCH: usize = 4096;

/// How long an event nobody waits for may wait before it is committed: the history of runs
/// whose client waits, and the ends of background runs, lag this much at most (except for this
/// process's own reads, which flush).
const LINGER: Duration = Duration::from_millis(25);

/// What the writer thread is sent.
enum WriterCommand {
    /// An event, who waits for its commit, whether the commit must reach the disk, and
    /// whether anyone waits for it (otherwise it may linger for company).
    Record {
        event: Event,
        ack: oneshot::Sender<Result<(), JournalError>>,
        durable: bool,
        awaited: bool,
    },
    /// Answered once everything sent before it is committed: reads see what was recorded.
    Flush(mpsc::SyncSender<()>),
}

impl WriterCommand {
    /// Whether the writer must commit it without lingering.
    fn is_urgent(&self) -> bool {
        !matches!(self, WriterCommand::Record { awaited: false, .. })
    }
}

/// The SQLite journal: one writer thread with group commit, one connection for reads.
#[derive(Debug)]
pub struct SqliteJournal {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<WriterCommand>>>,
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
        if self.enqueue(WriterCommand::Flush(flushed)) {
            // An error means the writer stopped, after committing what it had.
            let _ = flush.recv();
        }
        let connection = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(query(&connection)?)
    }
}

impl SqliteJournal {
    fn enqueue(&self, command: WriterCommand) -> bool {
        let urgent = command.is_urgent();
        let sent = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|sender| sender.send(command).is_ok());
        if sent && urgent {
            self.writer_thread.unpark();
        }
        sent
    }

    fn send(&self, event: Event, durable: bool, awaited: bool) -> Ack {
        let (ack, receiver) = oneshot::channel();
        if self.enqueue(WriterCommand::Record {
            event,
            ack,
            durable,
            awaited,
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
        self.send(event, true, true)
    }

    fn record_volatile(&self, event: Event) -> Ack {
        self.send(event, false, false)
    }

    fn record_unawaited(&self, event: Event) -> Ack {
        self.send(event, true, false)
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
        self.read(|c| query_runs(c, filter, SUMMARY_COLUMNS))
    }

    fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError> {
        self.read(|c| query_run(c, id, SUMMARY_COLUMNS, STORED_COLUMNS))
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
    /// The summary and request columns this file has (it is not migrated by a reader).
    summary_columns: &'static str,
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
        let summary_columns = if version < 4 {
            SUMMARY_COLUMNS_V3
        } else {
            SUMMARY_COLUMNS
        };
        Ok(Self {
            connection,
            summary_columns,
            stored_columns,
        })
    }

    /// The history, newest first.
    pub fn runs(&self, filter: &Filter) -> Result<Vec<RunRecord>, JournalError> {
        Ok(query_runs(&self.connection, filter, self.summary_columns)?)
    }

    /// One run with its output and request.
    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError> {
        Ok(query_run(
            &self.connection,
            id,
            self.summary_columns,
            self.stored_columns,
        )?)
    }
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

/// The writer thread: takes what is waiting, commits it in one transaction, acknowledges.
/// Events nobody waits for linger up to [`LINGER`] for company, so that a waiting
/// run's accept, start and end mostly share one transaction, and the ends of background runs
/// share a sync.
fn write_loop(
    mut connection: Connection,
    receiver: &mpsc::Receiver<WriterCommand>,
    mut retention: Retention,
) {
    // The connection opens with synchronous=FULL.
    let mut synced = true;
    while let Ok(first) = receiver.recv() {
        let linger_until = Instant::now() + LINGER;
        let mut batch = vec![first];
        loop {
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let left = linger_until.saturating_duration_since(Instant::now());
            if batch.len() >= MAX_BATCH
                || left.is_zero()
                || batch.iter().any(WriterCommand::is_urgent)
            {
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
                WriterCommand::Record {
                    event,
                    ack,
                    durable,
                    ..
                } => records.push((event, ack, durable)),
                WriterCommand::Flush(flushed) => flushes.push(flushed),
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
pub(super) fn commit(
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
    let mut accepted: Vec<AcceptedRow<'_>> = Vec::new();
    let mut accepted_index: HashMap<&str, usize> = HashMap::new();
    for event in batch {
        let folded = match event {
            Event::Accepted(run) => {
                accepted_index.insert(&run.id, accepted.len());
                accepted.push(AcceptedRow::new(run));
                true
            }
            Event::Started { id, .. } | Event::Ended { id, .. } => accepted_index
                .get(id.as_str())
                .map(|&index| accepted[index].apply(event))
                .is_some(),
        };
        if folded {
            results.push(Ok(()));
            continue;
        }
        match update(&transaction, event) {
            Err(JournalError::Missing(id)) => results.push(Err(JournalError::Missing(id))),
            // Dropping the transaction rolls back what this batch wrote.
            Err(error) => return failed(error),
            Ok(()) => results.push(Ok(())),
        }
    }
    for row in &accepted {
        if let Err(error) = row.insert(&transaction) {
            return failed(error.into());
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

/// The row of a run accepted in the batch being committed, with what the rest of the batch
/// did to it: written once. An update rewrites the whole row, the request's body included, so
/// a run whose start and end share its acceptance's batch (most runs whose client waits) costs
/// one insert rather than an insert and two rewrites.
struct AcceptedRow<'e> {
    run: &'e NewRun,
    status: Status,
    attempts: u32,
    started_at: Option<SystemTime>,
    finished_at: Option<SystemTime>,
    next_attempt_at: Option<SystemTime>,
    /// How the last attempt ended: kept when the next one starts, as in the row.
    result: Option<&'e RunResult>,
    /// The node that ran the last attempt.
    node: Option<&'e str>,
}

impl<'e> AcceptedRow<'e> {
    fn new(run: &'e NewRun) -> Self {
        Self {
            run,
            status: Status::Queued,
            attempts: 0,
            started_at: None,
            finished_at: None,
            next_attempt_at: None,
            result: None,
            node: None,
        }
    }

    /// What [`update`] does to a stored row.
    fn apply(&mut self, event: &'e Event) {
        match event {
            Event::Accepted(_) => {}
            Event::Started {
                attempt, at, node, ..
            } => {
                self.status = Status::Running;
                self.node = node.as_deref();
                self.attempts = *attempt;
                self.started_at = Some(*at);
                self.finished_at = None;
                self.next_attempt_at = None;
            }
            Event::Ended {
                result,
                at,
                retry_at,
                ..
            } => {
                self.status = status_after(result, *retry_at);
                self.finished_at = Some(*at);
                self.next_attempt_at = *retry_at;
                self.result = Some(result);
            }
        }
    }

    fn insert(&self, transaction: &rusqlite::Transaction<'_>) -> rusqlite::Result<usize> {
        let run = self.run;
        let request = &run.request;
        let result = self.result;
        transaction
            .prepare_cached(
                // A node's projection of a shared history reads a run again after a restart:
                // its events, applied again in order, end where they ended.
                "INSERT INTO runs (id, hook, status, concurrency_key, background,
                 rerun_of, accepted_at, request_id, method, remote_addr, headers, query, body,
                 attempts, started_at, finished_at, next_attempt_at,
                 exit_code, signal, reason, output, truncated, node)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
                         ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                     attempts = excluded.attempts, started_at = excluded.started_at,
                     finished_at = excluded.finished_at,
                     next_attempt_at = excluded.next_attempt_at,
                     exit_code = excluded.exit_code, signal = excluded.signal,
                     reason = excluded.reason, output = excluded.output,
                     truncated = excluded.truncated, node = excluded.node",
            )?
            .execute(params![
                run.id,
                run.hook,
                self.status.as_str(),
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
                self.attempts,
                self.started_at.map(millis),
                self.finished_at.map(millis),
                self.next_attempt_at.map(millis),
                result.and_then(|result| result.exit_code),
                result.and_then(|result| result.signal),
                result.and_then(|result| result.reason.as_deref()),
                result.map(stored_output),
                result.map_or(0, |result| {
                    i64::try_from(result.truncated).unwrap_or(i64::MAX)
                }),
                self.node,
            ])
    }
}

/// Writes one event on its own: the start or end of a run recorded in an earlier batch (or a
/// new run's row).
fn update(transaction: &rusqlite::Transaction<'_>, event: &Event) -> Result<(), JournalError> {
    match event {
        Event::Accepted(run) => {
            AcceptedRow::new(run).insert(transaction)?;
        }
        Event::Started {
            id,
            attempt,
            at,
            node,
        } => {
            let changed = transaction
                .prepare_cached(
                    "UPDATE runs SET status = 'running', attempts = ?2, started_at = ?3,
                     finished_at = NULL, next_attempt_at = NULL, node = ?4 WHERE id = ?1",
                )?
                .execute(params![id, attempt, millis(*at), node])?;
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
pub(super) struct Retention {
    keep: usize,
    step: usize,
    ended: HashMap<String, usize>,
}

impl Retention {
    pub(super) fn new(keep: usize) -> Self {
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
