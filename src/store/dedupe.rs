//! Delivery ids seen recently (`dedupe: <duration>`), so a redelivered webhook runs once.
//!
//! The ids live in SQLite, in `<state-dir>/hookwire.db` (shared with the run journal, which
//! uses its own tables and connection), so they survive a restart. The table is
//! `deliveries(hook, delivery_id, run_id, seen_at, expires_at)`, times in Unix milliseconds.
//!
//! Checking and remembering is one step ([`Store::claim`]): the first request with an id claims
//! it with its run id inside a write transaction, so two copies arriving together (Slack retries
//! while the first is still running) cannot both run. Expired rows are purged at most once a
//! minute. The database is opened on first use, in WAL mode with `synchronous=FULL` (an
//! acknowledged delivery stays remembered across a power loss), set up for its owner only by
//! [`store::prepare_database`], as the journal does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use sha2::{Digest as _, Sha256};

use crate::store;

/// Ids longer than this are stored as their SHA-256 (an explicit `delivery-id` may come from
/// an arbitrary payload field).
const MAX_ID_LEN: usize = 200;

/// How often expired rows are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// What [`Store::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time within the window: the id is now remembered with this request's run id.
    Fresh,
    /// Seen before; the run id of the first delivery.
    Duplicate(String),
}

/// Why the store failed. Deliveries are then accepted (and logged): running a redelivery twice
/// is better than dropping one.
#[derive(Debug, thiserror::Error)]
pub enum DedupeError {
    #[error("cannot prepare {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dedupe database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the dedupe task failed: {0}")]
    Task(String),
}

/// The open database.
#[derive(Debug)]
pub struct Store {
    connection: Connection,
    path: PathBuf,
    last_purge: Option<SystemTime>,
}

impl Store {
    /// Opens (creating if needed) `<state_dir>/hookwire.db` and its table.
    pub fn open(state_dir: &Path) -> Result<Self, DedupeError> {
        let path = store::prepare_database(state_dir).map_err(|source| DedupeError::Io {
            path: state_dir.join(store::FILE_NAME),
            source,
        })?;
        let sqlite = |source| DedupeError::Sqlite {
            path: path.clone(),
            source,
        };
        let connection = Connection::open(&path).map_err(sqlite)?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(sqlite)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite)?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS deliveries (
                    hook TEXT NOT NULL,
                    delivery_id TEXT NOT NULL,
                    run_id TEXT NOT NULL,
                    seen_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    PRIMARY KEY (hook, delivery_id)
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS deliveries_expiry ON deliveries (expires_at);",
            )
            .map_err(sqlite)?;
        Ok(Self {
            connection,
            path,
            last_purge: None,
        })
    }

    /// Claims `delivery_id` for `hook` with `run_id` for `window` from `now`, unless an
    /// unexpired claim exists, whose run id is returned.
    pub fn claim(
        &mut self,
        hook: &str,
        delivery_id: &str,
        run_id: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<Claim, DedupeError> {
        self.purge(now)?;
        let id = stored_id(delivery_id);
        let now_ms = unix_millis(now);
        let expires = now_ms.saturating_add(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
        let path = self.path.clone();
        let sqlite = |source| DedupeError::Sqlite {
            path: path.clone(),
            source,
        };
        // IMMEDIATE: take the write lock before reading, so check and insert are one step
        // even against another process or connection.
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let first: Option<String> = transaction
            .query_row(
                "SELECT run_id FROM deliveries
                 WHERE hook = ?1 AND delivery_id = ?2 AND expires_at > ?3",
                params![hook, id, now_ms],
                |row| row.get(0),
            )
            .optional()
            .map_err(sqlite)?;
        if let Some(run) = first {
            return Ok(Claim::Duplicate(run));
        }
        transaction
            .execute(
                "INSERT OR REPLACE INTO deliveries (hook, delivery_id, run_id, seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hook, id, run_id, now_ms, expires],
            )
            .map_err(sqlite)?;
        transaction.commit().map_err(sqlite)?;
        Ok(Claim::Fresh)
    }

    /// Forgets a claim made by `run_id`, for a run that was claimed but then not accepted (a
    /// full queue), so the sender's retry is not taken for a duplicate.
    pub fn forget(
        &mut self,
        hook: &str,
        delivery_id: &str,
        run_id: &str,
    ) -> Result<(), DedupeError> {
        self.connection
            .execute(
                "DELETE FROM deliveries WHERE hook = ?1 AND delivery_id = ?2 AND run_id = ?3",
                params![hook, stored_id(delivery_id), run_id],
            )
            .map(drop)
            .map_err(|source| DedupeError::Sqlite {
                path: self.path.clone(),
                source,
            })
    }

    /// Deletes expired rows, at most once per [`PURGE_EVERY`].
    fn purge(&mut self, now: SystemTime) -> Result<(), DedupeError> {
        let due = self.last_purge.is_none_or(|last| {
            now.duration_since(last)
                .is_ok_and(|elapsed| elapsed >= PURGE_EVERY)
        });
        if !due {
            return Ok(());
        }
        self.last_purge = Some(now);
        self.connection
            .execute(
                "DELETE FROM deliveries WHERE expires_at <= ?1",
                params![unix_millis(now)],
            )
            .map(drop)
            .map_err(|source| DedupeError::Sqlite {
                path: self.path.clone(),
                source,
            })
    }

    /// How many ids are remembered (expired or not), for tests and diagnostics.
    pub fn remembered(&self) -> Result<usize, DedupeError> {
        self.connection
            .query_row("SELECT COUNT(*) FROM deliveries", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(|source| DedupeError::Sqlite {
                path: self.path.clone(),
                source,
            })
    }
}

/// The server's handle: opens the store on first use and runs every query off the async
/// threads (a commit waits for an fsync).
#[derive(Debug, Clone)]
pub struct Deduper {
    state_dir: PathBuf,
    store: Arc<Mutex<Option<Store>>>,
}

impl Deduper {
    /// A handle for `<state_dir>/hookwire.db`; nothing is opened yet.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            store: Arc::new(Mutex::new(None)),
        }
    }

    /// [`Store::claim`] at the current time.
    pub async fn claim(
        &self,
        hook: &str,
        delivery_id: &str,
        run_id: &str,
        window: Duration,
    ) -> Result<Claim, DedupeError> {
        let (hook, delivery_id, run_id) =
            (hook.to_owned(), delivery_id.to_owned(), run_id.to_owned());
        self.with_store(move |store| {
            store.claim(&hook, &delivery_id, &run_id, window, SystemTime::now())
        })
        .await
    }

    /// [`Store::forget`].
    pub async fn forget(
        &self,
        hook: &str,
        delivery_id: &str,
        run_id: &str,
    ) -> Result<(), DedupeError> {
        let (hook, delivery_id, run_id) =
            (hook.to_owned(), delivery_id.to_owned(), run_id.to_owned());
        self.with_store(move |store| store.forget(&hook, &delivery_id, &run_id))
            .await
    }

    async fn with_store<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Store) -> Result<T, DedupeError> + Send + 'static,
    ) -> Result<T, DedupeError> {
        let store = self.store.clone();
        let state_dir = self.state_dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if guard.is_none() {
                *guard = Some(Store::open(&state_dir)?);
            }
            match guard.as_mut() {
                Some(store) => job(store),
                None => Err(DedupeError::Task("the store is not open".into())),
            }
        })
        .await
        .map_err(|error| DedupeError::Task(error.to_string()))?
    }
}

/// The id as stored: itself when short, else `sha256:<hex>`.
fn stored_id(delivery_id: &str) -> String {
    if delivery_id.len() <= MAX_ID_LEN {
        delivery_id.to_owned()
    } else {
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(delivery_id.as_bytes()))
        )
    }
}

fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn a_repeat_within_the_window_is_a_duplicate_of_the_first_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.claim("h", "d1", "run-1", HOUR, at(0)).unwrap(),
            Claim::Fresh
        );
        assert_eq!(
            store.claim("h", "d1", "run-2", HOUR, at(10)).unwrap(),
            Claim::Duplicate("run-1".into())
        );
        // Another hook or another id is fresh.
        assert_eq!(
            store.claim("other", "d1", "run-3", HOUR, at(10)).unwrap(),
            Claim::Fresh
        );
        assert_eq!(
            store.claim("h", "d2", "run-4", HOUR, at(10)).unwrap(),
            Claim::Fresh
        );
        // After the window the id is fresh again, with the new run.
        assert_eq!(
            store.claim("h", "d1", "run-5", HOUR, at(3600)).unwrap(),
            Claim::Fresh
        );
        assert_eq!(
            store.claim("h", "d1", "run-6", HOUR, at(3601)).unwrap(),
            Claim::Duplicate("run-5".into())
        );
    }

    #[test]
    fn ids_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.claim("h", "d1", "run-1", HOUR, at(0)).unwrap();
        drop(store);
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.claim("h", "d1", "run-2", HOUR, at(1)).unwrap(),
            Claim::Duplicate("run-1".into())
        );
    }

    #[test]
    fn expired_rows_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for i in 0..10 {
            store
                .claim("h", &format!("d{i}"), "r", Duration::from_secs(30), at(0))
                .unwrap();
        }
        assert_eq!(store.remembered().unwrap(), 10);
        store.claim("h", "new", "r", HOUR, at(120)).unwrap();
        assert_eq!(store.remembered().unwrap(), 1);
    }

    #[test]
    fn forgetting_only_removes_the_own_claim() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.claim("h", "d1", "run-1", HOUR, at(0)).unwrap();
        store.forget("h", "d1", "run-2").unwrap();
        assert!(matches!(
            store.claim("h", "d1", "run-3", HOUR, at(1)).unwrap(),
            Claim::Duplicate(_)
        ));
        store.forget("h", "d1", "run-1").unwrap();
        assert_eq!(
            store.claim("h", "d1", "run-4", HOUR, at(2)).unwrap(),
            Claim::Fresh
        );
    }

    #[test]
    fn long_ids_are_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let long = "x".repeat(100_000);
        assert_eq!(
            store.claim("h", &long, "run-1", HOUR, at(0)).unwrap(),
            Claim::Fresh
        );
        assert_eq!(
            store.claim("h", &long, "run-2", HOUR, at(1)).unwrap(),
            Claim::Duplicate("run-1".into())
        );
        assert_ne!(stored_id(&long), stored_id(&"x".repeat(100_001)));
    }

    /// The journal and the dedupe table share one database, set up the same way whichever
    /// opens it first.
    #[tokio::test]
    async fn the_database_is_private_and_shared_with_the_journal() {
        use crate::store::Journal as _;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut store = Store::open(&state).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let database = state.join(store::FILE_NAME);
        assert_eq!(mode(&database), 0o600);
        assert_eq!(mode(&state), 0o700);
        store.claim("h", "d1", "r1", HOUR, at(0)).unwrap();
        let journal = store::SqliteJournal::open(&state, 10).unwrap();
        assert!(journal.unfinished().unwrap().is_empty());
        assert_eq!(
            store.claim("h", "d1", "r2", HOUR, at(1)).unwrap(),
            Claim::Duplicate("r1".into())
        );
        // A file made readable by others is made private again.
        std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Store::open(&state).unwrap());
        assert_eq!(mode(&database), 0o600);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claims_let_exactly_one_through() {
        let dir = tempfile::tempdir().unwrap();
        let deduper = Deduper::new(dir.path());
        let mut tasks = Vec::new();
        for i in 0..8 {
            let deduper = deduper.clone();
            tasks.push(tokio::spawn(async move {
                deduper
                    .claim("h", "same", &format!("run-{i}"), HOUR)
                    .await
                    .unwrap()
            }));
        }
        let mut fresh = 0;
        for task in tasks {
            if task.await.unwrap() == Claim::Fresh {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1);
    }
}
