//! The NATS JetStream store (`-nats-url`): several hookwire nodes share one set of deliveries,
//! policies, dedupe and history. SQLite stays the default; without `-nats-url` none of this runs.
//!
//! - Accepting ([`accept`]): dedupe by creating the delivery id in a KV bucket, then the run on
//!   the work stream (`Nats-Msg-Id` = run id); the client is answered 2xx only after its PubAck,
//!   503 when none comes within 5 s. The run's `accepted` event follows on the history stream.
//! - Running ([`work`]): every node pulls from one durable consumer per hook (and key
//!   partition), as many runs as it has free slots; in-progress acks while a command runs; ack
//!   once the end is recorded, NAK with the backoff for a retry. A run's last event in the
//!   history ([`progress`]) says how many attempts it had, and each event is appended by
//!   compare-and-set on it, so two nodes never both start one attempt. Policies hold cluster-wide:
//!   `queue`, `latest`, `cancel` and `reject` are served one run at a time per partition; a
//!   `latest`, `cancel` or `reject` run holds its lane's lease in a KV bucket, renewed by
//!   compare-and-set, and a node that loses it stops its command. A `parallel` hook has at
//!   most 10,000 runs under way over all nodes (its consumer's `max_ack_pending`).
//! - History ([`journal`]): run events on a stream, projected into each node's SQLite, so the
//!   admin routes, the console and `hookwire runs` on any node show every node's runs.
//!
//! Only what nats-server 2.9 has is used (no per-message TTL, no multi-filter consumers).

mod accept;
pub mod journal;
mod lease;
pub mod names;
mod progress;
mod setup;
mod wire;
mod work;

use std::time::Duration;

use async_nats::jetstream::{self, kv};

pub use journal::ClusterJournal;
pub use setup::connect;

/// How long a publish, a KV operation or a stream request may take before the delivery is
/// answered 503 (lost quorum, no server).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the NATS store cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot read {path}: {reason}")]
    ReadFile { path: String, reason: String },
    #[error(
        "cannot set up JetStream {what} on NATS: {reason}. hookwire needs an account with \
         JetStream enabled (`jetstream {{}}` in nats-server.conf, `jetstream: enabled` for an \
         account) and at least -nats-replicas servers in the cluster"
    )]
    Setup { what: String, reason: String },
    #[error("NATS did not acknowledge {what} within {}s: {reason}", ACK_TIMEOUT.as_secs())]
    Unacknowledged { what: String, reason: String },
    #[error("NATS {what} failed: {reason}")]
    Request { what: String, reason: String },
    /// Another node wrote the run's history first (compare-and-set on its last event).
    #[error("another node recorded this run first")]
    Conflict,
    #[error(
        "the run is {size} bytes encoded, more than the NATS server's max_payload of {limit}: \
         raise max_payload in nats-server.conf, or lower -max-body-size"
    )]
    TooLarge { size: usize, limit: usize },
}

impl ClusterError {
    fn request(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        ClusterError::Request {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// A node's handle on the shared store.
#[derive(Debug)]
pub struct Cluster {
    client: async_nats::Client,
    js: jetstream::Context,
    dedupe: kv::Store,
    lanes: kv::Store,
    node: String,
}

impl Cluster {
    /// This node's name (`-node-name`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The largest message the servers take.
    pub(super) fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }
}

/// The host name, the default `-node-name`.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "hookwire".to_owned())
}
