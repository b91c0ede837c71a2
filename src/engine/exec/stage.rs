//! The spawn stage: background runs' commands are started on threads of their own
//! (`hookwire-spawn`), not on the runtime's workers, which answer the requests. Starting a
//! command (`posix_spawn`, whose `clone3` waits until the child has been exec'd) takes a core for
//! 0.1 ms when the machine is idle and 2 ms and more when earlier commands keep it busy: on a
//! worker, a burst of background deliveries would answer at the pace of their spawns. A run
//! whose client waits for it is answered after its command anyway, and starts on its worker.
//!
//! Answers come first: while any background run waits for its answer ([`AnswerPending`]) one
//! command starts at a time; otherwise up to [`SPAWNERS`] at once, so that a burst's commands
//! catch up as soon as its answers are out. Commands start in arrival order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

/// Threads that start commands: two per core, so that starts overlap the part of a `clone3`
/// that waits for the child rather than using a core.
static SPAWNERS: LazyLock<usize> =
    LazyLock::new(|| std::thread::available_parallelism().map_or(2, |cores| cores.get() * 2));

/// Background runs whose answer waits (for the journal's commit) right now.
static ANSWERS_PENDING: AtomicUsize = AtomicUsize::new(0);

/// How often a spawner held back by a pending answer looks again, should it miss the wake-up
/// of the last answer going out (it is sent without the stage's lock).
const HELD_BACK: Duration = Duration::from_millis(2);

/// Most commands waiting for a spawner: beyond it a client's new run is refused (`503`), so a
/// lasting overload without `-max-concurrent-runs` cannot grow memory without limit. A burst of
/// thousands of deliveries fits.
pub const MAX_WAITING_STARTS: usize = 10_000;

/// Runs recorded as started whose command has not been spawned yet, at most: a start is
/// journaled before its command spawns, so a crash finds this many runs marked running at most
/// that never ran (a burst's commands wait for a ticket, not in the journal as running).
const TICKETS: usize = 8;

static TICKET_OFFICE: LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(TICKETS)));

/// A place among the commands about to start: taken before a run's start is journaled, given
/// back once its command is spawned.
#[derive(Debug)]
pub struct StartTicket {
    _place: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl StartTicket {
    /// Waits for a place.
    pub async fn take() -> Self {
        Self {
            _place: TICKET_OFFICE.clone().acquire_owned().await.ok(),
        }
    }
}

/// Held while a background run's answer waits: starts are held back to one at a time meanwhile.
#[derive(Debug)]
pub struct AnswerPending(());

impl AnswerPending {
    pub fn begin() -> Self {
        ANSWERS_PENDING.fetch_add(1, Ordering::SeqCst);
        Self(())
    }
}

impl Drop for AnswerPending {
    fn drop(&mut self) {
        // The last answer out lets the held-back starts go.
        if ANSWERS_PENDING.fetch_sub(1, Ordering::SeqCst) == 1 {
            STAGE.changed.notify_all();
        }
    }
}

/// True while some background run waits for its answer.
pub fn answers_pending() -> bool {
    ANSWERS_PENDING.load(Ordering::SeqCst) > 0
}

/// Commands waiting for a spawner now.
pub fn waiting_starts() -> usize {
    STAGE.lock().waiting.len()
}

type Start = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Start>,
    /// Starts in progress.
    starting: usize,
}

struct Stage {
    queue: Mutex<Queue>,
    changed: Condvar,
}

static STAGE: LazyLock<Stage> = LazyLock::new(|| {
    for index in 0..*SPAWNERS {
        let started = std::thread::Builder::new()
            .name("hookwire-spawn".into())
            .spawn(spawner);
        if let Err(error) = started {
            // The threads already started do the work; none at all is reported by `start`.
            tracing::error!("cannot start spawner thread {index}: {error}");
        }
    }
    Stage {
        queue: Mutex::default(),
        changed: Condvar::new(),
    }
});

impl Stage {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn limit() -> usize {
    if ANSWERS_PENDING.load(Ordering::SeqCst) > 0 {
        1
    } else {
        *SPAWNERS
    }
}

fn spawner() {
    let stage = &*STAGE;
    loop {
        let start = {
            let mut queue = stage.lock();
            loop {
                if !queue.waiting.is_empty() && queue.starting < limit() {
                    break;
                }
                queue = if queue.waiting.is_empty() {
                    stage
                        .changed
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner)
                } else {
                    let (queue, _) = stage
                        .changed
                        .wait_timeout(queue, HELD_BACK)
                        .unwrap_or_else(PoisonError::into_inner);
                    queue
                };
            }
            queue.starting += 1;
            queue.waiting.pop_front()
        };
        if let Some(start) = start {
            start();
        }
        stage.lock().starting -= 1;
        stage.changed.notify_one();
    }
}

/// Runs `start` on a spawner thread, inside the caller's runtime (so the child it starts is
/// registered with that runtime's reactor), and returns what it returned.
pub async fn on_spawner<T: Send + 'static>(
    start: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let runtime = tokio::runtime::Handle::current();
    let (sender, receiver) = oneshot::channel();
    let job: Start = Box::new(move || {
        let _runtime = runtime.enter();
        // Dropped if the run was abandoned meanwhile: the child is killed (`kill_on_drop`).
        let _ = sender.send(start());
    });
    STAGE.lock().waiting.push_back(job);
    STAGE.changed.notify_one();
    receiver
        .await
        .map_err(|_| std::io::Error::other("no thread to start the command"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No more than [`TICKETS`] runs hold a ticket (are recorded as started and wait for their
    /// spawn) at once; a ticket given back lets the next one through.
    #[tokio::test]
    async fn at_most_a_few_runs_wait_for_their_spawn_marked_as_started() {
        let mut held = Vec::new();
        for _ in 0..TICKETS {
            held.push(StartTicket::take().await);
        }
        assert_eq!(
            TICKET_OFFICE.available_permits(),
            0,
            "a ticket beyond {TICKETS} is free"
        );
        let next = tokio::spawn(StartTicket::take());
        drop(held.pop());
        let ticket = tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("a ticket given back is taken again")
            .expect("the task ran");
        drop(ticket);
    }
}
