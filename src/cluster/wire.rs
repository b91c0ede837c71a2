//! What travels through NATS: the events of a run's life; the first, `accepted`, is also the
//! run's message on the work stream. JSON, with the request's headers
//! and body, and a run's output, in base64 (they are bytes).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::store::headers::{decode_headers, encode_headers};
use crate::store::{Event, NewRun, Received, RunResult, Status};

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
#[error("a malformed message: {0}")]
pub struct WireError(String);

#[derive(Serialize, Deserialize)]
struct WireRequest {
    id: String,
    method: String,
    remote_addr: String,
    query: String,
    /// `Name: value` lines, base64.
    headers: String,
    /// Base64.
    body: String,
}

#[derive(Serialize, Deserialize)]
struct WireRun {
    id: String,
    hook: String,
    #[serde(default)]
    key: Option<String>,
    background: bool,
    #[serde(default)]
    rerun_of: Option<String>,
    accepted_at_ms: u64,
    request: WireRequest,
}

#[derive(Serialize, Deserialize)]
struct WireResult {
    status: Status,
    exit_code: Option<i32>,
    signal: Option<i32>,
    reason: Option<String>,
    /// Base64.
    output: String,
    truncated: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum WireEvent {
    Accepted(WireRun),
    Started {
        id: String,
        attempt: u32,
        at_ms: u64,
        node: Option<String>,
    },
    Ended {
        id: String,
        hook: String,
        result: WireResult,
        at_ms: u64,
        retry_at_ms: Option<u64>,
    },
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn time(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

fn decode_base64(text: &str) -> Result<Vec<u8>, WireError> {
    BASE64
        .decode(text)
        .map_err(|error| WireError(format!("bad base64: {error}")))
}

fn to_wire_run(run: &NewRun) -> WireRun {
    let request = &run.request;
    WireRun {
        id: run.id.clone(),
        hook: run.hook.clone(),
        key: run.concurrency_key.clone(),
        background: run.background,
        rerun_of: run.rerun_of.clone(),
        accepted_at_ms: millis(run.accepted_at),
        request: WireRequest {
            id: request.id.clone(),
            method: request.method.clone(),
            remote_addr: request.remote_addr.to_string(),
            query: request.query.clone(),
            headers: BASE64.encode(encode_headers(&request.headers)),
            body: BASE64.encode(&request.body),
        },
    }
}

fn from_wire_run(run: WireRun) -> Result<NewRun, WireError> {
    let request = run.request;
    let remote_addr: SocketAddr = request
        .remote_addr
        .parse()
        .map_err(|_| WireError(format!("bad address {:?}", request.remote_addr)))?;
    Ok(NewRun {
        id: run.id,
        hook: run.hook,
        concurrency_key: run.key,
        background: run.background,
        rerun_of: run.rerun_of,
        accepted_at: time(run.accepted_at_ms),
        request: Received {
            id: request.id,
            method: request.method,
            remote_addr,
            headers: decode_headers(&decode_base64(&request.headers)?),
            query: request.query,
            body: Bytes::from(decode_base64(&request.body)?),
        },
    })
}

/// A run from the work stream, whose messages are the runs' `accepted` events.
pub fn decode_run(payload: &[u8]) -> Result<NewRun, WireError> {
    match decode_event(payload)? {
        Event::Accepted(run) => Ok(*run),
        _ => Err(WireError("not an accepted run".to_owned())),
    }
}

/// An event as published to the history stream.
pub fn encode_event(event: &Event) -> Bytes {
    let wire = match event {
        Event::Accepted(run) => WireEvent::Accepted(to_wire_run(run)),
        Event::Started {
            id,
            attempt,
            at,
            node,
        } => WireEvent::Started {
            id: id.clone(),
            attempt: *attempt,
            at_ms: millis(*at),
            node: node.clone(),
        },
        Event::Ended {
            id,
            hook,
            result,
            at,
            retry_at,
        } => WireEvent::Ended {
            id: id.clone(),
            hook: hook.clone(),
            result: WireResult {
                status: result.status,
                exit_code: result.exit_code,
                signal: result.signal,
                reason: result.reason.clone(),
                output: BASE64.encode(&result.output),
                truncated: result.truncated,
            },
            at_ms: millis(*at),
            retry_at_ms: retry_at.map(millis),
        },
    };
    Bytes::from(serde_json::to_vec(&wire).unwrap_or_default())
}

pub fn decode_event(payload: &[u8]) -> Result<Event, WireError> {
    let wire: WireEvent =
        serde_json::from_slice(payload).map_err(|error| WireError(error.to_string()))?;
    Ok(match wire {
        WireEvent::Accepted(run) => Event::Accepted(Box::new(from_wire_run(run)?)),
        WireEvent::Started {
            id,
            attempt,
            at_ms,
            node,
        } => Event::Started {
            id,
            attempt,
            at: time(at_ms),
            node,
        },
        WireEvent::Ended {
            id,
            hook,
            result,
            at_ms,
            retry_at_ms,
        } => Event::Ended {
            id,
            hook,
            result: RunResult {
                status: result.status,
                exit_code: result.exit_code,
                signal: result.signal,
                reason: result.reason,
                output: decode_base64(&result.output)?,
                truncated: result.truncated,
            },
            at: time(at_ms),
            retry_at: retry_at_ms.map(time),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> NewRun {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-github-event", "push".parse().unwrap());
        headers.insert(
            "x-odd",
            http::HeaderValue::from_bytes(b"caf\xe9").expect("opaque bytes"),
        );
        NewRun {
            id: "0190-run".into(),
            hook: "deploy".into(),
            concurrency_key: Some("main".into()),
            background: true,
            rerun_of: None,
            accepted_at: time(1_700_000_000_123),
            request: Received {
                id: "abc123".into(),
                method: "POST".into(),
                remote_addr: "[::1]:4000".parse().unwrap(),
                headers,
                query: "a=1".into(),
                body: Bytes::from_static(b"\x00\xffbinary body"),
            },
        }
    }

    #[test]
    fn a_run_comes_back_byte_for_byte() {
        let accepted = Event::Accepted(Box::new(run()));
        let back = decode_run(&encode_event(&accepted)).expect("decodes");
        let original = run();
        assert_eq!(back.id, original.id);
        assert_eq!(back.concurrency_key, original.concurrency_key);
        assert_eq!(back.accepted_at, original.accepted_at);
        assert_eq!(back.request.body, original.request.body);
        assert_eq!(back.request.headers, original.request.headers);
        assert_eq!(back.request.remote_addr, original.request.remote_addr);
        assert_eq!(back.request.query, "a=1");
    }

    #[test]
    fn an_ended_event_keeps_its_output_and_retry_time() {
        let event = Event::Ended {
            id: "r".into(),
            hook: "h".into(),
            result: RunResult {
                status: Status::TimedOut,
                exit_code: None,
                signal: Some(9),
                reason: None,
                output: b"out\xff".to_vec(),
                truncated: 7,
            },
            at: time(5),
            retry_at: Some(time(10)),
        };
        let Event::Ended {
            result, retry_at, ..
        } = decode_event(&encode_event(&event)).expect("decodes")
        else {
            panic!("not an end");
        };
        assert_eq!(result.status, Status::TimedOut);
        assert_eq!(result.output, b"out\xff");
        assert_eq!(result.truncated, 7);
        assert_eq!(retry_at, Some(time(10)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_run(b"{not json").is_err());
        assert!(decode_event(br#"{"event":"started"}"#).is_err());
    }
}
