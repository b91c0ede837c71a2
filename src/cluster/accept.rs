//! Accepting a run on the NATS store: the run on the work stream, acknowledged before the
//! client is answered, then its `accepted` event on the history stream. `reject` takes its
//! lane's lease here; `latest` and `cancel` mark the run as their lane's newest once it is
//! stored. A client that waits for the outcome follows the run's events.

use std::sync::Arc;
use std::time::SystemTime;

use async_nats::jetstream::message::PublishMessage;
use futures_util::StreamExt as _;
use tokio::sync::oneshot;

use super::journal::publish;
use super::names::{WORK_STREAM, consumer_name, events_subject, lane_key, partition, work_subject};
use super::{Cluster, ClusterError, wire};
use crate::config::scheduling::Concurrency;
use crate::engine::{Busy, Refusal, Submission};
use crate::store::{Event, Journal, JournalError, NewRun, RunResult, Status};

impl Cluster {
    /// Stores a run so that some node runs it. With `wait`, the receiver gets the result of
    /// its first attempt, wherever it ran.
    pub async fn accept(
        self: &Arc<Self>,
        submission: Submission,
        journal: Arc<dyn Journal>,
    ) -> Result<Option<oneshot::Receiver<RunResult>>, Refusal> {
        let hook = &submission.hook;
        let mode = hook.scheduling.concurrency;
        let key = submission.key.as_deref();
        let run = NewRun {
            id: submission.id.clone(),
            hook: hook.id.clone(),
            concurrency_key: submission.key.clone(),
            background: !submission.wait,
            rerun_of: submission.rerun_of,
            accepted_at: SystemTime::now(),
            request: submission.request,
        };
        let id = run.id.clone();
        // One encoding for both messages: the work stream's is the run's `accepted` event.
        let payload = wire::encode_event(&Event::Accepted(Box::new(run)));
        let limit = self.max_payload();
        // The request goes out in two messages (history and work), each whole: base64 makes
        // a body a third larger.
        if payload.len() + 4096 > limit {
            let too_large = ClusterError::TooLarge {
                size: payload.len(),
                limit,
            };
            return Err(Refusal::TooLarge(too_large.to_string()));
        }
        if mode == Concurrency::Queue
            && self.waiting(&hook.id, partition(key)).await >= hook.scheduling.max_queue
        {
            tracing::info!(
                "refused a run of {}: {}",
                hook.id,
                Refusal::Busy(Busy::QueueFull)
            );
            return Err(Refusal::Busy(Busy::QueueFull));
        }
        let lease = if mode == Concurrency::Reject {
            match self
                .take_lease(&lane_key("lease", &hook.id, key), &id)
                .await
            {
                Ok(Some(lease)) => Some(lease),
                Ok(None) => {
                    tracing::info!(
                        "refused a run of {}: {}",
                        hook.id,
                        Refusal::Busy(Busy::Running)
                    );
                    return Err(Refusal::Busy(Busy::Running));
                }
                Err(error) => return Err(refused(error)),
            }
        } else {
            None
        };
        let outcome = if submission.wait {
            match self.client.subscribe(events_subject(&id)).await {
                Ok(events) => Some(events),
                Err(error) => return Err(refused(ClusterError::request("subscribe", error))),
            }
        } else {
            None
        };
        let subject = work_subject(&hook.id, partition(key));
        let message = PublishMessage::build()
            .payload(payload.clone())
            .message_id(id.clone());
        if let Err(error) = publish(&self.js, subject, message).await {
            if let Some(lease) = lease {
                self.release(lease).await;
            }
            tracing::error!("run {id} of {} not accepted: {error}", hook.id);
            return Err(refused(error));
        }
        // The history learns of the run after its client is answered; the node that runs it
        // writes this event itself should it be lost.
        let history = self.clone();
        let run = id.clone();
        tokio::spawn(async move {
            match history.append(&run, payload, 0, 0).await {
                Ok(_) | Err(ClusterError::Conflict) => {}
                Err(error) => tracing::debug!("the history lacks an accepted run: {error}"),
            }
        });
        if matches!(mode, Concurrency::Latest | Concurrency::Cancel)
            && let Err(error) = self
                .mark_newest(&lane_key("latest", &hook.id, key), &id)
                .await
        {
            // Stored, so it runs; older waiting runs of the lane may run too.
            tracing::warn!("run {id} of {}: {error}", hook.id);
        }
        Ok(outcome.map(|events| first_result(events, id, journal)))
    }
}

impl Cluster {
    /// Runs of a hook's partition waiting to be delivered to a node (0 when NATS cannot say:
    /// `max-queue` is a bound on memory, and the stream has its own).
    async fn waiting(&self, hook: &str, partition: u32) -> usize {
        let stream = match self.js.get_stream_no_info(WORK_STREAM).await {
            Ok(stream) => stream,
            Err(_) => return 0,
        };
        match stream.consumer_info(consumer_name(hook, partition)).await {
            Ok(info) => usize::try_from(info.num_pending).unwrap_or(usize::MAX),
            Err(error) => {
                tracing::debug!("cannot count the waiting runs of {hook}: {error}");
                0
            }
        }
    }
}

/// How often a waiting client's run is looked up in the history, should its end event be missed.
const HISTORY_LOOK: std::time::Duration = std::time::Duration::from_secs(2);

fn refused(error: ClusterError) -> Refusal {
    Refusal::Journal(JournalError::Store(error.to_string()))
}

/// The result of the run's first attempt, from its events; or, should an event be missed (a
/// reconnection), from the history once the run has ended there.
fn first_result(
    mut events: async_nats::Subscriber,
    id: String,
    journal: Arc<dyn Journal>,
) -> oneshot::Receiver<RunResult> {
    let (mut sender, receiver) = oneshot::channel();
    tokio::spawn(async move {
        let ended = async {
            let mut look = tokio::time::interval(HISTORY_LOOK);
            loop {
                tokio::select! {
                    message = events.next() => {
                        let message = message?;
                        if let Ok(Event::Ended { result, .. }) = wire::decode_event(&message.payload) {
                            return Some(result);
                        }
                    }
                    _ = look.tick() => {
                        if let Some(result) = ended_in_history(&journal, &id).await {
                            return Some(result);
                        }
                    }
                }
            }
        };
        let result = tokio::select! {
            result = ended => result,
            () = sender.closed() => return,
        };
        match result {
            Some(result) => {
                let _ = sender.send(result);
            }
            None => tracing::warn!("lost the events of run {id}; its client gets no output"),
        }
    });
    receiver
}

/// The run's result, if the history has it ended.
async fn ended_in_history(journal: &Arc<dyn Journal>, id: &str) -> Option<RunResult> {
    let journal = journal.clone();
    let id = id.to_owned();
    let record = tokio::task::spawn_blocking(move || journal.run(&id))
        .await
        .ok()?
        .ok()??;
    if matches!(record.status, Status::Queued | Status::Running) {
        return None;
    }
    Some(RunResult {
        status: record.status,
        exit_code: record.exit_code,
        signal: record.signal,
        reason: record.reason,
        output: record.output.unwrap_or_default().into_bytes(),
        truncated: record.output_truncated,
    })
}
