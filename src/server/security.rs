//! The server's answers for hookwire's security stages: signature failures (401), Discord PINGs,
//! rate limits (429) and deduplicated deliveries (200 with `X-Hookwire-Duplicate`). Kept apart
//! from `handler` so the request flow there stays one line per stage.

use std::time::Duration;

use http::StatusCode;

use super::State;
use super::respond::{self, HttpResponse};
use crate::config::Hook;
use crate::store::dedupe::Claim;

/// The response header on a deduplicated delivery, carrying the first delivery's run id.
pub const DUPLICATE_HEADER: &str = "X-Hookwire-Duplicate";

/// The body of a 401. It never hints at what was expected; the log says which check failed.
pub const SIGNATURE_FAILED: &str = "Signature verification failed.";

/// The body of a deduplicated delivery.
pub const DUPLICATE: &str = "Delivery already received; nothing was run.";

const TOO_MANY_REQUESTS: &str = "Too many requests.";

/// `429 Too Many Requests` with `Retry-After` in whole seconds (rounded up, at least 1).
pub fn too_many_requests(headers: Vec<(&str, &str)>, wait: Duration) -> HttpResponse {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let retry_after = seconds.max(1).to_string();
    let headers = headers
        .into_iter()
        .chain([("Retry-After", retry_after.as_str())]);
    respond::build(StatusCode::TOO_MANY_REQUESTS, headers, TOO_MANY_REQUESTS)
}

/// Discord's PING answer: `{"type":1}` as JSON.
pub fn discord_pong(headers: Vec<(&str, &str)>) -> HttpResponse {
    let headers = headers
        .into_iter()
        .chain([("Content-Type", "application/json")]);
    respond::build(StatusCode::OK, headers, r#"{"type":1}"#)
}

/// The answer to a deduplicated delivery: 200, the first run's id, nothing run.
pub fn duplicate(headers: Vec<(&str, &str)>, first_run: &str) -> HttpResponse {
    let headers = headers.into_iter().chain([(DUPLICATE_HEADER, first_run)]);
    respond::build(StatusCode::OK, headers, DUPLICATE)
}

/// Claims `delivery` for the run `run_id` of `hook` (which has `dedupe`), or returns the run
/// id of the delivery that claimed it first. When the store fails the delivery is treated as
/// new (and logged): running a redelivery twice is better than dropping a delivery.
pub async fn seen_before(
    state: &State,
    hook: &Hook,
    delivery: &str,
    run_id: &str,
) -> Option<String> {
    let window = hook.security.dedupe?;
    let claimed = match state.dispatcher.cluster() {
        Some(cluster) => cluster
            .claim(&hook.id, delivery, run_id, window)
            .await
            .map_err(|error| error.to_string()),
        None => state
            .dedupe
            .claim(&hook.id, delivery, run_id, window)
            .await
            .map_err(|error| error.to_string()),
    };
    match claimed {
        Ok(Claim::Fresh) => None,
        Ok(Claim::Duplicate(first)) => {
            tracing::info!(
                "{}: delivery {delivery:?} was already accepted as run {first}; not running it again",
                hook.id
            );
            Some(first)
        }
        Err(error) => {
            tracing::error!(
                "cannot check delivery {delivery:?} of {} for duplicates: {error}; running it",
                hook.id
            );
            None
        }
    }
}

/// Releases the delivery id a refused run claimed, so the sender's retry is not taken for a
/// duplicate.
pub async fn forget_delivery(state: &State, hook: &Hook, delivery: &str, run_id: &str) {
    let forgotten = match state.dispatcher.cluster() {
        Some(cluster) => cluster
            .forget(&hook.id, delivery, run_id)
            .await
            .map_err(|error| error.to_string()),
        None => state
            .dedupe
            .forget(&hook.id, delivery, run_id)
            .await
            .map_err(|error| error.to_string()),
    };
    if let Err(error) = forgotten {
        tracing::warn!("cannot release delivery {delivery:?} of refused run {run_id}: {error}");
    }
}
