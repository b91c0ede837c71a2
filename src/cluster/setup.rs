//! Connecting to NATS, and creating (or updating) the streams and buckets hookwire uses.

use std::sync::Arc;
use std::time::Duration;

use async_nats::ServerAddr;
use async_nats::jetstream::{self, kv, stream};

use super::names::{
    DEDUPE_BUCKET, EVENTS_STREAM, EVENTS_SUBJECTS, LANES_BUCKET, WORK_STREAM, WORK_SUBJECTS,
};
use super::{ACK_TIMEOUT, Cluster, ClusterError};
use crate::cli::cluster::ClusterArgs;

/// How long the history stream keeps events (a new node builds its history from them).
const EVENTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a delivery id is remembered at most (a hook's `dedupe` window beyond it is cut).
const DEDUPE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most runs waiting in the work stream; beyond, deliveries are answered 503.
const WORK_MAX_MESSAGES: i64 = 1_000_000;
/// How long start-up waits for a cluster that is still electing its streams' leaders.
const SETUP_PATIENCE: Duration = Duration::from_secs(30);
/// Publish retries within this window are stored once (`Nats-Msg-Id` is the run id).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Connects with the flags' credentials, warns below nats-server 2.10, and sets up the streams
/// and buckets.
pub async fn connect(args: &ClusterArgs, node: String) -> Result<Arc<Cluster>, ClusterError> {
    let url = args.nats_url.clone().unwrap_or_default();
    let connect_error = |reason: String| ClusterError::Connect {
        url: url.clone(),
        reason,
    };
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<ServerAddr>()
                .map_err(|error| connect_error(format!("{part:?} is not a NATS URL: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(connect_error("no server given".to_owned()));
    }
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("hookwire {node}"))
        .connection_timeout(ACK_TIMEOUT)
        // Never give up: a node outlives its NATS servers' restarts.
        .max_reconnects(None);
    if let Some(path) = &args.nats_creds {
        options = options
            .credentials_file(path)
            .await
            .map_err(|error| read_error(path, error))?;
    }
    if let Some(path) = &args.nats_token_file {
        options = options.token(read_secret(path)?);
    }
    if let (Some(user), Some(path)) = (&args.nats_user, &args.nats_password_file) {
        options = options.user_and_password(user.clone(), read_secret(path)?);
    }
    if let Some(ca) = &args.nats_tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&args.nats_tls_cert, &args.nats_tls_key) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    let client = options
        .connect(servers)
        .await
        .map_err(|error| connect_error(error.to_string()))?;
    let version = client.server_info().version;
    if below_2_10(&version) {
        tracing::warn!(
            "nats-server {version} acknowledges a publish before it is on disk (it syncs every \
             60 s): a power loss of every replica can lose accepted deliveries; from 2.10 on, \
             `sync_interval: always` closes that window"
        );
    }
    let js = jetstream::ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        .build(client.clone());
    let replicas = args.nats_replicas;
    ensure_stream(
        &js,
        stream::Config {
            name: WORK_STREAM.to_owned(),
            subjects: vec![WORK_SUBJECTS.to_owned()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            max_messages: WORK_MAX_MESSAGES,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        },
    )
    .await?;
    ensure_stream(
        &js,
        stream::Config {
            name: EVENTS_STREAM.to_owned(),
            subjects: vec![EVENTS_SUBJECTS.to_owned()],
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            max_age: EVENTS_MAX_AGE,
            ..Default::default()
        },
    )
    .await?;
    let dedupe = bucket(&js, DEDUPE_BUCKET, replicas, DEDUPE_MAX_AGE).await?;
    let lanes = bucket(&js, LANES_BUCKET, replicas, Duration::ZERO).await?;
    tracing::info!(
        "NATS store: nats-server {version}, {replicas} replica(s), node name {node:?}, max message {} bytes",
        client.server_info().max_payload
    );
    Ok(Arc::new(Cluster {
        client,
        js,
        dedupe,
        lanes,
        node,
    }))
}

/// nats-server versions before 2.10 cannot fsync before they acknowledge.
fn below_2_10(version: &str) -> bool {
    let mut parts = version
        .split(['.', '-'])
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) < (2, 10)
}

fn read_error(path: &std::path::Path, error: impl std::fmt::Display) -> ClusterError {
    ClusterError::ReadFile {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

/// A token or password file's content, without the trailing newline.
fn read_secret(path: &std::path::Path) -> Result<String, ClusterError> {
    let text = std::fs::read_to_string(path).map_err(|error| read_error(path, error))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// Creates the stream, or brings an existing one to `config` (say, more replicas).
async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<(), ClusterError> {
    let give_up = tokio::time::Instant::now() + SETUP_PATIENCE;
    let mut waited = false;
    loop {
        let created = match js.create_stream(config.clone()).await {
            Ok(_) => return Ok(()),
            Err(created) => created,
        };
        let updated = match js.update_stream(config.clone()).await {
            Ok(_) => return Ok(()),
            Err(updated) => updated,
        };
        // A cluster that has just started may still be electing the stream's leader.
        if electing(&updated) && tokio::time::Instant::now() < give_up {
            if !waited {
                tracing::info!(
                    "waiting for JetStream to serve stream {}: {updated}",
                    config.name
                );
                waited = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        return Err(ClusterError::Setup {
            what: format!("stream {}", config.name),
            reason: format!("{created}; {updated}"),
        });
    }
}

/// The stream request went unanswered, or JetStream said its cluster is not available yet.
fn electing(error: &jetstream::context::CreateStreamError) -> bool {
    use jetstream::context::CreateStreamErrorKind;
    match error.kind() {
        CreateStreamErrorKind::TimedOut => true,
        CreateStreamErrorKind::JetStream(error) => {
            error.error_code() == jetstream::ErrorCode::CLUSTER_NOT_AVAILABLE
        }
        _ => false,
    }
}

/// A KV bucket keeping one revision per key. Its stream is created directly, laid out as
/// async-nats lays out a bucket: async-nats's own `create_key_value` first reads the account
/// info, which it cannot parse from nats-server 2.9.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
    max_age: Duration,
) -> Result<kv::Store, ClusterError> {
    ensure_stream(
        js,
        stream::Config {
            name: format!("KV_{name}"),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            max_age,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        },
    )
    .await?;
    js.get_key_value(name)
        .await
        .map_err(|error| ClusterError::Setup {
            what: format!("bucket {name}"),
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_before_2_10_are_told_apart() {
        assert!(super::below_2_10("2.9.10"));
        assert!(super::below_2_10("2.9.25-beta"));
        assert!(!super::below_2_10("2.10.0"));
        assert!(!super::below_2_10("2.11.3"));
        assert!(!super::below_2_10("3.0.0"));
    }
}
