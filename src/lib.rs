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
//! - [`signature`]: HMAC checks and provider presets, in constant time.
//! - [`client_ip`]: the client's address behind trusted reverse proxies.
//! - [`rate_limit`]: per-hook request budgets per client IP.
//! - [`dedupe`]: delivery ids seen recently, kept in SQLite across restarts.
//! - [`plan`]: a hook plus a request turned into the exact process invocation.
//! - [`dispatch`]: concurrency policies, retries, recovery and shutdown of runs.
//! - [`journal`]: the durable run journal (SQLite) and the run history, shown through
//!   [`redact`], which masks credentials.
//! - [`exec`]: spawning a plan in its own process group, timeouts, and capturing its output
//!   into [`output`], which followers read while the run runs.
//! - [`server`]: sockets, TLS, hyper, routing and adnanh's responses; the admin listener.
//! - [`console`]: the admin listener's web pages (runs, hooks, health, login).
//! - [`reload`]: hot reload by file watching and signals.
//! - [`app`]: start-up order and shutdown.
//! - [`commands`]: the operating subcommands (`check`, `explain`, `sign`, `completions`, `man`,
//!   `runs`).
//! - [`systemd`], [`metrics`], [`events`]: what an operator sees: service notifications,
//!   `/-/metrics`, and one log line per request and per run.

pub mod app;
pub mod cli;
pub mod client_ip;
pub mod commands;
pub mod config;
pub mod console;
pub mod dedupe;
pub mod dispatch;
pub mod events;
pub mod exec;
pub mod journal;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod privilege;
pub mod rate_limit;
pub mod redact;
pub mod reload;
pub mod request;
pub mod rules;
pub mod server;
pub mod signature;
pub mod systemd;
