//! One lane: the runs of one hook (and one `concurrency-key` value) under a policy that allows
//! one at a time. Pure bookkeeping, no processes: what happens to a run that arrives, and which
//! run goes next when the lane frees up.

use std::collections::VecDeque;
use std::sync::Arc;

use super::dispatcher::{Stop, StopSignal};
use crate::config::scheduling::Concurrency;

/// What the lane needs to know about a run.
pub(super) trait LaneJob {
    /// The run id; ids sort by arrival (UUID v7), so a greater id is a newer request.
    fn id(&self) -> &str;
    /// Asks the run to stop, when it is the one running.
    fn stop(&self) -> &Arc<StopSignal>;
}

/// Where a run comes from: a client may be refused; a retry or a recovered run may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Client,
    System,
}

/// Why a client's run is refused (answered 503 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// `queue`: `max-queue` runs already wait.
    QueueFull,
    /// `reject`: a run is in progress.
    Running,
}

/// What happens to an arriving run.
#[derive(Debug)]
pub(super) enum Decision<J> {
    /// It starts now; the lane is busy with it.
    Start(J),
    /// It waits; `superseded` are the waiting runs it replaced (`latest`, `cancel`).
    Wait { superseded: Vec<J> },
    /// It never runs: a newer run (`by`) holds its place. Only for system runs, which can be older
    /// than what the lane already has.
    Superseded { job: J, by: String },
    /// It is refused.
    Refused { job: J, busy: Busy },
}

/// The run in progress and the runs waiting behind it.
#[derive(Debug)]
pub(super) struct Lane<J> {
    running: Option<(String, Arc<StopSignal>)>,
    waiting: VecDeque<J>,
}

impl<J> Default for Lane<J> {
    fn default() -> Self {
        Self {
            running: None,
            waiting: VecDeque::new(),
        }
    }
}

impl<J: LaneJob> Lane<J> {
    /// Applies the lane's policy to an arriving run. `mode` is never `Parallel` (such runs
    /// have no lane).
    pub(super) fn admit(
        &mut self,
        mode: Concurrency,
        max_queue: usize,
        job: J,
        origin: Origin,
    ) -> Decision<J> {
        let Some((running_id, running_stop)) = &self.running else {
            return self.start(job);
        };
        match mode {
            Concurrency::Parallel | Concurrency::Queue => {
                if origin == Origin::Client && self.waiting.len() >= max_queue {
                    return Decision::Refused {
                        job,
                        busy: Busy::QueueFull,
                    };
                }
                self.waiting.push_back(job);
                Decision::Wait {
                    superseded: Vec::new(),
                }
            }
            Concurrency::Reject => {
                if origin == Origin::Client {
                    return Decision::Refused {
                        job,
                        busy: Busy::Running,
                    };
                }
                self.waiting.push_back(job);
                Decision::Wait {
                    superseded: Vec::new(),
                }
            }
            Concurrency::Latest => self.keep_newest(job),
            Concurrency::Cancel => {
                if job.id() < running_id.as_str() {
                    let by = running_id.clone();
                    return Decision::Superseded { job, by };
                }
                running_stop.request(Stop::Cancelled {
                    by: job.id().to_owned(),
                });
                self.keep_newest(job)
            }
        }
    }

    /// The newest of the waiting runs and `job` waits; the others are superseded.
    fn keep_newest(&mut self, job: J) -> Decision<J> {
        if let Some(newest) = self.waiting.iter().map(LaneJob::id).max()
            && newest > job.id()
        {
            let by = newest.to_owned();
            return Decision::Superseded { job, by };
        }
        let superseded = self.waiting.drain(..).collect();
        self.waiting.push_back(job);
        Decision::Wait { superseded }
    }

    fn start(&mut self, job: J) -> Decision<J> {
        self.running = Some((job.id().to_owned(), job.stop().clone()));
        Decision::Start(job)
    }

    /// The running run ended: the next waiting run, if any, becomes the running one (unless
    /// `hold` is set: shutting down).
    pub(super) fn release(&mut self, hold: bool) -> Option<J> {
        self.running = None;
        if hold {
            return None;
        }
        let next = self.waiting.pop_front()?;
        match self.start(next) {
            Decision::Start(job) => Some(job),
            _ => None,
        }
    }

    /// Takes the waiting run `id` out (its acceptance could not be stored).
    pub(super) fn withdraw(&mut self, id: &str) -> Option<J> {
        let index = self.waiting.iter().position(|job| job.id() == id)?;
        self.waiting.remove(index)
    }

    /// Takes every waiting run out (shutting down).
    pub(super) fn take_waiting(&mut self) -> Vec<J> {
        self.waiting.drain(..).collect()
    }

    /// Runs waiting.
    pub(super) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Nothing running, nothing waiting: the lane can go.
    pub(super) fn is_idle(&self) -> bool {
        self.running.is_none() && self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct J(String, Arc<StopSignal>);

    impl LaneJob for J {
        fn id(&self) -> &str {
            &self.0
        }
        fn stop(&self) -> &Arc<StopSignal> {
            &self.1
        }
    }

    fn job(id: &str) -> J {
        J(id.to_owned(), Arc::default())
    }

    fn id_of(decision: &Decision<J>) -> String {
        match decision {
            Decision::Start(j) => format!("start {}", j.0),
            Decision::Wait { superseded } if superseded.is_empty() => "wait".into(),
            Decision::Wait { superseded } => format!(
                "wait, supersedes {}",
                superseded
                    .iter()
                    .map(|j| j.0.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Decision::Superseded { job, by } => format!("{} superseded by {by}", job.0),
            Decision::Refused { job, busy } => format!("{} refused: {busy:?}", job.0),
        }
    }

    fn admit_all(mode: Concurrency, max_queue: usize, ids: &[(&str, Origin)]) -> Vec<String> {
        let mut lane = Lane::default();
        ids.iter()
            .map(|(id, origin)| id_of(&lane.admit(mode, max_queue, job(id), *origin)))
            .collect()
    }

    const C: Origin = Origin::Client;
    const S: Origin = Origin::System;

    #[test]
    fn queue_waits_in_order_up_to_its_limit() {
        let mut lane = Lane::default();
        for id in ["1", "2", "3"] {
            lane.admit(Concurrency::Queue, 2, job(id), C);
        }
        assert_eq!(
            id_of(&lane.admit(Concurrency::Queue, 2, job("4"), C)),
            "4 refused: QueueFull"
        );
        // A retry is never refused.
        assert_eq!(
            id_of(&lane.admit(Concurrency::Queue, 2, job("0"), S)),
            "wait"
        );
        let order: Vec<String> = std::iter::from_fn(|| lane.release(false).map(|j| j.0)).collect();
        assert_eq!(order, ["2", "3", "0"]);
        assert!(lane.is_idle());
    }

    #[test]
    fn latest_keeps_only_the_newest_waiting_run() {
        assert_eq!(
            admit_all(
                Concurrency::Latest,
                100,
                &[("1", C), ("2", C), ("3", C), ("4", C)]
            ),
            [
                "start 1",
                "wait",
                "wait, supersedes 2",
                "wait, supersedes 3"
            ]
        );
        // An older retry loses to the newer waiting run.
        assert_eq!(
            admit_all(Concurrency::Latest, 100, &[("2", C), ("3", C), ("1", S)]),
            ["start 2", "wait", "1 superseded by 3"]
        );
    }

    #[test]
    fn cancel_stops_the_running_run_for_a_newer_one() {
        let mut lane = Lane::default();
        let first = job("1");
        let stop = first.1.clone();
        lane.admit(Concurrency::Cancel, 100, first, C);
        assert_eq!(stop.reason(), None);
        assert_eq!(
            id_of(&lane.admit(Concurrency::Cancel, 100, job("2"), C)),
            "wait"
        );
        assert_eq!(stop.reason(), Some(Stop::Cancelled { by: "2".into() }));
        assert_eq!(
            id_of(&lane.admit(Concurrency::Cancel, 100, job("3"), C)),
            "wait, supersedes 2"
        );
        assert_eq!(lane.release(false).map(|j| j.0), Some("3".into()));
        // A recovered run older than the running one does not cancel it.
        assert_eq!(
            id_of(&lane.admit(Concurrency::Cancel, 100, job("0"), S)),
            "0 superseded by 3"
        );
    }

    #[test]
    fn reject_refuses_clients_while_running() {
        assert_eq!(
            admit_all(Concurrency::Reject, 100, &[("1", C), ("2", C), ("0", S)]),
            ["start 1", "2 refused: Running", "wait"]
        );
    }

    #[test]
    fn a_withdrawn_run_leaves_the_queue_and_never_starts() {
        let mut lane = Lane::default();
        for id in ["1", "2", "3"] {
            lane.admit(Concurrency::Queue, 10, job(id), C);
        }
        assert_eq!(lane.withdraw("2").map(|j| j.0), Some("2".into()));
        assert!(
            lane.withdraw("1").is_none(),
            "the running run is not waiting"
        );
        assert_eq!(lane.waiting(), 1);
        let order: Vec<String> = std::iter::from_fn(|| lane.release(false).map(|j| j.0)).collect();
        assert_eq!(order, ["3"]);
    }

    #[test]
    fn release_while_shutting_down_starts_nothing() {
        let mut lane = Lane::default();
        lane.admit(Concurrency::Queue, 10, job("1"), C);
        lane.admit(Concurrency::Queue, 10, job("2"), C);
        assert!(lane.release(true).is_none());
        assert_eq!(lane.take_waiting().len(), 1);
        assert!(lane.is_idle());
    }
}
