//! The dispatcher: between a triggered plan and its process. Journals each accepted run,
//! applies the hook's concurrency policy (per `concurrency-key` value), holds the global cap on
//! running commands, drives each attempt through [`exec`], records how it ended, retries
//! failed runs with backoff, and stops everything in order at shutdown.
//!
//! A run's life: accepted (journaled: synced before a background run is answered) → waiting in
//! its lane, or started at once → attempt (journaled as running, then the process) → ended
//! (journaled; the waiting client, if any, gets the result). Retries re-enter the lane after
//! their backoff. Recovery at start and reruns live in [`super::recover`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tracing::Instrument as _;

use super::lane::{Busy, Decision, Lane, LaneJob, Origin};

use crate::cluster::Cluster;
use crate::config::Hook;
use crate::config::scheduling::Concurrency;
use crate::engine::exec::{self, Cut, ExecOptions, Outcome, Termination};
use crate::engine::notify::{Notifier, RunReport};
use crate::engine::output::LiveRuns;
use crate::ops::metrics::{Metrics, RunOutcome};
use crate::ops::reload::HookStore;
use crate::ops::request_log;
use crate::pipeline::plan::Plan;
use crate::pipeline::request::Request;
use crate::store::Received;
use crate::store::{Event, Journal, JournalError, NewRun, RunResult, Status};

/// The first wait before a journal write of a run's start or end that failed is tried again;
/// it doubles up to [`JOURNAL_RETRY_MAX`].
const JOURNAL_RETRY_MIN: Duration = Duration::from_millis(250);
const JOURNAL_RETRY_MAX: Duration = Duration::from_secs(5);

/// Engine-wide settings from the command line.
#[derive(Debug, Clone, Copy)]
pub struct DispatcherSettings {
    /// Output cap, kill grace, and the default timeout (`--command-timeout`).
    pub exec: ExecOptions,
    /// Most commands running at once over all hooks; 0: no cap.
    pub max_concurrent_runs: usize,
    /// How long running commands may go on after a shutdown signal.
    pub shutdown_timeout: Duration,
}

/// A triggered run handed to the engine.
#[derive(Debug)]
pub struct Submission {
    /// The `X-Hookwire-Run` id.
    pub id: String,
    pub hook: Arc<Hook>,
    pub plan: Plan,
    /// The `concurrency-key` value ([`concurrency_key`]).
    pub key: Option<String>,
    /// The request as received, journaled so the run can be planned again after a crash.
    pub request: Received,
    /// The client waits for the outcome (`include-command-output-in-response`).
    pub wait: bool,
    /// The run this one repeats.
    pub rerun_of: Option<String>,
}

/// Why a run was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{}", match .0 {
        Busy::QueueFull => "too many runs of this hook are waiting",
        Busy::Running => "this hook is already running",
    })]
    Busy(Busy),
    #[error("hookwire is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Journal(JournalError),
    /// The request is larger than the store can hold (a NATS server's `max_payload`).
    #[error("{0}")]
    TooLarge(String),
}

/// Why a run's process is asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A newer run of the same lane arrived (`concurrency: cancel`).
    Cancelled { by: String },
    /// Another node took over the run's lane lease (NATS store): it may run the lane now.
    LeaseLost,
}

/// A one-way "please stop" flag for one run, set by its lane.
#[derive(Debug)]
pub struct StopSignal(watch::Sender<Option<Stop>>);

impl Default for StopSignal {
    fn default() -> Self {
        Self(watch::channel(None).0)
    }
}

impl StopSignal {
    /// Asks the run to stop; the first reason given is kept.
    pub fn request(&self, stop: Stop) {
        self.0.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(stop);
            true
        });
    }

    /// The reason, once asked.
    pub fn reason(&self) -> Option<Stop> {
        self.0.borrow().clone()
    }

    /// Resolves once asked.
    async fn requested(&self) {
        let mut receiver = self.0.subscribe();
        let _ = receiver.wait_for(Option::is_some).await;
    }
}

/// Counts the runs being driven (waiting for a permit, starting, running, recording), so
/// shutdown can wait for them.
#[derive(Debug, Default)]
pub struct RunTracker {
    active: AtomicUsize,
    idle: Notify,
}

/// Held while a run is driven.
#[derive(Debug)]
pub struct RunGuard<'a>(&'a RunTracker);

impl RunTracker {
    pub fn start(&self) -> RunGuard<'_> {
        self.active.fetch_add(1, Ordering::SeqCst);
        RunGuard(self)
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Resolves once no run is driven.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Where the engine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Shutting down: nothing new starts; running commands may finish.
    Draining,
    /// The shutdown timeout is over: running commands are terminated.
    Halting,
}

/// The value of the hook's `concurrency-key` in `request`: `None` when the hook has no key or
/// runs in parallel; an empty string when the request lacks the value (those runs share a lane).
pub fn concurrency_key(hook: &Hook, request: Option<&Request>) -> Option<String> {
    let argument = hook.scheduling.concurrency_key.as_ref()?;
    if hook.scheduling.concurrency == Concurrency::Parallel {
        return None;
    }
    Some(
        request
            .and_then(|request| argument.get(request).ok())
            .unwrap_or_default(),
    )
}

/// One run inside the engine.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) id: String,
    pub(super) hook: Arc<Hook>,
    pub(super) plan: Plan,
    pub(super) key: Option<String>,
    /// Attempts made so far.
    pub(super) attempts: u32,
    /// Answered before it finished: its journal writes must be durable before it starts.
    pub(super) background: bool,
    /// The waiting client, answered after the first attempt (or when the run is dropped).
    pub(super) waiter: Option<oneshot::Sender<RunResult>>,
    pub(super) stop: Arc<StopSignal>,
    /// When the last attempt started, for notifications.
    pub(super) started_at: Option<SystemTime>,
    /// The log span of the request that brought the run, so its lines carry the request id.
    pub(super) span: tracing::Span,
}

impl LaneJob for Job {
    fn id(&self) -> &str {
        &self.id
    }
    fn stop(&self) -> &Arc<StopSignal> {
        &self.stop
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LaneKey {
    hook: String,
    key: Option<String>,
}

/// How one attempt went.
enum Attempt {
    Ran(Outcome, Option<Stop>),
    NotStarted(NotStarted),
}

enum NotStarted {
    /// Cancelled by a newer run before its process started.
    Stopped(Stop),
    /// Shutdown began first.
    Draining,
    /// It was never stored (its client was refused), or the journal closed.
    Journal(JournalError),
}

/// The dispatcher. Shared as `Arc<Dispatcher>` by the server, the admin routes and start-up.
#[derive(Debug)]
pub struct Dispatcher {
    pub(super) hooks: Arc<HookStore>,
    pub(super) journal: Arc<dyn Journal>,
    settings: DispatcherSettings,
    pub(super) metrics: Arc<Metrics>,
    lanes: Mutex<HashMap<LaneKey, Lane<Job>>>,
    /// Runs per hook waiting outside their lanes: for a `-max-concurrent-runs` slot (`parallel`
    /// runs), or for the journal to work again. They count as waiting too.
    stalled: Mutex<HashMap<String, usize>>,
    permits: Option<Arc<Semaphore>>,
    runs: RunTracker,
    phase: watch::Sender<Phase>,
    /// The output of the attempts running now, for followers.
    live: LiveRuns,
    /// Sends the hooks' `notify` entries when runs end.
    pub(super) notifier: Notifier,
    /// The NATS store, which takes over acceptance when set.
    cluster: OnceLock<Arc<Cluster>>,
}

/// A run the NATS store handed to this node: one attempt of it runs here.
#[derive(Debug)]
pub struct Claimed {
    pub id: String,
    pub hook: Arc<Hook>,
    pub plan: Plan,
    pub key: Option<String>,
    /// Attempts made before this one.
    pub attempts: u32,
    pub background: bool,
    /// Set by the cluster to stop the run (cancelled, lease lost).
    pub stop: Arc<StopSignal>,
}

/// How a claimed run's attempt went.
#[derive(Debug)]
pub enum ClaimedAttempt {
    /// Attempt number `attempt` ran.
    Ran {
        result: RunResult,
        attempt: u32,
        started_at: SystemTime,
    },
    /// A newer run took its place before it started.
    Superseded { by: String },
    /// It did not start (shutting down, or its start could not be recorded): hand it back.
    NotStarted(String),
}

impl Dispatcher {
    pub fn new(
        hooks: Arc<HookStore>,
        journal: Arc<dyn Journal>,
        metrics: Arc<Metrics>,
        settings: DispatcherSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            hooks,
            journal,
            settings,
            lanes: Mutex::default(),
            stalled: Mutex::default(),
            permits: (settings.max_concurrent_runs > 0)
                .then(|| Arc::new(Semaphore::new(settings.max_concurrent_runs))),
            runs: RunTracker::default(),
            phase: watch::channel(Phase::Serving).0,
            live: LiveRuns::default(),
            notifier: Notifier::new(metrics.clone()),
            metrics,
            cluster: OnceLock::new(),
        })
    }

    /// Hands acceptance over to the NATS store; set once at start.
    pub fn set_cluster(&self, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// The NATS store, when hookwire runs on one.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// The hooks as loaded now.
    pub fn hooks(&self) -> &Arc<HookStore> {
        &self.hooks
    }

    /// Counts a run as driven while the guard lives: shutdown waits for it to be recorded.
    pub fn track(&self) -> RunGuard<'_> {
        self.runs.start()
    }

    /// `-max-concurrent-runs` (`None`: no cap).
    pub fn max_concurrent_runs(&self) -> Option<usize> {
        (self.settings.max_concurrent_runs > 0).then_some(self.settings.max_concurrent_runs)
    }

    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        *self.phase.borrow() != Phase::Serving
    }

    /// Runs one attempt of a run the NATS store handed to this node. The cluster records its
    /// end and decides on a retry; then [`Self::claimed_ended`].
    pub async fn run_claimed(&self, claimed: Claimed) -> ClaimedAttempt {
        let _driven = self.runs.start();
        let mut job = Job {
            span: tracing::info_span!("run", id = %claimed.id),
            id: claimed.id,
            hook: claimed.hook,
            plan: claimed.plan,
            key: claimed.key,
            attempts: claimed.attempts,
            background: claimed.background,
            waiter: None,
            stop: claimed.stop,
            started_at: None,
        };
        let span = job.span.clone();
        match self.attempt(&mut job, None).instrument(span).await {
            Attempt::Ran(outcome, stop) => ClaimedAttempt::Ran {
                result: result_of(outcome, stop),
                attempt: job.attempts,
                started_at: job.started_at.unwrap_or_else(SystemTime::now),
            },
            Attempt::NotStarted(NotStarted::Stopped(Stop::Cancelled { by })) => {
                ClaimedAttempt::Superseded { by }
            }
            Attempt::NotStarted(NotStarted::Stopped(Stop::LeaseLost)) => {
                ClaimedAttempt::NotStarted("its lane's lease was lost".to_owned())
            }
            Attempt::NotStarted(NotStarted::Draining) => {
                ClaimedAttempt::NotStarted("hookwire is shutting down".to_owned())
            }
            Attempt::NotStarted(NotStarted::Journal(error)) => {
                ClaimedAttempt::NotStarted(error.to_string())
            }
        }
    }

    /// A claimed run's attempt is recorded: tells its followers, and when it is final (no
    /// retry), sends the hook's notifications.
    pub fn claimed_ended(
        &self,
        hook: &Arc<Hook>,
        id: &str,
        attempt: u32,
        result: &RunResult,
        started_at: Option<SystemTime>,
        retried: bool,
    ) {
        if !retried {
            self.notifier.notify(hook, result.status, || RunReport {
                run_id: id.to_owned(),
                hook_id: hook.id.clone(),
                attempt,
                result: result.clone(),
                started_at,
                finished_at: SystemTime::now(),
            });
        }
        self.finish_live(id, live_end(result, retried));
    }

    /// The output of run `id` while an attempt of it runs.
    pub fn live_output(&self, id: &str) -> Option<Arc<crate::engine::output::LiveOutput>> {
        self.live.get(id)
    }

    /// Resolves when an attempt of some run starts after this is called.
    pub fn attempt_started(&self) -> tokio::sync::futures::Notified<'_> {
        self.live.started()
    }

    /// The run journal, for the history routes.
    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.journal
    }

    /// Runs being driven right now.
    pub fn active(&self) -> usize {
        self.runs.active()
    }

    /// Accepts a run: journals it (synced before returning for a background run), then starts it
    /// or lets it wait per the hook's policy. With `wait`, the receiver gets the result of its
    /// first attempt, or why it did not run.
    pub async fn submit(
        self: &Arc<Self>,
        submission: Submission,
    ) -> Result<Option<oneshot::Receiver<RunResult>>, Refusal> {
        if *self.phase.borrow() != Phase::Serving {
            return Err(Refusal::ShuttingDown);
        }
        let background = !submission.wait;
        // Until this background run is answered, commands start one at a time (exec's stage).
        let _answering = background.then(exec::AnswerPending::begin);
        if let Some(cluster) = self.cluster.get() {
            return cluster.accept(submission, self.journal.clone()).await;
        }
        let (waiter, answer) = if submission.wait {
            let (sender, receiver) = oneshot::channel();
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        let accepted = Event::Accepted(Box::new(NewRun {
            id: submission.id.clone(),
            hook: submission.hook.id.clone(),
            concurrency_key: submission.key.clone(),
            background,
            rerun_of: submission.rerun_of,
            accepted_at: SystemTime::now(),
            request: submission.request,
        }));
        let job = Job {
            id: submission.id,
            hook: submission.hook,
            plan: submission.plan,
            key: submission.key,
            attempts: 0,
            background,
            waiter,
            stop: Arc::default(),
            started_at: None,
            span: tracing::Span::current(),
        };
        let lane = LaneKey {
            hook: job.hook.id.clone(),
            key: job.key.clone(),
        };
        let id = job.id.clone();
        let committed = self.admit(job, Origin::Client, Some(accepted))?;
        // A waiting client learns the outcome anyway; its run needs no sync before the answer.
        if background
            && let Some(ack) = committed
            && let Err(error) = ack.committed().await
        {
            // Not stored, so refused: it must not run. Its start, journaled after it, fails
            // too; a run still waiting leaves its lane now.
            self.withdraw(&lane, &id);
            return Err(Refusal::Journal(error));
        }
        Ok(answer)
    }

    /// Applies the policy. `accepted` (a client's new run) is journaled only once the run is
    /// known to be accepted, and before it can start, so its start is journaled after it.
    pub(super) fn admit(
        self: &Arc<Self>,
        job: Job,
        origin: Origin,
        accepted: Option<Event>,
    ) -> Result<Option<crate::store::Ack>, Refusal> {
        let mode = job.hook.scheduling.concurrency;
        let durable = job.background;
        if origin == Origin::Client && exec::waiting_starts() >= exec::MAX_WAITING_STARTS {
            tracing::info!(
                "refused a run of {}: {} commands already wait to start",
                job.hook.id,
                exec::MAX_WAITING_STARTS
            );
            return Err(Refusal::Busy(Busy::QueueFull));
        }
        if mode == Concurrency::Parallel {
            // Under `-max-concurrent-runs`, runs count as waiting until they have a slot, and
            // no more than the hook's `max-queue` wait.
            let counted = match (self.permits.is_some(), origin) {
                (false, _) => false,
                (true, Origin::Client) => {
                    if !self.count_waiting_within(&job.hook.id, job.hook.scheduling.max_queue) {
                        tracing::info!(
                            "refused a run of {}: {}",
                            job.hook.id,
                            Refusal::Busy(Busy::QueueFull)
                        );
                        return Err(Refusal::Busy(Busy::QueueFull));
                    }
                    true
                }
                // System runs are never refused, but count while they wait.
                (true, Origin::System) => {
                    self.count_stalled(&job.hook.id, 1);
                    true
                }
            };
            let ack = accepted.map(|event| self.record(event, durable));
            self.spawn(job, None, counted);
            return Ok(ack);
        }
        let key = LaneKey {
            hook: job.hook.id.clone(),
            key: job.key.clone(),
        };
        let max_queue = job.hook.scheduling.max_queue;
        let id = job.id.clone();
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let lane = lanes.entry(key.clone()).or_default();
        let decision = lane.admit(mode, max_queue, job, origin);
        if let Decision::Refused { job, busy } = decision {
            if lane.is_idle() {
                lanes.remove(&key);
            }
            tracing::info!("refused a run of {}: {}", job.hook.id, Refusal::Busy(busy));
            return Err(Refusal::Busy(busy));
        }
        let ack = accepted.map(|event| self.record(event, durable));
        match decision {
            Decision::Start(job) => self.spawn(job, Some(key.clone()), false),
            Decision::Wait { superseded } => {
                for old in superseded {
                    self.supersede(old, &id);
                }
            }
            Decision::Superseded { job, by } => self.supersede(job, &by),
            Decision::Refused { .. } => {}
        }
        self.report_queue_depth(&lanes, &key.hook);
        Ok(ack)
    }

    /// Takes a refused run out of its lane if it is still waiting there.
    fn withdraw(&self, key: &LaneKey, id: &str) {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lane) = lanes.get_mut(key)
            && lane.withdraw(id).is_some()
        {
            if lane.is_idle() {
                lanes.remove(key);
            }
            self.report_queue_depth(&lanes, &key.hook);
        }
    }

    /// Records a run that will never start because `by` took its place.
    fn supersede(&self, job: Job, by: &str) {
        self.metrics
            .run_ended(&job.hook.id, RunOutcome::Superseded, None);
        tracing::info!(
            "run {} of {} is superseded by run {by}",
            job.id,
            job.hook.id
        );
        let result =
            RunResult::without_process(Status::Superseded, format!("superseded by run {by}"));
        self.end(job, result);
    }

    /// `counted`: the run was counted as waiting for a slot ([`Self::count_waiting_within`]).
    fn spawn(self: &Arc<Self>, job: Job, lane: Option<LaneKey>, counted: bool) {
        let span = job.span.clone();
        tokio::spawn(self.clone().drive(job, lane, counted).instrument(span));
    }

    /// Drives one attempt of a run that holds its lane (or needs none), then frees the lane.
    async fn drive(self: Arc<Self>, mut job: Job, lane: Option<LaneKey>, counted: bool) {
        let _driven = self.runs.start();
        let waiting = counted.then(|| Stalled::counted(&self, &job.hook.id));
        let attempt = self.attempt(&mut job, waiting).await;
        self.conclude(job, attempt);
        if let Some(lane) = lane {
            self.release(&lane);
        }
    }

    /// `waiting`: the run's count as waiting for a slot, dropped once it has one.
    async fn attempt(&self, job: &mut Job, waiting: Option<Stalled<'_>>) -> Attempt {
        let _permit: Option<OwnedSemaphorePermit> = match &self.permits {
            None => None,
            Some(permits) => tokio::select! {
                permit = permits.clone().acquire_owned() => permit.ok(),
                why = self.interrupted_before_start(&job.stop) => return Attempt::NotStarted(why),
            },
        };
        drop(waiting);
        if *self.phase.borrow() != Phase::Serving {
            return Attempt::NotStarted(NotStarted::Draining);
        }
        if let Some(stop) = job.stop.reason() {
            return Attempt::NotStarted(NotStarted::Stopped(stop));
        }
        let start = if job.background {
            // Taken before the start is journaled: few runs are ever marked running that wait
            // to be spawned, so a crash in a burst leaves few of them interrupted.
            tokio::select! {
                ticket = exec::StartTicket::take() => exec::Start::Staged(ticket),
                why = self.interrupted_before_start(&job.stop) => return Attempt::NotStarted(why),
            }
        } else {
            exec::Start::Here
        };
        job.attempts += 1;
        if let Err(why) = self.journal_start(job).await {
            job.attempts -= 1;
            return Attempt::NotStarted(why);
        }
        let plan = &job.plan;
        request_log::run_started(&self.metrics, &job.hook.id, &job.id, plan);
        if job.attempts > 1 {
            tracing::info!(run = %job.id, "attempt {}", job.attempts);
        }
        let mut options = self.settings.exec;
        if let Some(timeout) = job.hook.scheduling.timeout {
            options.timeout = Some(timeout);
        }
        options.kill_leftovers = job.hook.scheduling.kill_leftovers;
        let stop = async {
            let mut phase = self.phase.subscribe();
            tokio::select! {
                () = job.stop.requested() => {}
                _ = phase.wait_for(|phase| *phase == Phase::Halting) => {}
            }
        };
        let identity = exec::RunIdentity {
            run_id: job.id.clone(),
            hook_id: job.hook.id.clone(),
            attempt: job.attempts,
        };
        job.started_at = Some(SystemTime::now());
        let output = self.live.start(&job.id, options.output_limit);
        let outcome = exec::run_until(plan, &identity, options, &output, stop, start).await;
        let cancelled = matches!(job.stop.reason(), Some(Stop::Cancelled { .. }));
        request_log::run_finished(&self.metrics, &job.hook.id, &job.id, &outcome, cancelled);
        match outcome.cut {
            Some(Cut::TimedOut) => tracing::warn!(run = %job.id, "timed out"),
            Some(Cut::Stopped) => tracing::info!(run = %job.id, "stopped"),
            None => {}
        }
        // Quoted: the output may echo request values that would pass for fields.
        tracing::debug!(
            "command output: {}",
            crate::ops::logging::field_value(&String::from_utf8_lossy(&outcome.output))
        );
        Attempt::Ran(outcome, job.stop.reason())
    }

    /// Journals the start of the job's attempt. A background run's start must be on disk before
    /// its process starts: a crash after the start must find the run marked running, or it would
    /// run twice without counting as an attempt. While the journal cannot write (a full disk, a
    /// read-only remount), such a run keeps its place, counts as waiting in the queue depth, and
    /// tries again with backoff: it is stored, so it runs once the journal works again, without
    /// a restart.
    async fn journal_start(&self, job: &Job) -> Result<(), NotStarted> {
        // Started here: the NATS store, whose starts name their node, records its own.
        let started = || Event::Started {
            id: job.id.clone(),
            attempt: job.attempts,
            at: SystemTime::now(),
            node: None,
        };
        if self.cluster.get().is_some() {
            // The cluster records a start itself, by compare-and-set on the run's history.
            return Ok(());
        }
        if !job.background {
            self.journal.record_volatile(started());
            return Ok(());
        }
        let mut delay = JOURNAL_RETRY_MIN;
        let mut stalled = None;
        loop {
            match self.journal.record(started()).committed().await {
                Ok(()) => {
                    if stalled.is_some() {
                        tracing::info!(run = %job.id, "the journal works again; starting");
                    }
                    return Ok(());
                }
                Err(error @ (JournalError::Missing(_) | JournalError::Closed)) => {
                    return Err(NotStarted::Journal(error));
                }
                Err(error) => {
                    if stalled.is_none() {
                        tracing::error!(
                            run = %job.id,
                            "cannot journal the start of run {} of {}: {error}; it waits and tries again (free space in the state directory, or make it writable)",
                            job.id,
                            job.hook.id
                        );
                        stalled = Some(Stalled::new(self, &job.hook.id));
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                why = self.interrupted_before_start(&job.stop) => return Err(why),
            }
            delay = (delay * 2).min(JOURNAL_RETRY_MAX);
        }
    }

    /// Resolves when a run that has not started yet must not start: cancelled, or shutting down.
    async fn interrupted_before_start(&self, stop: &StopSignal) -> NotStarted {
        let mut phase = self.phase.subscribe();
        tokio::select! {
            () = stop.requested() => NotStarted::Stopped(stop.reason().unwrap_or(Stop::Cancelled { by: String::new() })),
            _ = phase.wait_for(|phase| *phase != Phase::Serving) => NotStarted::Draining,
        }
    }

    /// Records how the attempt went, answers the waiting client, schedules a retry.
    fn conclude(self: &Arc<Self>, mut job: Job, attempt: Attempt) {
        let (outcome, stop) = match attempt {
            Attempt::NotStarted(NotStarted::Stopped(Stop::Cancelled { by })) => {
                return self.supersede(job, &by);
            }
            // Leases exist only on a NATS store, whose runs are concluded by the cluster.
            Attempt::NotStarted(NotStarted::Stopped(Stop::LeaseLost)) => return,
            Attempt::NotStarted(NotStarted::Draining) => {
                if job.waiter.is_some() {
                    let reason = "hookwire shut down before the run started";
                    self.end(job, RunResult::without_process(Status::Interrupted, reason));
                }
                // A background run stays queued in the journal and runs after the next start.
                return;
            }
            Attempt::NotStarted(NotStarted::Journal(error)) => {
                // Missing: its acceptance was not stored and its client was answered 503.
                // Closed: shutting down; a stored run stays queued for the next start.
                tracing::warn!("run {} of {} not started: {error}", job.id, job.hook.id);
                if let Some(waiter) = job.waiter.take() {
                    let _ = waiter.send(RunResult::without_process(
                        Status::Failed,
                        error.to_string(),
                    ));
                }
                return;
            }
            Attempt::Ran(outcome, stop) => (outcome, stop),
        };
        let result = result_of(outcome, stop);
        let retry = job
            .hook
            .scheduling
            .retry
            .filter(|retry| {
                matches!(result.status, Status::Failed | Status::TimedOut)
                    && job.attempts <= retry.attempts
            })
            .map(|retry| retry.delay(job.attempts));
        let Some(delay) = retry else {
            return self.end(job, result);
        };
        tracing::info!(
            "run {} of {} {}; retry {} in {delay:?}",
            job.id,
            job.hook.id,
            result.status,
            job.attempts
        );
        let retry_at = SystemTime::now() + delay;
        let live_end = live_end(&result, true);
        let waiter = job.waiter.take();
        let id = job.id.clone();
        let hook = job.hook.id.clone();
        let answer = waiter.is_some().then(|| result.clone());
        let ended = Event::Ended {
            id,
            hook,
            result,
            at: SystemTime::now(),
            retry_at: Some(retry_at),
        };
        // Durable for a background run, but nothing waits for it: the retry's start, which
        // waits for the disk, is journaled after it.
        if job.background {
            self.journal.record_unawaited(ended);
        } else {
            self.journal.record_volatile(ended);
        }
        self.finish_live(&job.id, live_end);
        if let (Some(waiter), Some(answer)) = (waiter, answer) {
            let _ = waiter.send(answer);
        }
        job.stop = Arc::default();
        self.schedule(job, delay);
    }

    /// Journals an event of a run: durably for a background run (the journal is all that
    /// remembers it), without waiting for the disk for a run whose client gets the outcome.
    fn record(&self, event: Event, durable: bool) -> crate::store::Ack {
        if durable {
            self.journal.record(event)
        } else {
            self.journal.record_volatile(event)
        }
    }

    /// Journals the final result of a run, answers its waiting client and queues its
    /// notifications.
    fn end(&self, mut job: Job, result: RunResult) {
        let answer = job.waiter.as_ref().map(|_| result.clone());
        let finished_at = SystemTime::now();
        self.notifier
            .notify(&job.hook, result.status, || RunReport {
                run_id: job.id.clone(),
                hook_id: job.hook.id.clone(),
                attempt: job.attempts,
                result: result.clone(),
                started_at: job.started_at,
                finished_at,
            });
        let live_end = live_end(&result, false);
        let ended = Event::Ended {
            id: job.id.clone(),
            hook: job.hook.id.clone(),
            result,
            at: finished_at,
            retry_at: None,
        };
        if job.background {
            self.record_end_until_stored(ended);
        } else {
            self.journal.record_volatile(ended);
        }
        // After the record, so a follower told of the end reads the run as ended.
        self.finish_live(&job.id, live_end);
        if let (Some(waiter), Some(answer)) = (job.waiter.take(), answer) {
            let _ = waiter.send(answer);
        }
    }

    /// Tells the followers of run `id`'s attempt how it ended, and forgets the attempt.
    fn finish_live(&self, id: &str, end: crate::engine::output::End) {
        if let Some(output) = self.live.get(id) {
            self.live.remove(id);
            output.finish(end);
        }
    }

    /// Journals the final result of a background run, trying again with backoff while the
    /// journal cannot write: otherwise the run stays `running` in the journal, and the next
    /// start takes it for interrupted (and runs it again where `retry` allows). Nothing of the
    /// run is journaled after its end, so a late write cannot overtake another.
    fn record_end_until_stored(&self, ended: Event) {
        let journal = self.journal.clone();
        let first = journal.record_unawaited(ended.clone());
        tokio::spawn(async move {
            let mut result = first.committed().await;
            let mut delay = JOURNAL_RETRY_MIN;
            while let Err(error) = result {
                if matches!(error, JournalError::Missing(_) | JournalError::Closed) {
                    return;
                }
                if delay == JOURNAL_RETRY_MIN
                    && let Event::Ended { id, .. } = &ended
                {
                    tracing::warn!("cannot journal the end of run {id}: {error}; trying again");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(JOURNAL_RETRY_MAX);
                result = journal.record_unawaited(ended.clone()).committed().await;
            }
        });
    }

    /// Lets `job` re-enter its lane after `delay`, unless shutdown comes first (then it stays
    /// queued in the journal for the next start).
    pub(super) fn schedule(self: &Arc<Self>, job: Job, delay: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut phase = this.phase.subscribe();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = phase.wait_for(|phase| *phase != Phase::Serving) => return,
            }
            // System runs are never refused.
            let _ = this.admit(job, Origin::System, None);
        });
    }

    /// The lane's run ended: start the next one waiting.
    fn release(self: &Arc<Self>, key: &LaneKey) {
        let holding = *self.phase.borrow() != Phase::Serving;
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(lane) = lanes.get_mut(key) else {
            return;
        };
        if let Some(next) = lane.release(holding) {
            self.spawn(next, Some(key.clone()), false);
        } else if lane.is_idle() {
            lanes.remove(key);
        }
        self.report_queue_depth(&lanes, &key.hook);
    }

    /// Sets `hookwire_queue_depth` for `hook`: its runs waiting in all its lanes, and those
    /// whose start waits for the journal.
    fn report_queue_depth(&self, lanes: &HashMap<LaneKey, Lane<Job>>, hook: &str) {
        let in_lanes: usize = lanes
            .iter()
            .filter(|(key, _)| key.hook == hook)
            .map(|(_, lane)| lane.waiting())
            .sum();
        let stalled = self
            .stalled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hook)
            .copied()
            .unwrap_or(0);
        self.metrics.set_queue_depth(hook, in_lanes + stalled);
    }

    /// Counts one more run of `hook` waiting outside its lanes, unless `limit` already wait.
    fn count_waiting_within(&self, hook: &str, limit: usize) -> bool {
        let lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let mut stalled = self.stalled.lock().unwrap_or_else(PoisonError::into_inner);
            let count = stalled.entry(hook.to_owned()).or_default();
            if *count >= limit {
                return false;
            }
            *count += 1;
        }
        self.report_queue_depth(&lanes, hook);
        true
    }

    /// Adds `change` to the runs of `hook` waiting outside its lanes.
    fn count_stalled(&self, hook: &str, change: isize) {
        let lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let mut stalled = self.stalled.lock().unwrap_or_else(PoisonError::into_inner);
            let count = stalled.entry(hook.to_owned()).or_default();
            *count = count.saturating_add_signed(change);
            if *count == 0 {
                stalled.remove(hook);
            }
        }
        self.report_queue_depth(&lanes, hook);
    }

    /// Shutdown, first step: no new runs, waiting runs stay in the journal (their waiting
    /// clients are told), and after `--shutdown-timeout` running commands are terminated.
    pub fn begin_shutdown(self: &Arc<Self>) {
        self.phase.send_replace(Phase::Draining);
        let waiting: Vec<Job> = {
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            let waiting: Vec<Job> = lanes.values_mut().flat_map(Lane::take_waiting).collect();
            for job in &waiting {
                self.metrics.set_queue_depth(&job.hook.id, 0);
            }
            lanes.retain(|_, lane| !lane.is_idle());
            waiting
        };
        for job in waiting {
            self.conclude(job, Attempt::NotStarted(NotStarted::Draining));
        }
        let active = self.active();
        if active > 0 {
            tracing::info!("waiting for {active} running command(s) to finish");
        }
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(this.settings.shutdown_timeout).await;
            let active = this.active();
            if active > 0 {
                tracing::warn!(
                    "terminating {active} command(s) still running after the shutdown timeout"
                );
            }
            this.phase.send_replace(Phase::Halting);
        });
    }

    /// Resolves once shutdown has begun ([`Self::begin_shutdown`]): the listeners stop on it.
    pub fn draining(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut phase = self.phase.subscribe();
        async move {
            let _ = phase.wait_for(|phase| *phase != Phase::Serving).await;
        }
    }

    /// Shutdown, last step: waits for the runs to be recorded, then closes the journal.
    pub async fn finish(&self) {
        let limit =
            self.settings.shutdown_timeout + self.settings.exec.kill_grace + Duration::from_secs(5);
        if tokio::time::timeout(limit, self.runs.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!("{} run(s) still unrecorded at exit", self.active());
        }
        let journal = self.journal.clone();
        let _ = tokio::task::spawn_blocking(move || journal.close()).await;
    }
}

/// Counts a run as waiting for the journal while held.
struct Stalled<'d> {
    dispatcher: &'d Dispatcher,
    hook: String,
}

impl<'d> Stalled<'d> {
    fn new(dispatcher: &'d Dispatcher, hook: &str) -> Self {
        dispatcher.count_stalled(hook, 1);
        Self::counted(dispatcher, hook)
    }

    /// Takes over a count already made.
    fn counted(dispatcher: &'d Dispatcher, hook: &str) -> Self {
        Self {
            dispatcher,
            hook: hook.to_owned(),
        }
    }
}

impl Drop for Stalled<'_> {
    fn drop(&mut self) {
        self.dispatcher.count_stalled(&self.hook, -1);
    }
}

/// What an attempt's outcome means for the run.
fn result_of(outcome: Outcome, stop: Option<Stop>) -> RunResult {
    let (status, reason) = match (&outcome.cut, &outcome.termination, stop) {
        (Some(Cut::TimedOut), _, _) => (Status::TimedOut, None),
        (Some(Cut::Stopped), _, Some(Stop::Cancelled { by })) => {
            (Status::Cancelled, Some(format!("cancelled by run {by}")))
        }
        (Some(Cut::Stopped), _, Some(Stop::LeaseLost)) => (
            Status::Interrupted,
            Some("another node took over its lane's lease".to_owned()),
        ),
        (Some(Cut::Stopped), _, None) => (
            Status::Interrupted,
            Some("terminated at shutdown".to_owned()),
        ),
        (None, Termination::Exited(0), _) => (Status::Succeeded, None),
        (None, Termination::NotStarted(error), _) => (Status::Failed, Some(error.clone())),
        (None, _, _) => (Status::Failed, None),
    };
    RunResult {
        status,
        exit_code: match outcome.termination {
            Termination::Exited(code) => Some(code),
            _ => None,
        },
        signal: match outcome.termination {
            Termination::Signaled(signal) => Some(signal),
            _ => None,
        },
        reason,
        output: outcome.output,
        truncated: outcome.truncated,
    }
}

/// What followers of an attempt are told at its end: the run's status, `queued` when it is
/// retried.
fn live_end(result: &RunResult, retried: bool) -> crate::engine::output::End {
    let status = if retried {
        Status::Queued
    } else {
        result.status
    };
    crate::engine::output::End {
        status: status.to_string(),
        exit_code: result.exit_code,
        signal: result.signal,
    }
}
