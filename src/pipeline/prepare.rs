//! The stages between a received request and an execution, as one function shared by the
//! server and `hookwire explain`: verify the hook's signature preset on the raw body, build the
//! [`Request`], parse the payload, apply `parse-parameters-as-json`, evaluate the trigger rule,
//! find the delivery id, and build the [`Plan`]. Nothing here writes a response, touches the
//! dedupe store or starts a process.

use http::header;

use crate::config::Hook;
use crate::pipeline::plan::{self, Plan};
use crate::pipeline::request::body::{BodyError, BodyLimits};
use crate::pipeline::request::{self, Request, Source};
use crate::pipeline::rules::{self, RuleError, Trace};
use crate::pipeline::signature::preset::{self, PresetError};
use crate::store::Received;

/// What the stages decided.
#[derive(Debug)]
pub enum Verdict {
    /// The hook's `signature` preset refused the delivery (answer 401, run nothing).
    SignatureFailed(PresetError),
    /// A verified Discord PING: answered with `{"type":1}`, nothing runs.
    DiscordPing,
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
    /// The delivery id to deduplicate on (`delivery-id`, else the preset's), when the hook
    /// fires and has `dedupe`.
    pub delivery_id: Option<String>,
}

impl Prepared {
    /// A verdict reached before the request was built.
    fn early(verdict: Verdict) -> Self {
        Self {
            request: None,
            verdict,
            notes: Vec::new(),
            trace: None,
            delivery_id: None,
        }
    }
}

/// Runs every stage before execution for `hook`, with the default body limits.
pub async fn prepare(hook: &Hook, received: &Received, traced: bool) -> Prepared {
    prepare_with(hook, received, traced, &BodyLimits::default()).await
}

/// [`prepare`] with the server's body limits.
pub async fn prepare_with(
    hook: &Hook,
    received: &Received,
    traced: bool,
    limits: &BodyLimits,
) -> Prepared {
    // The signature comes first: nothing in an unauthenticated body is parsed or trusted.
    let verified = match &hook.security.signature {
        Some(config) => match preset::verify(
            config,
            &received.headers,
            &received.body,
            std::time::SystemTime::now(),
        ) {
            Ok(verified) if verified.discord_ping => return Prepared::early(Verdict::DiscordPing),
            Ok(verified) => Some(verified),
            Err(error) => return Prepared::early(Verdict::SignatureFailed(error)),
        },
        None => None,
    };
    let content_type = if hook.incoming_payload_content_type.is_empty() {
        received
            .headers
            .get(header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default()
    } else {
        hook.incoming_payload_content_type.clone()
    };
    let payload = match request::body::parse_payload(
        &content_type,
        &received.body,
        &json_file_fields(hook),
        limits,
        &hook.payload_selection,
    )
    .await
    {
        Ok(payload) => payload,
        Err(error) => return Prepared::early(Verdict::Malformed(error)),
    };
    let mut request = Request {
        id: received.id.clone(),
        method: received.method.clone(),
        remote_addr: received.remote_addr,
        headers: request::headers_map(
            received
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        ),
        query: request::query_map(&received.query),
        content_type,
        body: received.body.clone(),
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
    let mut delivery_id = None;
    let verdict = match triggered {
        Err(error) => Verdict::RuleError(error),
        Ok(false) => Verdict::NotTriggered,
        Ok(true) => {
            let mut plan = plan::build(hook, &request);
            notes.extend(
                plan.problems
                    .iter()
                    .map(|p| format!("error extracting command arguments: {p}")),
            );
            plan.delivery_id = find_delivery_id(hook, &request, verified, &mut notes);
            if hook.security.dedupe.is_some() {
                if plan.delivery_id.is_none() {
                    notes.push("no delivery id in this request, so it is not deduplicated".into());
                }
                delivery_id = plan.delivery_id.clone();
            }
            Verdict::Triggered(plan)
        }
    };
    Prepared {
        request: Some(request),
        verdict,
        notes,
        trace,
        delivery_id,
    }
}

/// The hook's `delivery-id` argument, else the preset's delivery id. An empty id is none: it
/// would make every delivery a duplicate of the first.
fn find_delivery_id(
    hook: &Hook,
    request: &Request,
    verified: Option<preset::Verified>,
    notes: &mut Vec<String>,
) -> Option<String> {
    match &hook.security.delivery_id {
        Some(argument) => match argument.get(request) {
            Ok(id) => Some(id),
            Err(error) => {
                notes.push(format!("delivery-id: {error}"));
                None
            }
        },
        None => verified.and_then(|verified| verified.delivery_id),
    }
    .filter(|id| !id.is_empty())
}

/// Multipart file parts to parse as JSON: the payload names listed in parse-parameters-as-json.
fn json_file_fields(hook: &Hook) -> Vec<String> {
    hook.parse_parameters_as_json
        .iter()
        .filter(|argument| argument.source == Source::Payload)
        .map(|argument| argument.name.clone())
        .collect()
}
