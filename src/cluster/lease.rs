//! The shared records in KV buckets, each changed by compare-and-set on its revision: a lane's
//! lease and its newest run, a claimed delivery id. nats-server 2.9 has no
//! per-key TTL, so a lease's age is judged by when its revision was written.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::names;
use super::{Cluster, ClusterError};
use crate::store::dedupe::Claim;

/// A lease not renewed for this long is free for the taking.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

/// Who holds a lane.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    run: String,
    node: String,
}

/// A lane's lease, held by one run.
#[derive(Debug)]
pub struct Lease {
    key: String,
    revision: u64,
    value: Bytes,
    /// When it was last renewed.
    renewed: SystemTime,
}

/// Why a lease could not be renewed.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    Renewed,
    /// Another run took it: this one must stop.
    Lost,
    /// NATS did not answer; the lease is lost once it is older than [`LEASE_TTL`].
    Unreachable,
}

/// How long ago a KV revision was written.
fn age(entry: &kv::Entry) -> Duration {
    let written = entry.created.unix_timestamp_nanos();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    Duration::from_nanos(u64::try_from(now - written).unwrap_or(0))
}

fn live(entry: &kv::Entry) -> bool {
    entry.operation == Operation::Put
}

impl Cluster {
    /// Takes the lease of lane `key` for run `run`: when it is free, stale, or already held by
    /// `run` (a `reject` run's lease is taken when it is accepted). `None`: another run holds it.
    pub(super) async fn take_lease(
        &self,
        key: &str,
        run: &str,
    ) -> Result<Option<Lease>, ClusterError> {
        let value = Bytes::from(
            serde_json::to_vec(&Holder {
                run: run.to_owned(),
                node: self.node.clone(),
            })
            .unwrap_or_default(),
        );
        let granted = |revision| {
            Some(Lease {
                key: key.to_owned(),
                revision,
                value: value.clone(),
                renewed: SystemTime::now(),
            })
        };
        match self.lanes.create(key, value.clone()).await {
            Ok(revision) => return Ok(granted(revision)),
            Err(error) if error.kind() == CreateErrorKind::AlreadyExists => {}
            Err(error) => return Err(ClusterError::request("lease", error)),
        }
        let Some(entry) = self
            .lanes
            .entry(key)
            .await
            .map_err(|error| ClusterError::request("lease", error))?
        else {
            return Ok(None);
        };
        let held_by_run =
            serde_json::from_slice::<Holder>(&entry.value).is_ok_and(|holder| holder.run == run);
        if live(&entry) && !held_by_run && age(&entry) < LEASE_TTL {
            return Ok(None);
        }
        match self.lanes.update(key, value.clone(), entry.revision).await {
            Ok(revision) => Ok(granted(revision)),
            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(error) => Err(ClusterError::request("lease", error)),
        }
    }

    /// Renews a lease by compare-and-set on its revision.
    pub(super) async fn renew(&self, lease: &mut Lease) -> Renewal {
        match self
            .lanes
            .update(&lease.key, lease.value.clone(), lease.revision)
            .await
        {
            Ok(revision) => {
                lease.revision = revision;
                lease.renewed = SystemTime::now();
                Renewal::Renewed
            }
            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => Renewal::Lost,
            Err(_) if lease.renewed.elapsed().unwrap_or_default() >= LEASE_TTL => Renewal::Lost,
            Err(_) => Renewal::Unreachable,
        }
    }

    /// Frees a lease, unless another run took it meanwhile.
    pub(super) async fn release(&self, lease: Lease) {
        if let Err(error) = self
            .lanes
            .delete_expect_revision(&lease.key, Some(lease.revision))
            .await
        {
            tracing::debug!("lease {} not released: {error}", lease.key);
        }
    }

    /// Marks `run` as the newest of its lane (`latest`, `cancel`).
    pub(super) async fn mark_newest(&self, key: &str, run: &str) -> Result<(), ClusterError> {
        self.lanes
            .put(key, Bytes::from(run.to_owned()))
            .await
            .map(drop)
            .map_err(|error| ClusterError::request("newest run", error))
    }

    /// The newest run of a lane, if one was marked.
    pub(super) async fn newest(&self, key: &str) -> Result<Option<String>, ClusterError> {
        let entry = self
            .lanes
            .entry(key)
            .await
            .map_err(|error| ClusterError::request("newest run", error))?;
        Ok(entry
            .filter(live)
            .map(|entry| String::from_utf8_lossy(&entry.value).into_owned()))
    }

    /// Follows a lane's newest run.
    pub(super) async fn watch_newest(&self, key: &str) -> Result<kv::Watch, ClusterError> {
        self.lanes
            .watch(key)
            .await
            .map_err(|error| ClusterError::request("newest run", error))
    }

    /// Claims `delivery` of `hook` for `run`, or names the run that claimed it within `window`.
    pub async fn claim(
        &self,
        hook: &str,
        delivery: &str,
        run: &str,
        window: Duration,
    ) -> Result<Claim, ClusterError> {
        let key = names::delivery_key(hook, delivery);
        let value = Bytes::from(run.to_owned());
        match self.dedupe.create(&key, value.clone()).await {
            Ok(_) => return Ok(Claim::Fresh),
            Err(error) if error.kind() == CreateErrorKind::AlreadyExists => {}
            Err(error) => return Err(ClusterError::request("dedupe", error)),
        }
        let entry = self
            .dedupe
            .entry(&key)
            .await
            .map_err(|error| ClusterError::request("dedupe", error))?;
        let Some(entry) = entry else {
            return Ok(Claim::Fresh);
        };
        if live(&entry) && age(&entry) < window {
            return Ok(Claim::Duplicate(
                String::from_utf8_lossy(&entry.value).into_owned(),
            ));
        }
        match self.dedupe.update(&key, value, entry.revision).await {
            Ok(_) => Ok(Claim::Fresh),
            // Another node claimed it this instant.
            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => Ok(
                Claim::Duplicate("(a run accepted at the same time)".to_owned()),
            ),
            Err(error) => Err(ClusterError::request("dedupe", error)),
        }
    }

    /// Releases `delivery` if `run` still holds it (the run was refused, so a redelivery must run).
    pub async fn forget(&self, hook: &str, delivery: &str, run: &str) -> Result<(), ClusterError> {
        let key = names::delivery_key(hook, delivery);
        let entry = self
            .dedupe
            .entry(&key)
            .await
            .map_err(|error| ClusterError::request("dedupe", error))?;
        if let Some(entry) = entry.filter(|entry| live(entry) && entry.value == run.as_bytes()) {
            self.dedupe
                .delete_expect_revision(&key, Some(entry.revision))
                .await
                .map_err(|error| ClusterError::request("dedupe", error))?;
        }
        Ok(())
    }
}
