//! The tables of `hookwire.db` and the migrations from older files.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use rusqlite::{Connection, params};

use super::state_dir::FILE_NAME;

/// The schema version kept in `PRAGMA user_version`.
pub(super) const SCHEMA_VERSION: i64 = 4;

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
    body_lost       TEXT,               -- why `body` is empty: lost before schema 3
    node            TEXT                -- the node that ran the last attempt (-nats-url)
);
CREATE INDEX IF NOT EXISTS runs_by_hook ON runs (hook, id);
CREATE INDEX IF NOT EXISTS runs_unfinished ON runs (status) WHERE status IN ('queued', 'running');
";

/// Schema 2 kept some bodies in segment files (`bodies/<segment>.seg` in the state directory,
/// `body_length` bytes from `body_offset`); schema 3 keeps every body in its row.
pub(super) const LEGACY_SEGMENT_DIR: &str = "bodies";

pub(super) fn migrate(connection: &mut Connection, state_dir: &Path) -> rusqlite::Result<()> {
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
        2 => move_segment_bodies_into_rows(&transaction, state_dir)?,
        _ => {}
    }
    if (1..=3).contains(&version) {
        transaction.execute_batch("ALTER TABLE runs ADD COLUMN node TEXT;")?;
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
            Ok((
                row.get("id")?,
                row.get("body_segment")?,
                row.get("body_offset")?,
                row.get("body_length")?,
            ))
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
