//! `hookwire runs`: the run history read from the journal file (a running server is not needed
//! and not disturbed: SQLite's WAL lets it read while the server writes), one run in detail, and
//! reruns, which go through a running server (`POST /-/runs/{id}/rerun`) so the run is planned
//! with the server's current hooks and scheduled under its concurrency policy.

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::execution::{AdminClient, RunsAction, RunsArgs, StateLocation};
use crate::server::admin::AdminTokenError;
use crate::server::listener::ADMIN_SOCKET;
use crate::store::{Filter, History, JournalError, RunRecord, Status};

/// Why `hookwire runs` failed; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    #[error("unknown status {name:?}: use one of {known}")]
    UnknownStatus { name: String, known: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("no run {0} in the journal (list them with `hookwire runs`)")]
    NoSuchRun(String),
    #[error("{0:?} is not a run id (see `hookwire runs`)")]
    BadRunId(String),
    #[error(transparent)]
    AdminToken(#[from] AdminTokenError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(
        "cannot reach the server at {server}: {error} (is it running? give its --state-dir, \
         or --url for an admin listener on TCP)"
    )]
    Unreachable {
        server: String,
        error: std::io::Error,
    },
    #[error("{0} did not answer with HTTP")]
    NotHttp(String),
    #[error("the server refused the admin request ({0}): give its --admin-token-file")]
    Refused(u16),
    #[error("the answer broke off: {0}")]
    AnswerBroken(std::io::Error),
    #[error("rerun refused ({status}): {message}")]
    RerunRefused { status: u16, message: String },
    #[error("unexpected answer: {0}")]
    UnexpectedAnswer(serde_json::Error),
    #[error("cannot follow run {id} ({status}): {message}")]
    FollowRefused {
        id: String,
        status: u16,
        message: String,
    },
    #[error("the stream broke off: {0}")]
    StreamBroken(std::io::Error),
    /// The followed run ended other than succeeded.
    #[error("run {id} {status}{exit}")]
    RunFailed {
        id: String,
        status: String,
        exit: String,
    },
    #[error("the stream of run {0} ended before the run did")]
    StreamEnded(String),
    #[error("--url {0:?} must start with http:// (the admin listener serves plain HTTP)")]
    UrlNotHttp(String),
    #[error("--url {0:?} has no host")]
    UrlNoHost(String),
}

/// Runs `hookwire runs ...`.
pub fn run(args: &RunsArgs) -> ExitCode {
    match runs(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn runs(args: &RunsArgs) -> Result<(), RunsError> {
    match &args.action {
        None => list(args),
        Some(RunsAction::Show {
            run,
            json,
            location,
        }) => {
            let location = if location.state_dir.is_some() {
                location
            } else {
                &args.location
            };
            show(run, *json, location)
        }
        Some(RunsAction::Rerun { run, server }) => rerun(run, &Admin::of(server, args)?),
        Some(RunsAction::Follow { run, server }) => follow(run, &Admin::of(server, args)?),
    }
}

fn list(args: &RunsArgs) -> Result<(), RunsError> {
    let statuses = args
        .status
        .iter()
        .filter(|name| !name.trim().is_empty())
        .map(|name| {
            Status::parse(name).ok_or_else(|| {
                let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                RunsError::UnknownStatus {
                    name: name.clone(),
                    known: known.join(", "),
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let history = History::open(&args.location.directory())?;
    let runs = history.runs(&Filter {
        hook: args.hook.clone(),
        statuses,
        limit: args.limit,
        before: None,
    })?;
    if args.json {
        return print_json(&runs);
    }
    if runs.is_empty() {
        println!("no runs");
        return Ok(());
    }
    print!("{}", table(&runs));
    Ok(())
}

/// The list as a table, one run per line.
fn table(runs: &[RunRecord]) -> String {
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|run| {
            [
                run.id.clone(),
                run.hook.clone(),
                run.status.to_string(),
                run.attempts.to_string(),
                exit(run),
                run.accepted_at.clone(),
                run.duration_ms.map_or_else(
                    || "-".to_owned(),
                    |ms| format!("{:.1}s", ms as f64 / 1000.0),
                ),
            ]
        })
        .collect();
    let header = [
        "RUN", "HOOK", "STATUS", "ATTEMPTS", "EXIT", "ACCEPTED", "DURATION",
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        text.truncate(text.trim_end().len());
        text.push('\n');
        text
    };
    let mut out = line(&mut header.iter().copied());
    for row in &rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// The exit code, the signal, or `-`.
fn exit(run: &RunRecord) -> String {
    match (run.exit_code, run.signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "-".to_owned(),
    }
}

fn show(id: &str, json: bool, location: &StateLocation) -> Result<(), RunsError> {
    let history = History::open(&location.directory())?;
    let run = history
        .run(id)?
        .ok_or_else(|| RunsError::NoSuchRun(id.to_owned()))?;
    if json {
        return print_json(&run);
    }
    print!("{}", details(&run));
    Ok(())
}

/// One run as text: a field per line, then the output.
fn details(run: &RunRecord) -> String {
    let mut fields = vec![
        ("run", run.id.clone()),
        ("hook", run.hook.clone()),
        ("status", run.status.to_string()),
        ("exit", exit(run)),
        ("attempts", run.attempts.to_string()),
        ("accepted", run.accepted_at.clone()),
    ];
    let optional = [
        ("key", &run.concurrency_key),
        ("started", &run.started_at),
        ("finished", &run.finished_at),
        ("next try", &run.next_attempt_at),
        ("reason", &run.reason),
        ("rerun of", &run.rerun_of),
        ("node", &run.node),
    ];
    fields.extend(
        optional
            .into_iter()
            .filter_map(|(name, value)| value.clone().map(|value| (name, value))),
    );
    if let Some(request) = &run.request {
        fields.push((
            "request",
            format!(
                "{} from {} ({} headers, {} bytes{})",
                request.method,
                request.remote_addr,
                request.headers.len(),
                request.body.len(),
                if request.query.is_empty() {
                    String::new()
                } else {
                    format!(", query {}", request.query)
                }
            ),
        ));
        if let Some(lost) = &request.body_lost {
            fields.push(("body", lost.clone()));
        }
    }
    let mut out: String = fields
        .iter()
        .map(|(name, value)| format!("{name:<9} {value}\n"))
        .collect();
    if let Some(output) = run.output.as_deref().filter(|o| !o.is_empty()) {
        out.push_str("--- output ---\n");
        out.push_str(output);
        if !output.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn print_json(value: &impl serde::Serialize) -> Result<(), RunsError> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}

/// How long the server has to answer (between two reads, while following).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server's admin listener, as `hookwire runs` reaches it.
#[derive(Debug)]
struct Admin {
    place: Place,
    /// `Authorization: Bearer ...` from `--admin-token-file`.
    authorization: Option<String>,
}

/// Where the admin listener is.
#[derive(Debug)]
enum Place {
    /// Its socket (the default: `admin.sock` in the state directory).
    Socket(PathBuf),
    /// `--url`: `host:port` and a base path.
    Tcp { host: String, base: String },
}

/// A connection to the admin listener.
enum Connection {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Unix(stream) => stream.read(buf),
            Self::Tcp(stream) => stream.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Unix(stream) => stream.write(buf),
            Self::Tcp(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Unix(stream) => stream.flush(),
            Self::Tcp(stream) => stream.flush(),
        }
    }
}

impl Admin {
    /// The listener `server` names: `--url`, else the socket in the state directory (the
    /// subcommand's `--state-dir`, else the one given to `runs`).
    fn of(server: &AdminClient, args: &RunsArgs) -> Result<Self, RunsError> {
        let place = match &server.url {
            Some(url) => {
                let (host, base) = split_url(url)?;
                Place::Tcp { host, base }
            }
            None => {
                let location = if server.location.state_dir.is_some() {
                    &server.location
                } else {
                    &args.location
                };
                Place::Socket(location.directory().join(ADMIN_SOCKET))
            }
        };
        let authorization = server
            .admin_token_file
            .as_deref()
            .map(|path| crate::server::admin::AdminToken::read(path).map(|t| t.authorization()))
            .transpose()?;
        Ok(Self {
            place,
            authorization,
        })
    }

    /// Sends `METHOD path` (with the token, if any) and returns the response's status, its
    /// head and the connection positioned at the body.
    fn send(&self, method: &str, path: &str, accept: &str) -> Result<Response, RunsError> {
        let (host, base) = match &self.place {
            Place::Socket(_) => ("localhost", ""),
            Place::Tcp { host, base } => (host.as_str(), base.as_str()),
        };
        let authorization = self
            .authorization
            .as_ref()
            .map(|value| format!("Authorization: {value}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {base}{path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let connect = || -> std::io::Result<Connection> {
            let mut connection = match &self.place {
                Place::Socket(path) => {
                    let stream = UnixStream::connect(path)?;
                    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
                    Connection::Unix(stream)
                }
                Place::Tcp { host, .. } => {
                    let stream = TcpStream::connect(host)?;
                    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
                    Connection::Tcp(stream)
                }
            };
            connection.write_all(request.as_bytes())?;
            Ok(connection)
        };
        let unreachable = |error: std::io::Error| RunsError::Unreachable {
            server: self.to_string(),
            error,
        };
        let mut reader = BufReader::new(connect().map_err(unreachable)?);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).map_err(unreachable)?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| RunsError::NotHttp(self.to_string()))?;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).map_err(unreachable)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
        if status == 401 || status == 403 {
            return Err(RunsError::Refused(status));
        }
        Ok(Response {
            status,
            body: Body {
                reader,
                chunked,
                left: 0,
            },
        })
    }
}

impl std::fmt::Display for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.place {
            Place::Socket(path) => write!(f, "the admin socket {}", path.display()),
            Place::Tcp { host, base } => write!(f, "http://{host}{base}"),
        }
    }
}

/// An answer of the admin listener.
struct Response {
    status: u16,
    body: Body,
}

/// A response body, read as it arrives (chunked or until the connection closes).
struct Body {
    reader: BufReader<Connection>,
    chunked: bool,
    /// Bytes left in the current chunk.
    left: usize,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.chunked {
            return self.reader.read(buf);
        }
        if self.left == 0 {
            let mut size = String::new();
            self.reader.read_line(&mut size)?;
            let size = size.trim();
            if size.is_empty() {
                return Ok(0);
            }
            let size = size.split(';').next().unwrap_or_default();
            self.left = usize::from_str_radix(size, 16)
                .map_err(|_| std::io::Error::other("a malformed chunk"))?;
            if self.left == 0 {
                return Ok(0);
            }
        }
        let wanted = buf.len().min(self.left);
        let read = self.reader.read(&mut buf[..wanted])?;
        self.left -= read;
        if self.left == 0 {
            let mut crlf = String::new();
            self.reader.read_line(&mut crlf)?;
        }
        Ok(read)
    }
}

impl Response {
    /// The whole body, and the message of a JSON error answer.
    fn into_text(mut self) -> Result<(u16, String), RunsError> {
        let mut text = String::new();
        self.body
            .read_to_string(&mut text)
            .map_err(RunsError::AnswerBroken)?;
        Ok((self.status, text))
    }
}

/// The `error` of a JSON error answer, else the text.
fn error_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| text.trim().to_owned())
}

fn check_run_id(id: &str) -> Result<(), RunsError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(RunsError::BadRunId(id.to_owned()));
    }
    Ok(())
}

/// Asks the running server to rerun `id`, and prints the new run's id.
fn rerun(id: &str, server: &Admin) -> Result<(), RunsError> {
    check_run_id(id)?;
    let (status, text) = server
        .send("POST", &format!("/-/runs/{id}/rerun"), "application/json")?
        .into_text()?;
    if status != 202 {
        return Err(RunsError::RerunRefused {
            status,
            message: error_message(&text),
        });
    }
    let answer: serde_json::Value =
        serde_json::from_str(&text).map_err(RunsError::UnexpectedAnswer)?;
    println!("{}", answer["id"].as_str().unwrap_or_default());
    Ok(())
}

/// Prints the output of run `id` as it comes, until the run ends; fails unless it succeeded.
fn follow(id: &str, server: &Admin) -> Result<(), RunsError> {
    check_run_id(id)?;
    let response = server.send("GET", &format!("/-/runs/{id}/output"), "text/event-stream")?;
    if response.status != 200 {
        let (status, text) = response.into_text()?;
        return Err(RunsError::FollowRefused {
            id: id.to_owned(),
            status,
            message: error_message(&text),
        });
    }
    let mut stdout = std::io::stdout().lock();
    let mut event = String::new();
    for line in BufReader::new(response.body).lines() {
        let line = line.map_err(RunsError::StreamBroken)?;
        if let Some(name) = line.strip_prefix("event: ") {
            name.clone_into(&mut event);
            continue;
        }
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        match event.as_str() {
            "output" => {
                let text: String = serde_json::from_str(data).unwrap_or_default();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            "missed" => {
                eprintln!("[{data} bytes of output were dropped before they could be shown]")
            }
            "end" => {
                let end: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
                let status = end["status"].as_str().unwrap_or("unknown");
                if status == "succeeded" {
                    return Ok(());
                }
                let exit = match (end["exit_code"].as_i64(), end["signal"].as_i64()) {
                    (Some(code), _) => format!(", exit status {code}"),
                    (None, Some(signal)) => format!(", signal {signal}"),
                    _ => String::new(),
                };
                return Err(RunsError::RunFailed {
                    id: id.to_owned(),
                    status: status.to_owned(),
                    exit,
                });
            }
            _ => {}
        }
    }
    Err(RunsError::StreamEnded(id.to_owned()))
}

/// `http://host:port/base` → (`host:port`, `/base` without a trailing slash).
fn split_url(url: &str) -> Result<(String, String), RunsError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| RunsError::UrlNotHttp(url.to_owned()))?;
    let (host, base) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(RunsError::UrlNoHost(url.to_owned()));
    }
    let host = if host.contains(':') && !host.ends_with(']') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let base = base.trim_end_matches('/');
    Ok((
        host,
        if base.is_empty() {
            String::new()
        } else {
            format!("/{base}")
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_base() {
        assert_eq!(
            split_url("http://127.0.0.1:9000").unwrap(),
            ("127.0.0.1:9000".into(), String::new())
        );
        assert_eq!(
            split_url("http://example.org/hooks/").unwrap(),
            ("example.org:80".into(), "/hooks".into())
        );
        assert!(
            split_url("https://x")
                .unwrap_err()
                .to_string()
                .contains("http://")
        );
    }

    #[test]
    fn run_ids_are_checked_before_they_reach_a_path() {
        assert!(
            check_run_id("../x")
                .unwrap_err()
                .to_string()
                .contains("not a run id")
        );
        assert!(check_run_id("").is_err());
        assert!(check_run_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").is_ok());
    }
}
