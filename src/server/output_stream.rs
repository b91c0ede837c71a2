//! A run's output as it comes, for `GET /-/runs/{id}/output` (an event stream) and for hooks
//! with `stream-output` (the answer's body): the output so far, new output as the command
//! writes it, and the outcome at the end. A run that waits (for a slot, or for its next
//! attempt) is followed from the moment its attempt starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};

use crate::engine::Dispatcher;
use crate::engine::output::{End, Follower, Update};
use crate::store::{RunRecord, Status};

/// How often the journal is read while a run waits (it may end without running: superseded).
const RECHECK: Duration = Duration::from_secs(1);

/// How long the stream may be silent before a keep-alive, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One piece of a followed run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Output(Bytes),
    /// Bytes dropped (over `-max-output`) before they could be sent.
    Missed(u64),
    End(End),
    /// Nothing happened for a while.
    KeepAlive,
}

/// The run as a server-sent event stream: `output` events (the text as a JSON string),
/// `missed` (a byte count), and a last `end` (`{"status":..., "exit_code":...}`).
pub fn events(dispatcher: Arc<Dispatcher>, run: RunRecord) -> impl Stream<Item = Bytes> + Send {
    // A character split between two reads is held back until its end arrives.
    let mut text = Utf8Carry::default();
    pieces(dispatcher, run).map(move |piece| match piece {
        Piece::Output(bytes) => event("output", &json(&text.decode(&bytes))),
        Piece::Missed(count) => {
            text = Utf8Carry::default();
            event("missed", &count.to_string())
        }
        Piece::End(end) => {
            let rest = text.finish();
            let end = event("end", &json(&end));
            if rest.is_empty() {
                end
            } else {
                Bytes::from([event("output", &json(&rest)), end].concat())
            }
        }
        Piece::KeepAlive => Bytes::from_static(b": keep-alive\n\n"),
    })
}

/// Decodes UTF-8 that arrives in pieces: an incomplete character at the end of a piece waits
/// for the next; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
struct Utf8Carry(Vec<u8>);

impl Utf8Carry {
    fn decode(&mut self, bytes: &[u8]) -> String {
        self.0.extend_from_slice(bytes);
        let cut = self.0.len() - incomplete_suffix(&self.0);
        let text = String::from_utf8_lossy(&self.0[..cut]).into_owned();
        self.0.drain(..cut);
        text
    }

    fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.0).into_owned();
        self.0.clear();
        rest
    }
}

/// The length of a character begun at the end of `bytes` but not finished: a lead byte
/// followed by fewer continuation bytes than it announces.
fn incomplete_suffix(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let length = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if length > back { back } else { 0 };
    }
    0
}

/// The run's output as plain text, for a `stream-output` answer. The status line has gone
/// before the command ends, so a run that does not succeed ends the text with a line that
/// says how it ended.
pub fn text(dispatcher: Arc<Dispatcher>, id: String) -> impl Stream<Item = Bytes> + Send {
    let start = Step::Wait {
        checked: Instant::now(),
    };
    follow(start, dispatcher, id.clone()).filter_map(move |piece| {
        let chunk = match piece {
            Piece::Output(bytes) => Some(bytes),
            Piece::Missed(count) => Some(Bytes::from(format!(
                "\n[hookwire: {count} bytes of output dropped]\n"
            ))),
            Piece::End(end) if end.status == Status::Succeeded.as_str() => None,
            Piece::End(end) => Some(Bytes::from(format!("\n{}\n", ending(&id, &end)))),
            Piece::KeepAlive => None,
        };
        std::future::ready(chunk)
    })
}

/// `hookwire: run ID failed (exit status 3)`: the last line of a failed streamed answer.
pub fn ending(id: &str, end: &End) -> String {
    let how = match (end.exit_code, end.signal) {
        (Some(code), _) => format!(" (exit status {code})"),
        (None, Some(signal)) => format!(" (signal {signal})"),
        (None, None) => String::new(),
    };
    format!("hookwire: run {id} {}{how}", end.status)
}

fn pieces(dispatcher: Arc<Dispatcher>, run: RunRecord) -> impl Stream<Item = Piece> + Send {
    let start = if waiting(run.status) {
        Step::Wait {
            checked: Instant::now(),
        }
    } else {
        Step::Stored(Box::new(run.clone()))
    };
    follow(start, dispatcher, run.id)
}

fn follow(
    start: Step,
    dispatcher: Arc<Dispatcher>,
    id: String,
) -> impl Stream<Item = Piece> + Send {
    futures_util::stream::unfold(
        (start, dispatcher, id),
        |(step, dispatcher, id)| async move {
            let (piece, next) = advance(step, &dispatcher, &id).await?;
            Some((piece, (next, dispatcher, id)))
        },
    )
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
    /// Output to send, then follow on.
    Then(Bytes, Box<Follower>),
    Done,
}

/// The next piece, and what to do after it; `None` ends the stream.
async fn advance(step: Step, dispatcher: &Dispatcher, id: &str) -> Option<(Piece, Step)> {
    match step {
        Step::Done => None,
        Step::Ended(end) => Some((Piece::End(end), Step::Done)),
        Step::Then(bytes, follower) => Some((Piece::Output(bytes), Step::Follow(follower))),
        Step::Stored(run) => {
            let end = End {
                status: run.status.to_string(),
                exit_code: run.exit_code,
                signal: run.signal,
            };
            match run.output.filter(|output| !output.is_empty()) {
                Some(output) => Some((Piece::Output(Bytes::from(output)), Step::Ended(end))),
                None => Some((Piece::End(end), Step::Done)),
            }
        }
        Step::Follow(mut follower) => match tokio::time::timeout(KEEP_ALIVE, follower.next()).await
        {
            Err(_) => Some((Piece::KeepAlive, Step::Follow(follower))),
            Ok(Some(Update::Output { missed: 0, bytes })) => {
                Some((Piece::Output(bytes), Step::Follow(follower)))
            }
            Ok(Some(Update::Output { missed, bytes })) => {
                Some((Piece::Missed(missed), Step::Then(bytes, follower)))
            }
            // An attempt that will be retried: follow the next one.
            Ok(Some(Update::End(end))) if end.status == Status::Queued.as_str() => {
                let checked = Instant::now();
                Box::pin(advance(Step::Wait { checked }, dispatcher, id)).await
            }
            Ok(Some(Update::End(end))) => Some((Piece::End(end), Step::Done)),
            Ok(None) => None,
        },
        Step::Wait { mut checked } => {
            let deadline = Instant::now() + KEEP_ALIVE;
            loop {
                // Registered before the look, so a start in between is not missed.
                let started = dispatcher.attempt_started();
                if let Some(live) = dispatcher.live_output(id) {
                    let follower = Step::Follow(Box::new(live.follow()));
                    return Box::pin(advance(follower, dispatcher, id)).await;
                }
                if checked.elapsed() >= RECHECK {
                    checked = Instant::now();
                    let journal = dispatcher.journal().clone();
                    let owned = id.to_owned();
                    let run = tokio::task::spawn_blocking(move || journal.run(&owned))
                        .await
                        .ok()?
                        .ok()??;
                    if !waiting(run.status) && dispatcher.live_output(id).is_none() {
                        return Box::pin(advance(Step::Stored(Box::new(run)), dispatcher, id))
                            .await;
                    }
                }
                if Instant::now() >= deadline {
                    return Some((Piece::KeepAlive, Step::Wait { checked }));
                }
                // The journal is read again now and then: a run may end without starting.
                let _ = tokio::time::timeout(RECHECK, started).await;
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
    fn characters_split_between_reads_are_decoded_whole() {
        let mut text = Utf8Carry::default();
        let bytes = "é€😀".as_bytes();
        let decoded: String = bytes.iter().map(|b| text.decode(&[*b])).collect();
        assert_eq!(decoded + &text.finish(), "é€😀");
        assert_eq!(text.decode(b"a\xff b"), "a\u{fffd} b");
        assert_eq!(text.decode(b"\xe2\x82"), "");
        assert_eq!(text.finish(), "\u{fffd}");
    }

    #[test]
    fn events_are_framed_on_one_data_line() {
        assert_eq!(
            event("output", &json(&"two\nlines \"quoted\"")),
            Bytes::from_static(b"event: output\ndata: \"two\\nlines \\\"quoted\\\"\"\n\n")
        );
    }

    #[test]
    fn a_failed_streamed_answer_ends_with_how() {
        let end = End {
            status: "failed".into(),
            exit_code: Some(3),
            signal: None,
        };
        assert_eq!(
            ending("r1", &end),
            "hookwire: run r1 failed (exit status 3)"
        );
    }
}
