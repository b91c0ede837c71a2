//! Integration tests: the real `hookwire` binary on loopback, one test binary (one link).

mod cli;
mod exec;
mod harness;
mod limits;
mod reload;
mod responses;
mod security;
mod smoke;
