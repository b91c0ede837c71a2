//! The answer to a triggered request: the run is handed to the engine, then answered at once
//! (a background run, once it is journaled), after the command (`include-command-output-in-
//! response`), or with 503 and `Retry-After` when the engine refuses it.
//!
//! A client waiting for its run's output gets, when the run did not complete normally:
//! 409 Conflict when a newer request superseded it before it started (`latest`, `cancel`) or
//! cancelled it while it ran (`cancel`); 503 with `Retry-After` when hookwire shut down first;
//! a timed-out run is a failed run (500, as adnanh answers a failed command). The hook's
//! `exit-code-status` replaces the status of a run that ended (succeeded, failed, timed out),
//! by its exit code; the body stays.

use http::StatusCode;

use super::State;
use super::handler::RUN_HEADER;
use super::respond::{self, HttpResponse};
use crate::config::Hook;
use crate::engine::{Busy, Refusal, Submission};
use crate::store::{RunResult, Status};

/// Seconds a refused client is asked to wait (`Retry-After`): long enough for a typical run
/// to move on, short enough for a webhook sender's retry.
const RETRY_AFTER: &str = "5";

/// Submits the run and answers the client. `headers` are those of every response of this hook
/// (`-header`, `response-headers`); the run id is added once the run is accepted. `delivery`
/// is the delivery id this run claimed (`dedupe`): released again if the run is refused, so
/// the sender's retry is not taken for a duplicate.
pub async fn answer(
    state: &State,
    hook: &Hook,
    submission: Submission,
    delivery: Option<&str>,
    mut headers: Vec<(&str, &str)>,
) -> HttpResponse {
    let run_id = submission.id.clone();
    let waiting = match state.dispatcher.submit(submission).await {
        Ok(waiting) => waiting,
        Err(refusal) => {
            if let Some(delivery) = delivery
                && hook.security.dedupe.is_some()
            {
                super::security::forget_delivery(state, hook, delivery, &run_id).await;
            }
            let unavailable = StatusCode::SERVICE_UNAVAILABLE;
            let (status, body) = match &refusal {
                Refusal::Busy(Busy::QueueFull) => (
                    unavailable,
                    "Too many runs of this hook are waiting. Try again later.",
                ),
                Refusal::Busy(Busy::Running) => (
                    unavailable,
                    "This hook is already running. Try again later.",
                ),
                Refusal::ShuttingDown => {
                    (unavailable, "The server is shutting down. Try again later.")
                }
                Refusal::Journal(error) => {
                    tracing::error!("run {run_id} of {} not accepted: {error}", hook.id);
                    (
                        unavailable,
                        "The run could not be recorded. Try again later.",
                    )
                }
                // Trying again cannot help.
                Refusal::TooLarge(why) => {
                    tracing::error!("run {run_id} of {} not accepted: {why}", hook.id);
                    (StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large.")
                }
            };
            if status == unavailable {
                headers.push(("Retry-After", RETRY_AFTER));
            }
            return respond::build(status, headers, body);
        }
    };
    // Last, so no configured header can replace the run id.
    headers.push((RUN_HEADER, run_id.as_str()));
    let Some(waiting) = waiting else {
        let status = respond::configured_status(hook.success_http_response_code, &hook.id);
        return respond::build(status, headers, hook.response_message.clone());
    };
    if hook.scheduling.stream_output {
        // The outcome comes in the text's last line (see `output_stream::text`).
        drop(waiting);
        return streamed(state, hook, run_id.clone(), headers);
    }
    let Ok(result) = waiting.await else {
        tracing::error!("run {run_id} of {} ended without a result", hook.id);
        return respond::build(
            StatusCode::INTERNAL_SERVER_ERROR,
            headers,
            respond::COMMAND_ERROR,
        );
    };
    completed(hook, result, headers)
}

/// The answer of a `stream-output` hook: the success status at once, then the command's
/// output as it comes.
fn streamed(
    state: &State,
    hook: &Hook,
    run_id: String,
    headers: Vec<(&str, &str)>,
) -> HttpResponse {
    let status = respond::configured_status(hook.success_http_response_code, &hook.id);
    let has_type = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    let mut response = respond::build(status, headers, "");
    if !has_type {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    *response.body_mut() =
        respond::streamed(super::output_stream::text(state.dispatcher.clone(), run_id));
    response
}

fn completed(hook: &Hook, result: RunResult, mut headers: Vec<(&str, &str)>) -> HttpResponse {
    let reason = result.reason.clone().unwrap_or_default();
    // Valid by the load's checks (100-599).
    let by_exit_code = hook
        .process
        .exit_code_status
        .as_ref()
        .and_then(|mapping| mapping.status(result.exit_code))
        .and_then(|code| StatusCode::from_u16(code).ok());
    let failed = by_exit_code.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match result.status {
        Status::Succeeded => {
            let status = by_exit_code.unwrap_or_else(|| {
                respond::configured_status(hook.success_http_response_code, &hook.id)
            });
            respond::build(status, headers, result.output)
        }
        Status::Superseded | Status::Cancelled => respond::build(
            StatusCode::CONFLICT,
            headers,
            format!("The run was {reason}."),
        ),
        Status::Interrupted => {
            headers.push(("Retry-After", RETRY_AFTER));
            respond::build(
                StatusCode::SERVICE_UNAVAILABLE,
                headers,
                "The server shut down before the run finished. Try again later.",
            )
        }
        _ if hook.include_command_output_in_response_on_error => {
            respond::build(failed, headers, result.output)
        }
        // adnanh sets text/plain after writing the status, where it has no effect: a hook's own
        // Content-Type stays, and without one the message is sniffed as text/plain anyway.
        _ => respond::build(failed, headers, respond::COMMAND_ERROR),
    }
}
