//! Where a run stands, as the history stream says: its last event, on the run's own subject.
//! Every event a node writes for a run is appended only if the run's last event is still the
//! one it read (`Nats-Expected-Last-Subject-Sequence`), so two nodes holding the same delivery
//! (one of them cut off past the ack wait) never both start an attempt or both end it.

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;

use bytes::Bytes;

use super::journal::{fit, publish};
use super::names::{EVENTS_STREAM, events_subject};
use super::{Cluster, ClusterError, wire};
use crate::store::Event;

/// The header of an event that counts the run's attempts so far (an end does not say).
const ATTEMPTS_HEADER: &str = "Hookwire-Attempts";

/// A run's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// No event yet: its acceptance event was lost, or is still on its way.
    Unrecorded,
    /// Waiting for an attempt, after `attempts` of them.
    Queued {
        attempts: u32,
    },
    /// Attempt `attempt` started (and its node, if it is not this one, died or was cut off).
    Running {
        attempt: u32,
    },
    Ended,
}

/// A run's standing, and the stream sequence of its last event (0: none).
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    pub progress: Progress,
    pub last: u64,
}

impl Cluster {
    /// Run `id`'s last event, if it has one.
    async fn last_event(&self, id: &str) -> Result<Option<StreamMessage>, ClusterError> {
        let stream = self
            .js
            .get_stream_no_info(EVENTS_STREAM)
            .await
            .map_err(|error| ClusterError::request("history stream", error))?;
        match stream
            .get_last_raw_message_by_subject(&events_subject(id))
            .await
        {
            Ok(message) => Ok(Some(message)),
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(error) => Err(ClusterError::request("history", error)),
        }
    }

    /// Reads run `id`'s last event.
    pub(super) async fn standing(&self, id: &str) -> Result<Standing, ClusterError> {
        let Some(message) = self.last_event(id).await? else {
            return Ok(Standing {
                progress: Progress::Unrecorded,
                last: 0,
            });
        };
        let attempts = message
            .headers
            .get(ATTEMPTS_HEADER)
            .and_then(|value| value.as_str().parse().ok())
            .unwrap_or(0);
        let event = wire::decode_event(&message.payload)
            .map_err(|error| ClusterError::request("history", error))?;
        let progress = match event {
            Event::Accepted(_) => Progress::Queued { attempts: 0 },
            Event::Started { attempt, .. } => Progress::Running { attempt },
            Event::Ended {
                retry_at: Some(_), ..
            } => Progress::Queued { attempts },
            Event::Ended { retry_at: None, .. } => Progress::Ended,
        };
        Ok(Standing {
            progress,
            last: message.sequence,
        })
    }

    /// An event encoded for [`Self::append`], its output cut to fit one message.
    pub(super) fn encode(&self, event: &Event) -> Bytes {
        wire::encode_event(&fit(event.clone(), self.max_payload()))
    }

    /// Appends an event of run `run` (`payload`, from [`Self::encode`]) to its history if the
    /// run's last event is still the one at sequence `after` (0: none); returns the new event's
    /// sequence. [`ClusterError::Conflict`] when another node wrote first.
    pub(super) async fn append(
        &self,
        run: &str,
        payload: Bytes,
        attempts: u32,
        after: u64,
    ) -> Result<u64, ClusterError> {
        let message = PublishMessage::build()
            .payload(payload)
            .message_id(self.message_id(run, after))
            .header(ATTEMPTS_HEADER, attempts.to_string())
            .expected_last_subject_sequence(after);
        publish(&self.js, events_subject(run), message).await
    }

    /// Unique to this node's append at this place: a retried publish is stored once, and
    /// another node's append at the same place is not taken for it.
    fn message_id(&self, run: &str, after: u64) -> String {
        format!("{run}@{after}@{}", self.node)
    }

    /// The sequence of this node's [`Self::append`] of run `run` after `after`, if that is the
    /// run's last event: an append whose acknowledgement was lost (its stream leader died) may
    /// have been stored all the same.
    pub(super) async fn landed(&self, run: &str, after: u64) -> Result<Option<u64>, ClusterError> {
        let ours = self.message_id(run, after);
        Ok(self.last_event(run).await?.and_then(|message| {
            let id = message.headers.get(async_nats::header::NATS_MESSAGE_ID)?;
            (id.as_str() == ours).then_some(message.sequence)
        }))
    }
}
