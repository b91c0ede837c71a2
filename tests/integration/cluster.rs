//! Several hookwire nodes on one NATS JetStream store (`-nats-url`), against a real 3-node
//! `nats-server` cluster on loopback: shared work, policies across nodes, dedupe, history, and
//! what happens when a hookwire node or NATS nodes die.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
        hook("wait", "  include-command-output-in-response: true\n", "0"),
    ]
    .join("")
}

/// A hookwire node named `name` on the cluster.
fn node(nats: &NatsCluster, shared: &Path, name: &str, extra: &[&str]) -> Server {
    let hooks = hooks(shared).replace("{{NODE}}", name);
    let urls = nats.urls().join(",");
    Server::builder(&hooks)
        .args(&[
            "-nats-url",
            &urls,
            "-nats-replicas",
            "3",
            "-node-name",
            name,
        ])
        .args(extra)
        .start()
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

fn shared_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    (dir, path)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs nats-server (apt-get install nats-server)"]
async fn two_nodes_share_the_work_and_every_node_shows_every_run() {
    let _ = NEEDS;
    let nats = NatsCluster::start(3).await;
    let (_keep, shared) = shared_dir();
    let a = node(&nats, &shared, "alpha", &["-max-concurrent-runs", "2"]);
    let b = node(&nats, &shared, "beta", &["-max-concurrent-runs", "2"]);
    let mut accepted = Vec::new();
    for i in 0..12 {
        let server = if i % 2 == 0 { &a } else { &b };
        let response = server.post("/hooks/work", "application/json", "{}");
        assert_eq!(response.status, 200, "{}", response.text());
        accepted.push(run_id(&response));
    }
    assert!(
        wait_until(Duration::from_secs(60), || ends(&shared).len() >= 12),
        "runs ended: {:?}\nalpha:\n{}\nbeta:\n{}",
        ends(&shared),
        a.logs(),
        b.logs()
    );
    let ran = ends(&shared);
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
}
