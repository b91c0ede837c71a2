//! hookwire: a config-driven webhook server, a drop-in replacement for adnanh/webhook.
//!
//! One request flows one way through these modules:
//!
//! ```text
//! server (route, limits) -> pipeline (client ip, rate limit, signature, request, rules, plan)
//!        -> engine (dispatcher: store, policy; exec: process group, output) -> server::answer
//! ```
//!
//! - [`cli`]: the command line, including adnanh's Go-style single-dash flags.
//! - [`config`]: the hooks file (YAML, JSON, TOML), compiled into an immutable [`config::HookSet`].
//! - [`pipeline`]: from a received request to a plan: [`pipeline::client_ip`] (the client
//!   behind trusted proxies), [`pipeline::rate_limit`] (per-hook budgets per client),
//!   [`pipeline::signature`] (HMAC checks and provider presets, in constant time),
//!   [`pipeline::request`] (headers, query, raw body, parsed payload), [`pipeline::rules`]
//!   (trigger rules with adnanh's error semantics) and [`pipeline::plan`] (the exact process
//!   invocation).
//! - [`secret`]: a secret value (never printed, compared in constant time) and where it is read
//!   from (inline, environment, file, systemd credential); used by config, rules and signature.
//! - [`engine`]: the dispatcher (concurrency policies, retries, recovery and shutdown of runs),
//!   [`engine::exec`] (a plan in its own process group, timeouts, output capture) and
//!   [`engine::output`], which followers read while the run runs.
//! - [`store`]: the state directory and its SQLite database: the run journal behind the
//!   [`store::Journal`] trait, and the dedupe table of delivery ids seen recently.
//! - [`cluster`]: the NATS JetStream store (`-nats-url`), shared by several nodes: acceptance,
//!   the work each node pulls, leases for the policies, and the history projected into SQLite.
//! - [`server`]: sockets, TLS, hyper, routing and adnanh's responses; the admin listener.
//! - [`console`]: the admin listener's web pages (runs, hooks, health, login).
//! - [`ops`]: what an operator sees and controls: logging and one log line per request and per
//!   run, `/-/metrics`, systemd notifications, hot reload, dropping privileges.
//! - [`app`]: start-up order and shutdown.
//! - [`commands`]: the operating subcommands (`check`, `explain`, `sign`, `completions`, `man`,
//!   `runs`).

pub mod app;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod console;
pub mod engine;
pub mod ops;
pub mod pipeline;
pub mod secret;
pub mod server;
pub mod store;
