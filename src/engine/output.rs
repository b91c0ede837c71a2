//! A run's output while it runs: one buffer, written by the run's reader and read by any
//! number of followers (`GET /-/runs/{id}/output`, the console, `stream-output`).
//!
//! The buffer keeps the tail within the output cap (`-max-output`), as the journal does. Each
//! follower remembers how many bytes it has seen of everything ever written; one that falls
//! behind the kept tail is told how much it missed. Followers cost a position each, not a copy
//! of the output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::watch;

/// How a run ended, for followers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct End {
    /// The run's status (`succeeded`, `failed`, ...; `queued` when it waits for a retry).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

#[derive(Debug, Default)]
struct Buffer {
    /// The kept tail.
    bytes: Vec<u8>,
    /// Bytes dropped from the front to stay within the cap.
    dropped: u64,
    end: Option<End>,
}

/// The output of one running attempt.
#[derive(Debug)]
pub struct LiveOutput {
    limit: usize,
    buffer: Mutex<Buffer>,
    /// Bumped on every write and at the end, to wake followers.
    changed: watch::Sender<u64>,
}

impl LiveOutput {
    /// An empty buffer keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            buffer: Mutex::default(),
            changed: watch::channel(0).0,
        }
    }

    /// Appends what the command wrote.
    pub fn push(&self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        {
            let mut buffer = self.lock();
            buffer.bytes.extend_from_slice(chunk);
            // Trim in large steps so a chatty command costs amortised O(1) per byte.
            if buffer.bytes.len() > self.limit.saturating_add(self.limit.max(64 * 1024)) {
                self.trim(&mut buffer);
            }
        }
        self.changed.send_modify(|version| *version += 1);
    }

    /// Marks the attempt ended; followers get `end` after the last output.
    pub fn finish(&self, end: End) {
        self.lock().end = Some(end);
        self.changed.send_modify(|version| *version += 1);
    }

    /// The kept output and how many bytes were dropped from its front, for the run's record
    /// (followers that have not read it all yet still can).
    pub fn tail(&self) -> (Vec<u8>, u64) {
        let mut buffer = self.lock();
        self.trim(&mut buffer);
        (buffer.bytes.clone(), buffer.dropped)
    }

    /// Everything kept so far, and how much was dropped before it.
    pub fn snapshot(&self) -> (Bytes, u64) {
        let buffer = self.lock();
        (Bytes::copy_from_slice(&buffer.bytes), buffer.dropped)
    }

    /// A follower that starts with what was already written.
    pub fn follow(self: &Arc<Self>) -> Follower {
        Follower {
            output: self.clone(),
            seen: 0,
            changed: self.changed.subscribe(),
            done: false,
        }
    }

    fn trim(&self, buffer: &mut Buffer) {
        if buffer.bytes.len() > self.limit {
            let excess = buffer.bytes.len() - self.limit;
            buffer.bytes.drain(..excess);
            buffer.dropped += excess as u64;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a follower gets next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// New output; `missed` bytes before it were dropped before this follower read them.
    Output { missed: u64, bytes: Bytes },
    /// The attempt ended.
    End(End),
}

/// One reader of a [`LiveOutput`].
#[derive(Debug)]
pub struct Follower {
    output: Arc<LiveOutput>,
    /// Bytes of everything ever written that this follower has had.
    seen: u64,
    changed: watch::Receiver<u64>,
    done: bool,
}

impl Follower {
    /// Waits for new output or the end; `None` after the end was given.
    pub async fn next(&mut self) -> Option<Update> {
        loop {
            if self.done {
                return None;
            }
            self.changed.mark_unchanged();
            if let Some(update) = self.poll() {
                return Some(update);
            }
            // The sender lives as long as the output this follower holds.
            if self.changed.changed().await.is_err() {
                return None;
            }
        }
    }

    fn poll(&mut self) -> Option<Update> {
        let buffer = self.output.lock();
        let written = buffer.dropped + buffer.bytes.len() as u64;
        if self.seen < written {
            let missed = buffer.dropped.saturating_sub(self.seen);
            let from = usize::try_from(self.seen.max(buffer.dropped) - buffer.dropped)
                .unwrap_or(usize::MAX);
            let bytes = Bytes::copy_from_slice(&buffer.bytes[from..]);
            self.seen = written;
            return Some(Update::Output { missed, bytes });
        }
        let end = buffer.end.clone()?;
        self.done = true;
        Some(Update::End(end))
    }
}

/// The outputs of the attempts running now, by run id.
#[derive(Debug, Default)]
pub struct LiveRuns {
    runs: Mutex<HashMap<String, Arc<LiveOutput>>>,
    /// Wakes those waiting for a run's attempt to start.
    started: tokio::sync::Notify,
}

impl LiveRuns {
    /// Registers a new attempt of run `id`.
    pub fn start(&self, id: &str, limit: usize) -> Arc<LiveOutput> {
        let output = Arc::new(LiveOutput::new(limit));
        self.lock().insert(id.to_owned(), output.clone());
        self.started.notify_waiters();
        output
    }

    /// Resolves when an attempt starts after this is called (of any run: check which).
    pub fn started(&self) -> tokio::sync::futures::Notified<'_> {
        self.started.notified()
    }

    /// The output of run `id`, while its attempt runs.
    pub fn get(&self, id: &str) -> Option<Arc<LiveOutput>> {
        self.lock().get(id).cloned()
    }

    /// Forgets run `id`'s attempt once it ended (its followers keep their copy of the handle).
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<LiveOutput>>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(status: &str) -> End {
        End {
            status: status.into(),
            exit_code: Some(0),
            signal: None,
        }
    }

    #[tokio::test]
    async fn a_late_follower_gets_what_was_written_then_the_rest_then_the_end() {
        let output = Arc::new(LiveOutput::new(1024));
        output.push(b"one\n");
        let mut early = output.follow();
        assert_eq!(
            early.next().await,
            Some(Update::Output {
                missed: 0,
                bytes: Bytes::from_static(b"one\n")
            })
        );
        output.push(b"two\n");
        let mut late = output.follow();
        assert_eq!(
            late.next().await,
            Some(Update::Output {
                missed: 0,
                bytes: Bytes::from_static(b"one\ntwo\n")
            })
        );
        assert_eq!(
            early.next().await,
            Some(Update::Output {
                missed: 0,
                bytes: Bytes::from_static(b"two\n")
            })
        );
        output.finish(end("succeeded"));
        assert_eq!(early.next().await, Some(Update::End(end("succeeded"))));
        assert_eq!(early.next().await, None);
        assert_eq!(late.next().await, Some(Update::End(end("succeeded"))));
    }

    #[tokio::test]
    async fn a_follower_waits_for_output() {
        let output = Arc::new(LiveOutput::new(1024));
        let mut follower = output.follow();
        let writer = {
            let output = output.clone();
            tokio::spawn(async move {
                output.push(b"later");
            })
        };
        assert_eq!(
            follower.next().await,
            Some(Update::Output {
                missed: 0,
                bytes: Bytes::from_static(b"later")
            })
        );
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn the_tail_is_kept_and_a_slow_follower_is_told_what_it_missed() {
        let output = Arc::new(LiveOutput::new(4));
        let mut slow = output.follow();
        for _ in 0..100_000 {
            output.push(b"ab");
        }
        output.push(b"xyz");
        match slow.next().await {
            Some(Update::Output { missed, bytes }) => {
                assert_eq!(missed + bytes.len() as u64, 200_003);
                assert!(bytes.ends_with(b"xyz"));
            }
            other => panic!("{other:?}"),
        }
        let (tail, dropped) = output.tail();
        assert_eq!((tail.as_slice(), dropped), (b"bxyz".as_slice(), 199_999));
    }

    #[test]
    fn the_registry_forgets_ended_attempts() {
        let runs = LiveRuns::default();
        let output = runs.start("r1", 10);
        assert!(Arc::ptr_eq(&runs.get("r1").unwrap(), &output));
        runs.remove("r1");
        assert!(runs.get("r1").is_none());
    }
}
