//! Test fixture: a JetStream cluster of real `nats-server` processes on loopback, each node with
//! its own ports, configuration file, store directory and log file. Killed on drop.

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::Response;

/// How long a cluster may take to elect its leaders after a start, a restart or a kill.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Between two looks at the monitoring endpoints.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A running JetStream cluster.
pub struct NatsCluster {
    dir: tempfile::TempDir,
    binary: PathBuf,
    nodes: Vec<Node>,
}

struct Node {
    name: String,
    client_port: u16,
    monitor_port: u16,
    config: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

impl NatsCluster {
    /// Starts `size` nodes and waits until they have elected a JetStream meta leader that sees
    /// every other node as current.
    pub async fn start(size: usize) -> NatsCluster {
        let binary = nats_server_binary();
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = free_ports(3 * size);
        let route_ports = &ports[2 * size..];
        let routes = route_ports
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(", ");
        let nodes = (0..size)
            .map(|index| {
                let name = format!("n{index}");
                let node_dir = dir.path().join(&name);
                std::fs::create_dir(&node_dir).expect("node dir");
                let node = Node {
                    client_port: ports[index],
                    monitor_port: ports[size + index],
                    config: node_dir.join("nats.conf"),
                    log: node_dir.join("nats.log"),
                    process: None,
                    name,
                };
                // 2.9 has no `sync_interval` (it refuses the file), so it is left out.
                let config = format!(
                    "server_name: {name}\n\
                     listen: 127.0.0.1:{client}\n\
                     http: 127.0.0.1:{monitor}\n\
                     jetstream {{ store_dir: {store} }}\n\
                     cluster {{\n  name: hookwire-test\n  listen: 127.0.0.1:{route}\n  routes: [{routes}]\n}}\n",
                    name = node.name,
                    client = node.client_port,
                    monitor = node.monitor_port,
                    store = quoted(&node_dir.join("jetstream")),
                    route = route_ports[index],
                );
                std::fs::write(&node.config, config).expect("write nats.conf");
                node
            })
            .collect();
        let mut cluster = NatsCluster { dir, binary, nodes };
        for index in 0..size {
            cluster.spawn(index);
        }
        cluster.wait_ready().await;
        cluster
    }

    /// Every node's client URL, as a client configured for the cluster lists them.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|node| self.url(node)).collect()
    }

    pub fn url(&self, node: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[node].client_port)
    }

    /// A client connected to the cluster, with every node's URL.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(self.urls())
            .await
            .unwrap_or_else(|error| panic!("connect to {:?}: {error}", self.urls()))
    }

    /// The node's `server_name`.
    pub fn name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// What the node has logged, over all its starts.
    pub fn logs(&self, node: usize) -> String {
        std::fs::read_to_string(&self.nodes[node].log).unwrap_or_default()
    }

    /// Kills the node with SIGKILL, as a crash or a power loss of its machine would.
    pub fn kill(&mut self, node: usize) {
        let mut process = self.nodes[node]
            .process
            .take()
            .unwrap_or_else(|| panic!("node {node} is not running"));
        process.kill().expect("SIGKILL nats-server");
        process.wait().expect("reap nats-server");
    }

    /// Starts a killed node again on its ports, store directory and log, and waits until the
    /// cluster has a meta leader that sees it as current.
    pub async fn restart(&mut self, node: usize) {
        self.spawn(node);
        self.wait_ready().await;
    }

    /// Starts every killed node again at once (a cluster down to one node has no quorum to
    /// wait for), and waits until the cluster is ready.
    pub async fn restart_all(&mut self) {
        for node in 0..self.nodes.len() {
            if self.nodes[node].process.is_none() {
                self.spawn(node);
            }
        }
        self.wait_ready().await;
    }

    /// Waits until a running node says it leads the stream, and returns that node.
    pub async fn stream_leader(&self, stream: &str) -> usize {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            for node in self.running() {
                // A node's own word that it leads (another's may name a dead leader).
                if let Some(jsz) = monitor(self.nodes[node].monitor_port, "/jsz?streams=true").await
                    && stream_leader_in(&jsz, stream).as_deref() == Some(&self.nodes[node].name)
                {
                    return node;
                }
            }
            if Instant::now() >= deadline {
                self.fail(&format!("stream {stream} has no leader"));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&node| self.nodes[node].process.is_some())
    }

    fn spawn(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        assert!(node.process.is_none(), "node {index} is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open nats.log");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&node.config)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", self.binary.display()));
        node.process = Some(child);
    }

    /// Waits until every running node names the same meta leader and that leader sees every
    /// other running node as a current peer.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.ready().await {
            if let Some(node) = self.exited() {
                self.fail(&format!("node {node} exited"));
            }
            if Instant::now() >= deadline {
                self.fail("no JetStream meta leader");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn ready(&self) -> bool {
        let mut leaders = Vec::new();
        for node in self.running() {
            let Some(jsz) = monitor(self.nodes[node].monitor_port, "/jsz").await else {
                return false;
            };
            leaders.push(jsz["meta_cluster"].clone());
        }
        let Some(leader) = leaders.first().and_then(|meta| meta["leader"].as_str()) else {
            return false;
        };
        if leaders.iter().any(|meta| meta["leader"] != leader) {
            return false;
        }
        let Some(leader_meta) = self
            .running()
            .zip(&leaders)
            .find(|(node, _)| self.nodes[*node].name == leader)
            .map(|(_, meta)| meta)
        else {
            return false;
        };
        let current: Vec<&str> = leader_meta["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|peer| peer["current"] == true)
            .filter_map(|peer| peer["name"].as_str())
            .collect();
        self.running()
            .map(|node| self.nodes[node].name.as_str())
            .all(|name| name == leader || current.contains(&name))
    }

    /// A node that was started and has exited on its own.
    fn exited(&mut self) -> Option<usize> {
        self.nodes.iter_mut().position(|node| {
            node.process
                .as_mut()
                .is_some_and(|process| !matches!(process.try_wait(), Ok(None)))
        })
    }

    fn fail(&self, what: &str) -> ! {
        let logs: String = (0..self.nodes.len())
            .map(|node| format!("--- {} ---\n{}", self.nodes[node].name, self.logs(node)))
            .collect();
        panic!("NATS cluster: {what}; logs:\n{logs}");
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }
}

/// The leader's name in a `/jsz?streams=true` answer, if it lists the stream with one.
fn stream_leader_in(jsz: &Value, stream: &str) -> Option<String> {
    jsz["account_details"]
        .as_array()?
        .iter()
        .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
        .find(|detail| detail["name"] == stream)?["cluster"]["leader"]
        .as_str()
        .map(str::to_string)
}

/// `GET` on a node's monitoring port; `None` while it does not answer 200 with JSON.
async fn monitor(port: u16, path: &str) -> Option<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    // A node killed mid-answer leaves no complete head to parse.
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    let response = Response::parse(&raw);
    (response.status == 200)
        .then(|| serde_json::from_slice(&response.body).ok())
        .flatten()
}

/// The installed `nats-server`'s version, as (major, minor, patch).
pub fn nats_server_version() -> (u32, u32, u32) {
    let output = Command::new(nats_server_binary())
        .arg("--version")
        .output()
        .expect("run nats-server --version");
    // "nats-server: v2.9.10"
    let text = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<u32> = text
        .trim()
        .rsplit('v')
        .next()
        .unwrap_or_default()
        .split('.')
        .map_while(|part| part.parse().ok())
        .collect();
    match numbers[..] {
        [major, minor, patch, ..] => (major, minor, patch),
        _ => panic!("no version in nats-server --version: {text:?}"),
    }
}

/// `nats-server` from PATH, or from the sbin directory Debian installs it in (outside a
/// non-root user's PATH).
pub fn nats_server_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the NATS tests need nats-server (2.9 or later) on PATH: apt-get install nats-server"
            )
        })
}

/// `count` distinct loopback ports that were free a moment ago (all held at once, so none
/// repeats).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("local addr").port())
        .collect()
}

/// A path as a quoted string of the NATS configuration format (JSON's quoting).
pub fn quoted(path: &Path) -> String {
    serde_json::to_string(&path.display().to_string()).expect("a string serializes")
}
