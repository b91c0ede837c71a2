//! Integration tests: the real `hookwire` binary on loopback, one test binary (one link).

mod cli;
mod engine;
mod exec;
mod harness;
mod limits;
mod reload;
mod responses;
mod smoke;
