//! Notifications of ended runs (a hook's `notify:` list): a POST to a URL (JSON, Slack or
//! Discord body) or a command with `HOOKWIRE_*` variables.
//!
//! A run never waits for its notifications: [`Notifier::notify`] puts them in a bounded queue
//! and returns; a full queue drops the notification and counts it. A worker sends them, at most
//! [`MAX_IN_FLIGHT`] at once, so a receiver that never answers holds one slot for its timeouts
//! and nothing else. A URL is tried [`HTTP_ATTEMPTS`] times (connection errors, timeouts, 5xx
//! and 429 are tried again); the outcome is counted in `hookwire_notifications_total` and a
//! failure is logged with the URL's scheme and host only (the rest may hold a token).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{Semaphore, mpsc};

use crate::config::Hook;
use crate::config::notify::{Format, Notification, NotifyUrl, Target};
use crate::ops::metrics::{Metrics, NotificationOutcome};
use crate::store::{RunResult, Status};

/// Notifications waiting to be sent; more are dropped (and counted).
pub const QUEUE_BOUND: usize = 1024;
/// Notifications being sent at once.
pub const MAX_IN_FLIGHT: usize = 16;
/// How long one POST may take, connecting included.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// POSTs per notification; the waits between them double from [`HTTP_BACKOFF`].
pub const HTTP_ATTEMPTS: u32 = 3;
pub const HTTP_BACKOFF: Duration = Duration::from_secs(1);
/// How long a notification command may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The end of the run's output that a notification carries, in bytes.
pub const OUTPUT_TAIL: usize = 4096;
/// The end of the output in a chat message (Discord allows 2000 characters in all).
const CHAT_OUTPUT_TAIL: usize = 1500;

/// How a run ended, as its notifications tell it.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    pub hook_id: String,
    /// Attempts made (0 when the run never started).
    pub attempt: u32,
    pub result: RunResult,
    /// When the last attempt started; `None` when the run never started.
    pub started_at: Option<SystemTime>,
    pub finished_at: SystemTime,
}

impl RunReport {
    fn duration(&self) -> Option<Duration> {
        self.started_at
            .and_then(|started| self.finished_at.duration_since(started).ok())
    }

    /// The last [`OUTPUT_TAIL`] bytes of the output, as text, and whether anything was cut.
    fn output_tail(&self, limit: usize) -> (String, bool) {
        let output = &self.result.output;
        let start = output.len().saturating_sub(limit);
        let text = String::from_utf8_lossy(&output[start..]);
        // A cut inside a character leaves replacement characters at the front.
        let text = text.trim_start_matches('\u{FFFD}').to_owned();
        (text, start > 0 || self.result.truncated > 0)
    }

    /// The JSON document of a `json` notification, also a command's standard input.
    pub fn document(&self) -> serde_json::Value {
        let (tail, cut) = self.output_tail(OUTPUT_TAIL);
        json!({
            "id": self.run_id,
            "hook": self.hook_id,
            "status": self.result.status.as_str(),
            "exit_code": self.result.exit_code,
            "signal": self.result.signal,
            "reason": self.result.reason,
            "attempt": self.attempt,
            "started_at": self.started_at.map(rfc3339),
            "finished_at": rfc3339(self.finished_at),
            "duration_ms": self.duration().map(|d| d.as_millis()),
            "output_tail": tail,
            "output_truncated": cut,
        })
    }

    /// One line for a chat, then the end of the output in a code block.
    pub fn chat_text(&self) -> String {
        let mut text = format!(
            "hookwire: run {} of hook `{}` {}",
            self.run_id, self.hook_id, self.result.status
        );
        if let Some(code) = self.result.exit_code {
            text.push_str(&format!(" (exit code {code})"));
        }
        if let Some(duration) = self.duration() {
            text.push_str(&format!(
                " after {}",
                humantime::format_duration(Duration::from_millis(
                    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
                ))
            ));
        }
        if let Some(reason) = &self.result.reason {
            text.push_str(&format!(": {reason}"));
        }
        let (tail, _) = self.output_tail(CHAT_OUTPUT_TAIL);
        let tail = tail.trim_end().replace("```", "'''");
        if !tail.is_empty() {
            text.push_str(&format!("\n```\n{tail}\n```"));
        }
        text
    }

    /// The `HOOKWIRE_*` variables of a notification command.
    fn variables(&self) -> Vec<(&'static str, String)> {
        let optional = |value: Option<String>| value.unwrap_or_default();
        vec![
            ("HOOKWIRE_RUN_ID", self.run_id.clone()),
            ("HOOKWIRE_HOOK_ID", self.hook_id.clone()),
            ("HOOKWIRE_ATTEMPT", self.attempt.to_string()),
            ("HOOKWIRE_STATUS", self.result.status.as_str().to_owned()),
            (
                "HOOKWIRE_EXIT_CODE",
                optional(self.result.exit_code.map(|c| c.to_string())),
            ),
            (
                "HOOKWIRE_DURATION_MS",
                optional(self.duration().map(|d| d.as_millis().to_string())),
            ),
            (
                "HOOKWIRE_STARTED_AT",
                optional(self.started_at.map(rfc3339)),
            ),
            ("HOOKWIRE_FINISHED_AT", rfc3339(self.finished_at)),
            ("HOOKWIRE_REASON", optional(self.result.reason.clone())),
        ]
    }
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// One notification to send.
struct Delivery {
    hook: Arc<Hook>,
    notification: Notification,
    report: Arc<RunReport>,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The notification queue and its worker (started on first use, inside the runtime).
pub struct Notifier {
    queue: mpsc::Sender<Delivery>,
    receiver: Mutex<Option<mpsc::Receiver<Delivery>>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_BOUND);
        Self {
            queue,
            receiver: Mutex::new(Some(receiver)),
            metrics,
        }
    }

    /// Queues the hook's notifications whose `on` names the run's final `status`; `report` is
    /// made only when one does (it copies the output). Never waits.
    pub fn notify(&self, hook: &Arc<Hook>, status: Status, report: impl FnOnce() -> RunReport) {
        let wanted: Vec<&Notification> = hook
            .notify
            .iter()
            .filter(|notification| notification.on.contains(&status))
            .collect();
        if wanted.is_empty() {
            return;
        }
        self.start_worker();
        let report = Arc::new(report());
        for notification in wanted {
            let delivery = Delivery {
                hook: hook.clone(),
                notification: notification.clone(),
                report: report.clone(),
            };
            if self.queue.try_send(delivery).is_err() {
                tracing::warn!(
                    run = %report.run_id,
                    "notification queue full ({QUEUE_BOUND}); a notification of run {} is dropped",
                    report.run_id
                );
                self.metrics
                    .notification(&hook.id, NotificationOutcome::Dropped);
            }
        }
    }

    fn start_worker(&self) {
        // Runs end inside the runtime; outside one (a unit test) nothing can be sent.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(mut receiver) = self
            .receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let metrics = self.metrics.clone();
        runtime.spawn(async move {
            let client = http_client();
            let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
            while let Some(delivery) = receiver.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let client = client.clone();
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let outcome = deliver(&delivery, client.as_ref()).await;
                    metrics.notification(&delivery.hook.id, outcome);
                });
            }
        });
    }
}

/// The HTTP(S) client, trusting the system's CA roots (`SSL_CERT_FILE` and `SSL_CERT_DIR`
/// are honoured). Without roots, HTTPS notifications fail and say why.
fn http_client() -> Result<HttpClient, Arc<std::io::Error>> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|error| {
            let error = Arc::new(error);
            tracing::error!("notifications: {}", DeliveryError::NoRoots(error.clone()));
            error
        })?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Sends one notification, logging a failure.
async fn deliver(
    delivery: &Delivery,
    client: Result<&HttpClient, &Arc<std::io::Error>>,
) -> NotificationOutcome {
    let report = &delivery.report;
    let (to, result) = match &delivery.notification.target {
        Target::Url { url, format } => {
            let result = match client {
                Ok(client) => post(client, url, *format, report).await,
                Err(error) => Err(DeliveryError::NoRoots(error.clone())),
            };
            (url.origin().to_owned(), result)
        }
        Target::Command(command) => (
            command.clone(),
            run_command(command, &delivery.hook, report).await,
        ),
    };
    match result {
        Ok(()) => {
            tracing::debug!(run = %report.run_id, "notification sent to {to}");
            NotificationOutcome::Sent
        }
        Err(error) => {
            tracing::warn!(
                run = %report.run_id,
                "notification of run {} of {} ({}) to {to} failed: {error}",
                report.run_id,
                report.hook_id,
                report.result.status
            );
            NotificationOutcome::Failed
        }
    }
}

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("cannot read the system's CA certificates: {0}")]
    NoRoots(Arc<std::io::Error>),
    #[error("the URL cannot be used in a request")]
    UnusableUrl,
    /// The last attempt's failure.
    #[error("{failure} (attempt {attempt} of {HTTP_ATTEMPTS})")]
    Post { failure: PostFailure, attempt: u32 },
    #[error("cannot start it: {0}")]
    Start(#[source] std::io::Error),
    #[error("killed after {COMMAND_TIMEOUT:?}")]
    Killed,
    #[error("{0}")]
    Wait(#[source] std::io::Error),
    /// The command failed; `stderr` is the tail of its standard error, quoted for a log line.
    #[error("{status}: {stderr}")]
    Failed {
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// Why one POST of a notification failed.
#[derive(Debug, thiserror::Error)]
enum PostFailure {
    #[error("answered {0}")]
    Answered(http::StatusCode),
    #[error("{}", .0.message)]
    Unanswered(SendFailure),
    #[error("no answer within {HTTP_TIMEOUT:?}")]
    Timeout,
}

/// POSTs the report, trying again after a transient failure.
async fn post(
    client: &HttpClient,
    url: &NotifyUrl,
    format: Format,
    report: &RunReport,
) -> Result<(), DeliveryError> {
    let body = match format {
        Format::Json => report.document(),
        Format::Slack => json!({ "text": report.chat_text() }),
        Format::Discord => json!({ "content": report.chat_text() }),
    };
    let body = Bytes::from(body.to_string());
    let mut delay = HTTP_BACKOFF;
    let mut attempt = 1;
    loop {
        let request = http::Request::post(url.expose())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("hookwire/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body.clone()))
            .map_err(|_| DeliveryError::UnusableUrl)?;
        let (error, transient) =
            match tokio::time::timeout(HTTP_TIMEOUT, send(client, request)).await {
                Ok(Ok(status)) if status.is_success() => return Ok(()),
                Ok(Ok(status)) => (
                    PostFailure::Answered(status),
                    status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS,
                ),
                Ok(Err(failure)) => {
                    let transient = !failure.tls_refused;
                    (PostFailure::Unanswered(failure), transient)
                }
                Err(_) => (PostFailure::Timeout, true),
            };
        if !transient || attempt == HTTP_ATTEMPTS {
            return Err(DeliveryError::Post {
                failure: error,
                attempt,
            });
        }
        tracing::debug!(
            "notification to {} failed: {error}; trying again in {delay:?}",
            url.origin()
        );
        tokio::time::sleep(delay).await;
        delay *= 2;
        attempt += 1;
    }
}

/// Sends a request and reads the answer's body (so the connection can be reused).
async fn send(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
) -> Result<http::StatusCode, SendFailure> {
    let response = client.request(request).await.map_err(|error| {
        // The error's sources say what failed (refused, certificate, ...); none holds the URL.
        let mut failure = SendFailure {
            message: error.to_string(),
            tls_refused: false,
        };
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            failure.message.push_str(&format!(": {cause}"));
            failure.tls_refused |= is_tls_error(cause);
            source = cause.source();
        }
        failure
    })?;
    let status = response.status();
    let _ = response.into_body().collect().await;
    Ok(status)
}

/// Why a POST got no answer.
#[derive(Debug)]
struct SendFailure {
    message: String,
    /// The TLS handshake failed (an untrusted certificate, say): trying again cannot help.
    tls_refused: bool,
}

/// A rustls error, itself or inside the I/O errors that carry it (hyper-rustls wraps tokio-rustls's
/// I/O error in another).
fn is_tls_error(cause: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = cause;
    loop {
        if current.is::<rustls::Error>() {
            return true;
        }
        match current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => current = inner,
            None => return false,
        }
    }
}

/// Runs a notification command: `HOOKWIRE_*` variables, the JSON document on standard input,
/// the hook's working directory.
async fn run_command(command: &str, hook: &Hook, report: &RunReport) -> Result<(), DeliveryError> {
    let mut process = tokio::process::Command::new(command);
    process
        .envs(report.variables())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if !hook.command_working_directory.is_empty() {
        process.current_dir(&hook.command_working_directory);
    }
    let mut child = process.spawn().map_err(DeliveryError::Start)?;
    let input = report.document().to_string();
    let mut stdin = child.stdin.take();
    let run = async {
        if let Some(stdin) = stdin.as_mut() {
            // A command that does not read its input closes the pipe early: not an error.
            let _ = stdin.write_all(input.as_bytes()).await;
        }
        drop(stdin);
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(COMMAND_TIMEOUT, run)
        .await
        .map_err(|_| DeliveryError::Killed)?
        .map_err(DeliveryError::Wait)?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    let tail = &stderr[stderr.floor_char_boundary(stderr.len().saturating_sub(500))..];
    Err(DeliveryError::Failed {
        status: output.status,
        stderr: crate::ops::logging::field_value(tail).into_owned(),
    })
}
