//! The event stream of `GET /-/runs/{id}/output` (`Accept: text/event-stream`): the output
//! so far, new output as the command writes it, and the outcome at the end. A run that waits
//! (for a slot, or for its next attempt) is followed from the moment its attempt starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;

use crate::dispatch::Dispatcher;
use crate::journal::{RunRecord, Status};
use crate::output::{End, Follower, Update};

/// How often a waiting run is looked for among the running ones.
const POLL: Duration = Duration::from_millis(100);

/// How often the journal is read while a run waits (it may end without running: superseded).
const RECHECK: Duration = Duration::from_secs(1);

/// A comment sent when nothing else was, so that proxies keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The events of run `run` (as the journal had it when the client asked).
pub fn stream(engine: Arc<Dispatcher>, run: RunRecord) -> impl Stream<Item = Bytes> + Send {
    let start = if waiting(run.status) {
        Step::Wait {
            checked: Instant::now(),
        }
    } else {
        Step::Stored(Box::new(run.clone()))
    };
    futures_util::stream::unfold((start, engine, run.id), |(step, engine, id)| async move {
        let (event, next) = advance(step, &engine, &id).await?;
        Some((event, (next, engine, id)))
    })
}

enum Step {
    /// The run has not started an attempt yet.
    Wait {
        checked: Instant,
    },
    Follow(Box<Follower>),
    /// The run ended: its stored output, then the end.
    Stored(Box<RunRecord>),
    Ended(End),
    Done,
}

/// The next event to send, and what to do after it; `None` ends the stream.
async fn advance(step: Step, engine: &Dispatcher, id: &str) -> Option<(Bytes, Step)> {
    match step {
        Step::Done => None,
        Step::Ended(end) => Some((event("end", &json(&end)), Step::Done)),
        Step::Stored(run) => {
            let end = End {
                status: run.status.to_string(),
                exit_code: run.exit_code,
                signal: run.signal,
            };
            match run.output.clone().filter(|output| !output.is_empty()) {
                Some(output) => Some((event("output", &json(&output)), Step::Ended(end))),
                None => Some((event("end", &json(&end)), Step::Done)),
            }
        }
        Step::Follow(mut follower) => {
            match tokio::time::timeout(KEEP_ALIVE, follower.next()).await {
                Err(_) => Some((
                    Bytes::from_static(b": keep-alive\n\n"),
                    Step::Follow(follower),
                )),
                Ok(Some(Update::Output { missed: 0, bytes })) => {
                    let text = String::from_utf8_lossy(&bytes);
                    Some((event("output", &json(&text)), Step::Follow(follower)))
                }
                Ok(Some(Update::Output { missed, bytes })) => {
                    // The text follows the notice of what was missed.
                    let text = String::from_utf8_lossy(&bytes);
                    let both = [
                        event("missed", &missed.to_string()),
                        event("output", &json(&text)),
                    ]
                    .concat();
                    Some((Bytes::from(both), Step::Follow(follower)))
                }
                // An attempt that will be retried: follow the next one.
                Ok(Some(Update::End(end))) if end.status == Status::Queued.as_str() => {
                    let checked = Instant::now();
                    Box::pin(advance(Step::Wait { checked }, engine, id)).await
                }
                Ok(Some(Update::End(end))) => Some((event("end", &json(&end)), Step::Done)),
                Ok(None) => None,
            }
        }
        Step::Wait { mut checked } => {
            let deadline = Instant::now() + KEEP_ALIVE;
            loop {
                if let Some(live) = engine.live_output(id) {
                    return Box::pin(advance(Step::Follow(Box::new(live.follow())), engine, id))
                        .await;
                }
                if checked.elapsed() >= RECHECK {
                    checked = Instant::now();
                    let journal = engine.journal().clone();
                    let owned = id.to_owned();
                    let run = tokio::task::spawn_blocking(move || journal.run(&owned))
                        .await
                        .ok()?
                        .ok()??;
                    if !waiting(run.status) && engine.live_output(id).is_none() {
                        return Box::pin(advance(Step::Stored(Box::new(run)), engine, id)).await;
                    }
                }
                if Instant::now() >= deadline {
                    return Some((
                        Bytes::from_static(b": keep-alive\n\n"),
                        Step::Wait { checked },
                    ));
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

fn waiting(status: Status) -> bool {
    matches!(status, Status::Queued | Status::Running)
}

/// One server-sent event. `data` is one line (JSON, or a number).
fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn json(value: &impl serde::Serialize) -> String {
    // Strings and a struct of strings and numbers always serialize.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_on_one_data_line() {
        assert_eq!(
            event("output", &json(&"two\nlines \"quoted\"")),
            Bytes::from_static(b"event: output\ndata: \"two\\nlines \\\"quoted\\\"\"\n\n")
        );
    }
}
