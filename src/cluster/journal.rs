//! The run history on NATS: every event of every run is published to the history stream, and
//! each node projects the stream into its own SQLite journal, which serves the admin routes, the
//! console and `hookwire runs`. The journal the engine writes to is [`ClusterJournal`]: it
//! publishes, and reads from the local projection.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, message::PublishMessage};
use futures_util::StreamExt as _;

use super::names::{EVENTS_STREAM, EVENTS_SUBJECTS, events_subject};
use super::{ACK_TIMEOUT, Cluster, ClusterError, wire};
use crate::store::{
    Ack, Event, Filter, HookStats, Journal, JournalError, RunRecord, SqliteJournal, StoredRun,
};

/// Bytes of a message left for everything but a run's output.
const ENVELOPE: usize = 16 * 1024;

/// The engine's journal on a NATS store.
#[derive(Debug)]
pub struct ClusterJournal {
    js: jetstream::Context,
    max_payload: usize,
    local: Arc<SqliteJournal>,
}

impl ClusterJournal {
    /// Publishes to `cluster`'s history stream, and projects it into `local` from now on.
    pub fn new(cluster: &Cluster, local: Arc<SqliteJournal>) -> Self {
        tokio::spawn(project(cluster.js.clone(), local.clone()));
        Self {
            js: cluster.js.clone(),
            max_payload: cluster.max_payload(),
            local,
        }
    }
}

/// Publishes `message` on `subject` and waits for the stream's acknowledgement; returns the
/// message's sequence in the stream. Failures that may pass (no stream leader for a moment)
/// are tried again within [`ACK_TIMEOUT`]; a message id makes a retry harmless.
pub(super) async fn publish(
    js: &jetstream::Context,
    subject: String,
    message: PublishMessage,
) -> Result<u64, ClusterError> {
    let unacknowledged = |reason: String| ClusterError::Unacknowledged {
        what: subject.clone(),
        reason,
    };
    let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
    let mut pause = Duration::from_millis(50);
    loop {
        let acked = async {
            js.send_publish(subject.clone(), message.clone())
                .await?
                .await
        };
        let error = match tokio::time::timeout_at(deadline, acked).await {
            Ok(Ok(ack)) => return Ok(ack.sequence),
            Ok(Err(error)) => error,
            Err(_) => return Err(unacknowledged("timed out".to_owned())),
        };
        match error.kind() {
            PublishErrorKind::WrongLastSequence => return Err(ClusterError::Conflict),
            PublishErrorKind::MaxPayloadExceeded => return Err(unacknowledged(error.to_string())),
            _ if tokio::time::Instant::now() + pause < deadline => {
                tracing::debug!("publish to {subject}: {error}; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            _ => return Err(unacknowledged(error.to_string())),
        }
    }
}

/// An event's run id.
fn run_id(event: &Event) -> &str {
    match event {
        Event::Accepted(run) => &run.id,
        Event::Started { id, .. } | Event::Ended { id, .. } => id,
    }
}

/// Cuts the front of an end's output so the event fits in one message.
pub(super) fn fit(mut event: Event, max_payload: usize) -> Event {
    if let Event::Ended { result, .. } = &mut event {
        // Base64 makes 4 bytes of 3.
        let room = max_payload.saturating_sub(ENVELOPE) / 4 * 3;
        if result.output.len() > room {
            let cut = result.output.len() - room;
            result.output.drain(..cut);
            result.truncated += cut as u64;
        }
    }
    event
}

impl Journal for ClusterJournal {
    fn record(&self, event: Event) -> Ack {
        let (done, ack) = Ack::pending();
        let js = self.js.clone();
        let subject = events_subject(run_id(&event));
        let payload = wire::encode_event(&fit(event, self.max_payload));
        tokio::spawn(async move {
            let published = publish(&js, subject, PublishMessage::build().payload(payload))
                .await
                .map(drop)
                .map_err(|error| JournalError::Store(error.to_string()));
            let _ = done.send(published);
        });
        ack
    }
    fn unfinished(&self) -> Result<Vec<StoredRun>, JournalError> {
        // Unfinished runs wait in the work stream, for whichever node pulls them.
        Ok(Vec::new())
    }
    fn stored(&self, id: &str) -> Result<Option<StoredRun>, JournalError> {
        self.local.stored(id)
    }
    fn runs(&self, filter: &Filter) -> Result<Vec<RunRecord>, JournalError> {
        self.local.runs(filter)
    }
    fn run(&self, id: &str) -> Result<Option<RunRecord>, JournalError> {
        self.local.run(id)
    }
    fn hook_stats(&self) -> Result<Vec<HookStats>, JournalError> {
        self.local.hook_stats()
    }
    fn close(&self) {
        self.local.close();
    }
}

/// Applies the history stream to the local journal, in stream order, from the start of what
/// the stream keeps: applying an event twice in order leaves a run as once, so a restarted
/// node simply reads it all again. Follows new events until the process ends.
async fn project(js: jetstream::Context, local: Arc<SqliteJournal>) {
    let mut next = 1;
    let mut failures = 0u32;
    loop {
        match follow(&js, &local, &mut next).await {
            Ok(()) => failures = 0,
            Err(error) => {
                if failures == 0 {
                    tracing::warn!("the history projection stopped: {error}; resuming");
                }
                failures += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(500) * failures.min(10)).await;
    }
}

/// Reads events from sequence `next` on, updating it as they are applied.
async fn follow(
    js: &jetstream::Context,
    local: &SqliteJournal,
    next: &mut u64,
) -> Result<(), ClusterError> {
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|error| ClusterError::request("history stream", error))?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: EVENTS_SUBJECTS.to_owned(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: *next,
            },
            ..Default::default()
        })
        .await
        .map_err(|error| ClusterError::request("history consumer", error))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| ClusterError::request("history consumer", error))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|error| ClusterError::request("history", error))?;
        let sequence = message.info().map_or(*next, |info| info.stream_sequence);
        match wire::decode_event(&message.payload) {
            Ok(event) => {
                // Not awaited: the stream is the durable copy.
                local.record_volatile(event);
            }
            Err(error) => tracing::warn!("history event {sequence} skipped: {error}"),
        }
        *next = sequence + 1;
    }
    Ok(())
}
