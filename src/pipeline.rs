//! The stages between a received request and an execution, as one function shared by the
//! server and `hookwire explain`: build the [`Request`], parse the payload, apply
//! `parse-parameters-as-json`, evaluate the trigger rule, and build the [`Plan`]. Nothing here
//! writes a response or starts a process.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, header};

use crate::config::Hook;
use crate::plan::{self, Plan};
use crate::request::body::BodyError;
use crate::request::{self, Request, Source};
use crate::rules::{self, RuleError, Trace};

/// A request as received, before any parsing.
#[derive(Debug, Clone)]
pub struct Received {
    /// Log correlation id.
    pub id: String,
    pub method: String,
    /// The client address (the TCP peer, or the client behind trusted proxies).
    pub remote_addr: SocketAddr,
    pub headers: HeaderMap,
    /// The raw query string, without `?`.
    pub query: String,
    pub body: Bytes,
}

/// What the stages decided.
#[derive(Debug)]
pub enum Verdict {
    /// The body cannot be parsed as its content type.
    Malformed(BodyError),
    /// The trigger rule failed with a hard error (adnanh answers 500).
    RuleError(RuleError),
    /// The trigger rule is not satisfied (or a parameter it needs is missing).
    NotTriggered,
    /// The hook fires: this is what would run.
    Triggered(Plan),
}

/// The outcome of [`prepare`]: the request as the rules saw it, the verdict, and (when asked
/// for) the rule trace.
#[derive(Debug)]
pub struct Prepared {
    /// `None` when the body could not be parsed.
    pub request: Option<Request>,
    pub verdict: Verdict,
    /// Messages worth a log line (parse-parameters-as-json problems, missing parameters, ...).
    pub notes: Vec<String>,
    pub trace: Option<Trace>,
}

/// Runs every stage before execution for `hook`.
pub async fn prepare(hook: &Hook, received: Received, traced: bool) -> Prepared {
    let content_type = if hook.incoming_payload_content_type.is_empty() {
        received
            .headers
            .get(header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default()
    } else {
        hook.incoming_payload_content_type.clone()
    };
    let payload =
        match request::body::parse_payload(&content_type, &received.body, &json_file_fields(hook))
            .await
        {
            Ok(payload) => payload,
            Err(error) => {
                return Prepared {
                    request: None,
                    verdict: Verdict::Malformed(error),
                    notes: Vec::new(),
                    trace: None,
                };
            }
        };
    let mut request = Request {
        id: received.id,
        method: received.method,
        remote_addr: received.remote_addr,
        headers: request::headers_map(
            received
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        ),
        query: request::query_map(&received.query),
        content_type,
        body: received.body,
        payload,
    };
    let mut notes: Vec<String> = request
        .apply_json_parameters(&hook.parse_parameters_as_json)
        .into_iter()
        .map(|problem| format!("parse-parameters-as-json: {problem}"))
        .collect();

    let (triggered, trace) = match &hook.trigger_rule {
        None => (Ok(true), None),
        Some(rule) => {
            let soft = hook.trigger_signature_soft_failures;
            let (evaluation, trace) = if traced {
                let (evaluation, trace) = rules::evaluate_traced(rule, &request, soft);
                (evaluation, Some(trace))
            } else {
                (rules::evaluate(rule, &request, soft), None)
            };
            let triggered = match evaluation.error {
                // A missing parameter only means "not satisfied" (adnanh logs it).
                Some(RuleError::ParameterNotFound(message)) => {
                    notes.push(message);
                    Ok(evaluation.satisfied)
                }
                Some(error) => Err(error),
                None => Ok(evaluation.satisfied),
            };
            (triggered, trace)
        }
    };
    let verdict = match triggered {
        Err(error) => Verdict::RuleError(error),
        Ok(false) => Verdict::NotTriggered,
        Ok(true) => {
            let plan = plan::build(hook, &request);
            notes.extend(
                plan.problems
                    .iter()
                    .map(|p| format!("error extracting command arguments: {p}")),
            );
            Verdict::Triggered(plan)
        }
    };
    Prepared {
        request: Some(request),
        verdict,
        notes,
        trace,
    }
}

/// Multipart file parts to parse as JSON: the payload names listed in parse-parameters-as-json.
fn json_file_fields(hook: &Hook) -> Vec<String> {
    hook.parse_parameters_as_json
        .iter()
        .filter(|argument| argument.source == Source::Payload)
        .map(|argument| argument.name.clone())
        .collect()
}
