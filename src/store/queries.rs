//! Reading runs back: the history, one run, the unfinished runs, per-hook statistics.

use std::net::SocketAddr;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension as _, Row, params_from_iter};

use super::Received;
use super::headers::decode_headers;
use super::{Filter, HookStats, RequestView, RunRecord, Status, StoredRun, from_millis, timestamp};
use crate::store::redact;

pub(super) const SUMMARY_COLUMNS: &str = "id, hook, status, concurrency_key, background, rerun_of,
    attempts, exit_code, signal, reason, accepted_at, started_at, finished_at, next_attempt_at,
    truncated, node";

/// The same, from a file older than schema 4 that no server has upgraded yet.
pub(super) const SUMMARY_COLUMNS_V3: &str = "id, hook, status, concurrency_key, background,
    rerun_of, attempts, exit_code, signal, reason, accepted_at, started_at, finished_at,
    next_attempt_at, truncated, NULL AS node";

pub(super) const STORED_COLUMNS: &str = "id, hook, status, attempts, background, next_attempt_at,
    request_id, method, remote_addr, headers, query, body, body_lost";

/// The same, from a file of schema 1 that no server has upgraded yet.
pub(super) const STORED_COLUMNS_V1: &str =
    "id, hook, status, attempts, background, next_attempt_at,
    request_id, method, remote_addr, headers, query, body, NULL AS body_lost";

/// The same, from a file of schema 2 that no server has upgraded yet: a body in a segment file
/// is read into its row by the server's next start, not by a reader.
pub(super) const STORED_COLUMNS_V2: &str =
    "id, hook, status, attempts, background, next_attempt_at,
    request_id, method, remote_addr, headers, query, body,
    CASE WHEN body_segment IS NOT NULL THEN 'the request body is in bodies/ beside the journal; \
    start hookwire once on this -state-dir to move it into the journal' END AS body_lost";

pub(super) fn query_runs(
    connection: &Connection,
    filter: &Filter,
    summary_columns: &str,
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
        "SELECT {summary_columns} FROM runs {condition} ORDER BY id DESC LIMIT {limit}"
    ))?;
    statement
        .query_map(params_from_iter(values), summary)?
        .collect()
}

pub(super) fn query_hook_stats(connection: &Connection) -> rusqlite::Result<Vec<HookStats>> {
    let mut statement = connection.prepare(
        "SELECT hook, COUNT(*) AS runs,
                SUM(status NOT IN ('queued', 'running')) AS ended,
                SUM(status = 'succeeded') AS succeeded,
                MAX(id) AS newest
         FROM runs GROUP BY hook ORDER BY hook",
    )?;
    let rows: Vec<(HookStats, String)> = statement
        .query_map([], |row| {
            Ok((
                HookStats {
                    hook: row.get("hook")?,
                    runs: row.get("runs")?,
                    ended: row.get("ended")?,
                    succeeded: row.get("succeeded")?,
                    last: None,
                },
                row.get("newest")?,
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
    summary_columns: &str,
    stored_columns: &str,
) -> rusqlite::Result<Option<RunRecord>> {
    connection
        .query_row(
            &format!("SELECT {summary_columns}, output, {stored_columns} FROM runs WHERE id = ?1"),
            [id],
            |row| {
                let mut record = summary(row)?;
                let output: Option<Vec<u8>> = row.get("output")?;
                record.output =
                    Some(String::from_utf8_lossy(&output.unwrap_or_default()).into_owned());
                let (request, body_lost) = stored_request(row)?;
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
    let status: String = row.get("status")?;
    let accepted_at: i64 = row.get("accepted_at")?;
    let started_at: Option<i64> = row.get("started_at")?;
    let finished_at: Option<i64> = row.get("finished_at")?;
    let truncated: i64 = row.get("truncated")?;
    Ok(RunRecord {
        id: row.get("id")?,
        hook: row.get("hook")?,
        status: Status::parse(&status).unwrap_or(Status::Failed),
        concurrency_key: row.get("concurrency_key")?,
        background: row.get("background")?,
        rerun_of: row.get("rerun_of")?,
        attempts: row.get("attempts")?,
        exit_code: row.get("exit_code")?,
        signal: row.get("signal")?,
        reason: row.get("reason")?,
        accepted_at: timestamp(accepted_at),
        started_at: started_at.map(timestamp),
        finished_at: finished_at.map(timestamp),
        next_attempt_at: row.get::<_, Option<i64>>("next_attempt_at")?.map(timestamp),
        duration_ms: started_at
            .zip(finished_at)
            .and_then(|(start, end)| u64::try_from(end - start).ok()),
        output_truncated: u64::try_from(truncated).unwrap_or(0),
        node: row.get("node")?,
        output: None,
        request: None,
    })
}

pub(super) fn stored_run(row: &Row<'_>) -> rusqlite::Result<StoredRun> {
    let status: String = row.get("status")?;
    let (request, body_lost) = stored_request(row)?;
    Ok(StoredRun {
        id: row.get("id")?,
        hook: row.get("hook")?,
        status: Status::parse(&status).unwrap_or(Status::Queued),
        attempts: row.get("attempts")?,
        background: row.get("background")?,
        next_attempt_at: row
            .get::<_, Option<i64>>("next_attempt_at")?
            .map(from_millis),
        request,
        body_lost,
    })
}

/// The request's columns, and why its body is missing, if it is.
fn stored_request(row: &Row<'_>) -> rusqlite::Result<(Received, Option<String>)> {
    let remote: String = row.get("remote_addr")?;
    let headers: Vec<u8> = row.get("headers")?;
    let body: Vec<u8> = row.get("body")?;
    let body_lost: Option<String> = row.get("body_lost")?;
    let request = Received {
        id: row.get("request_id")?,
        method: row.get("method")?,
        remote_addr: remote
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
        headers: decode_headers(&headers),
        query: row.get("query")?,
        body: Bytes::from(body),
    };
    Ok((request, body_lost))
}
