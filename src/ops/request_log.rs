//! The operational record of a request and a run: one log line when a request is answered
//! and one when a run starts and ends, each with the matching metrics, so the log and
//! `/-/metrics` always tell the same story.
//!
//! A request runs in a `request` span carrying its id, hook and client; the stages record
//! the rule verdict and the run id into it as they learn them ([`record_verdict`],
//! [`record_run`]), so the closing line, and every line logged during the request, shows
//! them (as `request{id=… hook=… verdict=…}` in text, as the `span` object in JSON).

use std::net::SocketAddr;
use std::time::Duration;

use tracing::Span;

use crate::engine::exec::{Cut, Outcome, Termination};
use crate::ops::metrics::{Metrics, RunOutcome};
use crate::pipeline::Verdict;
use crate::pipeline::plan::Plan;

/// The span of one hook request. `verdict` and `run` are filled in later.
pub fn request_span(request_id: &str, hook: &str, client: SocketAddr) -> Span {
    tracing::info_span!(
        "request",
        id = %request_id,
        hook = %hook,
        client = %client.ip(),
        verdict = tracing::field::Empty,
        run = tracing::field::Empty,
    )
}

/// What the stages decided, as one word for logs, metrics and `hookwire explain`.
pub fn verdict_label(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::SignatureFailed(_) => "signature-failed",
        Verdict::DiscordPing => "discord-ping",
        Verdict::Malformed(_) => "malformed-body",
        Verdict::RuleError(_) => "rule-error",
        Verdict::NotTriggered => "not-triggered",
        Verdict::Triggered(_) => "triggered",
    }
}

/// Records the verdict of the current request (a [`verdict_label`], or why the request never
/// reached the rules: `unknown-hook`, `method-not-allowed`, `body-rejected`, ...).
pub fn record_verdict(label: &str) {
    Span::current().record("verdict", tracing::field::display(label));
}

/// Records the run id of the current request.
pub fn record_run(run_id: &str) {
    Span::current().record("run", tracing::field::display(run_id));
}

/// The closing line of a hook request, and its count in `hookwire_requests_total`. `hook` is
/// `None` when no hook has that id (its count then goes under `hook=""`).
pub fn request_answered(metrics: &Metrics, hook: Option<&str>, status: u16, elapsed: Duration) {
    metrics.request(hook, status);
    tracing::info!(status, duration_ms = millis(elapsed), "request answered");
}

/// A run is about to start: the log line and `hookwire_runs_in_flight`.
pub fn run_started(metrics: &Metrics, hook: &str, run_id: &str, plan: &Plan) {
    metrics.run_started();
    tracing::info!(
        run = %run_id,
        hook = %hook,
        command = %plan.command,
        args = ?plan.args,
        cwd = %plan
            .working_directory
            .as_deref()
            .map_or_else(|| ".".into(), |d| d.display().to_string()),
        "run started"
    );
}

/// A run that [`run_started`] announced ended: the log line (a warning unless it succeeded)
/// and the run counters and duration histogram. `cancelled`: a newer run asked it to stop
/// (otherwise a stop means shutdown).
pub fn run_finished(
    metrics: &Metrics,
    hook: &str,
    run_id: &str,
    outcome: &Outcome,
    cancelled: bool,
) {
    let result = match outcome.cut {
        Some(Cut::Stopped) if cancelled => RunOutcome::Cancelled,
        Some(Cut::Stopped) => RunOutcome::Interrupted,
        _ => RunOutcome::from(&outcome.termination),
    };
    metrics.run_finished(hook, result, outcome.duration);
    let exit = match &outcome.termination {
        Termination::Exited(code) => format!("exit status {code}"),
        Termination::Signaled(signal) => format!("killed by signal {signal}"),
        Termination::NotStarted(error) => format!("not started: {error}"),
    };
    let duration_ms = millis(outcome.duration);
    if result == RunOutcome::Succeeded {
        tracing::info!(run = %run_id, hook = %hook, outcome = %result.as_str(), %exit, duration_ms, "run finished");
    } else {
        tracing::warn!(run = %run_id, hook = %hook, outcome = %result.as_str(), %exit, duration_ms, "run finished");
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
