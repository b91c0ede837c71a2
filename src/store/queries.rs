//! Reading runs back: the history, one run, the unfinished runs, per-hook statistics.

use std::net::SocketAddr;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension as _, Row, params_from_iter};

use super::Received;
use super::headers::decode_headers;
use super::{Filter, HookStats, RequestView, RunRecord, Status, StoredRun, from_millis, timestamp};
use crate::store::redact;

const SUMMARY_COLUMNS: &str = "id, hook, status, concurrency_key, background, rerun_of, attempts,
    exit_code, signal, reason, accepted_at, started_at, finished_at, next_attempt_at, truncated";

pub(super) const STORED_COLUMNS: &str = "id, hook, status, attempts, background, next_attempt_at,
    request_id, method, remote_addr, headers, query, body, body_lost";

/// The same, from a file of schema 1 that no server has upgraded yet.
pub(super) const STORED_COLUMNS_V1: &str =
    "id, hook, status, attempts, background, next_attempt_at,
    request_id, method, remote_addr, headers, query, body, NULL";

/// The same, from a file of schema 2 that no server has upgraded yet: a body in a segment file
/// is read into its row by the server's next start, not by a reader.
pub(super) const STORED_COLUMNS_V2: &str =
    "id, hook, status, attempts, background, next_attempt_at,
    request_id, method, remote_addr, headers, query, body,
    CASE WHEN body_segment IS NOT NULL THEN 'the request body is in bodies/ beside the journal; \
    start hookwire once on this -state-dir to move it into the journal' END";

pub(super) fn query_runs(
    connection: &Connection,
    filter: &Filter,
) -> rusqlite::Result<Vec<RunRecord>> {
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

pub(super) fn query_hook_stats(connection: &Connection) -> rusqlite::Result<Vec<HookStats>> {
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

pub(super) fn query_run(
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

pub(super) fn stored_run(row: &Row<'_>) -> rusqlite::Result<StoredRun> {
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
