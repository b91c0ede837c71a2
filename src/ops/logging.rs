//! Logging setup: one global `tracing` subscriber writing compact, timestamped lines to
//! stderr, or to the `-logfile` instead.
//!
//! Levels, for hookwire's own events:
//! - default: WARN. Warnings and errors are always shown; adnanh discards every log line
//!   without `-verbose`, which hides why a hook did not run. This is a deliberate difference.
//! - `-verbose`, or `-logfile` (which implies it, as in adnanh): INFO.
//! - `-debug`: DEBUG.
//!
//! Dependencies (hyper, rustls, notify) stay at WARN whatever the flags, so `-debug` shows
//! hookwire's request dumps rather than TLS internals. `RUST_LOG`, when set and not empty,
//! replaces all of this with its own directives (`RUST_LOG=debug` shows everything).
//!
//! `--log-format json` writes one JSON object per line instead (tracing-subscriber's json
//! format: `timestamp`, `level`, `fields`, `target`, and the request's span with its id, hook
//! and client), for journald, Loki and other log shippers.
//!
//! Text lines are safe to parse even when a request is hostile: every field value goes
//! through [`field_value`] (quoted and escaped when it holds a space, `=`, a quote, a brace or a
//! control character) and every message through [`message_text`] (control characters
//! escaped), so a hook id or `X-Request-Id` can neither start a forged line nor add a field.
//!
//! Timestamps are RFC 3339 in UTC (`2026-01-31T12:00:00.123456Z`): unambiguous across time
//! zones, and what journald and log shippers parse without configuration.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// What the command line says about logging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// `-verbose`: log requests and commands.
    pub verbose: bool,
    /// `-debug`: log everything, request and response dumps included.
    pub debug: bool,
    /// `-logfile`: append here instead of writing to stderr.
    pub logfile: Option<PathBuf>,
    /// `--log-format`: text lines or JSON objects.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Compact, human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogSettings {
    /// The level of hookwire's own events under these flags (see the module docs).
    pub fn level(&self) -> LevelFilter {
        if self.debug {
            LevelFilter::DEBUG
        } else if self.verbose || self.logfile.is_some() {
            LevelFilter::INFO
        } else {
            LevelFilter::WARN
        }
    }
}

/// Why logging cannot start; the app exits 1 on it.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error(
        "cannot open log file {}: {error}; check that its directory exists and is writable \
         by the user hookwire runs as",
        path.display()
    )]
    Logfile {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    /// A subscriber is already installed.
    #[error("cannot set up logging: {0}")]
    Subscriber(String),
}

/// Installs the global subscriber. Call once, early in `main` (a second call fails). Errors:
/// the log file cannot be opened, or a subscriber is already installed; the message says what
/// to do and the app exits 1 on it.
pub fn init(settings: &LogSettings) -> Result<(), LoggingError> {
    let (writer, ansi) = match &settings.logfile {
        Some(path) => (BoxMakeWriter::new(open_logfile(path)?), false),
        None => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
    };
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, warning) = filter(settings, rust_log.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let installed = match settings.format {
        LogFormat::Text => builder
            .fmt_fields(TextFields)
            .with_target(settings.debug || warning.is_some() || rust_log.is_some())
            .compact()
            .try_init(),
        // Machines want every field, the request's span included, and no colours.
        LogFormat::Json => builder
            .with_ansi(false)
            .json()
            .with_current_span(true)
            .try_init(),
    };
    installed.map_err(|err| LoggingError::Subscriber(err.to_string()))?;
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// A field value as text logs write it: as is when it is a plain word, otherwise quoted with
/// Rust's string escapes (`"a b"`, `"x\n2026-…"`, `"\u{1b}[31m"`), so a value is always one
/// token on one line and never looks like another field.
pub fn field_value(value: &str) -> Cow<'_, str> {
    let plain = !value.is_empty() && !value.chars().any(needs_quotes);
    if plain {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("{value:?}"))
    }
}

/// A message as text logs write it: control characters and line separators escaped (`\n`,
/// `\u{1b}`), everything else as is, so a message is always one line. Messages that quote
/// request data put it through [`field_value`] (or `{:?}`) as well.
pub fn message_text(message: &str) -> Cow<'_, str> {
    if !message.chars().any(breaks_line) {
        return Cow::Borrowed(message);
    }
    let mut escaped = String::with_capacity(message.len() + 8);
    for c in message.chars() {
        if breaks_line(c) {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// Characters that would let a field value end early or pass for another field.
fn needs_quotes(c: char) -> bool {
    c.is_whitespace() || breaks_line(c) || matches!(c, '=' | '"' | '\\' | '{' | '}')
}

/// Control characters (newlines, carriage returns, terminal escapes) and Unicode's line and
/// paragraph separators.
fn breaks_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// The text format's field formatter: `name=value` pairs through [`field_value`], the message
/// through [`message_text`]. Used for event and span fields alike.
struct TextFields;

impl<'writer> MakeVisitor<Writer<'writer>> for TextFields {
    type Visitor = TextVisitor<'writer>;

    fn make_visitor(&self, writer: Writer<'writer>) -> Self::Visitor {
        TextVisitor {
            writer,
            result: Ok(()),
            first: true,
        }
    }
}

struct TextVisitor<'writer> {
    writer: Writer<'writer>,
    result: fmt::Result,
    first: bool,
}

impl TextVisitor<'_> {
    fn write(&mut self, name: &str, value: &str) {
        // `log.*` fields are the `log` crate's metadata, already shown as the target.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let separator = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = if name == "message" {
            write!(self.writer, "{separator}{}", message_text(value))
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(self.writer, "{separator}{name}={}", field_value(value))
        };
    }
}

impl Visit for TextVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields and messages arrive here with `Debug` calling `Display`.
        self.write(field.name(), &format!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for TextVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for TextVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// Opens `path` for appending as adnanh does: created if missing with mode 0666 minus the
/// umask, never truncated.
pub fn open_logfile(path: &Path) -> Result<File, LoggingError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o666)
        .open(path)
        .map_err(|error| LoggingError::Logfile {
            path: path.to_path_buf(),
            error,
        })
}

/// The filter for these settings, or `RUST_LOG`'s when given. An unparsable `RUST_LOG` falls
/// back to the flags with a warning to log, rather than stopping a server over a typo.
fn filter(settings: &LogSettings, rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    let from_flags = || EnvFilter::new(format!("warn,hookwire={}", settings.level()));
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        None => (from_flags(), None),
        Some(directives) => match EnvFilter::try_new(directives) {
            Ok(filter) => (filter, None),
            Err(err) => (
                from_flags(),
                Some(format!("ignoring RUST_LOG={directives:?}: {err}")),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(verbose: bool, debug: bool, logfile: Option<&str>) -> LogSettings {
        LogSettings {
            verbose,
            debug,
            logfile: logfile.map(PathBuf::from),
            format: LogFormat::Text,
        }
    }

    #[test]
    fn levels_follow_the_flags() {
        assert_eq!(settings(false, false, None).level(), LevelFilter::WARN);
        assert_eq!(settings(true, false, None).level(), LevelFilter::INFO);
        assert_eq!(
            settings(false, false, Some("x.log")).level(),
            LevelFilter::INFO
        );
        assert_eq!(settings(false, true, None).level(), LevelFilter::DEBUG);
        assert_eq!(
            settings(true, true, Some("x.log")).level(),
            LevelFilter::DEBUG
        );
    }

    #[test]
    fn filter_keeps_dependencies_quiet() {
        let (f, warning) = filter(&settings(false, true, None), None);
        assert_eq!(f.to_string(), "hookwire=debug,warn");
        assert_eq!(warning, None);
    }

    #[test]
    fn rust_log_overrides_and_a_bad_one_falls_back() {
        let (f, warning) = filter(&settings(false, false, None), Some("trace"));
        assert_eq!((f.to_string(), warning), ("trace".to_string(), None));
        let (f, _) = filter(&settings(false, false, None), Some("  "));
        assert_eq!(f.to_string(), "hookwire=warn,warn");
        let (f, warning) = filter(&settings(true, false, None), Some("hookwire=loud"));
        assert_eq!(f.to_string(), "hookwire=info,warn");
        assert!(warning.expect("a warning").contains("ignoring RUST_LOG"));
    }

    #[test]
    fn logfile_is_appended_and_created_0666_minus_umask() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hook.log");
        std::fs::write(&path, "old line\n").expect("write");
        writeln!(open_logfile(&path).expect("opens"), "new line").expect("append");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "old line\nnew line\n"
        );

        let fresh = dir.path().join("fresh.log");
        open_logfile(&fresh).expect("creates");
        let mode = std::fs::metadata(&fresh)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        // Whatever the umask, nothing beyond 0666 and at least owner read/write.
        assert_eq!(mode & !0o666, 0);
        assert_eq!(mode & 0o600, 0o600);
    }

    #[test]
    fn logfile_error_says_what_to_do() {
        let err = open_logfile(Path::new("/nonexistent-dir/h.log"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent-dir/h.log"), "{err}");
        assert!(err.contains("No such file or directory"), "{err}");
        assert!(err.contains("check that its directory exists"), "{err}");
    }

    /// Events reach the log file in the compact format, filtered by level. Uses a scoped
    /// subscriber: the global one can be set only once per process.
    #[test]
    fn events_are_written_compactly_with_timestamps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.log");
        let file = open_logfile(&path).expect("opens");
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter(&settings(false, false, None), None).0)
            .with_writer(BoxMakeWriter::new(file))
            .fmt_fields(TextFields)
            .with_ansi(false)
            .with_target(false)
            .compact()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("hidden at the default level");
            tracing::warn!(hook = "deploy", "shown");
        });
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("hidden"), "{text}");
        let line = text.lines().next().expect("one line");
        assert!(
            line.contains(" WARN ") && line.ends_with("shown hook=deploy"),
            "{line}"
        );
        // RFC 3339 UTC timestamp first: 2026-01-31T12:00:00.123456Z
        let stamp = line.split_whitespace().next().expect("timestamp");
        assert!(
            stamp.len() >= 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{stamp}"
        );
    }

    #[test]
    fn field_values_are_quoted_when_they_could_pass_for_more() {
        assert_eq!(field_value("deploy-42"), "deploy-42");
        assert_eq!(field_value("10.0.0.1"), "10.0.0.1");
        assert_eq!(field_value(""), r#""""#);
        assert_eq!(field_value("a client=6.6.6.6"), r#""a client=6.6.6.6""#);
        assert_eq!(field_value("k=v"), r#""k=v""#);
        assert_eq!(field_value(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(field_value("a}b"), r#""a}b""#);
        assert_eq!(
            field_value("x\n2026-01-01T00:00:00Z ERROR forged"),
            r#""x\n2026-01-01T00:00:00Z ERROR forged""#
        );
        assert_eq!(field_value("\u{1b}[31m"), r#""\u{1b}[31m""#);
        assert_eq!(field_value("a\u{2028}b"), r#""a\u{2028}b""#);
    }

    #[test]
    fn messages_keep_their_spaces_and_lose_their_line_breaks() {
        assert_eq!(message_text("deploy got matched"), "deploy got matched");
        assert_eq!(
            message_text("line one\r\nline two\u{1b}[0m"),
            r"line one\r\nline two\u{1b}[0m"
        );
    }

    /// A hostile span field and message, through the real text formatter: one line, the
    /// hostile values quoted or escaped.
    #[test]
    fn text_lines_escape_hostile_span_fields_and_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.log");
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_writer(BoxMakeWriter::new(open_logfile(&path).expect("opens")))
            .fmt_fields(TextFields)
            .with_ansi(false)
            .compact()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                id = %"a client=6.6.6.6",
                hook = %"x\n2026-01-01T00:00:00Z ERROR forged",
            );
            span.in_scope(|| tracing::info!(status = 200, "output:\nforged line"));
        });
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(r#"id="a client=6.6.6.6""#), "{text}");
        assert!(
            text.contains(r#"hook="x\n2026-01-01T00:00:00Z ERROR forged""#),
            "{text}"
        );
        assert!(text.contains(r"output:\nforged line"), "{text}");
        assert!(text.contains("status=200"), "{text}");
    }
}
