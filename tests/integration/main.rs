//! Integration tests: the real `hookwire` binary on loopback, one test binary (one link).

mod harness;
mod smoke;
mod exec;
mod responses;
mod reload;
mod cli;
mod limits;
