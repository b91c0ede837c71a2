//! Runs that come back from the journal: at start, the ones the last process left queued or
//! running; on request, a stored run repeated as a new one (`hookwire runs rerun`). Both plan the
//! stored request again with the current hooks, through the same [`pipeline::prepare`] the
//! server uses, so a hook changed or removed since is honoured.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::dispatcher::{Dispatcher, Job, Refusal, Submission};
use super::lane::Origin;
use super::notify::RunReport;
use crate::config::Hook;
use crate::ops::metrics::RunOutcome;
use crate::pipeline::plan::Plan;
use crate::pipeline::request::body::BodyError;
use crate::pipeline::rules::RuleError;
use crate::pipeline::signature::preset::{self, PresetError};
use crate::pipeline::{self, Verdict};
use crate::store::Received;
use crate::store::{Ack, Event, JournalError, RunResult, Status};

/// What recovery did at start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Queued again (including retries of attempts lost in a crash).
    pub resumed: usize,
    /// Were running when the last process died, with no retry left.
    pub interrupted: usize,
    /// Cannot run any more (hook removed, rules no longer satisfied).
    pub skipped: usize,
}

/// Why a rerun was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RerunError {
    #[error("no run {0} in the journal")]
    NotFound(String),
    #[error("run {id} cannot run again: {reason}")]
    NotRunnable { id: String, reason: String },
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    Journal(JournalError),
}

/// Why a stored request cannot run with the current hooks.
#[derive(Debug, thiserror::Error)]
pub enum ReplanError {
    #[error("hook `{0}` is no longer defined in the hooks files")]
    HookGone(String),
    #[error("the request no longer satisfies the hook's trigger rule")]
    NotTriggered,
    #[error("the stored body cannot be parsed: {0}")]
    Malformed(#[source] BodyError),
    #[error("the trigger rule failed: {0}")]
    Rule(#[source] RuleError),
    #[error("the signature check failed: {0}")]
    Signature(#[source] PresetError),
    #[error("a Discord PING runs nothing")]
    DiscordPing,
}

impl Dispatcher {
    /// Picks up the runs the last process left unfinished, oldest first: queued ones wait for
    /// their turn (after their retry time, if any); one that was running counts as a failed
    /// attempt, retried when `retry` allows, else recorded as interrupted. Runs whose hook is
    /// gone, or whose request no longer triggers it, are recorded as skipped with the reason.
    pub async fn recover(self: &Arc<Self>) -> Result<Recovered, JournalError> {
        let mut recovered = Recovered::default();
        let mut recorded = Vec::new();
        for stored in self.journal.unfinished()? {
            let span = tracing::info_span!("request", id = %stored.request.id);
            let replanned = match &stored.body_lost {
                Some(lost) => Err(lost.clone()),
                None => self
                    .replan(&stored.hook, &stored.request)
                    .await
                    .map_err(|error| error.to_string()),
            };
            let (hook, plan, key) = match replanned {
                Ok(planned) => planned,
                Err(reason) => {
                    tracing::warn!("run {} of {} skipped: {reason}", stored.id, stored.hook);
                    recorded.push(self.record_end(
                        &stored.id,
                        &stored.hook,
                        Status::Skipped,
                        reason,
                        None,
                    ));
                    recovered.skipped += 1;
                    continue;
                }
            };
            let now = SystemTime::now();
            let mut delay = stored
                .next_attempt_at
                .and_then(|at| at.duration_since(now).ok())
                .unwrap_or_default();
            if stored.status == Status::Running {
                let reason = format!(
                    "hookwire stopped during attempt {} of this run",
                    stored.attempts
                );
                match hook
                    .scheduling
                    .retry
                    .filter(|r| stored.attempts <= r.attempts)
                {
                    None => {
                        tracing::warn!("run {} of {} was interrupted", stored.id, hook.id);
                        self.metrics
                            .run_ended(&hook.id, RunOutcome::Interrupted, None);
                        self.notifier
                            .notify(&hook, Status::Interrupted, || RunReport {
                                run_id: stored.id.clone(),
                                hook_id: hook.id.clone(),
                                attempt: stored.attempts,
                                result: RunResult::without_process(
                                    Status::Interrupted,
                                    reason.clone(),
                                ),
                                started_at: None,
                                finished_at: now,
                            });
                        recorded.push(self.record_end(
                            &stored.id,
                            &hook.id,
                            Status::Interrupted,
                            reason,
                            None,
                        ));
                        recovered.interrupted += 1;
                        continue;
                    }
                    Some(retry) => {
                        delay = retry.delay(stored.attempts);
                        let retry_at = Some(now + delay);
                        self.record_end(
                            &stored.id,
                            &hook.id,
                            Status::Interrupted,
                            reason,
                            retry_at,
                        );
                    }
                }
            }
            tracing::info!("resuming run {} of {}", stored.id, hook.id);
            let job = Job {
                id: stored.id,
                hook,
                plan,
                key,
                attempts: stored.attempts,
                background: stored.background,
                waiter: None,
                stop: Arc::default(),
                started_at: None,
                span,
            };
            if delay == Duration::ZERO {
                // Admitted now, in journal order, so a queue keeps its arrival order.
                let _ = self.admit(job, Origin::System, None);
            } else {
                self.schedule(job, delay);
            }
            recovered.resumed += 1;
        }
        // The history reads as recovered from the first request on.
        for ack in recorded {
            ack.committed().await?;
        }
        Ok(recovered)
    }

    /// Runs the request of run `id` again as a new background run; returns the new run's id.
    pub async fn rerun(self: &Arc<Self>, id: &str) -> Result<String, RerunError> {
        let journal = self.journal.clone();
        let owned_id = id.to_owned();
        let stored = tokio::task::spawn_blocking(move || journal.stored(&owned_id))
            .await
            .map_err(|error| RerunError::Journal(JournalError::Store(error.to_string())))?
            .map_err(RerunError::Journal)?
            .ok_or_else(|| RerunError::NotFound(id.to_owned()))?;
        if let Some(reason) = stored.body_lost {
            return Err(RerunError::NotRunnable {
                id: id.to_owned(),
                reason,
            });
        }
        let (hook, plan, key) =
            self.replan(&stored.hook, &stored.request)
                .await
                .map_err(|error| RerunError::NotRunnable {
                    id: id.to_owned(),
                    reason: error.to_string(),
                })?;
        let new_id = uuid::Uuid::now_v7().to_string();
        tracing::info!("rerunning run {id} of {} as run {new_id}", hook.id);
        self.submit(Submission {
            id: new_id.clone(),
            hook,
            plan,
            key,
            request: stored.request,
            wait: false,
            rerun_of: Some(id.to_owned()),
        })
        .await
        .map_err(RerunError::Refused)?;
        Ok(new_id)
    }

    /// Plans a stored request with the current hooks: the hook, its plan and concurrency key,
    /// or why it cannot run.
    pub(crate) async fn replan(
        &self,
        hook_id: &str,
        request: &Received,
    ) -> Result<(Arc<Hook>, Plan, Option<String>), ReplanError> {
        let hooks = self.hooks.load();
        let hook = hooks
            .get(hook_id)
            .cloned()
            .ok_or_else(|| ReplanError::HookGone(hook_id.to_owned()))?;
        // The signature was checked when the request was accepted; checked again now, a
        // timestamped one (Stripe, Slack, ...) would have expired.
        let mut unsigned = (*hook).clone();
        unsigned.security.signature = None;
        let prepared = pipeline::prepare(&unsigned, request, false).await;
        match prepared.verdict {
            Verdict::Triggered(mut plan) => {
                // The preset's delivery id, which the unsigned hook could not find.
                if plan.delivery_id.is_none()
                    && let Some(config) = &hook.security.signature
                {
                    plan.delivery_id =
                        preset::delivery_id(&config.provider, &request.headers, &request.body);
                }
                let key = super::concurrency_key(&hook, prepared.request.as_ref());
                Ok((hook, plan, key))
            }
            Verdict::NotTriggered => Err(ReplanError::NotTriggered),
            Verdict::Malformed(error) => Err(ReplanError::Malformed(error)),
            Verdict::RuleError(error) => Err(ReplanError::Rule(error)),
            Verdict::SignatureFailed(error) => Err(ReplanError::Signature(error)),
            Verdict::DiscordPing => Err(ReplanError::DiscordPing),
        }
    }

    fn record_end(
        &self,
        id: &str,
        hook: &str,
        status: Status,
        reason: String,
        retry_at: Option<SystemTime>,
    ) -> Ack {
        self.journal.record(Event::Ended {
            id: id.to_owned(),
            hook: hook.to_owned(),
            result: RunResult::without_process(status, reason),
            at: SystemTime::now(),
            retry_at,
        })
    }
}
