//! hookwire: a config-driven webhook server, a drop-in replacement for adnanh/webhook.
//!
//! One request flows one way through these modules:
//!
//! ```text
//! server (route, limits) -> request (parse once) -> rules (verdict + trace)
//!        -> plan (argv, env, files) -> dispatch (journal, policy) -> exec (process group,
//!        output) -> server::respond
//! ```
//!
//! - [`cli`]: the command line, including adnanh's Go-style single-dash flags.
//! - [`config`]: the hooks file (YAML, JSON, TOML), compiled into an immutable [`config::HookSet`].
//! - [`request`]: one immutable [`request::Request`]: headers, query, raw body, parsed payload.
//! - [`rules`]: trigger-rule evaluation with adnanh's error semantics.
//! - [`signature`]: HMAC checks in constant time.
//! - [`plan`]: a hook plus a request turned into the exact process invocation.
//! - [`dispatch`]: concurrency policies, retries, recovery and shutdown of runs.
//! - [`journal`]: the durable run journal (SQLite) and the run history.
//! - [`exec`]: spawning a plan in its own process group, timeouts, and capturing its output.
//! - [`history`]: the `hookwire runs` command.
//! - [`server`]: sockets, TLS, hyper, routing and adnanh's responses.
//! - [`reload`]: hot reload by file watching and signals.
//! - [`app`]: start-up order and shutdown.

pub mod app;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod exec;
pub mod history;
pub mod journal;
pub mod logging;
pub mod pipeline;
pub mod plan;
pub mod privilege;
pub mod reload;
pub mod request;
pub mod rules;
pub mod server;
pub mod signature;
pub mod systemd;
