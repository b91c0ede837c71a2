//! Running on the NATS store: every node pulls runs from one durable consumer per hook (and key
//! partition), as many as it has room for, and drives each attempt through the engine.
//!
//! While a command runs, its node sends in-progress acks (so the run is not handed to another
//! node) and renews its lane's lease; a node that cannot renew the lease stops the command. The
//! run's end is recorded before the message is acked; a retry is a NAK with the backoff.
//! Attempts are counted in the attempts bucket, not by NATS's delivery count: a redelivery of a
//! run that never started is not an attempt, one of a run whose node died during an attempt is
//! an interrupted attempt, retried when `retry` allows.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{AckKind, Message};
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use super::lease::{Lease, Renewal};
use super::names::{PARTITIONS, WORK_STREAM, consumer_name, lane_key, work_subject};
use super::progress::Progress;
use super::{Cluster, ClusterError, wire};
use crate::config::Hook;
use crate::config::scheduling::Concurrency;
use crate::engine::exec;
use crate::engine::{Claimed, ClaimedAttempt, Dispatcher, Stop, StopSignal};
use crate::store::{Event, NewRun, RunResult, Status};

/// A node silent this long loses its runs to another node.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Between in-progress acks and lease renewals of a running command.
const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// How long one pull request waits for runs.
const PULL_WAIT: Duration = Duration::from_secs(5);
/// Most runs pulled at once by a `parallel` hook's puller.
const BATCH: usize = 32;
/// How long a run's end may wait for the history stream to take it.
const RECORD_PATIENCE: Duration = Duration::from_secs(60);
/// How soon a run that could not start here is offered again.
const NOT_NOW: Duration = Duration::from_secs(1);

/// How a hook's runs are pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// One run at a time per partition (every mode but `parallel`).
    serial: bool,
    partitions: u32,
    max_deliver: i64,
}

fn shape(hook: &Hook) -> Shape {
    let serial = hook.scheduling.concurrency != Concurrency::Parallel;
    let keyed = serial && hook.scheduling.concurrency_key.is_some();
    let attempts = hook.scheduling.retry.map_or(1, |retry| retry.attempts + 1);
    Shape {
        serial,
        partitions: if keyed { PARTITIONS } else { 1 },
        // Room for redeliveries that are not attempts: lost acks, a busy lease, a restart.
        max_deliver: i64::from(attempts) * 4 + 20,
    }
}

impl Cluster {
    /// Starts pulling runs for the loaded hooks, following hot reloads, until shutdown.
    pub fn start_work(self: &Arc<Self>, dispatcher: Arc<Dispatcher>) {
        // The node's `-max-concurrent-runs`, taken before a run is pulled, so a node pulls
        // no more than it can start.
        let slots = dispatcher
            .max_concurrent_runs()
            .map(|slots| Arc::new(Semaphore::new(slots)));
        tokio::spawn(supervise(self.clone(), dispatcher, slots));
    }
}

/// Keeps one puller per (hook, partition) of the hooks loaded now.
async fn supervise(
    cluster: Arc<Cluster>,
    dispatcher: Arc<Dispatcher>,
    slots: Option<Arc<Semaphore>>,
) {
    // A puller asked to stop finishes the run it has first.
    let mut pullers: HashMap<String, (Shape, Arc<AtomicBool>)> = HashMap::new();
    let mut reloads = dispatcher.hooks().subscribe();
    let mut draining = std::pin::pin!(dispatcher.draining());
    loop {
        reloads.mark_unchanged();
        let hooks = dispatcher.hooks().load();
        let mut complete = true;
        let mut wanted = HashMap::new();
        for hook in hooks.sorted() {
            let shape = shape(hook);
            for partition in 0..shape.partitions {
                wanted.insert(
                    consumer_name(&hook.id, partition),
                    (hook.clone(), partition, shape),
                );
            }
        }
        pullers.retain(|name, (shape, stop)| {
            let keep = wanted
                .get(name)
                .is_some_and(|(_, _, wanted)| wanted == shape);
            if !keep {
                stop.store(true, Ordering::SeqCst);
            }
            keep
        });
        for (name, (hook, partition, shape)) in wanted {
            if pullers.contains_key(&name) {
                continue;
            }
            match consumer(&cluster, &name, &hook.id, partition, shape).await {
                Ok(consumer) => {
                    let stop = Arc::new(AtomicBool::new(false));
                    tokio::spawn(pull(
                        cluster.clone(),
                        dispatcher.clone(),
                        consumer,
                        shape.serial,
                        slots.clone(),
                        stop.clone(),
                    ));
                    pullers.insert(name, (shape, stop));
                }
                Err(error) => {
                    tracing::warn!("cannot pull the runs of {}: {error}; trying again", hook.id);
                    complete = false;
                }
            }
        }
        if complete {
            tracing::info!("pulling the runs of {} hook(s) from NATS", hooks.len());
        }
        // A consumer that could not be created is tried again a second later.
        let retry = async {
            if complete {
                std::future::pending().await
            } else {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        tokio::select! {
            _ = reloads.changed() => {}
            () = retry => {}
            // Each puller sees the drain itself, after the run it has.
            () = &mut draining => return,
        }
    }
}

/// The durable consumer shared by every node for one partition of a hook.
async fn consumer(
    cluster: &Cluster,
    name: &str,
    hook: &str,
    partition: u32,
    shape: Shape,
) -> Result<PullConsumer, ClusterError> {
    let stream = cluster
        .js
        .get_stream(WORK_STREAM)
        .await
        .map_err(|error| ClusterError::request("work stream", error))?;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: work_subject(hook, partition),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_deliver: shape.max_deliver,
            max_ack_pending: if shape.serial { 1 } else { 10_000 },
            ..Default::default()
        })
        .await
        .map_err(|error| ClusterError::request(format!("consumer {name}"), error))
}

/// Pulls runs while the node serves: one at a time for a serial hook, else a batch; never
/// more than the node's free slots.
async fn pull(
    cluster: Arc<Cluster>,
    dispatcher: Arc<Dispatcher>,
    consumer: PullConsumer,
    serial: bool,
    slots: Option<Arc<Semaphore>>,
    stop: Arc<AtomicBool>,
) {
    let limit = if serial { 1 } else { BATCH };
    let mut failures = 0u32;
    while !dispatcher.is_draining() && !stop.load(Ordering::SeqCst) {
        // Pull only what there is room for now; idle pullers hold no slot. Answers come
        // first: while deliveries wait for theirs, one run at a time.
        let limit = if exec::answers_pending() { 1 } else { limit };
        let room = match &slots {
            Some(slots) => {
                if slots.acquire().await.is_err() {
                    return;
                }
                slots.available_permits().clamp(1, limit)
            }
            None => limit,
        };
        let batch = consumer
            .batch()
            .max_messages(room)
            .expires(PULL_WAIT)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => {
                failures = 0;
                batch
            }
            Err(error) => {
                if failures == 0 {
                    tracing::warn!("cannot pull runs: {error}; trying again");
                }
                failures += 1;
                tokio::time::sleep(NOT_NOW * failures.min(5)).await;
                continue;
            }
        };
        while let Some(message) = batch.next().await {
            let Ok(message) = message else { break };
            let slot = match &slots {
                Some(slots) => match slots.clone().acquire_owned().await {
                    Ok(slot) => Some(slot),
                    Err(_) => return,
                },
                None => None,
            };
            let run = handle(cluster.clone(), dispatcher.clone(), message);
            let run = async move {
                run.await;
                drop(slot);
            };
            if serial {
                run.await;
            } else {
                tokio::spawn(run);
            }
        }
    }
}

/// Runs one delivered run, records how it went, and acks, NAKs or terminates its message.
async fn handle(cluster: Arc<Cluster>, dispatcher: Arc<Dispatcher>, message: Message) {
    let run = match wire::decode_run(&message.payload) {
        Ok(run) => run,
        Err(error) => {
            tracing::error!("dropped a run from the work stream: {error}");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let span = tracing::info_span!("request", id = %run.request.id);
    // Until its end is recorded and acknowledged, shutdown waits for it.
    let _tracked = dispatcher.track();
    let mut delivery = Delivery {
        cluster: &cluster,
        dispatcher: &dispatcher,
        message: &message,
        run: &run,
        last: 0,
    };
    let ack = match delivery.run_here().instrument(span).await {
        Ok(ack) => ack,
        Err(ClusterError::Conflict) => {
            tracing::info!("run {} of {} is in another node's hands", run.id, run.hook);
            AckKind::Nak(Some(NOT_NOW))
        }
        Err(error) => {
            tracing::warn!("run {} of {}: {error}; offering it again", run.id, run.hook);
            AckKind::Nak(Some(NOT_NOW))
        }
    };
    // Not confirmed: a lost ack brings the run back, and its history says it has ended.
    if let Err(error) = message.ack_with(ack).await {
        tracing::warn!("run {}: cannot acknowledge it to NATS: {error}", run.id);
    }
}

/// One delivery of a run to this node.
struct Delivery<'a> {
    cluster: &'a Cluster,
    dispatcher: &'a Arc<Dispatcher>,
    message: &'a Message,
    run: &'a NewRun,
    /// The sequence of the run's last event in the history: the next is appended after it.
    last: u64,
}

impl Delivery<'_> {
    /// Runs the run here if it is its turn; returns what to tell NATS.
    async fn run_here(&mut self) -> Result<AckKind, ClusterError> {
        let run = self.run;
        let mut standing = self.cluster.standing(&run.id).await?;
        if standing.progress == Progress::Unrecorded {
            // The acceptance event is late, or was lost: written here, unless it lands first.
            self.last = 0;
            let accepted = self.message.payload.clone();
            match self.append_encoded(accepted, 0).await {
                Ok(()) => {}
                Err(ClusterError::Conflict) => standing = self.cluster.standing(&run.id).await?,
                Err(error) => return Err(error),
            }
        }
        self.last = self.last.max(standing.last);
        let attempts = match standing.progress {
            // Its end was recorded, but the ack was lost.
            Progress::Ended => return Ok(AckKind::Ack),
            Progress::Unrecorded => 0,
            Progress::Queued { attempts } | Progress::Running { attempt: attempts } => attempts,
        };
        let (hook, plan, key) = match self.dispatcher.replan(&run.hook, &run.request).await {
            Ok(planned) => planned,
            Err(reason) => {
                tracing::warn!("run {} of {} skipped: {reason}", run.id, run.hook);
                let result = RunResult::without_process(Status::Skipped, reason.to_string());
                return self.finish(None, attempts, result).await;
            }
        };
        if let Progress::Running { attempt } = standing.progress {
            return self.interrupted(&hook, attempt).await;
        }
        let delivered = self.message.info().map_or(1, |info| info.delivered);
        if delivered >= shape(&hook).max_deliver {
            let reason = format!("offered {delivered} times without starting; given up");
            tracing::error!("run {} of {}: {reason}", run.id, hook.id);
            let result = RunResult::without_process(Status::Failed, reason);
            return self.finish(Some(&hook), attempts, result).await;
        }
        let mode = hook.scheduling.concurrency;
        let newest_key = lane_key("latest", &hook.id, key.as_deref());
        if matches!(mode, Concurrency::Latest | Concurrency::Cancel)
            && let Some(newest) = self.cluster.newest(&newest_key).await?
            && newest > run.id
        {
            tracing::info!(
                "run {} of {} is superseded by run {newest}",
                run.id,
                hook.id
            );
            return self.superseded(&hook, attempts, &newest).await;
        }
        let mut lease = None;
        if matches!(
            mode,
            Concurrency::Latest | Concurrency::Cancel | Concurrency::Reject
        ) {
            let lane = lane_key("lease", &hook.id, key.as_deref());
            match self.cluster.take_lease(&lane, &run.id).await? {
                Some(taken) => lease = Some(taken),
                None => return Ok(AckKind::Nak(Some(NOT_NOW))),
            }
        }
        let attempt = attempts + 1;
        let started = Event::Started {
            id: run.id.clone(),
            attempt,
            at: SystemTime::now(),
            node: Some(self.cluster.node().to_owned()),
        };
        // Recorded before the process starts: a node that dies after it leaves the attempt
        // counted. Not when another node has the run.
        if let Err(error) = self.append(started, attempt).await {
            release(self.cluster, lease).await;
            return Err(error);
        }
        let stop = Arc::new(StopSignal::default());
        let claimed = Claimed {
            id: run.id.clone(),
            hook: hook.clone(),
            plan,
            key: key.clone(),
            attempts,
            background: run.background,
            stop: stop.clone(),
        };
        let cancel_on = (mode == Concurrency::Cancel).then_some(newest_key.as_str());
        let outcome = keep_alive(
            self.cluster,
            self.dispatcher.run_claimed(claimed),
            self.message,
            &mut lease,
            &stop,
            &run.id,
            cancel_on,
        )
        .await;
        release(self.cluster, lease).await;
        match outcome {
            ClaimedAttempt::Ran {
                result, started_at, ..
            } => self.ran(&hook, attempt, result, started_at).await,
            ClaimedAttempt::Superseded { by } => self.superseded(&hook, attempt, &by).await,
            ClaimedAttempt::NotStarted(reason) => {
                // Not an attempt: offered again, with the attempts it had.
                tracing::info!("run {} of {} not started here: {reason}", run.id, hook.id);
                let result = RunResult::without_process(Status::Interrupted, reason);
                self.retry_later(attempts, result, NOT_NOW).await
            }
        }
    }

    /// Attempt `attempt` ran here: records it, and retries it when `retry` allows.
    async fn ran(
        &mut self,
        hook: &Arc<Hook>,
        attempt: u32,
        result: RunResult,
        started_at: SystemTime,
    ) -> Result<AckKind, ClusterError> {
        let retry = hook
            .scheduling
            .retry
            .filter(|retry| {
                matches!(result.status, Status::Failed | Status::TimedOut)
                    && attempt <= retry.attempts
            })
            .map(|retry| retry.delay(attempt));
        let id = &self.run.id;
        if let Some(delay) = retry {
            tracing::info!(
                "run {id} of {} {}; retry {attempt} in {delay:?}",
                hook.id,
                result.status
            );
            let ack = self.retry_later(attempt, result.clone(), delay).await?;
            self.dispatcher
                .claimed_ended(hook, id, attempt, &result, Some(started_at), true);
            return Ok(ack);
        }
        let ack = self.finish(None, attempt, result.clone()).await?;
        self.dispatcher
            .claimed_ended(hook, id, attempt, &result, Some(started_at), false);
        Ok(ack)
    }

    async fn superseded(
        &mut self,
        hook: &Arc<Hook>,
        attempts: u32,
        by: &str,
    ) -> Result<AckKind, ClusterError> {
        let result =
            RunResult::without_process(Status::Superseded, format!("superseded by run {by}"));
        self.finish(Some(hook), attempts, result).await
    }

    /// The node running attempt `attempt` of this run died: that attempt failed, and is
    /// retried when `retry` allows.
    async fn interrupted(
        &mut self,
        hook: &Arc<Hook>,
        attempt: u32,
    ) -> Result<AckKind, ClusterError> {
        let reason = format!("the node running attempt {attempt} of this run stopped");
        let result = RunResult::without_process(Status::Interrupted, reason);
        match hook
            .scheduling
            .retry
            .filter(|retry| attempt <= retry.attempts)
        {
            None => {
                tracing::warn!("run {} of {} was interrupted", self.run.id, hook.id);
                self.finish(Some(hook), attempt, result).await
            }
            Some(retry) => {
                let delay = retry.delay(attempt);
                tracing::info!(
                    "run {} of {} was interrupted; retry in {delay:?}",
                    self.run.id,
                    hook.id
                );
                self.retry_later(attempt, result, delay).await
            }
        }
    }

    /// Records an attempt's result with its retry time; the run is offered again then.
    async fn retry_later(
        &mut self,
        attempts: u32,
        result: RunResult,
        delay: Duration,
    ) -> Result<AckKind, ClusterError> {
        self.append(ended(self.run, result, Some(delay)), attempts)
            .await?;
        Ok(AckKind::Nak(Some(delay)))
    }

    /// Records the run's final result; with `hook`, for a run that did not run here, sends the
    /// hook's notifications.
    async fn finish(
        &mut self,
        hook: Option<&Arc<Hook>>,
        attempts: u32,
        result: RunResult,
    ) -> Result<AckKind, ClusterError> {
        self.append(ended(self.run, result.clone(), None), attempts)
            .await?;
        if let Some(hook) = hook {
            self.dispatcher
                .claimed_ended(hook, &self.run.id, attempts, &result, None, false);
        }
        Ok(AckKind::Ack)
    }

    /// Appends an event to the run's history after the last one this node read, trying again
    /// for a while (a NATS leader election) and keeping the message meanwhile.
    /// [`ClusterError::Conflict`]: another node wrote first; it has the run now.
    async fn append(&mut self, event: Event, attempts: u32) -> Result<(), ClusterError> {
        let payload = self.cluster.encode(&event);
        self.append_encoded(payload, attempts).await
    }

    /// [`Self::append`] of an event already encoded.
    async fn append_encoded(&mut self, payload: Bytes, attempts: u32) -> Result<(), ClusterError> {
        let mut delay = Duration::from_millis(250);
        let give_up = tokio::time::Instant::now() + RECORD_PATIENCE;
        loop {
            let appended = self
                .cluster
                .append(&self.run.id, payload.clone(), attempts, self.last)
                .await;
            match appended {
                Ok(sequence) => {
                    self.last = sequence;
                    return Ok(());
                }
                Err(error)
                    if matches!(error, ClusterError::Conflict)
                        || tokio::time::Instant::now() >= give_up =>
                {
                    // An earlier try whose acknowledgement was lost may be the event in the way,
                    // or stored all the same: then it is recorded. Otherwise a start would pass
                    // for an attempt that died, and the run would not be run.
                    return match self.cluster.landed(&self.run.id, self.last).await {
                        Ok(Some(sequence)) => {
                            self.last = sequence;
                            Ok(())
                        }
                        _ => Err(error),
                    };
                }
                Err(error) => {
                    tracing::debug!("recording run {}: {error}; trying again", self.run.id)
                }
            }
            let _ = self.message.ack_with(AckKind::Progress).await;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(KEEP_ALIVE);
        }
    }
}

/// Drives `attempt` to its end, sending in-progress acks and renewing the lease meanwhile;
/// stops the command when the lease is lost or (`cancel_on`) a newer run of the lane arrives.
async fn keep_alive(
    cluster: &Cluster,
    attempt: impl Future<Output = ClaimedAttempt>,
    message: &Message,
    lease: &mut Option<Lease>,
    stop: &StopSignal,
    id: &str,
    cancel_on: Option<&str>,
) -> ClaimedAttempt {
    let mut attempt = std::pin::pin!(attempt);
    let mut tick = tokio::time::interval(KEEP_ALIVE);
    tick.tick().await;
    let mut newer = match cancel_on {
        Some(key) => match cluster.watch_newest(key).await {
            Ok(watch) => Some(watch),
            Err(error) => {
                tracing::warn!("run {id}: cannot follow newer runs: {error}");
                None
            }
        },
        None => None,
    };
    loop {
        tokio::select! {
            outcome = &mut attempt => return outcome,
            _ = tick.tick() => {
                if let Err(error) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!("run {id}: in-progress ack failed: {error}");
                }
                if let Some(held) = lease.as_mut()
                    && cluster.renew(held).await == Renewal::Lost
                {
                    tracing::warn!("run {id} lost its lane's lease to another node; stopping it");
                    stop.request(Stop::LeaseLost);
                    *lease = None;
                }
            }
            Some(entry) = next_entry(&mut newer) => {
                if let Ok(entry) = entry {
                    let by = String::from_utf8_lossy(&entry.value).into_owned();
                    if by.as_str() > id {
                        stop.request(Stop::Cancelled { by });
                    }
                }
            }
        }
    }
}

async fn next_entry(
    watch: &mut Option<async_nats::jetstream::kv::Watch>,
) -> Option<Result<async_nats::jetstream::kv::Entry, async_nats::jetstream::kv::WatcherError>> {
    match watch {
        Some(watch) => watch.next().await,
        None => std::future::pending().await,
    }
}

async fn release(cluster: &Cluster, lease: Option<Lease>) {
    if let Some(lease) = lease {
        cluster.release(lease).await;
    }
}

fn ended(run: &NewRun, result: RunResult, retry_in: Option<Duration>) -> Event {
    let now = SystemTime::now();
    Event::Ended {
        id: run.id.clone(),
        hook: run.hook.clone(),
        result,
        at: now,
        retry_at: retry_in.map(|delay| now + delay),
    }
}
