//! hookwire's execution extensions of a hook (`concurrency`, `concurrency-key`, `max-queue`,
//! `timeout`, `retry`), read from the hook object.
//!
//! ```yaml
//! concurrency: queue                             # parallel (default) | queue | latest | cancel | reject
//! concurrency-key: {source: payload, name: ref}  # one policy per value (e.g. per branch)
//! max-queue: 100                                 # waiting runs (queue: per key); then 503
//! timeout: 15m                                   # then SIGTERM to the group, SIGKILL after the grace
//! retry: {attempts: 3, backoff: 30s}             # retries of a failed run, backoff doubling
//! kill-leftovers: true                           # end the run's background processes at its exit
//! stream-output: true                            # the answer streams the output as it comes
//! ```
//!
//! A value that would change what runs or when (an unknown mode, a duration without a unit) is a
//! load error; a key that has no effect with the chosen mode is a warning.

use std::time::Duration;

use super::Diagnostic;
use super::format::Node;
use super::schema::{self, Object, ObjectKind, Reader};
use super::yaml11::Resolved;
use crate::pipeline::request::Argument;

/// `max-queue` when the hook does not set it.
pub const DEFAULT_MAX_QUEUE: usize = 100;
/// `retry.backoff` when the hook does not set it.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(10);

/// How a hook's runs are scheduled, timed out and retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduling {
    pub concurrency: Concurrency,
    /// `concurrency-key`: runs with different values of this argument are scheduled apart.
    pub concurrency_key: Option<Argument>,
    /// Most runs waiting per key in `queue` mode; more are refused with 503.
    pub max_queue: usize,
    /// `timeout`: `None` uses `--command-timeout`; `Some(ZERO)` (`timeout: 0s`) means none.
    pub timeout: Option<Duration>,
    /// `retry`: `None` runs once.
    pub retry: Option<Retry>,
    /// `kill-leftovers`: end what the command left running when it exits. Off by default, as
    /// webhook leaves a command's background processes alone (`nohup ./app &`).
    pub kill_leftovers: bool,
    /// `stream-output`: a client that waits for the command gets its output as it comes.
    pub stream_output: bool,
}

impl Default for Scheduling {
    fn default() -> Self {
        Self {
            concurrency: Concurrency::Parallel,
            concurrency_key: None,
            max_queue: DEFAULT_MAX_QUEUE,
            timeout: None,
            retry: None,
            kill_leftovers: false,
            stream_output: false,
        }
    }
}

/// What happens to a run that arrives while another run of the same hook (and key) is busy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Concurrency {
    /// Every run starts at once (adnanh's behaviour).
    #[default]
    Parallel,
    /// One at a time, in arrival order, at most `max-queue` waiting.
    Queue,
    /// One at a time; only the newest waiting run is kept, older waiting ones are superseded.
    Latest,
    /// The running run is killed and the newest starts.
    Cancel,
    /// Refused with 503 while one runs.
    Reject,
}

impl Concurrency {
    /// The names accepted in the hooks file, in the order of the enum.
    pub const NAMES: [&'static str; 5] = ["parallel", "queue", "latest", "cancel", "reject"];

    /// The mode's name as written in the hooks file.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Self::Parallel,
            Self::Queue,
            Self::Latest,
            Self::Cancel,
            Self::Reject,
        ]
        .into_iter()
        .find(|mode| mode.name() == name)
    }
}

/// `retry: {attempts, backoff}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first run (so `attempts: 3` runs the command at most 4 times).
    pub attempts: u32,
    /// Wait before the first retry; each later retry waits twice as long as the one before.
    pub backoff: Duration,
}

impl Retry {
    /// The wait before retry number `retry` (1-based): `backoff`, `2 × backoff`, `4 × backoff`, ...
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(16);
        self.backoff.saturating_mul(factor)
    }
}

const RETRY: ObjectKind = ObjectKind {
    name: "retry",
    keys: &["attempts", "backoff"],
    extensions: &[],
};

/// Reads the execution extensions of one hook object.
pub(crate) fn compile(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
) -> Result<Scheduling, Box<Diagnostic>> {
    let mut options = Scheduling::default();
    if let Some(node) = object.present("concurrency") {
        let path = object.path_of("concurrency");
        let name = reader.string_value(node, &path)?;
        options.concurrency = Concurrency::from_name(&name).ok_or_else(|| {
            let hint = schema::did_you_mean(&name, Concurrency::NAMES.iter()).map_or_else(
                || {
                    format!(
                        "`concurrency` is one of {}",
                        schema::backticked(&Concurrency::NAMES)
                    )
                },
                |mode| format!("did you mean `{mode}`?"),
            );
            Box::new(reader.diagnostic(
                node.pos,
                &path,
                format!("unknown concurrency mode `{name}`"),
                Some(hint),
            ))
        })?;
    }
    if let Some(node) = object.present("concurrency-key") {
        let path = object.path_of("concurrency-key");
        options.concurrency_key = Some(super::compile::argument(
            reader,
            Some(node),
            node.pos,
            &path,
            true,
        )?);
        if options.concurrency == Concurrency::Parallel {
            reader.warn(
                node.pos,
                &path,
                "has no effect with `concurrency: parallel`, where every run starts at once",
                Some("set `concurrency` to queue, latest, cancel or reject".to_owned()),
            );
        }
    }
    if let Some((max_queue, pos)) = reader.int(object, "max-queue")? {
        let path = object.path_of("max-queue");
        options.max_queue = usize::try_from(max_queue)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                Box::new(reader.diagnostic(
                    pos,
                    &path,
                    format!("`max-queue` must be at least 1, not {max_queue}"),
                    Some("to refuse every run that arrives while one runs, use `concurrency: reject`".to_owned()),
                ))
            })?;
        // `parallel` runs waiting for a `-max-concurrent-runs` slot are held to it too.
        if !matches!(
            options.concurrency,
            Concurrency::Queue | Concurrency::Parallel
        ) {
            reader.warn(
                pos,
                &path,
                format!(
                    "has no effect with `concurrency: {}`, which keeps at most one run waiting",
                    options.concurrency.name()
                ),
                Some("remove it, or set `concurrency: queue`".to_owned()),
            );
        }
    }
    if let Some(node) = object.present("timeout") {
        options.timeout = Some(duration(reader, node, &object.path_of("timeout"))?);
    }
    if let Some(node) = object.present("retry") {
        options.retry = retry(reader, node, &object.path_of("retry"))?;
    }
    if let Some(node) = object.present("kill-leftovers") {
        options.kill_leftovers = boolean(reader, node, &object.path_of("kill-leftovers"))?;
    }
    if let Some(node) = object.present("stream-output") {
        let path = object.path_of("stream-output");
        options.stream_output = boolean(reader, node, &path)?;
        let waits = object
            .present("include-command-output-in-response")
            .and_then(Node::as_scalar)
            .is_some_and(|scalar| scalar.value == Resolved::Bool(true));
        if options.stream_output && !waits {
            reader.warn(
                node.pos,
                &path,
                "has no effect: the answer does not wait for the command",
                Some("set `include-command-output-in-response: true` too".to_owned()),
            );
        }
    }
    Ok(options)
}

fn retry(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<Option<Retry>, Box<Diagnostic>> {
    let Some(object) = reader.object(node, &RETRY, path)? else {
        return Ok(None);
    };
    let Some((attempts, pos)) = reader.int(&object, "attempts")? else {
        return Err(Box::new(reader.diagnostic(
            object.pos,
            path,
            "`retry` needs `attempts`, the number of retries after a failed run",
            Some("write e.g. `retry: {attempts: 3, backoff: 30s}`".to_owned()),
        )));
    };
    let attempts = u32::try_from(attempts).map_err(|_| {
        Box::new(reader.diagnostic(
            pos,
            &object.path_of("attempts"),
            format!(
                "`attempts` must be between 0 and {}, not {attempts}",
                u32::MAX
            ),
            None,
        ))
    })?;
    let backoff = match object.present("backoff") {
        Some(node) => duration(reader, node, &object.path_of("backoff"))?,
        None => DEFAULT_BACKOFF,
    };
    if attempts == 0 {
        reader.warn(
            pos,
            &object.path_of("attempts"),
            "`attempts: 0` never retries",
            Some("remove `retry`, or set `attempts` to the number of retries".to_owned()),
        );
        return Ok(None);
    }
    Ok(Some(Retry { attempts, backoff }))
}

/// A switch (`kill-leftovers`, `stream-output`): true or false (YAML 1.1 spellings such as
/// `yes` included).
fn boolean(reader: &Reader<'_>, node: &Node, path: &str) -> Result<bool, Box<Diagnostic>> {
    match node.as_scalar() {
        Some(scalar) if !scalar.quoted && matches!(scalar.value, Resolved::Bool(_)) => {
            Ok(scalar.value == Resolved::Bool(true))
        }
        found => Err(Box::new(reader.diagnostic(
            node.pos,
            path,
            match found {
                Some(scalar) => format!("must be true or false, not {:?}", scalar.text),
                None => "must be true or false, not a list or mapping".to_owned(),
            },
            Some("write `true` or `false`, without quotes".to_owned()),
        ))),
    }
}

/// A duration value of the hooks file, such as `15m` or `1h 30m`.
fn duration(reader: &Reader<'_>, node: &Node, path: &str) -> Result<Duration, Box<Diagnostic>> {
    let text = reader.string_value(node, path)?;
    parse_duration(&text).map_err(|error| {
        Box::new(
            reader.diagnostic(
                node.pos,
                path,
                error.to_string(),
                Some(
                    "write a number with a unit: `90s`, `15m`, `1h 30m` (units: ms, s, m, h, d)"
                        .to_owned(),
                ),
            ),
        )
    })
}

/// Parses a duration as hookwire writes them everywhere (hooks file and flags): a number with a
/// unit (`500ms`, `30s`, `15m`, `1h 30m`). A bare number is refused rather than guessed at,
/// since adnanh-era habits differ on whether it means seconds or nanoseconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if !text.is_empty() && text.parse::<f64>().is_ok() {
        return Err(DurationError::NoUnit(text.to_owned()));
    }
    humantime::parse_duration(text).map_err(|source| DurationError::Invalid {
        text: text.to_owned(),
        source,
    })
}

/// Why a duration (in the hooks file or a flag) was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` has no unit: write `{0}s` for seconds, `{0}m` for minutes")]
    NoUnit(String),
    #[error("`{text}` is not a duration: {source}")]
    Invalid {
        text: String,
        source: humantime::DurationError,
    },
}

// humantime's error holds only positions and strings, so equality is total; flag errors
// compare with `Eq`.
impl Eq for DurationError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{first_hook, load_error as error};

    fn options(text: &str) -> (Scheduling, Vec<String>) {
        let (hook, warnings) = first_hook(text);
        (hook.scheduling, warnings)
    }

    #[test]
    fn defaults_are_parallel_without_limits() {
        let (scheduling, warnings) = options("- {id: a, execute-command: /bin/true}");
        assert_eq!(scheduling, Scheduling::default());
        assert_eq!(scheduling.concurrency, Concurrency::Parallel);
        assert_eq!(scheduling.max_queue, DEFAULT_MAX_QUEUE);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn every_key_is_read() {
        let (scheduling, warnings) = options(
            "- id: a\n  execute-command: /bin/true\n  concurrency: queue\n  \
             concurrency-key: {source: payload, name: ref}\n  max-queue: 5\n  timeout: 1m 30s\n  \
             retry: {attempts: 2, backoff: 500ms}\n",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(scheduling.concurrency, Concurrency::Queue);
        assert_eq!(
            scheduling.concurrency_key.as_ref().map(|a| a.name.as_str()),
            Some("ref")
        );
        assert_eq!(scheduling.max_queue, 5);
        assert_eq!(scheduling.timeout, Some(Duration::from_secs(90)));
        assert_eq!(
            scheduling.retry,
            Some(Retry {
                attempts: 2,
                backoff: Duration::from_millis(500)
            })
        );
    }

    #[test]
    fn every_mode_has_a_name() {
        for name in Concurrency::NAMES {
            let (scheduling, _) = options(&format!("- {{id: a, concurrency: {name}}}"));
            assert_eq!(scheduling.concurrency.name(), name);
        }
    }

    #[test]
    fn toml_reads_the_same() {
        let text = "[[hooks]]\nid = \"a\"\nconcurrency = \"latest\"\ntimeout = \"2s\"\nretry = {attempts = 1}\n";
        let file = crate::config::compile::compile_file(
            std::path::Path::new("h.toml"),
            text.as_bytes(),
            &crate::config::LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let scheduling = &file.hooks[0].scheduling;
        assert_eq!(scheduling.concurrency, Concurrency::Latest);
        assert_eq!(scheduling.timeout, Some(Duration::from_secs(2)));
        assert_eq!(scheduling.retry.map(|r| r.backoff), Some(DEFAULT_BACKOFF));
    }

    #[test]
    fn unknown_mode_is_an_error_with_a_suggestion() {
        let message = error("- id: a\n  concurrency: queued\n");
        assert!(message.contains("hooks.yaml:2:16"), "{message}");
        assert!(
            message.contains("unknown concurrency mode `queued`"),
            "{message}"
        );
        assert!(message.contains("did you mean `queue`?"), "{message}");
        let message = error("- id: a\n  concurrency: whatever\n");
        assert!(message.contains("`parallel`, `queue`"), "{message}");
    }

    #[test]
    fn bare_numbers_need_a_unit() {
        let message = error("- id: a\n  timeout: 30\n");
        assert!(message.contains("hooks.yaml:2:12"), "{message}");
        assert!(
            message.contains("`30` has no unit: write `30s`"),
            "{message}"
        );
        let message = error("- id: a\n  retry: {attempts: 1, backoff: \"5\"}\n");
        assert!(message.contains("`retry.backoff`"), "{message}");
        assert!(message.contains("no unit"), "{message}");
        assert!(error("- id: a\n  timeout: soon\n").contains("is not a duration"));
        assert_eq!(
            options("- {id: a, timeout: 0s}").0.timeout,
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn stream_output_is_off_unless_set_and_warns_without_a_waiting_answer() {
        assert!(!options("- {id: a}").0.stream_output);
        let (set, warnings) = options(
            "- {id: a, execute-command: /bin/true, stream-output: true, include-command-output-in-response: true}",
        );
        assert!(set.stream_output && warnings.is_empty(), "{warnings:?}");
        let (_, warnings) = options("- {id: a, stream-output: true}");
        assert!(
            warnings.iter().any(|w| w.contains("has no effect")),
            "{warnings:?}"
        );
        assert!(error("- {id: a, stream-output: sometimes}").contains("true or false"));
    }

    #[test]
    fn kill_leftovers_is_off_unless_set_true() {
        assert!(!options("- {id: a}").0.kill_leftovers);
        assert!(options("- {id: a, kill-leftovers: true}").0.kill_leftovers);
        assert!(!options("- {id: a, kill-leftovers: no}").0.kill_leftovers);
        let message = error("- id: a\n  kill-leftovers: always\n");
        assert!(message.contains("hooks.yaml:2:19"), "{message}");
        assert!(message.contains("must be true or false"), "{message}");
        assert!(error("- {id: a, kill-leftovers: \"true\"}").contains("true or false"));
    }

    #[test]
    fn bad_limits_are_errors() {
        assert!(error("- {id: a, concurrency: queue, max-queue: 0}").contains("at least 1"));
        assert!(error("- {id: a, max-queue: ten}").contains("expected an integer"));
        assert!(error("- {id: a, retry: {backoff: 1s}}").contains("needs `attempts`"));
        assert!(error("- {id: a, retry: {attempts: -1}}").contains("between 0 and"));
        assert!(error("- {id: a, retry: 3}").contains("a retry object"));
    }

    #[test]
    fn keys_without_effect_are_warned_about() {
        let (_, warnings) = options(
            "- {id: a, execute-command: /bin/true, concurrency-key: {source: payload, name: ref}, max-queue: 3, retry: {attempts: 0}}",
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("`concurrency-key`: has no effect with `concurrency: parallel`")
        );
        assert!(warnings[1].contains("never retries"));
        let (_, warnings) =
            options("- {id: a, execute-command: /bin/true, concurrency: latest, max-queue: 3}");
        assert!(
            warnings[0].contains("`max-queue`: has no effect"),
            "{warnings:?}"
        );
        let (_, warnings) =
            options("- {id: a, execute-command: /bin/true, retry: {attempts: 1, backof: 1s}}");
        assert!(
            warnings[0].contains("did you mean `backoff`?"),
            "{warnings:?}"
        );
    }

    #[test]
    fn backoff_doubles() {
        let retry = Retry {
            attempts: 5,
            backoff: Duration::from_secs(2),
        };
        let delays: Vec<u64> = (1..=4).map(|n| retry.delay(n).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16]);
    }

    #[test]
    fn durations_for_flags() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(
            parse_duration("10").unwrap_err().to_string(),
            "`10` has no unit: write `10s` for seconds, `10m` for minutes"
        );
        assert_eq!(
            parse_duration("1.5"),
            Err(DurationError::NoUnit("1.5".to_owned()))
        );
        assert!(parse_duration("").is_err());
    }
}
