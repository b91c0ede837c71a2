//! The flags that move the store to a NATS JetStream cluster (flattened into the server's).

use std::path::PathBuf;

use clap::Args;

use super::goflags;

const CLUSTER: &str = "Cluster (hookwire)";

/// Where and how to reach NATS; without `-nats-url`, the embedded SQLite store is used.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// NATS servers holding the shared store, comma-separated (nats://h1:4222,nats://h2:4222);
    /// several hookwire nodes on one cluster share deliveries, policies, dedupe and history
    #[arg(long = "nats-url", value_name = "URLS", help_heading = CLUSTER)]
    pub nats_url: Option<String>,

    /// NATS credentials file (a user JWT and its NKey seed)
    #[arg(long = "nats-creds", value_name = "FILE", help_heading = CLUSTER)]
    pub nats_creds: Option<PathBuf>,

    /// File holding the NATS authentication token
    #[arg(long = "nats-token-file", value_name = "FILE", help_heading = CLUSTER)]
    pub nats_token_file: Option<PathBuf>,

    /// NATS user name; its password is read from -nats-password-file
    #[arg(long = "nats-user", value_name = "NAME", requires = "nats_password_file", help_heading = CLUSTER)]
    pub nats_user: Option<String>,

    /// File holding the password of -nats-user
    #[arg(long = "nats-password-file", value_name = "FILE", requires = "nats_user", help_heading = CLUSTER)]
    pub nats_password_file: Option<PathBuf>,

    /// CA certificate (PEM) that NATS servers' certificates are checked against; turns TLS on
    #[arg(long = "nats-tls-ca", value_name = "FILE", help_heading = CLUSTER)]
    pub nats_tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for NATS servers that ask for one; with -nats-tls-key
    #[arg(long = "nats-tls-cert", value_name = "FILE", requires = "nats_tls_key", help_heading = CLUSTER)]
    pub nats_tls_cert: Option<PathBuf>,

    /// Private key (PEM) of -nats-tls-cert
    #[arg(long = "nats-tls-key", value_name = "FILE", requires = "nats_tls_cert", help_heading = CLUSTER)]
    pub nats_tls_key: Option<PathBuf>,

    /// Copies JetStream keeps of each stream and bucket: 3 for a cluster that survives the loss
    /// of a server, 1 for a single server
    #[arg(long = "nats-replicas", default_value = "1", value_parser = parse_replicas, value_name = "COUNT", help_heading = CLUSTER)]
    pub nats_replicas: usize,

    /// This node's name in the run history [default: the host name]
    #[arg(long = "node-name", value_name = "NAME", help_heading = CLUSTER)]
    pub node_name: Option<String>,
}

/// `-nats-replicas`: 1 to 5, JetStream's own range.
fn parse_replicas(value: &str) -> Result<usize, goflags::FlagError> {
    let replicas = goflags::parse_usize(value)?;
    if (1..=5).contains(&replicas) {
        Ok(replicas)
    } else {
        Err(goflags::FlagError::OutOfRange {
            value: i64::try_from(replicas).unwrap_or(i64::MAX),
            range: "1 to 5".to_owned(),
        })
    }
}
