use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use rusqlite::{Connection, params};

use super::schema::{LEGACY_SEGMENT_DIR, SCHEMA_VERSION};
use super::sqlite::{Retention, commit};
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
                node: None,
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
            node: None,
        },
        first_end,
        Event::Started {
            id: id.into(),
            attempt: 2,
            at: at(1001),
            node: None,
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

/// A node's projection of a shared history may read events again after a restart: applied
/// twice in order, they leave the run as applied once.
#[tokio::test]
async fn events_applied_again_in_order_leave_the_run_as_once() {
    let dir = tempfile::tempdir().unwrap();
    let journal = SqliteJournal::open(dir.path(), 100).unwrap();
    for event in retried_run("once") {
        journal.record(event).committed().await.unwrap();
    }
    for event in retried_run("twice").into_iter().chain(retried_run("twice")) {
        journal.record(event).committed().await.unwrap();
    }
    assert_eq!(
        stored_json(&journal, "twice"),
        stored_json(&journal, "once")
    );
    // Read again while the run was still running, in one batch (folded into one row).
    let events = retried_run("again");
    for event in events.iter().take(2).cloned() {
        journal.record(event).committed().await.unwrap();
    }
    let acks: Vec<Ack> = events
        .into_iter()
        .map(|event| journal.record_volatile(event))
        .collect();
    for ack in acks {
        ack.committed().await.unwrap();
    }
    assert_eq!(
        stored_json(&journal, "again"),
        stored_json(&journal, "once")
    );
    assert_eq!(
        journal
            .runs(&Filter {
                limit: 10,
                ..Filter::default()
            })
            .unwrap()
            .len(),
        3
    );
}

/// A write that fails (here one a trigger refuses; in production on a full disk) fails the
/// whole batch: no event of it is reported stored, and none is.
#[test]
fn a_failed_write_fails_its_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteJournal::open(dir.path(), 100).unwrap());
    let mut connection = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    let mut retention = Retention::new(100);
    let first = new_run("first", "deploy", 10, true);
    let results = commit(&mut connection, &[&first], &mut retention);
    assert_eq!(results, [Ok(())]);
    connection
        .execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON runs WHEN NEW.id = 'boom'
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    let boom = new_run("boom", "deploy", 10, true);
    let other = new_run("other", "deploy", 10, true);
    let start_of_unknown = Event::Started {
        id: "unknown".into(),
        attempt: 1,
        at: SystemTime::now(),
        node: None,
    };
    let batch = [&other, &start_of_unknown, &boom];
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
async fn an_end_nobody_waits_for_is_committed_alone_after_its_linger() {
    let dir = tempfile::tempdir().unwrap();
    let journal = SqliteJournal::open(dir.path(), 100).unwrap();
    accept(&journal, "u1", "deploy").committed().await.unwrap();
    let ack = journal.record_unawaited(ended("u1", "deploy", Status::Succeeded));
    tokio::time::timeout(Duration::from_secs(5), ack.committed())
        .await
        .expect("committed without anything else sent")
        .unwrap();
    let history = History::open(dir.path()).unwrap();
    assert_eq!(
        history.run("u1").unwrap().unwrap().status,
        Status::Succeeded
    );
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
            node: None,
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
