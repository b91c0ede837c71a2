//! The execution engine end to end: concurrency modes (with a script that records when each run
//! starts and ends), timeouts that end whole process groups, the journal across `kill -9`,
//! retries, retention, the runs API and CLI, and shutdown.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Server, run_hookwire, run_id, wait_until};

const RUN: &str = "X-Hookwire-Run";

/// A hook per mode, each running `span.sh LABEL SLEEP` with both from the query string.
const HOOKS: &str = r#"
- id: queue
  execute-command: {fixtures}/span.sh
  concurrency: queue
  max-queue: 2
  pass-arguments-to-command: &span
    - {source: url, name: label}
    - {source: url, name: sleep}
- id: latest
  execute-command: {fixtures}/span.sh
  concurrency: latest
  pass-arguments-to-command: *span
- id: latest-wait
  execute-command: {fixtures}/span.sh
  concurrency: latest
  include-command-output-in-response: true
  pass-arguments-to-command: *span
- id: cancel
  execute-command: {fixtures}/span.sh
  concurrency: cancel
  pass-arguments-to-command: *span
- id: cancel-wait
  execute-command: {fixtures}/span.sh
  concurrency: cancel
  include-command-output-in-response: true
  pass-arguments-to-command: *span
- id: reject
  execute-command: {fixtures}/span.sh
  concurrency: reject
  pass-arguments-to-command: *span
- id: keyed
  execute-command: {fixtures}/span.sh
  concurrency: queue
  concurrency-key: {source: url, name: key}
  pass-arguments-to-command: *span
- id: parallel
  execute-command: {fixtures}/span.sh
  pass-arguments-to-command: *span
"#;

fn start(hooks: &str, extra: &[&str]) -> Server {
    Server::builder(hooks)
        .args(&["-state-dir", "{dir}/state", "-kill-grace", "300ms"])
        .args(extra)
        .start()
}

/// Sends `GET /hooks/HOOK?label=LABEL&sleep=SECONDS` and expects it accepted.
fn trigger(s: &Server, hook: &str, label: &str, sleep: f64) -> String {
    let r = s.get(&format!("/hooks/{hook}?label={label}&sleep={sleep}"));
    assert_eq!(r.status, 200, "{label}: {}", r.text());
    run_id(&r)
}

fn stamp(s: &Server, kind: &str, label: &str) -> Option<u128> {
    let path = s.dir.path().join(format!("records/{kind}-{label}"));
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn started(s: &Server, label: &str) -> bool {
    stamp(s, "start", label).is_some()
}

/// Waits for the runs with these labels to end; their (start, end) times.
fn spans(s: &Server, labels: &[&str]) -> Vec<(u128, u128)> {
    let ended = wait_until(Duration::from_secs(15), || {
        labels.iter().all(|l| stamp(s, "end", l).is_some())
    });
    assert!(ended, "not all of {labels:?} ended; log:\n{}", s.logs());
    labels
        .iter()
        .map(|l| (stamp(s, "start", l).unwrap(), stamp(s, "end", l).unwrap()))
        .collect()
}

/// Each run starts after the one before it ended.
fn assert_one_at_a_time(spans: &[(u128, u128)]) {
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlap: {spans:?}");
    }
}

fn overlap(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// `GET /-/runs?QUERY`.
fn runs(s: &Server, query: &str) -> Vec<Value> {
    let r = s.admin_get(&format!("/-/runs?{query}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let value: Value = serde_json::from_slice(&r.body).unwrap();
    value["runs"].as_array().cloned().unwrap_or_default()
}

fn run(s: &Server, id: &str) -> Value {
    let r = s.admin_get(&format!("/-/runs/{id}"));
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

/// Waits until run `id` has a final status, and returns the run.
fn finished(s: &Server, id: &str) -> Value {
    let mut last = Value::Null;
    let done = wait_until(Duration::from_secs(15), || {
        last = run(s, id);
        !matches!(last["status"].as_str(), Some("queued" | "running"))
    });
    assert!(done, "run {id} did not finish: {last}\n{}", s.logs());
    last
}

fn status(s: &Server, id: &str) -> String {
    finished(s, id)["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn queue_runs_one_at_a_time_in_arrival_order_up_to_its_limit() {
    let s = start(HOOKS, &[]);
    let ids: Vec<String> = ["q1", "q2", "q3"]
        .iter()
        .map(|l| trigger(&s, "queue", l, 0.2))
        .collect();
    // q1 runs, q2 and q3 wait: `max-queue: 2` is reached.
    let refused = s.get("/hooks/queue?label=q4&sleep=0.2");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("Retry-After"), Some("5"));
    assert!(refused.header(RUN).is_none(), "a refused run has no id");
    assert_one_at_a_time(&spans(&s, &["q1", "q2", "q3"]));
    assert!(!started(&s, "q4"));
    for id in &ids {
        assert_eq!(status(&s, id), "succeeded");
    }
}

#[test]
fn latest_runs_the_newest_waiting_request_and_supersedes_the_others() {
    let s = start(HOOKS, &[]);
    let first = trigger(&s, "latest", "l1", 0.5);
    let dropped: Vec<String> = ["l2", "l3"]
        .iter()
        .map(|l| trigger(&s, "latest", l, 0.1))
        .collect();
    let newest = trigger(&s, "latest", "l4", 0.1);
    assert_one_at_a_time(&spans(&s, &["l1", "l4"]));
    assert!(!started(&s, "l2") && !started(&s, "l3"));
    assert_eq!(status(&s, &first), "succeeded");
    assert_eq!(status(&s, &newest), "succeeded");
    let l2 = finished(&s, &dropped[0]);
    assert_eq!(l2["status"], "superseded");
    assert_eq!(l2["reason"], format!("superseded by run {}", dropped[1]));
    assert_eq!(l2["attempts"], 0);
    let superseded = runs(&s, "hook=latest&status=superseded");
    assert_eq!(superseded.len(), 2, "{superseded:?}");
}

#[test]
fn latest_tells_a_waiting_client_its_run_was_superseded() {
    let s = start(HOOKS, &[]);
    let addr = s.addr();
    let get = move |label: &str, sleep: f64| {
        let path = format!("/hooks/latest-wait?label={label}&sleep={sleep}");
        std::thread::spawn(move || crate::harness::Request::new(addr, "GET", &path).send())
    };
    let w1 = get("w1", 0.6);
    assert!(wait_until(Duration::from_secs(5), || started(&s, "w1")));
    let w2 = get("w2", 0.1);
    std::thread::sleep(Duration::from_millis(150));
    let w3 = get("w3", 0.1);
    let (w1, w2, w3) = (w1.join().unwrap(), w2.join().unwrap(), w3.join().unwrap());
    assert_eq!((w1.status, w1.text().as_str()), (200, "ran w1\n"));
    assert_eq!(w2.status, 409, "{}", w2.text());
    assert_eq!(
        w2.text(),
        format!("The run was superseded by run {}.", run_id(&w3))
    );
    assert_eq!((w3.status, w3.text().as_str()), (200, "ran w3\n"));
}

#[test]
fn cancel_kills_the_running_run_and_starts_the_newest() {
    let s = start(HOOKS, &[]);
    let first = trigger(&s, "cancel", "c1", 30.0);
    assert!(wait_until(Duration::from_secs(5), || started(&s, "c1")));
    let killed_at = Instant::now();
    let second = trigger(&s, "cancel", "c2", 0.1);
    let c1 = finished(&s, &first);
    assert_eq!(c1["status"], "cancelled");
    assert_eq!(c1["reason"], format!("cancelled by run {second}"));
    assert_eq!(c1["signal"], 15);
    assert!(killed_at.elapsed() < Duration::from_secs(5));
    assert_eq!(status(&s, &second), "succeeded");
    assert!(stamp(&s, "end", "c1").is_none(), "c1 ran to its end");
    assert!(stamp(&s, "start", "c2").is_some());
    let metrics = s.admin_get("/-/metrics").text();
    for counted in [
        "hookwire_runs_total{hook=\"cancel\",outcome=\"cancelled\"} 1",
        "hookwire_runs_total{hook=\"cancel\",outcome=\"succeeded\"} 1",
    ] {
        assert!(metrics.contains(counted), "no `{counted}` in:\n{metrics}");
    }
    assert!(!metrics.contains("outcome=\"killed\""), "{metrics}");
}

#[test]
fn cancel_tells_a_waiting_client_its_run_was_cancelled() {
    let s = start(HOOKS, &[]);
    let addr = s.addr();
    let waiting = std::thread::spawn(move || {
        crate::harness::Request::new(addr, "GET", "/hooks/cancel-wait?label=v1&sleep=30").send()
    });
    assert!(wait_until(Duration::from_secs(5), || started(&s, "v1")));
    let newer = s.get("/hooks/cancel-wait?label=v2&sleep=0.1");
    assert_eq!((newer.status, newer.text().as_str()), (200, "ran v2\n"));
    let cancelled = waiting.join().unwrap();
    assert_eq!(cancelled.status, 409);
    assert_eq!(
        cancelled.text(),
        format!("The run was cancelled by run {}.", run_id(&newer))
    );
}

#[test]
fn reject_refuses_while_a_run_is_in_progress() {
    let s = start(HOOKS, &[]);
    let first = trigger(&s, "reject", "r1", 0.4);
    let refused = s.get("/hooks/reject?label=r2&sleep=0.1");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("Retry-After"), Some("5"));
    assert_eq!(
        refused.text(),
        "This hook is already running. Try again later."
    );
    assert_eq!(status(&s, &first), "succeeded");
    let later = trigger(&s, "reject", "r3", 0.1);
    assert_eq!(status(&s, &later), "succeeded");
    assert!(!started(&s, "r2"));
}

#[test]
fn each_concurrency_key_has_its_own_lane() {
    let s = start(HOOKS, &[]);
    for (key, label) in [("a", "a1"), ("b", "b1"), ("a", "a2")] {
        let r = s.get(&format!("/hooks/keyed?key={key}&label={label}&sleep=0.4"));
        assert_eq!(r.status, 200);
    }
    let spans = spans(&s, &["a1", "b1", "a2"]);
    assert!(
        overlap(spans[0], spans[1]),
        "keys a and b should run side by side: {spans:?}"
    );
    assert_one_at_a_time(&[spans[0], spans[2]]);
    let keyed = runs(&s, "hook=keyed");
    assert!(
        keyed.iter().any(|r| r["concurrency_key"] == "b"),
        "{keyed:?}"
    );
}

#[test]
fn the_global_cap_holds_parallel_runs_back() {
    let s = start(HOOKS, &["-max-concurrent-runs", "1"]);
    for label in ["p1", "p2", "p3"] {
        trigger(&s, "parallel", label, 0.2);
    }
    let mut spans = spans(&s, &["p1", "p2", "p3"]);
    spans.sort();
    assert_one_at_a_time(&spans);
}

#[test]
fn parallel_runs_overlap() {
    let s = start(HOOKS, &[]);
    trigger(&s, "parallel", "x1", 0.4);
    trigger(&s, "parallel", "x2", 0.4);
    let spans = spans(&s, &["x1", "x2"]);
    assert!(overlap(spans[0], spans[1]), "{spans:?}");
}

/// Members of a process group, from /proc.
fn group_members(group: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.get(2) == Some(&group)
        })
        .collect()
}

#[test]
fn a_timeout_ends_the_whole_process_group_even_what_ignores_sigterm() {
    let hooks = r#"
- id: stubborn
  execute-command: /bin/sh
  timeout: 300ms
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'trap "" TERM; (trap "" TERM; sleep 30) & echo $! > "$RECORD_DIR/grandchild.tmp"; echo $$ > "$RECORD_DIR/leader.tmp"; sleep 30'}
- id: stubborn-wait
  execute-command: /bin/sleep
  timeout: 200ms
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: "30"}
"#;
    let s = start(hooks, &[]);
    let began = Instant::now();
    let id = run_id(&s.get("/hooks/stubborn"));
    let record = finished(&s, &id);
    assert_eq!(record["status"], "timed-out");
    assert_eq!(record["signal"], 9, "the leader ignores SIGTERM: {record}");
    // The timeout, then the grace period: far less than the commands' 30 s.
    assert!(began.elapsed() < Duration::from_secs(5));
    let read = |name: &str| {
        std::fs::read_to_string(s.dir.path().join(format!("records/{name}.tmp")))
            .unwrap()
            .trim()
            .to_owned()
    };
    let (leader, grandchild) = (read("leader"), read("grandchild"));
    assert!(
        !Path::new(&format!("/proc/{grandchild}")).exists(),
        "grandchild left"
    );
    assert!(
        !Path::new(&format!("/proc/{leader}")).exists(),
        "leader left"
    );
    assert_eq!(
        group_members(&leader),
        Vec::<String>::new(),
        "group {leader} not empty"
    );

    let r = s.get("/hooks/stubborn-wait");
    assert_eq!(
        r.status,
        500,
        "a timed-out run is a failed run: {}",
        r.text()
    );
    assert_eq!(status(&s, &run_id(&r)), "timed-out");
}

#[test]
fn failed_runs_are_retried_with_backoff() {
    let hooks = r#"
- id: flaky
  execute-command: /bin/sh
  retry: {attempts: 3, backoff: 200ms}
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'date +%s%N >> "$RECORD_DIR/attempts.tmp"; [ $(wc -l < "$RECORD_DIR/attempts.tmp") -ge 3 ]'}
"#;
    let s = start(hooks, &[]);
    let id = run_id(&s.get("/hooks/flaky"));
    let record = finished(&s, &id);
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["attempts"], 3);
    let times: Vec<u128> = std::fs::read_to_string(s.dir.path().join("records/attempts.tmp"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    let gaps_ms: Vec<u128> = times
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000)
        .collect();
    // 200 ms, then twice that.
    assert!(gaps_ms[0] >= 200 && gaps_ms[1] >= 400, "{gaps_ms:?}");
}

#[test]
fn history_keeps_the_last_runs_of_each_hook() {
    let hooks =
        "- {id: quick, execute-command: /bin/true}\n- {id: other, execute-command: /bin/true}\n";
    let s = start(hooks, &["-keep-runs", "3"]);
    for _ in 0..5 {
        let id = run_id(&s.get("/hooks/quick"));
        finished(&s, &id);
    }
    let other = run_id(&s.get("/hooks/other"));
    finished(&s, &other);
    assert_eq!(runs(&s, "hook=quick").len(), 3);
    assert_eq!(runs(&s, "hook=other").len(), 1);
    assert_eq!(runs(&s, "limit=2").len(), 2);
    assert_eq!(s.admin_get("/-/runs?status=bogus").status, 400);
}

/// A hook whose client waits: it answers with the payload's `word`.
const ECHO: &str = r#"
- id: echo
  execute-command: /bin/echo
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: word}
"#;

#[test]
fn runs_api_and_cli_show_history_and_rerun() {
    let s = start(ECHO, &[]);
    let r = s.post("/hooks/echo", "application/json", r#"{"word":"hello"}"#);
    assert_eq!((r.status, r.text().as_str()), (200, "hello\n"));
    let id = run_id(&r);
    let record = finished(&s, &id);
    assert_eq!(record["output"], "hello\n");
    assert_eq!(record["background"], false);
    assert_eq!(record["request"]["method"], "POST");
    assert_eq!(record["request"]["body"], r#"{"word":"hello"}"#);
    assert_eq!(s.admin_get("/-/runs/nope").status, 404);

    let state = s.dir.path().join("state");
    let state = state.to_str().unwrap();
    let (ok, table, err) = run_hookwire(&["runs", "--hook", "echo", "-state-dir", state]);
    assert!(ok, "{err}");
    assert!(table.starts_with("RUN "), "{table}");
    assert!(
        table.contains(&id) && table.contains("succeeded"),
        "{table}"
    );
    let (ok, shown, err) = run_hookwire(&["runs", "show", &id, "-state-dir", state]);
    assert!(ok, "{err}");
    assert!(shown.contains("status    succeeded"), "{shown}");
    assert!(shown.ends_with("--- output ---\nhello\n"), "{shown}");
    let (ok, _, err) = run_hookwire(&[
        "runs",
        "show",
        "01234567-0000-7000-8000-000000000000",
        "-state-dir",
        state,
    ]);
    assert!(!ok && err.contains("no run"), "{err}");

    let url = format!("http://{}", s.admin_addr());
    let (ok, new_id, err) = run_hookwire(&["runs", "rerun", &id, "-url", &url]);
    assert!(ok, "{err}");
    let rerun = finished(&s, new_id.trim());
    assert_eq!(rerun["rerun_of"], id.as_str());
    assert_eq!(rerun["output"], "hello\n");
    assert_eq!(rerun["background"], true);
    let (ok, _, err) = run_hookwire(&["runs", "--state-dir", "/nonexistent"]);
    assert!(!ok && err.contains("-state-dir"), "{err}");
}

/// A waiting run's large body is kept in its row: read back by the API and a rerun, and no
/// file beside the journal holds it.
#[test]
fn large_bodies_of_waiting_runs_are_kept_in_the_journal() {
    let s = start(ECHO, &[]);
    let body = format!(r#"{{"word":"large","padding":"{}"}}"#, "x".repeat(5000));
    let r = s.post("/hooks/echo", "application/json", body.as_str());
    assert_eq!((r.status, r.text().as_str()), (200, "large\n"));
    let id = run_id(&r);
    assert_eq!(finished(&s, &id)["request"]["body"], body.as_str());
    assert!(!s.dir.path().join("state/bodies").exists());
    let url = format!("http://{}", s.admin_addr());
    let (ok, new_id, err) = run_hookwire(&["runs", "rerun", &id, "-url", &url]);
    assert!(ok, "{err}");
    assert_eq!(finished(&s, new_id.trim())["output"], "large\n");
}

#[test]
fn an_admin_token_is_required_when_configured() {
    // The token file must exist before the server starts, so it lives outside the server's dir.
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let s = start(
        "- {id: quick, execute-command: /bin/true}\n",
        &["-admin-token-file", token.to_str().unwrap()],
    );
    let id = run_id(&s.get("/hooks/quick"));
    let denied = s.admin_get("/-/runs");
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("WWW-Authenticate"), Some("Bearer"));
    let wrong = s
        .admin("GET", "/-/runs")
        .header("Authorization", "Bearer nope")
        .send();
    assert_eq!(wrong.status, 401);
    let allowed = s
        .admin("GET", &format!("/-/runs/{id}"))
        .header("Authorization", "Bearer t0ken")
        .send();
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    let url = format!("http://{}", s.admin_addr());
    let (ok, _, err) = run_hookwire(&["runs", "rerun", &id, "-url", &url]);
    assert!(!ok && err.contains("-admin-token-file"), "{err}");
    let token = token.to_str().unwrap();
    let (ok, _, err) = run_hookwire(&[
        "runs",
        "rerun",
        &id,
        "-url",
        &url,
        "-admin-token-file",
        token,
    ]);
    assert!(ok, "{err}");
}

/// Final statuses of the runs in a state directory, read with the CLI (the server is gone).
fn journal_statuses(state: &Path) -> BTreeMap<String, String> {
    let (ok, json, err) = run_hookwire(&[
        "runs",
        "--json",
        "--limit",
        "1000",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let runs: Vec<Value> = serde_json::from_str(&json).unwrap();
    runs.iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn accepted_runs_survive_kill_9() {
    const N: usize = 6;
    let hooks = r#"
- id: slow
  execute-command: {fixtures}/span.sh
  concurrency: queue
  pass-arguments-to-command:
    - {source: url, name: label}
    - {source: url, name: sleep}
"#;
    let first = start(hooks, &[]);
    let accepted: Vec<String> = (0..N)
        .map(|n| trigger(&first, "slow", &format!("s{n}"), 0.3))
        .collect();
    first.signal("KILL");
    let state = first.dir.path().join("state");

    let second = start(hooks, &["-state-dir", state.to_str().unwrap()]);
    let mut statuses = BTreeMap::new();
    let settled = wait_until(Duration::from_secs(20), || {
        statuses = runs(&second, "hook=slow&limit=100")
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_owned(),
                    r["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        statuses.values().all(|s| s != "queued" && s != "running")
    });
    assert!(settled, "{statuses:?}\n{}", second.logs());
    // Every accepted run is in the journal, and each one either completed or was recorded as
    // interrupted (the one running at the kill, if any: no `retry` here).
    assert_eq!(statuses.len(), N, "{statuses:?}");
    for id in &accepted {
        let status = statuses.get(id).map(String::as_str);
        assert!(
            matches!(status, Some("succeeded" | "interrupted")),
            "{id}: {status:?}"
        );
    }
    let interrupted = statuses.values().filter(|s| *s == "interrupted").count();
    assert!(interrupted <= 1, "{statuses:?}");
    assert!(second.logs().contains("resumed"), "{}", second.logs());
}

#[test]
fn runs_of_a_removed_hook_are_skipped_at_start() {
    let hooks = r#"
- id: gone
  execute-command: {fixtures}/span.sh
  concurrency: queue
  pass-arguments-to-command:
    - {source: url, name: label}
    - {source: url, name: sleep}
"#;
    let first = start(hooks, &[]);
    let ids = [
        trigger(&first, "gone", "g1", 5.0),
        trigger(&first, "gone", "g2", 5.0),
    ];
    first.signal("KILL");
    let state = first.dir.path().join("state");
    let second = start(
        "- {id: other, execute-command: /bin/true}\n",
        &["-state-dir", state.to_str().unwrap()],
    );
    for id in &ids {
        let record = run(&second, id);
        assert_eq!(record["status"], "skipped");
        assert_eq!(
            record["reason"],
            "hook `gone` is no longer defined in the hooks files"
        );
    }
}

/// A journal of the previous schema kept large bodies in `bodies/` segment files. At start they
/// are moved into their rows; a waiting run whose segment is gone is recorded as skipped with the
/// reason rather than run with an empty body, and one whose body is found runs.
#[test]
fn runs_of_an_old_journal_get_their_segment_bodies_back_or_are_skipped() {
    let hooks = r#"
- id: waited
  execute-command: {fixtures}/span.sh
  concurrency: queue
  pass-arguments-to-command:
    - {source: url, name: label}
    - {source: url, name: sleep}
"#;
    let server = Server::builder(hooks)
        .args(&["-state-dir", "{dir}/state"])
        .before_start(|dir| {
            let state = dir.join("state");
            std::fs::create_dir_all(state.join("bodies")).unwrap();
            std::fs::write(state.join("bodies/0000000001.seg"), "kept body").unwrap();
            let db = rusqlite::Connection::open(state.join("hookwire.db")).unwrap();
            db.execute_batch(
                "CREATE TABLE runs (
                    id TEXT PRIMARY KEY, hook TEXT NOT NULL, status TEXT NOT NULL,
                    concurrency_key TEXT, background INTEGER NOT NULL, rerun_of TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, signal INTEGER,
                    reason TEXT, accepted_at INTEGER NOT NULL, started_at INTEGER,
                    finished_at INTEGER, next_attempt_at INTEGER, output BLOB,
                    truncated INTEGER NOT NULL DEFAULT 0, request_id TEXT NOT NULL,
                    method TEXT NOT NULL, remote_addr TEXT NOT NULL, headers BLOB NOT NULL,
                    query TEXT NOT NULL, body BLOB NOT NULL, body_segment INTEGER,
                    body_offset INTEGER, body_length INTEGER);
                 INSERT INTO runs (id, hook, status, background, accepted_at, request_id, method,
                    remote_addr, headers, query, body, body_segment, body_offset, body_length)
                 VALUES
                    ('0001', 'waited', 'queued', 0, 0, 'a', 'POST', '127.0.0.1:1', X'',
                     'label=found&sleep=0', X'', 1, 0, 9),
                    ('0002', 'waited', 'queued', 0, 0, 'b', 'POST', '127.0.0.1:1', X'',
                     'label=lost&sleep=0', X'', 2, 0, 9);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        })
        .start();
    assert_eq!(status(&server, "0001"), "succeeded");
    assert_eq!(run(&server, "0001")["request"]["body"], "kept body");
    let lost = finished(&server, "0002");
    assert_eq!(lost["status"], "skipped", "{lost}");
    let reason = lost["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("the stored request body is lost"),
        "{lost}"
    );
    assert!(started(&server, "found"));
    assert!(!started(&server, "lost"));
    assert!(!server.dir.path().join("state/bodies").exists());
}

#[test]
fn shutdown_lets_running_commands_finish() {
    let s = start(HOOKS, &["-shutdown-timeout", "5s"]);
    let id = trigger(&s, "queue", "f1", 0.5);
    assert!(wait_until(Duration::from_secs(5), || started(&s, "f1")));
    let mut s = s;
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(stamp(&s, "end", "f1").is_some());
    let statuses = journal_statuses(&s.dir.path().join("state"));
    assert_eq!(statuses.get(&id).map(String::as_str), Some("succeeded"));
}

#[test]
fn shutdown_terminates_late_commands_and_keeps_queued_runs_for_the_next_start() {
    let mut s = start(HOOKS, &["-shutdown-timeout", "300ms"]);
    let running = trigger(&s, "queue", "t1", 30.0);
    let queued = trigger(&s, "queue", "t2", 0.1);
    assert!(wait_until(Duration::from_secs(5), || started(&s, "t1")));
    let began = Instant::now();
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    let state = s.dir.path().join("state");
    let statuses = journal_statuses(&state);
    assert_eq!(
        statuses.get(&running).map(String::as_str),
        Some("interrupted")
    );
    assert_eq!(statuses.get(&queued).map(String::as_str), Some("queued"));

    let next = start(HOOKS, &["-state-dir", state.to_str().unwrap()]);
    assert_eq!(status(&next, &queued), "succeeded");
    assert!(stamp(&next, "end", "t2").is_some());
}

#[test]
fn a_refused_delivery_is_not_remembered_as_seen() {
    let hooks = r#"
- id: once
  execute-command: {fixtures}/span.sh
  concurrency: reject
  dedupe: 1h
  delivery-id: {source: header, name: X-Delivery}
  pass-arguments-to-command:
    - {source: url, name: label}
    - {source: url, name: sleep}
"#;
    let s = start(hooks, &[]);
    let send = |delivery: &str, label: &str| {
        s.request("GET", &format!("/hooks/once?label={label}&sleep=0.3"))
            .header("X-Delivery", delivery)
            .send()
    };
    let first = send("d1", "o1");
    assert_eq!(first.status, 200);
    assert_eq!(send("d2", "o2").status, 503);
    finished(&s, &run_id(&first));
    // The sender retries d2: it was refused, so it is new, not a duplicate.
    let retry = send("d2", "o3");
    assert_eq!(retry.status, 200, "{}", retry.text());
    assert!(retry.header("X-Hookwire-Duplicate").is_none());
    assert_eq!(status(&s, &run_id(&retry)), "succeeded");
    // Once accepted, it is a duplicate.
    assert!(send("d2", "o4").header("X-Hookwire-Duplicate").is_some());
}

/// Hooks whose command starts `setsid sleep 1000` (which leaves its process group; its pid in
/// `$RECORD_DIR/LABEL.pid`) and then sleeps, so that hookwire ends the run.
const ESCAPING: &str = r#"
- id: timeout
  execute-command: /bin/sh
  timeout: 300ms
  pass-arguments-to-command: &escape
    - {source: string, name: -c}
    - {source: string, name: 'setsid sleep 1000 >/dev/null 2>&1 & echo $! >"$RECORD_DIR/$1.pid"; sleep 30'}
    - {source: string, name: sh}
    - {source: url, name: label}
- id: cancel
  execute-command: /bin/sh
  concurrency: cancel
  pass-arguments-to-command: *escape
- id: plain
  execute-command: /bin/sh
  pass-arguments-to-command: *escape
"#;

#[test]
fn a_timeout_ends_processes_that_left_the_group() {
    let s = start(ESCAPING, &[]);
    let id = run_id(&s.get("/hooks/timeout?label=t"));
    let escaped = crate::exec::recorded_pid(&s, "t");
    assert_eq!(status(&s, &id), "timed-out");
    crate::exec::assert_gone(escaped, "the setsid process of a timed-out run");
}

#[test]
fn cancel_ends_processes_that_left_the_group() {
    let mut s = start(ESCAPING, &["-shutdown-timeout", "300ms"]);
    let first = run_id(&s.get("/hooks/cancel?label=c1"));
    let escaped = crate::exec::recorded_pid(&s, "c1");
    assert_eq!(s.get("/hooks/cancel?label=c2").status, 200);
    assert_eq!(status(&s, &first), "cancelled");
    crate::exec::assert_gone(escaped, "the setsid process of a cancelled run");
    // The newest run is ended by the shutdown.
    let newest = crate::exec::recorded_pid(&s, "c2");
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    crate::exec::end(newest);
}

#[test]
fn shutdown_ends_processes_that_left_the_group() {
    let mut s = start(ESCAPING, &["-shutdown-timeout", "300ms"]);
    assert_eq!(s.get("/hooks/plain?label=s").status, 200);
    let escaped = crate::exec::recorded_pid(&s, "s");
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    crate::exec::assert_gone(escaped, "the setsid process of a run in flight at shutdown");
}

#[test]
fn each_attempt_knows_its_run_and_number() {
    let hooks = r#"
- id: flaky
  execute-command: /bin/sh
  retry: {attempts: 1, backoff: 100ms}
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'echo "$HOOKWIRE_RUN_ID $HOOKWIRE_ATTEMPT" >> "$RECORD_DIR/attempts.tmp"; [ "$HOOKWIRE_ATTEMPT" = 2 ]'}
"#;
    let s = start(hooks, &[]);
    let id = run_id(&s.get("/hooks/flaky"));
    assert_eq!(status(&s, &id), "succeeded");
    let attempts = std::fs::read_to_string(s.dir.path().join("records/attempts.tmp")).unwrap();
    assert_eq!(attempts, format!("{id} 1\n{id} 2\n"));
}

#[test]
fn a_run_resumed_after_a_crash_keeps_its_delivery_id() {
    let hooks = r#"
- id: signed
  execute-command: /bin/sh
  concurrency: queue
  signature: {provider: github, secret: s3cret}
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: '[ "$1" = first ] && sleep 2; env >"$RECORD_DIR/$1.env"'}
    - {source: string, name: sh}
    - {source: url, name: label}
"#;
    let first = start(hooks, &[]);
    let send = |label: &str, delivery: &str| {
        let body = "{}";
        let signature = format!(
            "sha256={}",
            crate::harness::hmac_hex("sha256", b"s3cret", body.as_bytes())
        );
        let r = first
            .request("POST", &format!("/hooks/signed?label={label}"))
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", &signature)
            .header("X-GitHub-Delivery", delivery)
            .body(body)
            .send();
        assert_eq!(r.status, 200, "{}", r.text());
        run_id(&r)
    };
    send("first", "d-first");
    // Waits behind the first in the queue when hookwire is killed.
    let waiting = send("second", "d-second");
    first.signal("KILL");
    let state = first.dir.path().join("state");

    let second = start(hooks, &["-state-dir", state.to_str().unwrap()]);
    assert_eq!(status(&second, &waiting), "succeeded");
    let env = std::fs::read_to_string(second.dir.path().join("records/second.env")).unwrap();
    assert!(
        env.lines()
            .any(|line| line == "HOOKWIRE_DELIVERY_ID=d-second"),
        "{env}"
    );
    assert!(
        env.lines()
            .any(|line| line == format!("HOOKWIRE_RUN_ID={waiting}")),
        "{env}"
    );
}

/// A small tmpfs, unmounted on drop (also when the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of `size` (`mount -o size=`); needs root.
    fn mount(size: &str) -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "mounting a tmpfs needs root"
        );
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(mounted.success(), "mount -t tmpfs failed");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills it with a new filler file, then frees `leave` bytes of it; returns the file.
    fn fill(&self, leave: u64) -> std::path::PathBuf {
        let path = self.path().join(format!("filler-{leave}"));
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.flush();
        let size = file.metadata().unwrap().len();
        file.set_len(size.saturating_sub(leave)).unwrap();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.dir.path()).status();
        if !unmounted.is_ok_and(|status| status.success()) {
            // Busy (a server still exiting): detach it now, freed once unused.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// `hookwire_queue_depth` of `hook`, read from the metrics route.
fn queue_depth(s: &Server, hook: &str) -> Option<u64> {
    let metrics = s.admin_get("/-/metrics").text();
    let line = format!("hookwire_queue_depth{{hook=\"{hook}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|value| value.trim().parse().ok())
}

/// The state directory on a disk that fills up during a burst: each delivery is either answered
/// 2xx and runs once the disk has room again, without a restart, or refused with 503 and never
/// runs; while the disk is full, the deliveries that wait are counted in the queue depth.
#[test]
#[ignore = "needs root to mount a small tmpfs"]
fn on_a_full_state_disk_every_delivery_answered_2xx_runs_once_it_has_room() {
    let tmpfs = Tmpfs::mount("2m");
    // Run `first` holds the lane until the file `go` exists; the others end at once.
    let hooks = r#"
- id: burst
  execute-command: /bin/sh
  concurrency: queue
  max-queue: 100
  pass-arguments-to-command:
    - {source: string, name: "-c"}
    - source: string
      name: |
        stamp() { date +%s%N > "$RECORD_DIR/$1-$0.tmp" && mv "$RECORD_DIR/$1-$0.tmp" "$RECORD_DIR/$1-$0"; }
        stamp start
        while [ "$0" = first ] && [ ! -e "$RECORD_DIR/go" ]; do sleep 0.05; done
        stamp end
    - {source: url, name: label}
"#;
    let state = tmpfs.path().join("state");
    let s = start(hooks, &["-state-dir", state.to_str().unwrap()]);
    let post = |label: &str| {
        let body = "x".repeat(4 << 10);
        s.post(&format!("/hooks/burst?label={label}"), "text/plain", body)
    };
    let first = post("first");
    assert_eq!(first.status, 200);
    let mut ids = vec![run_id(&first)];
    assert!(wait_until(Duration::from_secs(10), || started(&s, "first")));

    // Room for a few deliveries, not for all of them.
    let filler = tmpfs.fill(128 << 10);
    let mut accepted = vec!["first".to_owned()];
    let mut refused = Vec::new();
    for n in 0..40 {
        let label = format!("b{n}");
        let r = post(&label);
        match r.status {
            200 => {
                ids.push(run_id(&r));
                accepted.push(label);
            }
            503 => {
                assert_eq!(r.header("Retry-After"), Some("5"));
                assert!(r.header(RUN).is_none(), "a refused run has no id");
                refused.push(label);
            }
            other => panic!("{label}: {other} {}\n{}", r.text(), s.logs()),
        }
    }
    assert!(
        accepted.len() > 1 && !refused.is_empty(),
        "the disk did not fill during the burst: {accepted:?} {refused:?}"
    );
    assert!(s.logs().contains("not accepted"), "{}", s.logs());
    // No room at all now: the accepted runs cannot all be started.
    let last_bytes = tmpfs.fill(0);
    // Empty deliveries until one is refused: not even the space a failed write left at the end
    // of the WAL is left.
    for n in 0.. {
        let label = format!("small{n}");
        let r = s.post(&format!("/hooks/burst?label={label}"), "text/plain", "");
        if r.status == 503 {
            refused.push(label);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(run_id(&r));
        accepted.push(label);
    }
    std::fs::write(s.dir.path().join("records/go"), "").unwrap();
    let stalled = s.wait_for_log("it waits and tries again", Duration::from_secs(10));
    assert!(
        stalled,
        "no run waits for the journal after a failed start\n{}",
        s.logs()
    );
    // What is stored and not started is counted as waiting.
    let mut seen = (None, 0);
    let counted = wait_until(Duration::from_secs(10), || {
        let started = accepted.iter().filter(|l| started(&s, l)).count();
        seen = (queue_depth(&s, "burst"), started);
        started < accepted.len() && seen.0 == Some((accepted.len() - started) as u64)
    });
    assert!(
        counted,
        "queue depth {:?} with {} of {} accepted runs started\n{}",
        seen.0,
        seen.1,
        accepted.len(),
        s.logs()
    );

    std::fs::remove_file(filler).unwrap();
    std::fs::remove_file(last_bytes).unwrap();
    let ran = wait_until(Duration::from_secs(20), || {
        accepted.iter().all(|l| stamp(&s, "end", l).is_some())
    });
    assert!(ran, "not every accepted delivery ran\n{}", s.logs());
    // Their ends are journaled too, including those that fell on the full disk.
    for id in &ids {
        assert_eq!(status(&s, id), "succeeded");
    }
    assert!(wait_until(Duration::from_secs(5), || queue_depth(
        &s, "burst"
    ) == Some(0)));
    for label in &refused {
        assert!(!started(&s, label), "refused delivery {label} ran");
    }
}

/// A journal that is not a database stops the start, in the state directory asked for and in
/// the default one alike, with a message that says it is corrupt and how to recover.
#[test]
fn a_corrupt_journal_stops_the_start_and_says_how_to_recover() {
    let garbage: Vec<u8> = (0..8192u32).map(|n| (n * 7919 % 251) as u8).collect();
    for (state_dir, args) in [
        ("state", &["-state-dir", "{dir}/state"][..]),
        (".hookwire", &[]),
    ] {
        let garbage = garbage.clone();
        let s = Server::builder("- {id: quick, execute-command: /bin/true}\n")
            .args(args)
            .before_start(move |dir| {
                std::fs::create_dir(dir.join(state_dir)).unwrap();
                std::fs::write(dir.join(state_dir).join("hookwire.db"), garbage).unwrap();
            })
            .start_failing();
        let logs = s.logs();
        // The default state directory is named relative to the working directory.
        let file = if args.is_empty() {
            Path::new(state_dir).join("hookwire.db")
        } else {
            s.dir.path().join(state_dir).join("hookwire.db")
        };
        let file = file.display();
        assert!(
            logs.contains(&format!("error: the run journal {file} is corrupt")),
            "{logs}"
        );
        assert!(logs.contains(&format!("sqlite3 {file} .recover")), "{logs}");
        assert!(logs.contains(&format!("move {file}")), "{logs}");
        assert!(!logs.contains("writable"), "{logs}");
        assert!(!logs.contains("serving hooks"), "{logs}");
    }
}

/// Under `-max-concurrent-runs`, `parallel` runs waiting for a slot are held to the hook's
/// `max-queue`: beyond it a delivery is refused with 503 and `Retry-After` (memory stays bounded
/// under an overload that lasts), and the count comes down again as the runs start.
#[test]
fn parallel_runs_waiting_for_a_slot_are_held_to_max_queue() {
    let hooks = r#"
- id: capped
  execute-command: {fixtures}/span.sh
  max-queue: 2
  pass-arguments-to-command:
    - {source: url, name: label}
    - {source: url, name: sleep}
"#;
    let s = start(hooks, &["-max-concurrent-runs", "1"]);
    let first = trigger(&s, "capped", "c1", 0.8);
    assert!(wait_until(Duration::from_secs(5), || started(&s, "c1")));
    let waiting: Vec<String> = ["c2", "c3"]
        .iter()
        .map(|l| trigger(&s, "capped", l, 0.0))
        .collect();
    // Both slots of the wait are taken: every further delivery is refused, none is kept.
    for label in ["c4", "c5", "c6"] {
        let refused = s.get(&format!("/hooks/capped?label={label}&sleep=0"));
        assert_eq!(refused.status, 503, "{label}: {}", refused.text());
        assert_eq!(refused.header("Retry-After"), Some("5"));
        assert!(refused.header(RUN).is_none(), "a refused run has no id");
    }
    assert_eq!(queue_depth(&s, "capped"), Some(2));
    for id in std::iter::once(&first).chain(&waiting) {
        assert_eq!(status(&s, id), "succeeded");
    }
    assert!(wait_until(Duration::from_secs(5), || queue_depth(
        &s, "capped"
    ) == Some(0)));
    // The wait is free again.
    let later = trigger(&s, "capped", "c7", 0.0);
    assert_eq!(status(&s, &later), "succeeded");
    for label in ["c4", "c5", "c6"] {
        assert!(!started(&s, label), "{label} was refused but ran");
    }
}
