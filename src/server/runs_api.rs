//! The run history over HTTP (admin routes, already authorized by [`super::admin`]):
//!
//! - `GET /-/runs?hook=ID&status=failed,timed-out&limit=N`: runs, newest first, without output;
//! - `GET /-/runs/{id}`: one run with its request and captured output;
//! - `GET /-/runs/{id}/output`: the output so far, as text; with `Accept: text/event-stream`,
//!   live: the output so far, then new output as the command writes it, then the outcome;
//! - `POST /-/runs/{id}/rerun`: the run's request as a new background run (202, its id).
//!
//! The event stream: `event: output` whose data is the new text as a JSON string; `event:
//! missed` whose data is how many bytes were dropped (over `-max-output`) before this client
//! read them; and last `event: end` whose data is `{"status":..., "exit_code":...}`.

use http::{HeaderMap, Method, StatusCode, header};
use serde::Serialize;

use super::State;
use super::respond::{self, HttpResponse};
use crate::engine::{Refusal, RerunError};
use crate::store::{Filter, Status};

/// Runs listed when the query does not say.
const DEFAULT_LIMIT: usize = 50;
/// Most runs listed at once.
const MAX_LIMIT: usize = 1000;

/// Answers `/-/runs` and below; `path` is the part after `/-/`.
pub async fn handle(
    state: &State,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> HttpResponse {
    let segments: Vec<&str> = path.split('/').collect();
    let reading = method == Method::GET || method == Method::HEAD;
    match segments[..] {
        ["runs"] if reading => list(state, query.unwrap_or_default()).await,
        ["runs", id] if reading && !id.is_empty() => show(state, id).await,
        ["runs", id, "output"] if reading => output(state, id, wants_events(headers)).await,
        ["runs", id, "rerun"] if method == Method::POST => rerun(state, id).await,
        ["runs"] | ["runs", _] | ["runs", _, "rerun" | "output"] => respond::build(
            StatusCode::METHOD_NOT_ALLOWED,
            [(
                "Allow",
                if segments.get(2) == Some(&"rerun") {
                    "POST"
                } else {
                    "GET, HEAD"
                },
            )],
            "Method not allowed.\n",
        ),
        _ => respond::plain(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// A query string `GET /-/runs` cannot filter by; answered 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FilterError {
    #[error("unknown status {name:?}; use one of {known}")]
    UnknownStatus { name: String, known: String },
    #[error("limit must be a number, not {0:?}")]
    BadLimit(String),
}

/// Reads the filter from the query string.
fn filter(query: &str) -> Result<Filter, FilterError> {
    let mut filter = Filter {
        limit: DEFAULT_LIMIT,
        ..Filter::default()
    };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "hook" => filter.hook = Some(value.into_owned()),
            "status" => {
                for name in value.split(',').filter(|s| !s.trim().is_empty()) {
                    let status = Status::parse(name).ok_or_else(|| {
                        let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                        FilterError::UnknownStatus {
                            name: name.to_owned(),
                            known: known.join(", "),
                        }
                    })?;
                    filter.statuses.push(status);
                }
            }
            "limit" => {
                filter.limit = value
                    .parse::<usize>()
                    .map_err(|_| FilterError::BadLimit(value.clone().into_owned()))?
                    .min(MAX_LIMIT);
            }
            _ => {}
        }
    }
    Ok(filter)
}

async fn list(state: &State, query: &str) -> HttpResponse {
    let filter = match filter(query) {
        Ok(filter) => filter,
        Err(error) => {
            let error = error.to_string();
            return json(StatusCode::BAD_REQUEST, &Problem { error });
        }
    };
    let journal = state.dispatcher.journal().clone();
    match tokio::task::spawn_blocking(move || journal.runs(&filter)).await {
        Ok(Ok(runs)) => json(StatusCode::OK, &Runs { runs }),
        Ok(Err(error)) => failure(&error.to_string()),
        Err(error) => failure(&error.to_string()),
    }
}

async fn show(state: &State, id: &str) -> HttpResponse {
    let journal = state.dispatcher.journal().clone();
    let owned = id.to_owned();
    match tokio::task::spawn_blocking(move || journal.run(&owned)).await {
        Ok(Ok(Some(run))) => json(StatusCode::OK, &run),
        Ok(Ok(None)) => not_found(id),
        Ok(Err(error)) => failure(&error.to_string()),
        Err(error) => failure(&error.to_string()),
    }
}

async fn rerun(state: &State, id: &str) -> HttpResponse {
    match state.dispatcher.rerun(id).await {
        Ok(new_id) => json(
            StatusCode::ACCEPTED,
            &Rerun {
                id: new_id,
                rerun_of: id.to_owned(),
            },
        ),
        Err(RerunError::NotFound(_)) => not_found(id),
        Err(error @ RerunError::NotRunnable { .. }) => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &Problem {
                error: error.to_string(),
            },
        ),
        Err(RerunError::Refused(refusal @ (Refusal::Busy(_) | Refusal::ShuttingDown))) => {
            let body = serde_json::to_vec(&Problem {
                error: refusal.to_string(),
            })
            .unwrap_or_default();
            respond::build(
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "application/json"), ("Retry-After", "5")],
                body,
            )
        }
        Err(error) => failure(&error.to_string()),
    }
}

/// Whether the client asked for an event stream.
fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/event-stream"))
}

async fn output(state: &State, id: &str, events: bool) -> HttpResponse {
    let live = state.dispatcher.live_output(id);
    if !events && let Some(live) = &live {
        return respond::build(
            StatusCode::OK,
            [("content-type", "text/plain; charset=utf-8")],
            live.snapshot().0,
        );
    }
    let journal = state.dispatcher.journal().clone();
    let owned = id.to_owned();
    let run = match tokio::task::spawn_blocking(move || journal.run(&owned)).await {
        Ok(Ok(Some(run))) => run,
        Ok(Ok(None)) if live.is_none() => return not_found(id),
        Ok(Ok(None)) => return failure("a live run is missing from the journal"),
        Ok(Err(error)) => return failure(&error.to_string()),
        Err(error) => return failure(&error.to_string()),
    };
    if !events {
        return respond::build(
            StatusCode::OK,
            [("content-type", "text/plain; charset=utf-8")],
            run.output.unwrap_or_default(),
        );
    }
    let mut response = respond::build(
        StatusCode::OK,
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-store"),
            // Proxies (nginx) buffer responses unless told not to.
            ("x-accel-buffering", "no"),
        ],
        "",
    );
    *response.body_mut() =
        respond::streamed(super::output_stream::events(state.dispatcher.clone(), run));
    response
}

#[derive(Serialize)]
struct Runs {
    runs: Vec<crate::store::RunRecord>,
}

#[derive(Serialize)]
struct Rerun {
    id: String,
    rerun_of: String,
}

#[derive(Serialize)]
struct Problem {
    error: String,
}

fn not_found(id: &str) -> HttpResponse {
    json(
        StatusCode::NOT_FOUND,
        &Problem {
            error: format!("no run {id} in the journal"),
        },
    )
}

fn failure(error: &str) -> HttpResponse {
    tracing::error!("run history: {error}");
    json(
        StatusCode::INTERNAL_SERVER_ERROR,
        &Problem {
            error: error.to_owned(),
        },
    )
}

fn json(status: StatusCode, value: &impl Serialize) -> HttpResponse {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            respond::build(status, [("content-type", "application/json")], body)
        }
        Err(error) => respond::build(
            StatusCode::INTERNAL_SERVER_ERROR,
            [],
            format!("cannot encode the answer: {error}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_from_the_query() {
        let f = filter("hook=deploy&status=failed,timed-out&status=queued&limit=5000").unwrap();
        assert_eq!(f.hook.as_deref(), Some("deploy"));
        assert_eq!(
            f.statuses,
            [Status::Failed, Status::TimedOut, Status::Queued]
        );
        assert_eq!(f.limit, MAX_LIMIT);
        assert_eq!(filter("").unwrap().limit, DEFAULT_LIMIT);
        assert!(
            filter("status=done")
                .unwrap_err()
                .to_string()
                .contains("unknown status")
        );
        assert!(
            filter("limit=x")
                .unwrap_err()
                .to_string()
                .contains("limit must be a number")
        );
    }
}
