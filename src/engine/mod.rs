//! The engine: what happens to a triggered plan. The [`Dispatcher`] journals each accepted run
//! and applies the hook's concurrency policy through its lanes; [`exec`] runs each attempt in its
//! own process group, writing the output into [`output`] for followers; `recover` picks up what
//! a previous process left unfinished and reruns runs on request.

mod dispatcher;
pub mod exec;
mod lane;
pub mod notify;
pub mod output;
mod recover;

pub use dispatcher::{
    Claimed, ClaimedAttempt, Dispatcher, DispatcherSettings, Refusal, RunGuard, RunTracker, Stop,
    StopSignal, Submission, concurrency_key,
};
pub use lane::Busy;
pub use recover::{Recovered, ReplanError, RerunError};
