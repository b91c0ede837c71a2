//! One request, stage by stage: route -> hook -> method -> body -> request -> rules -> plan ->
//! dispatch (journal, concurrency, execution) -> response. Each stage lives in its own module;
//! this file only strings them together with adnanh's status codes and messages.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use tracing::Instrument as _;

use super::respond::{self, HttpResponse};
use super::route::{self, Route};
use super::{Settings, State, security};
use crate::config::{Hook, HookSet};
use crate::engine;
use crate::ops::request_log;
use crate::pipeline::plan::Plan;
use crate::pipeline::request;
use crate::pipeline::{self, Verdict};
use crate::store::Received;

/// The response header carrying an accepted run's id.
pub const RUN_HEADER: &str = "X-Hookwire-Run";

/// Answers one HTTP request.
pub async fn handle(
    state: Arc<State>,
    http: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    let settings = &state.settings;
    match route::route(http.uri().path(), http.uri().query(), &settings.urlprefix) {
        Route::Root => respond::build(
            StatusCode::OK,
            header_pairs(&settings.response_headers),
            "OK",
        ),
        Route::Redirect(location) => respond::redirect(&location),
        Route::NotFound => respond::page_not_found(),
        Route::BadPath => respond::plain(StatusCode::BAD_REQUEST, "400 Bad Request"),
        Route::Hook(id) => {
            let request_id = request_id(
                http.headers(),
                settings.x_request_id,
                settings.x_request_id_limit,
            );
            let started = std::time::Instant::now();
            let client = settings.trusted_proxies.client_addr(peer, http.headers());
            let span = request_log::request_span(&request_id, &id, client);
            // The snapshot taken here serves the whole request, whatever a reload does meanwhile.
            let hooks = state.hooks.load();
            let known = hooks.get(&id).is_some().then(|| id.clone());
            let response = handle_hook(state.clone(), &hooks, http, peer, client, id, request_id)
                .instrument(span.clone())
                .await
                .unwrap_or_else(|answered| answered);
            span.in_scope(|| {
                request_log::request_answered(
                    &state.metrics,
                    known.as_deref(),
                    response.status().as_u16(),
                    started.elapsed(),
                );
            });
            response
        }
    }
}

/// The stages of a hook request in order; each one either hands its result on or answers.
async fn handle_hook(
    state: Arc<State>,
    hooks: &HookSet,
    http: hyper::Request<Incoming>,
    peer: SocketAddr,
    client: SocketAddr,
    id: String,
    request_id: String,
) -> Result<HttpResponse, HttpResponse> {
    let settings = &state.settings;
    log_incoming(http.method(), peer, client);
    let hook = find_hook(hooks, &id)?;
    check_method(hook, http.method(), &settings.default_methods)?;
    tracing::info!("{id} got matched");
    // From here on, every response carries the -header headers.
    let base_headers = header_pairs(&settings.response_headers);
    check_rate_limit(&state, hook, client, &base_headers)?;
    let (parts, body) = http.into_parts();
    let body = receive_body(settings, &parts.headers, body, hook, &base_headers).await?;
    let received = Received {
        id: request_id,
        method: parts.method.as_str().to_string(),
        remote_addr: client,
        headers: parts.headers,
        query: parts.uri.query().unwrap_or_default().to_string(),
        body,
    };
    let prepared = pipeline::prepare_with(hook, &received, false, &settings.body_limits).await;
    for note in &prepared.notes {
        tracing::info!("{note}");
    }
    request_log::record_verdict(request_log::verdict_label(&prepared.verdict));
    let plan = triggered_plan(&state, hook, prepared.verdict, &base_headers)?;
    // Every accepted run gets an id: time-ordered, so it sorts by arrival.
    let run_id = uuid::Uuid::now_v7().to_string();
    let delivery = prepared.delivery_id.as_deref();
    refuse_duplicate(&state, hook, delivery, &run_id, &base_headers).await?;
    tracing::info!("{id} hook triggered successfully (run {run_id})");
    request_log::record_run(&run_id);
    let mut headers = base_headers;
    headers.extend(
        hook.response_headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str())),
    );
    let submission = engine::Submission {
        id: run_id,
        key: engine::concurrency_key(hook, prepared.request.as_ref()),
        hook: hook.clone(),
        plan,
        // Kept as received for the journal: a recovered run is planned again from it.
        request: received,
        wait: hook.include_command_output_in_response,
        rerun_of: None,
    };
    Ok(super::answer::answer(&state, hook, submission, delivery, headers).await)
}

fn log_incoming(method: &http::Method, peer: SocketAddr, client: SocketAddr) {
    if client == peer {
        tracing::info!("incoming HTTP {method} request from {peer}");
    } else {
        tracing::info!("incoming HTTP {method} request from {client} via {peer}");
    }
}

fn find_hook<'a>(hooks: &'a HookSet, id: &str) -> Result<&'a Arc<Hook>, HttpResponse> {
    hooks.get(id).ok_or_else(|| {
        tracing::info!("hook {id:?} not found");
        request_log::record_verdict("unknown-hook");
        respond::plain(StatusCode::NOT_FOUND, respond::HOOK_NOT_FOUND)
    })
}

/// The hook's `http-methods`, else `-http-methods`; none at all allows any method.
fn check_method(
    hook: &Hook,
    method: &http::Method,
    default_methods: &[String],
) -> Result<(), HttpResponse> {
    let allowed = if hook.http_methods.is_empty() {
        default_methods
    } else {
        &hook.http_methods
    };
    if allowed.is_empty() || allowed.iter().any(|m| m == method.as_str()) {
        return Ok(());
    }
    tracing::info!("HTTP {method} method not allowed for hook {:?}", hook.id);
    request_log::record_verdict("method-not-allowed");
    Err(respond::build(
        StatusCode::METHOD_NOT_ALLOWED,
        [],
        Bytes::new(),
    ))
}

fn check_rate_limit(
    state: &State,
    hook: &Hook,
    client: SocketAddr,
    base_headers: &[(&str, &str)],
) -> Result<(), HttpResponse> {
    let Some(limit) = hook.security.rate_limit else {
        return Ok(());
    };
    state
        .rate_limits
        .check(&hook.id, client.ip(), limit)
        .map_err(|wait| {
            tracing::warn!("rate limit of {} exceeded by {}", hook.id, client.ip());
            security::too_many_requests(base_headers.to_vec(), wait)
        })
}

async fn receive_body(
    settings: &Settings,
    headers: &HeaderMap,
    body: Incoming,
    hook: &Hook,
    base_headers: &[(&str, &str)],
) -> Result<Bytes, HttpResponse> {
    read_body(headers, body, settings.max_body_size, settings.read_timeout)
        .await
        .map_err(|(status, message)| {
            tracing::warn!("rejected the body of a request for {}: {message}", hook.id);
            request_log::record_verdict("body-rejected");
            respond::build(status, base_headers.iter().copied(), message)
        })
}

/// The plan of a triggered hook, or the answer to a request that triggers nothing.
fn triggered_plan(
    state: &State,
    hook: &Hook,
    verdict: Verdict,
    base_headers: &[(&str, &str)],
) -> Result<Plan, HttpResponse> {
    let id = &hook.id;
    let answer = |status: StatusCode, body: &'static str| {
        Err(respond::build(status, base_headers.iter().copied(), body))
    };
    match verdict {
        Verdict::Triggered(plan) => Ok(plan),
        Verdict::SignatureFailed(error) => {
            if let Some(signature) = &hook.security.signature {
                state.metrics.signature_failed(signature.provider.name());
            }
            tracing::warn!("signature check of {id} failed: {error}");
            answer(StatusCode::UNAUTHORIZED, security::SIGNATURE_FAILED)
        }
        Verdict::DiscordPing => {
            tracing::info!("answered a Discord PING for {id}");
            Err(security::discord_pong(base_headers.to_vec()))
        }
        Verdict::Malformed(error) if error.is_multipart() => {
            tracing::warn!("error parsing multipart form: {error}");
            answer(StatusCode::INTERNAL_SERVER_ERROR, respond::MULTIPART_ERROR)
        }
        Verdict::Malformed(error) => {
            // Deliberate divergence: adnanh runs the hook with an empty payload instead.
            tracing::warn!("rejected an unparsable body for {id}: {error}");
            answer(StatusCode::BAD_REQUEST, body_error_message(&error))
        }
        Verdict::RuleError(error) => {
            tracing::warn!("error evaluating hook: {error}");
            answer(StatusCode::INTERNAL_SERVER_ERROR, respond::RULES_ERROR)
        }
        Verdict::NotTriggered => {
            state.metrics.rule_mismatch(id);
            tracing::info!(
                "{id} got matched, but didn't get triggered because the trigger rules were not satisfied"
            );
            let status =
                respond::configured_status(hook.trigger_rule_mismatch_http_response_code, id);
            answer(status, respond::RULES_NOT_SATISFIED)
        }
    }
}

/// Answers a delivery id seen within the hook's `dedupe` window with the first run's id.
async fn refuse_duplicate(
    state: &State,
    hook: &Hook,
    delivery: Option<&str>,
    run_id: &str,
    base_headers: &[(&str, &str)],
) -> Result<(), HttpResponse> {
    let Some(delivery) = delivery else {
        return Ok(());
    };
    match security::seen_before(state, hook, delivery, run_id).await {
        None => Ok(()),
        Some(first) => {
            state.metrics.duplicate(&hook.id);
            request_log::record_verdict("duplicate");
            Err(security::duplicate(base_headers.to_vec(), &first))
        }
    }
}

/// Reads the whole body under the size limit and the read timeout.
async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
    timeout: std::time::Duration,
) -> Result<Bytes, (StatusCode, &'static str)> {
    const TOO_LARGE: &str = "Request body is too large.";
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err((StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE))
        }
        Ok(Err(_)) => Err((
            StatusCode::BAD_REQUEST,
            "The request body could not be read.",
        )),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            "The request body was not received in time.",
        )),
    }
}

fn body_error_message(error: &request::body::BodyError) -> &'static str {
    use request::body::BodyError;
    match error {
        BodyError::Json(_) => "The request body is not valid JSON.",
        BodyError::Form(_) => "The request body is not a valid form.",
        BodyError::Xml(_) => "The request body is not valid XML.",
        BodyError::Multipart(_) => respond::MULTIPART_ERROR,
        BodyError::TooDeep(_) => "The request body is nested too deeply.",
        BodyError::TooManyParts(_) => "The request body has too many parts.",
    }
}

fn header_pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// The log id of a request: 6 random hex digits, or the client's
/// `X-Request-Id` with `-x-request-id` (truncated at a character boundary: it is untrusted).
fn request_id(headers: &HeaderMap, use_header: bool, limit: usize) -> String {
    if use_header
        && let Some(value) = headers.get("x-request-id").and_then(|v| v.to_str().ok())
        && !value.is_empty()
    {
        let end = if limit == 0 {
            value.len()
        } else {
            value.floor_char_boundary(limit)
        };
        return value[..end].to_string();
    }
    // A log correlation id, not a secret: a thread-local generator spares a syscall per request.
    format!("{:06x}", fastrand::u32(..1 << 24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_six_hex_digits_unless_the_client_gives_one() {
        let none = HeaderMap::new();
        let ids: std::collections::BTreeSet<String> =
            (0..200).map(|_| request_id(&none, true, 0)).collect();
        assert!(ids.len() > 190, "ids repeat: {ids:?}");
        assert!(ids.iter().all(|id| {
            id.len() == 6
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }));

        let mut given = HeaderMap::new();
        given.insert("x-request-id", "delivery-42".parse().unwrap());
        assert_eq!(request_id(&given, true, 3), "del");
        assert_eq!(request_id(&given, true, 0), "delivery-42");
        assert_eq!(request_id(&given, false, 0).len(), 6);
    }
}
