//! The server's counters, gauges and histograms, and their text exposition for `/-/metrics`.
//!
//! One [`Metrics`] lives in [`crate::server::State`]; every producer records through a small
//! method named after the event (`request`, `signature_failed`, `run_finished`, ...), so the
//! series names and labels are defined here only. Labels are bounded on purpose: `hook` is
//! always a configured hook id (a request for an unknown id is counted under `hook=""`, or a
//! client could create a series per URL), `status` an HTTP status, `provider` a preset name.
//!
//! The exposition is OpenMetrics text (prometheus-client's only text encoder), which
//! Prometheus reads natively: `# TYPE`/`# HELP` comments, `name{labels} value` lines, and a
//! closing `# EOF`.

use std::fmt;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Run durations, in seconds: hook commands range from a quick notification to a long build.
const RUN_DURATION_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabel {
    hook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    hook: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    hook: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    hook: String,
    outcome: &'static str,
}

/// How a notification ended, as the `outcome` label of `hookwire_notifications_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// Delivered: a 2xx answer, or a command that exited 0.
    Sent,
    /// Every attempt failed.
    Failed,
    /// Not sent: the notification queue was full.
    Dropped,
}

impl NotificationOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationOutcome::Sent => "sent",
            NotificationOutcome::Failed => "failed",
            NotificationOutcome::Dropped => "dropped",
        }
    }
}

type HistogramFamily = Family<HookLabel, Histogram, fn() -> Histogram>;

/// How a run ended, as the `outcome` label of `hookwire_runs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Exit status 0.
    Succeeded,
    /// A non-zero exit status.
    Failed,
    /// Ended by a signal (a timeout's SIGTERM/SIGKILL included).
    Killed,
    /// Could not be started: not found, not executable, ...
    NotStarted,
    /// Replaced by a newer request before it started (`concurrency: latest`).
    Superseded,
    /// Stopped because a newer request arrived (`concurrency: cancel`).
    Cancelled,
    /// Running when hookwire stopped; recorded at the next start.
    Interrupted,
}

impl RunOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Killed => "killed",
            RunOutcome::NotStarted => "not_started",
            RunOutcome::Superseded => "superseded",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Interrupted => "interrupted",
        }
    }
}

impl From<&crate::engine::exec::Termination> for RunOutcome {
    fn from(termination: &crate::engine::exec::Termination) -> Self {
        use crate::engine::exec::Termination;
        match termination {
            Termination::Exited(0) => RunOutcome::Succeeded,
            Termination::Exited(_) => RunOutcome::Failed,
            Termination::Signaled(_) => RunOutcome::Killed,
            Termination::NotStarted(_) => RunOutcome::NotStarted,
        }
    }
}

/// Every series hookwire exports. Cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    signature_failures: Family<ProviderLabel, Counter>,
    rule_mismatches: Family<HookLabel, Counter>,
    duplicates: Family<HookLabel, Counter>,
    runs: Family<RunLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
    run_duration: HistogramFamily,
    queue_depth: Family<HookLabel, Gauge>,
    runs_in_flight: Gauge,
    reloads: Counter,
    reload_failures: Counter,
    hooks_loaded: Gauge,
    config_generation: Gauge,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every series, all at zero, with `hookwire_` names.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookwire");
        let metrics = Metrics {
            requests: Family::default(),
            signature_failures: Family::default(),
            rule_mismatches: Family::default(),
            duplicates: Family::default(),
            runs: Family::default(),
            notifications: Family::default(),
            run_duration: Family::new_with_constructor(|| {
                Histogram::new(RUN_DURATION_BUCKETS.iter().copied())
            }),
            queue_depth: Family::default(),
            runs_in_flight: Gauge::default(),
            reloads: Counter::default(),
            reload_failures: Counter::default(),
            hooks_loaded: Gauge::default(),
            config_generation: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Hook requests answered, by hook and HTTP status (hook=\"\" for unknown ids)",
            metrics.requests.clone(),
        );
        registry.register(
            "signature_failures",
            "Requests refused because the provider signature was missing, bad or stale",
            metrics.signature_failures.clone(),
        );
        registry.register(
            "rule_mismatches",
            "Requests whose trigger rule was not satisfied",
            metrics.rule_mismatches.clone(),
        );
        registry.register(
            "duplicates",
            "Deliveries ignored because their delivery id was seen within the dedupe window",
            metrics.duplicates.clone(),
        );
        registry.register(
            "runs",
            "Runs finished, by hook and outcome",
            metrics.runs.clone(),
        );
        registry.register(
            "notifications",
            "Notifications of ended runs, by hook and outcome (sent, failed, dropped)",
            metrics.notifications.clone(),
        );
        registry.register_with_unit(
            "run_duration",
            "How long runs took, from start to exit",
            Unit::Seconds,
            metrics.run_duration.clone(),
        );
        registry.register(
            "queue_depth",
            "Runs accepted and waiting to start, by hook",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "runs_in_flight",
            "Runs executing now",
            metrics.runs_in_flight.clone(),
        );
        registry.register(
            "reloads",
            "Hook reloads that read the files (SIGHUP, SIGUSR1, a watched change)",
            metrics.reloads.clone(),
        );
        registry.register(
            "reload_failures",
            "Reloads in which a file failed to load or the merged hooks were rejected",
            metrics.reload_failures.clone(),
        );
        registry.register(
            "hooks_loaded",
            "Hooks being served",
            metrics.hooks_loaded.clone(),
        );
        registry.register(
            "config_generation",
            "Hook sets applied since start (1 after the first load)",
            metrics.config_generation.clone(),
        );
        registry.register(
            "build",
            "hookwire's version",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("os", std::env::consts::OS),
                ("arch", std::env::consts::ARCH),
            ]),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// A notification of a run of `hook` ended.
    pub fn notification(&self, hook: &str, outcome: NotificationOutcome) {
        self.notifications
            .get_or_create(&NotificationLabels {
                hook: hook.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// A hook request was answered with `status`. `hook` is `None` for an unknown id.
    pub fn request(&self, hook: Option<&str>, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                hook: hook.unwrap_or_default().to_owned(),
                status,
            })
            .inc();
    }

    /// A preset signature check refused a request (`provider` as in [`Provider::name`]).
    ///
    /// [`Provider::name`]: crate::pipeline::signature::preset::Provider::name
    pub fn signature_failed(&self, provider: &str) {
        self.signature_failures
            .get_or_create(&ProviderLabel {
                provider: provider.to_owned(),
            })
            .inc();
    }

    /// A request reached `hook` but its trigger rule was not satisfied.
    pub fn rule_mismatch(&self, hook: &str) {
        self.rule_mismatches.get_or_create(&hook_label(hook)).inc();
    }

    /// A delivery to `hook` was a duplicate and ran nothing.
    pub fn duplicate(&self, hook: &str) {
        self.duplicates.get_or_create(&hook_label(hook)).inc();
    }

    /// Sets how many accepted runs of `hook` wait to start.
    pub fn set_queue_depth(&self, hook: &str, depth: usize) {
        self.queue_depth
            .get_or_create(&hook_label(hook))
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// A run started; pair with [`Metrics::run_finished`].
    pub fn run_started(&self) {
        self.runs_in_flight.inc();
    }

    /// A run that [`Metrics::run_started`] counted ended.
    pub fn run_finished(&self, hook: &str, outcome: RunOutcome, duration: Duration) {
        self.runs_in_flight.dec();
        self.run_ended(hook, outcome, Some(duration));
    }

    /// A run ended without having started (superseded, or interrupted by a restart):
    /// counted by outcome, with no duration and no change to the runs in flight.
    pub fn run_ended(&self, hook: &str, outcome: RunOutcome, duration: Option<Duration>) {
        self.runs
            .get_or_create(&RunLabels {
                hook: hook.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
        if let Some(duration) = duration {
            self.run_duration
                .get_or_create(&hook_label(hook))
                .observe(duration.as_secs_f64());
        }
    }

    /// Runs executing now.
    pub fn runs_in_flight(&self) -> i64 {
        self.runs_in_flight.get()
    }

    /// A reload read the hooks files; `failed` when a file did not load or the result was
    /// rejected (the previous hooks then stay).
    pub fn reloaded(&self, failed: bool) {
        self.reloads.inc();
        if failed {
            self.reload_failures.inc();
        }
    }

    /// A hook set was applied: `hooks` are served, as generation `generation`.
    pub fn hooks_applied(&self, hooks: usize, generation: u64) {
        self.hooks_loaded
            .set(i64::try_from(hooks).unwrap_or(i64::MAX));
        self.config_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition of every series.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail, and every registered metric encodes.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!("cannot encode the metrics: {error}");
        }
        text
    }
}

fn hook_label(hook: &str) -> HookLabel {
    HookLabel {
        hook: hook.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposition of a fresh registry, then after one of each event: the names, labels and
    /// types a dashboard relies on.
    #[test]
    fn exposition_names_labels_and_types() {
        let metrics = Metrics::new();
        metrics.request(Some("deploy"), 200);
        metrics.request(None, 404);
        metrics.signature_failed("github");
        metrics.rule_mismatch("deploy");
        metrics.duplicate("deploy");
        metrics.set_queue_depth("deploy", 2);
        metrics.run_started();
        metrics.run_finished("deploy", RunOutcome::Failed, Duration::from_millis(700));
        metrics.reloaded(true);
        metrics.hooks_applied(3, 2);
        let text = metrics.encode();
        for line in [
            "# TYPE hookwire_requests counter",
            "hookwire_requests_total{hook=\"deploy\",status=\"200\"} 1",
            "hookwire_requests_total{hook=\"\",status=\"404\"} 1",
            "hookwire_signature_failures_total{provider=\"github\"} 1",
            "hookwire_rule_mismatches_total{hook=\"deploy\"} 1",
            "hookwire_duplicates_total{hook=\"deploy\"} 1",
            "hookwire_runs_total{hook=\"deploy\",outcome=\"failed\"} 1",
            "# TYPE hookwire_run_duration_seconds histogram",
            "hookwire_run_duration_seconds_bucket{le=\"0.5\",hook=\"deploy\"} 0",
            "hookwire_run_duration_seconds_bucket{le=\"1.0\",hook=\"deploy\"} 1",
            "hookwire_run_duration_seconds_count{hook=\"deploy\"} 1",
            "hookwire_queue_depth{hook=\"deploy\"} 2",
            "hookwire_runs_in_flight 0",
            "hookwire_reloads_total 1",
            "hookwire_reload_failures_total 1",
            "hookwire_hooks_loaded 3",
            "hookwire_config_generation 2",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        assert!(
            text.contains(&format!(
                "hookwire_build_info{{version=\"{}\"",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
    }

    #[test]
    fn outcomes_from_terminations() {
        use crate::engine::exec::Termination;
        assert_eq!(
            RunOutcome::from(&Termination::Exited(0)),
            RunOutcome::Succeeded
        );
        assert_eq!(
            RunOutcome::from(&Termination::Exited(2)),
            RunOutcome::Failed
        );
        assert_eq!(
            RunOutcome::from(&Termination::Signaled(9)),
            RunOutcome::Killed
        );
        assert_eq!(
            RunOutcome::from(&Termination::NotStarted("x".into())),
            RunOutcome::NotStarted
        );
    }
}
