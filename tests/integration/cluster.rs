//! Several hookwire nodes on one NATS JetStream store (`-nats-url`), against a real 3-node
//! `nats-server` cluster on loopback: shared work, policies across nodes, dedupe, history, and
//! what happens when a hookwire node or NATS nodes die.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Server, run_id, wait_until};
use crate::nats_cluster::NatsCluster;

const NEEDS: &str = "needs nats-server (apt-get install nats-server)";

/// A hook per policy; each run appends `<run id> <node> <attempt> start|end` lines to
/// `shared/runs.log`, which every node of the test writes to.
fn hooks(shared: &Path) -> String {
    let log = shared.join("runs.log");
    let log = log.display();
    let hook = |id: &str, extra: &str, seconds: &str| {
        format!(
            "- id: {id}\n  execute-command: /bin/sh\n  pass-arguments-to-command:\n    - source: string\n      name: -c\n    - source: string\n      name: 'echo \"$HOOKWIRE_RUN_ID $NODE $HOOKWIRE_ATTEMPT start\" >> {log}; sleep {seconds}; echo \"$HOOKWIRE_RUN_ID $NODE $HOOKWIRE_ATTEMPT end\" >> {log}'\n  pass-environment-to-command:\n    - source: string\n      envname: NODE\n      name: '{{{{NODE}}}}'\n{extra}"
        )
    };
    [
        hook("work", "", "0.3"),
        hook("quick", "", "0"),
        hook("narrow", "  concurrency: queue\n  max-queue: 1\n", "3"),
        hook("queue", "  concurrency: queue\n", "0.2"),
        hook("latest", "  concurrency: latest\n", "1"),
        hook("cancel", "  concurrency: cancel\n", "30"),
        hook("reject", "  concurrency: reject\n", "2"),
        hook(
            "dedupe",
            "  dedupe: 1h\n  delivery-id:\n    source: header\n    name: X-Delivery\n",
            "0",
        ),
        hook("slow", "  retry:\n    attempts: 2\n    backoff: 1s\n", "4"),
    ]
    .join("")
        + "- id: wait\n  execute-command: /bin/echo\n  include-command-output-in-response: true\n  pass-arguments-to-command:\n    - source: string\n      name: from\n    - source: string\n      name: '{{NODE}}'\n"
}

/// A hookwire node named `name` on the cluster.
fn node(nats: &NatsCluster, shared: &Path, name: &str, extra: &[&str]) -> Server {
    let hooks = hooks(shared).replace("{{NODE}}", name);
    let urls = nats.urls().join(",");
    let server = Server::builder(&hooks)
        .args(&[
            "-nats-url",
            &urls,
            "-nats-replicas",
            "3",
            "-node-name",
            name,
        ])
        .args(extra)
        .start();
    assert!(
        server.wait_for_log("pulling the runs of", Duration::from_secs(30)),
        "{name} does not pull runs: {}",
        server.logs()
    );
    server
}

/// The lines of the shared log: (run id, node, attempt, start|end).
fn lines(shared: &Path) -> Vec<(String, String, u32, String)> {
    std::fs::read_to_string(shared.join("runs.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            Some((
                fields.next()?.to_owned(),
                fields.next()?.to_owned(),
                fields.next()?.parse().ok()?,
                fields.next()?.to_owned(),
            ))
        })
        .collect()
}

fn ends(shared: &Path) -> Vec<(String, String)> {
    lines(shared)
        .into_iter()
        .filter(|line| line.3 == "end")
        .map(|(id, node, _, _)| (id, node))
        .collect()
}

/// A 3-node NATS cluster and two hookwire nodes on it, `alpha` and `beta`, with the directory
/// their commands write to.
async fn two_nodes(extra: &[&str]) -> (NatsCluster, tempfile::TempDir, Server, Server) {
    let nats = NatsCluster::start(3).await;
    let shared = tempfile::tempdir().expect("tempdir");
    let a = node(&nats, shared.path(), "alpha", extra);
    let b = node(&nats, shared.path(), "beta", extra);
    (nats, shared, a, b)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nats-server (apt-get install nats-server)"]
async fn two_nodes_share_the_work_and_every_node_shows_every_run() {
    let _ = NEEDS;
    let (_nats, dir, a, b) = two_nodes(&["-max-concurrent-runs", "2"]).await;
    let shared = dir.path();
    // Below 2.10, NATS acknowledges before it syncs; a node says so at start.
    let warned = a
        .logs()
        .contains("acknowledges a publish before it is on disk");
    assert_eq!(
        warned,
        crate::nats_cluster::nats_server_version() < (2, 10, 0)
    );
    let accepted = accept_in_turn([&a, &b], "work", 12);
    assert!(
        wait_until(Duration::from_secs(60), || ends(shared).len() >= 12),
        "runs ended: {:?}\nalpha:\n{}\nbeta:\n{}",
        ends(shared),
        a.logs(),
        b.logs()
    );
    let ran = ends(shared);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (id, _) in &ran {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    for id in &accepted {
        assert_eq!(
            counts.get(id.as_str()),
            Some(&1),
            "run {id} ran {:?} times",
            counts.get(id.as_str())
        );
    }
    let nodes: std::collections::HashSet<&str> =
        ran.iter().map(|(_, node)| node.as_str()).collect();
    assert_eq!(nodes.len(), 2, "one node ran everything: {ran:?}");

    // Every node's history has every run, with the node that ran it.
    for server in [&a, &b] {
        for (id, node) in &ran {
            let shown = wait_until(Duration::from_secs(20), || {
                let run: serde_json::Value =
                    serde_json::from_slice(&server.admin_get(&format!("/-/runs/{id}")).body)
                        .unwrap_or_default();
                run["status"] == "succeeded" && run["node"] == node.as_str()
            });
            assert!(shown, "run {id} (ran on {node}) is not in a node's history");
        }
    }
    // `hookwire runs` reads a node's projection of the shared history.
    let state = a.dir.path().join(".hookwire");
    for (id, node) in &ran {
        let (ok, shown, err) = crate::harness::run_hookwire(&[
            "runs",
            "show",
            id,
            "--state-dir",
            state.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        assert!(
            shown
                .lines()
                .any(|line| line.contains("node") && line.ends_with(node.as_str())),
            "{shown}"
        );
    }
}

/// The run's status in `server`'s history, once it is there.
fn status(server: &Server, id: &str) -> String {
    let run: serde_json::Value =
        serde_json::from_slice(&server.admin_get(&format!("/-/runs/{id}")).body)
            .unwrap_or_default();
    run["status"].as_str().unwrap_or_default().to_owned()
}

fn wait_status(server: &Server, id: &str, wanted: &str) {
    let mut last = String::new();
    let reached = wait_until(Duration::from_secs(30), || {
        last = status(server, id);
        last == wanted
    });
    assert!(
        reached,
        "run {id} is {last:?}, not {wanted}; log:\n{}",
        server.logs()
    );
}

fn wait_line(shared: &Path, id: &str, what: &str) -> (String, u32) {
    let mut found = None;
    let seen = wait_until(Duration::from_secs(40), || {
        found = lines(shared)
            .into_iter()
            .find(|line| line.0 == id && line.3 == what)
            .map(|line| (line.1, line.2));
        found.is_some()
    });
    assert!(seen, "run {id} never logged {what}: {:?}", lines(shared));
    found.unwrap()
}

fn post(server: &Server, hook: &str) -> crate::harness::Response {
    server.post(&format!("/hooks/{hook}"), "application/json", "{}")
}

/// Posts `count` deliveries to `hook`, to the nodes in turn; the run ids, all accepted.
fn accept_in_turn(nodes: [&Server; 2], hook: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let response = post(nodes[i % 2], hook);
            assert_eq!(response.status, 200, "{}", response.text());
            run_id(&response)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nats-server (apt-get install nats-server)"]
async fn a_queue_keeps_its_order_and_never_overlaps_across_nodes() {
    let (_nats, dir, a, b) = two_nodes(&[]).await;
    let shared = dir.path();
    let accepted = accept_in_turn([&a, &b], "queue", 8);
    assert!(wait_until(Duration::from_secs(60), || ends(shared).len() >= 8));
    let log = lines(shared);
    // Strictly start, end, start, end, ... in the order of acceptance.
    let expected: Vec<(String, String)> = accepted
        .iter()
        .flat_map(|id| {
            [
                (id.clone(), "start".to_owned()),
                (id.clone(), "end".to_owned()),
            ]
        })
        .collect();
    let seen: Vec<(String, String)> = log.iter().map(|l| (l.0.clone(), l.3.clone())).collect();
    assert_eq!(seen, expected, "runs overlapped or ran out of order");
    let nodes: std::collections::HashSet<&str> = log.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(
        nodes.len(),
        2,
        "both nodes take turns serving the queue: {log:?}"
    );

    // `max-queue` counts the runs waiting on every node.
    let running = run_id(&post(&a, "narrow"));
    wait_line(shared, &running, "start");
    assert_eq!(post(&b, "narrow").status, 200, "one may wait");
    let full = post(&a, "narrow");
    assert_eq!(full.status, 503, "{}", full.text());
    assert!(full.header("Retry-After").is_some());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nats-server (apt-get install nats-server)"]
async fn latest_cancel_and_reject_hold_across_nodes() {
    let (_nats, dir, a, b) = two_nodes(&[]).await;
    let shared = dir.path();

    // latest: while the first runs, three more arrive on both nodes; only the newest runs next.
    let first = run_id(&post(&a, "latest"));
    wait_line(shared, &first, "start");
    let waiting: Vec<String> = [&b, &a, &b]
        .iter()
        .map(|s| run_id(&post(s, "latest")))
        .collect();
    wait_line(shared, &waiting[2], "end");
    wait_status(&a, &waiting[0], "superseded");
    wait_status(&b, &waiting[1], "superseded");
    let log = lines(shared);
    assert!(
        !log.iter().any(|l| l.0 == waiting[0] || l.0 == waiting[1]),
        "{log:?}"
    );
    let first_end = log
        .iter()
        .position(|l| l.0 == first && l.3 == "end")
        .unwrap();
    let last_start = log
        .iter()
        .position(|l| l.0 == waiting[2] && l.3 == "start")
        .unwrap();
    assert!(first_end < last_start, "latest runs overlapped: {log:?}");

    // cancel: a newer run on the other node stops the running one.
    let old = run_id(&post(&a, "cancel"));
    wait_line(shared, &old, "start");
    let new = run_id(&post(&b, "cancel"));
    wait_line(shared, &new, "start");
    wait_status(&b, &old, "cancelled");
    assert!(
        !lines(shared).iter().any(|l| l.0 == old && l.3 == "end"),
        "the cancelled command went on"
    );

    // reject: refused on any node while a run is in progress, accepted again after it.
    let running = run_id(&post(&a, "reject"));
    wait_line(shared, &running, "start");
    let refused = post(&b, "reject");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("Retry-After").is_some());
    assert_eq!(post(&a, "reject").status, 503);
    wait_status(&b, &running, "succeeded");
    let again = post(&b, "reject");
    assert_eq!(again.status, 200, "{}", again.text());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nats-server (apt-get install nats-server)"]
async fn a_delivery_is_deduplicated_across_nodes_and_a_waiting_client_gets_the_output() {
    let (_nats, dir, a, b) = two_nodes(&[]).await;
    let shared = dir.path();
    let delivery = |server: &Server| {
        server
            .request("POST", "/hooks/dedupe")
            .header("Content-Type", "application/json")
            .header("X-Delivery", "d-1")
            .body("{}")
            .send()
    };
    let first = delivery(&a);
    assert_eq!(first.status, 200);
    let id = run_id(&first);
    let again = delivery(&b);
    assert_eq!(again.status, 200);
    assert_eq!(again.header("X-Hookwire-Duplicate"), Some(id.as_str()));
    wait_line(shared, &id, "end");
    assert_eq!(ends(shared).len(), 1, "{:?}", lines(shared));

    // The command runs on some node; the client of either node gets its output.
    for server in [&a, &b] {
        let response = post(server, "wait");
        assert_eq!(response.status, 200);
        let text = response.text();
        assert!(text == "from alpha\n" || text == "from beta\n", "{text:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nats-server (apt-get install nats-server)"]
async fn a_node_stopped_with_sigterm_finishes_and_records_its_run() {
    let nats = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path();
    let mut a = node(&nats, shared, "alpha", &[]);
    let id = run_id(&post(&a, "latest"));
    assert_eq!(wait_line(shared, &id, "start").0, "alpha");
    let b = node(&nats, shared, "beta", &[]);
    a.signal("TERM");
    assert_eq!(
        a.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        a.logs()
    );
    assert_eq!(wait_line(shared, &id, "end").0, "alpha");
    wait_status(&b, &id, "succeeded");
    assert_eq!(
        ends(shared).len(),
        1,
        "run again elsewhere: {:?}",
        lines(shared)
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nats-server (apt-get install nats-server)"]
async fn a_hook_added_by_a_reload_is_pulled_from_then_on() {
    let nats = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path();
    let a = node(&nats, shared, "alpha", &["-hotreload"]);
    let count = hooks(shared).matches("- id: ").count();
    let added = hooks(shared).replace("{{NODE}}", "alpha")
        + "- id: fresh\n  execute-command: /bin/sh\n  pass-arguments-to-command:\n    - source: string\n      name: -c\n    - source: string\n      name: 'echo \"$HOOKWIRE_RUN_ID alpha 1 end\" >> RUNS'\n";
    a.replace_hooks(&added.replace("RUNS", &shared.join("runs.log").display().to_string()));
    let pulling = format!("pulling the runs of {} hook(s)", count + 1);
    assert!(
        a.wait_for_log(&pulling, Duration::from_secs(30)),
        "{}",
        a.logs()
    );
    let id = run_id(&post(&a, "fresh"));
    wait_line(shared, &id, "end");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nats-server (apt-get install nats-server)"]
async fn a_run_whose_node_is_killed_runs_again_on_another_node_as_attempt_2() {
    let nats = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path();
    let a = node(&nats, shared, "alpha", &[]);
    let id = run_id(&post(&a, "slow"));
    assert_eq!(wait_line(shared, &id, "start"), ("alpha".to_owned(), 1));
    let b = node(&nats, shared, "beta", &[]);
    // A crash: the command itself goes on (as a command outlives any SIGKILLed parent).
    a.signal("KILL");
    let mut again = None;
    let ran_again = wait_until(Duration::from_secs(40), || {
        again = lines(shared)
            .into_iter()
            .find(|line| line.0 == id && line.1 == "beta" && line.3 == "end");
        again.is_some()
    });
    assert!(
        ran_again,
        "not run again on beta: {:?}\n{}",
        lines(shared),
        b.logs()
    );
    assert_eq!(again.unwrap().2, 2, "the lost attempt is counted");
    let run: serde_json::Value =
        serde_json::from_slice(&b.admin_get(&format!("/-/runs/{id}")).body).unwrap();
    wait_status(&b, &id, "succeeded");
    assert!(run["attempts"].as_u64() >= Some(2), "{run}");
}

/// What a client saw of one delivery.
struct Sent {
    at: Instant,
    status: u16,
    run: Option<String>,
    retry_after: bool,
}

/// Posts to `hook` on the nodes in turn, every 10 ms, into `sent`, until `stop` is set.
fn keep_posting(
    nodes: &[&Server],
    hook: &str,
    sent: &std::sync::Mutex<Vec<Sent>>,
    stop: &std::sync::atomic::AtomicBool,
) {
    let mut turn = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let response = post(nodes[turn % nodes.len()], hook);
        turn += 1;
        sent.lock().unwrap().push(Sent {
            at: Instant::now(),
            status: response.status,
            run: response.header("X-Hookwire-Run").map(str::to_owned),
            retry_after: response.header("Retry-After").is_some(),
        });
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every delivery answered 2xx ran exactly once; the nodes' logs say why not.
fn every_accepted_ran_once(shared: &Path, sent: &[Sent], nodes: &[&Server]) {
    let accepted: Vec<&str> = sent.iter().filter_map(|s| s.run.as_deref()).collect();
    let all_ran = wait_until(Duration::from_secs(60), || {
        let ended = ends(shared);
        accepted
            .iter()
            .all(|id| ended.iter().any(|(run, _)| run == id))
    });
    let ended = ends(shared);
    let missing: Vec<&&str> = accepted
        .iter()
        .filter(|id| !ended.iter().any(|(run, _)| run == *id))
        .collect();
    let logs: Vec<String> = nodes.iter().map(|node| node.logs()).collect();
    assert!(
        all_ran,
        "{} accepted, {} ran; never ran: {missing:?}\n{}",
        accepted.len(),
        ended.len(),
        logs.join("\n")
    );
    for id in &accepted {
        let times = ended.iter().filter(|(run, _)| run == id).count();
        assert_eq!(times, 1, "run {id} ran {times} times");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nats-server (apt-get install nats-server)"]
async fn the_nats_stream_leader_killed_under_load_loses_no_accepted_delivery() {
    let (mut nats, dir, a, b) = two_nodes(&[]).await;
    let shared = dir.path();
    assert_eq!(post(&a, "quick").status, 200);
    let leader = nats.stream_leader("HOOKWIRE_RUNS").await;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let sent = std::sync::Mutex::new(Vec::new());
    let killed_at = std::thread::scope(|scope| {
        scope.spawn(|| keep_posting(&[&a, &b], "quick", &sent, &stop));
        assert!(wait_until(Duration::from_secs(10), || sent
            .lock()
            .unwrap()
            .len()
            >= 20));
        nats.kill(leader);
        let killed_at = Instant::now();
        // Until deliveries are accepted again, and as many again after that.
        let mut resumed_at = None;
        let resumed = wait_until(Duration::from_secs(30), || {
            let sent = sent.lock().unwrap();
            resumed_at = resumed_at.or_else(|| {
                sent.iter()
                    .any(|s| s.at > killed_at && s.status == 200)
                    .then_some(sent.len())
            });
            resumed_at.is_some_and(|count| sent.len() >= count + 40)
        });
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(
            resumed,
            "no delivery accepted again within 30 s of the leader's death"
        );
        killed_at
    });
    let sent = sent.into_inner().unwrap();
    let refused: Vec<&Sent> = sent.iter().filter(|s| s.status != 200).collect();
    for s in &refused {
        assert_eq!(s.status, 503, "only 503 while NATS elects a leader");
        assert!(s.retry_after, "a 503 says when to retry");
        assert!(
            s.at >= killed_at,
            "refused before the kill: {}\n{}",
            a.logs(),
            b.logs()
        );
    }
    let first_after = sent
        .iter()
        .find(|s| s.at > killed_at && s.status == 200)
        .expect("accepted again after the leader died");
    let last_refused = refused.iter().map(|s| s.at).max().unwrap_or(killed_at);
    assert!(
        last_refused.duration_since(killed_at) < Duration::from_secs(15),
        "503s went on for {:?}",
        last_refused.duration_since(killed_at)
    );
    assert!(first_after.at.duration_since(killed_at) < Duration::from_secs(10));
    assert!(sent.iter().filter(|s| s.status == 200).count() > 50);
    every_accepted_ran_once(shared, &sent, &[&a, &b]);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nats-server (apt-get install nats-server)"]
async fn without_a_nats_majority_deliveries_get_503_fast_and_nothing_accepted_is_lost() {
    let (mut nats, dir, mut a, b) = two_nodes(&[]).await;
    let shared = dir.path();
    let accepted = accept_in_turn([&a, &b], "queue", 6);

    nats.kill(1);
    nats.kill(2);
    let asked = Instant::now();
    let refused = post(&b, "quick");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("Retry-After").is_some());
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "took {:?}",
        asked.elapsed()
    );

    // Everything goes down and comes back: what was accepted still runs.
    a.signal("KILL");
    let _ = a.wait_exit(Duration::from_secs(5));
    drop(b);
    nats.kill(0);
    nats.restart_all().await;
    let a = node(&nats, shared, "alpha", &[]);
    let b = node(&nats, shared, "beta", &[]);
    for id in &accepted {
        let done = wait_until(Duration::from_secs(60), || {
            ends(shared).iter().any(|(run, _)| run == id) || status(&a, id) == "interrupted"
        });
        assert!(done, "run {id} was lost: {:?}\n{}", lines(shared), a.logs());
    }
    let again = wait_until(Duration::from_secs(30), || post(&b, "quick").status == 200);
    assert!(again, "not accepting after the restart");
}

/// A single nats-server on a free loopback port with `config` (and `listen` added); killed on
/// drop.
struct LoneServer {
    process: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl LoneServer {
    fn start(config: &str) -> LoneServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let path = dir.path().join("nats.conf");
        let store = crate::nats_cluster::quoted(&dir.path().join("js"));
        let config = config.replace("STORE", &store);
        std::fs::write(&path, format!("listen: 127.0.0.1:{port}\n{config}")).unwrap();
        let process = std::process::Command::new(crate::nats_cluster::nats_server_binary())
            .arg("-c")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nats-server");
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "nats-server did not listen");
        LoneServer {
            process,
            url: format!("nats://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for LoneServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[test]
#[ignore = "needs nats-server (apt-get install nats-server)"]
fn an_account_without_jetstream_or_a_wrong_password_stops_the_start_saying_why() {
    let plain = LoneServer::start("");
    let server = Server::builder("[]")
        .args(&["-nats-url", &plain.url])
        .start_failing();
    let logs = server.logs();
    assert!(logs.contains("JetStream enabled"), "{logs}");

    let guarded = LoneServer::start(
        "jetstream { store_dir: STORE }\nauthorization { user: hookwire, password: right }\nmax_payload: 65536\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path();
    let hooks = hooks(shared).replace("{{NODE}}", "solo");
    // A node of the guarded server, with `password` in its password file.
    let guarded_node = |password: &'static str| {
        Server::builder(&hooks)
            .before_start(move |dir: &Path| std::fs::write(dir.join("pw"), password).unwrap())
            .args(&["-nats-url", &guarded.url, "-nats-user", "hookwire"])
            .args(&["-nats-password-file", "{dir}/pw"])
    };
    let refused = guarded_node("wrong\n").start_failing();
    let logs = refused.logs();
    assert!(logs.contains("cannot connect to NATS at"), "{logs}");
    assert!(
        !logs.contains("wrong"),
        "the password is not logged: {logs}"
    );

    let solo = guarded_node("right\n").start();
    let id = run_id(&post(&solo, "quick"));
    wait_line(shared, &id, "end");
    wait_status(&solo, &id, "succeeded");

    // A request larger than a NATS message can hold is refused for good, and the log says
    // which limit to raise.
    let large = format!("{{\"pad\": \"{}\"}}", "x".repeat(60_000));
    let refused = solo.post("/hooks/quick", "application/json", large);
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert!(refused.header("Retry-After").is_none());
    assert!(
        solo.wait_for_log("max_payload", Duration::from_secs(5)),
        "{}",
        solo.logs()
    );
}
