//! `hookwire runs`: the run history read from the journal file (a running server is not needed
//! and not disturbed: SQLite's WAL lets it read while the server writes), one run in detail, and
//! reruns, which go through a running server (`POST /-/runs/{id}/rerun`) so the run is planned
//! with the server's current hooks and scheduled under its concurrency policy.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::engine::{RunsAction, RunsArgs, StateLocation};
use crate::journal::{Filter, History, RunRecord, Status};
use crate::server::listener::ADMIN_SOCKET;

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

fn runs(args: &RunsArgs) -> Result<(), String> {
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
        Some(RunsAction::Rerun {
            run,
            url,
            admin_token_file,
            location,
        }) => {
            let location = if location.state_dir.is_some() {
                location
            } else {
                &args.location
            };
            let server = match url {
                Some(url) => Admin::Tcp(split_url(url)?),
                None => Admin::Socket(location.directory().join(ADMIN_SOCKET)),
            };
            rerun(run, &server, admin_token_file.as_deref())
        }
    }
}

fn list(args: &RunsArgs) -> Result<(), String> {
    let statuses = args
        .status
        .iter()
        .filter(|name| !name.trim().is_empty())
        .map(|name| {
            Status::parse(name).ok_or_else(|| {
                let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown status {name:?}: use one of {}", known.join(", "))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let history = History::open(&args.location.directory()).map_err(|e| e.to_string())?;
    let runs = history
        .runs(&Filter {
            hook: args.hook.clone(),
            statuses,
            limit: args.limit,
            before: None,
        })
        .map_err(|e| e.to_string())?;
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

fn show(id: &str, json: bool, location: &StateLocation) -> Result<(), String> {
    let history = History::open(&location.directory()).map_err(|e| e.to_string())?;
    let run = history
        .run(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no run {id} in the journal (list them with `hookwire runs`)"))?;
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

fn print_json(value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

/// How long the server has to answer a rerun.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the running server's admin routes are.
#[derive(Debug)]
enum Admin {
    /// Its admin socket (the default: `admin.sock` in the state directory).
    Socket(PathBuf),
    /// `-url`: `host:port` and a base path.
    Tcp((String, String)),
}

impl std::fmt::Display for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Socket(path) => write!(f, "the admin socket {}", path.display()),
            Self::Tcp((host, base)) => write!(f, "http://{host}{base}"),
        }
    }
}

/// Asks the running server to rerun `id`, and prints the new run's id.
fn rerun(id: &str, server: &Admin, token_file: Option<&Path>) -> Result<(), String> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(format!("{id:?} is not a run id (see `hookwire runs`)"));
    }
    let authorization = match token_file {
        Some(path) => format!(
            "Authorization: {}\r\n",
            crate::server::admin::AdminToken::read(path)?.authorization()
        ),
        None => String::new(),
    };
    let (host, base) = match server {
        Admin::Socket(_) => ("localhost", ""),
        Admin::Tcp((host, base)) => (host.as_str(), base.as_str()),
    };
    let request = format!(
        "POST {base}/-/runs/{id}/rerun HTTP/1.1\r\nHost: {host}\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let answer = match server {
        Admin::Socket(path) => UnixStream::connect(path).and_then(|stream| {
            stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
            exchange(stream, request.as_bytes())
        }),
        Admin::Tcp((host, _)) => TcpStream::connect(host).and_then(|stream| {
            stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
            exchange(stream, request.as_bytes())
        }),
    };
    let (status, body) = answer.map_err(|error| {
        format!(
            "cannot reach the server at {server}: {error} (is it running? give its --state-dir, \
             or --url for an admin listener on TCP)"
        )
    })?;
    match status {
        202 => {
            let answer: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| format!("unexpected answer: {e}"))?;
            let new_id = answer
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            println!("{new_id}");
            Ok(())
        }
        401 | 403 => Err(format!(
            "the server refused the admin request ({status}): give its --admin-token-file"
        )),
        _ => {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
            Err(format!("rerun refused ({status}): {message}"))
        }
    }
}

/// `http://host:port/base` → (`host:port`, `/base` without a trailing slash).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("--url {url:?} must start with http:// (the admin listener serves plain HTTP)")
    })?;
    let (host, base) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(format!("--url {url:?} has no host"));
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

/// One HTTP/1.1 exchange with `Connection: close`: the status and the body.
fn exchange(mut stream: impl Read + Write, request: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    stream.write_all(request)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP response"))?;
    let status = String::from_utf8_lossy(&raw[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    Ok((status, raw[split + 4..].to_vec()))
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
        assert!(split_url("https://x").unwrap_err().contains("http://"));
    }

    #[test]
    fn rerun_checks_the_id() {
        assert!(
            rerun(
                "../x",
                &Admin::Tcp(("127.0.0.1:1".into(), String::new())),
                None
            )
            .unwrap_err()
            .contains("not a run id")
        );
    }
}
