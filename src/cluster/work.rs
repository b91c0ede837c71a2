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
use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{AckKind, Message};
use futures_util::StreamExt as _;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::lease::{Attempts, Lease, Renewal};
use super::names::{PARTITIONS, WORK_STREAM, consumer_name, lane_key, work_subject};
use super::{Cluster, ClusterError, wire};
use crate::config::Hook;
use crate::config::scheduling::Concurrency;
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
    let mut pullers: HashMap<String, (Shape, JoinHandle<()>)> = HashMap::new();
    let mut current = None;
    let mut draining = std::pin::pin!(dispatcher.draining());
    loop {
        let hooks = dispatcher.hooks().load();
        if current
            .as_ref()
            .is_none_or(|seen| !Arc::ptr_eq(seen, &hooks))
        {
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
            pullers.retain(|name, (shape, handle)| {
                let keep = wanted
                    .get(name)
                    .is_some_and(|(_, _, wanted)| wanted == shape);
                if !keep {
                    handle.abort();
                }
                keep
            });
            let mut complete = true;
            for (name, (hook, partition, shape)) in wanted {
                if pullers.contains_key(&name) {
                    continue;
                }
                match consumer(&cluster, &name, &hook.id, partition, shape).await {
                    Ok(consumer) => {
                        let handle = tokio::spawn(pull(
                            cluster.clone(),
                            dispatcher.clone(),
                            consumer,
                            shape.serial,
                            slots.clone(),
                        ));
                        pullers.insert(name, (shape, handle));
                    }
                    Err(error) => {
                        tracing::warn!(
                            "cannot pull the runs of {}: {error}; trying again",
                            hook.id
                        );
                        complete = false;
                    }
                }
            }
            if complete {
                tracing::info!("pulling the runs of {} hook(s) from NATS", hooks.len());
                current = Some(hooks);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = &mut draining => break,
        }
    }
    for (_, (_, handle)) in pullers {
        handle.abort();
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
) {
    let limit = if serial { 1 } else { BATCH };
    let mut failures = 0u32;
    while !dispatcher.is_draining() {
        // Pull only what there is room for now; idle pullers hold no slot.
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
    let ack = match run_here(&cluster, &dispatcher, &run, &message)
        .instrument(span)
        .await
    {
        Ok(ack) => ack,
        Err(error) => {
            tracing::warn!("run {} of {}: {error}; offering it again", run.id, run.hook);
            AckKind::Nak(Some(NOT_NOW))
        }
    };
    if let Err(error) = message.double_ack_with(ack).await {
        tracing::warn!(
            "run {}: NATS did not take the acknowledgement: {error}",
            run.id
        );
    }
}

/// What to tell NATS about a message once this node is done with it.
async fn run_here(
    cluster: &Cluster,
    dispatcher: &Arc<Dispatcher>,
    run: &NewRun,
    message: &Message,
) -> Result<AckKind, ClusterError> {
    let (attempts, revision) = cluster.attempts(&run.id).await?;
    if attempts.ended {
        // Its end was recorded, but the ack was lost.
        return Ok(AckKind::Ack);
    }
    let delivered = message.info().map_or(1, |info| info.delivered);
    let (hook, plan, key) = match dispatcher.replan(&run.hook, &run.request).await {
        Ok(planned) => planned,
        Err(reason) => {
            tracing::warn!("run {} of {} skipped: {reason}", run.id, run.hook);
            let result = RunResult::without_process(Status::Skipped, reason.to_string());
            return finish(
                cluster, dispatcher, message, run, None, attempts, revision, result,
            )
            .await;
        }
    };
    if attempts.running {
        return interrupted(cluster, dispatcher, message, run, &hook, attempts, revision).await;
    }
    let max_deliver = shape(&hook).max_deliver;
    if delivered >= max_deliver {
        let reason = format!("offered {delivered} times without starting; given up");
        tracing::error!("run {} of {}: {reason}", run.id, hook.id);
        let result = RunResult::without_process(Status::Failed, reason);
        return finish(
            cluster,
            dispatcher,
            message,
            run,
            Some(&hook),
            attempts,
            revision,
            result,
        )
        .await;
    }
    let mode = hook.scheduling.concurrency;
    let newest_key = lane_key("latest", &hook.id, key.as_deref());
    if matches!(mode, Concurrency::Latest | Concurrency::Cancel)
        && let Some(newest) = cluster.newest(&newest_key).await?
        && newest > run.id
    {
        tracing::info!(
            "run {} of {} is superseded by run {newest}",
            run.id,
            hook.id
        );
        let result =
            RunResult::without_process(Status::Superseded, format!("superseded by run {newest}"));
        return finish(
            cluster,
            dispatcher,
            message,
            run,
            Some(&hook),
            attempts,
            revision,
            result,
        )
        .await;
    }
    let mut lease = None;
    if matches!(
        mode,
        Concurrency::Latest | Concurrency::Cancel | Concurrency::Reject
    ) {
        let lane = lane_key("lease", &hook.id, key.as_deref());
        match cluster.take_lease(&lane, &run.id).await? {
            Some(taken) => lease = Some(taken),
            None => return Ok(AckKind::Nak(Some(NOT_NOW))),
        }
    }
    let started = Attempts {
        made: attempts.made + 1,
        running: true,
        ended: false,
    };
    let Some(revision) = cluster.set_attempts(&run.id, started, revision).await? else {
        // Another node has it.
        release(cluster, lease).await;
        return Ok(AckKind::Nak(Some(NOT_NOW)));
    };
    let stop = Arc::new(StopSignal::default());
    let claimed = Claimed {
        id: run.id.clone(),
        hook: hook.clone(),
        plan,
        key: key.clone(),
        attempts: attempts.made,
        background: run.background,
        stop: stop.clone(),
    };
    let cancel_on = (mode == Concurrency::Cancel).then_some(newest_key.as_str());
    let outcome = keep_alive(
        cluster,
        dispatcher.run_claimed(claimed),
        message,
        &mut lease,
        &stop,
        &run.id,
        cancel_on,
    )
    .await;
    release(cluster, lease).await;
    let after = Attempts {
        made: attempts.made,
        running: false,
        ended: false,
    };
    match outcome {
        ClaimedAttempt::Ran {
            result,
            attempt,
            started_at,
        } => {
            let made = Attempts {
                made: attempt,
                ..after
            };
            let retry = hook
                .scheduling
                .retry
                .filter(|retry| {
                    matches!(result.status, Status::Failed | Status::TimedOut)
                        && attempt <= retry.attempts
                })
                .map(|retry| retry.delay(attempt));
            match retry {
                Some(delay) => {
                    tracing::info!(
                        "run {} of {} {}; retry {attempt} in {delay:?}",
                        run.id,
                        hook.id,
                        result.status
                    );
                    record(dispatcher, message, ended(run, result.clone(), Some(delay))).await?;
                    cluster.set_attempts(&run.id, made, Some(revision)).await?;
                    dispatcher.claimed_ended(
                        &hook,
                        &run.id,
                        attempt,
                        &result,
                        Some(started_at),
                        true,
                    );
                    Ok(AckKind::Nak(Some(delay)))
                }
                None => {
                    record(dispatcher, message, ended(run, result.clone(), None)).await?;
                    let done = Attempts {
                        ended: true,
                        ..made
                    };
                    cluster.set_attempts(&run.id, done, Some(revision)).await?;
                    dispatcher.claimed_ended(
                        &hook,
                        &run.id,
                        attempt,
                        &result,
                        Some(started_at),
                        false,
                    );
                    Ok(AckKind::Ack)
                }
            }
        }
        ClaimedAttempt::Superseded { by } => {
            let result =
                RunResult::without_process(Status::Superseded, format!("superseded by run {by}"));
            finish(
                cluster,
                dispatcher,
                message,
                run,
                Some(&hook),
                after,
                Some(revision),
                result,
            )
            .await
        }
        ClaimedAttempt::NotStarted(reason) => {
            tracing::info!("run {} of {} not started here: {reason}", run.id, hook.id);
            cluster.set_attempts(&run.id, after, Some(revision)).await?;
            Ok(AckKind::Nak(Some(NOT_NOW)))
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

/// A run whose node died during an attempt: that attempt failed; retried when `retry` allows.
async fn interrupted(
    cluster: &Cluster,
    dispatcher: &Arc<Dispatcher>,
    message: &Message,
    run: &NewRun,
    hook: &Arc<Hook>,
    attempts: Attempts,
    revision: Option<u64>,
) -> Result<AckKind, ClusterError> {
    let reason = format!(
        "the node running attempt {} of this run stopped",
        attempts.made
    );
    let retry = hook
        .scheduling
        .retry
        .filter(|retry| attempts.made <= retry.attempts);
    let result = RunResult::without_process(Status::Interrupted, reason);
    let Some(retry) = retry else {
        tracing::warn!("run {} of {} was interrupted", run.id, hook.id);
        return finish(
            cluster,
            dispatcher,
            message,
            run,
            Some(hook),
            attempts,
            revision,
            result,
        )
        .await;
    };
    let delay = retry.delay(attempts.made);
    tracing::info!(
        "run {} of {} was interrupted; retry in {delay:?}",
        run.id,
        hook.id
    );
    record(dispatcher, message, ended(run, result, Some(delay))).await?;
    let waiting = Attempts {
        running: false,
        ..attempts
    };
    cluster.set_attempts(&run.id, waiting, revision).await?;
    Ok(AckKind::Nak(Some(delay)))
}

/// Records the final result of a run that did not run here (skipped, superseded, interrupted)
/// and marks it ended.
async fn finish(
    cluster: &Cluster,
    dispatcher: &Arc<Dispatcher>,
    message: &Message,
    run: &NewRun,
    hook: Option<&Arc<Hook>>,
    attempts: Attempts,
    revision: Option<u64>,
    result: RunResult,
) -> Result<AckKind, ClusterError> {
    record(dispatcher, message, ended(run, result.clone(), None)).await?;
    let done = Attempts {
        running: false,
        ended: true,
        ..attempts
    };
    cluster.set_attempts(&run.id, done, revision).await?;
    if let Some(hook) = hook {
        dispatcher.claimed_ended(hook, &run.id, attempts.made, &result, None, false);
    }
    Ok(AckKind::Ack)
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

/// Records an event in the history stream and waits for it to be stored, trying again for a
/// while (a NATS leader election) and keeping the message meanwhile.
async fn record(
    dispatcher: &Dispatcher,
    message: &Message,
    event: Event,
) -> Result<(), ClusterError> {
    let mut delay = Duration::from_millis(250);
    let give_up = tokio::time::Instant::now() + RECORD_PATIENCE;
    loop {
        match dispatcher.journal().record(event.clone()).committed().await {
            Ok(()) => return Ok(()),
            Err(error) if tokio::time::Instant::now() >= give_up => {
                return Err(ClusterError::request("history", error));
            }
            Err(error) => tracing::debug!("recording a run's end: {error}; trying again"),
        }
        let _ = message.ack_with(AckKind::Progress).await;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(KEEP_ALIVE);
    }
}
