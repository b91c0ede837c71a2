//! Integration tests: the real `hookwire` binary on loopback, one test binary (one link).

mod admin;
mod bodies;
mod browser;
mod chromium;
mod cli;
mod connections;
mod console;
mod differential;
mod engine;
mod examples;
mod exec;
mod harness;
mod hostile;
mod limits;
mod nats;
mod nats_cluster;
mod ops;
mod output;
mod quirks;
mod reload;
mod responses;
mod rules;
mod security;
mod smoke;
mod sources;
mod tls;
