//! The command line: every flag of adnanh/webhook 2.8 (one or two dashes, Go's boolean rules, via
//! [`goflags`]) plus hookwire's own flags and subcommands.

pub mod goflags;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// hookwire: run commands when webhooks arrive.
///
/// Serves the hooks defined in one or more hooks files (YAML, JSON or TOML) at
/// http://IP:PORT/URLPREFIX/HOOK-ID. Flags may be written with one dash or two, as
/// `-flag value` or `-flag=value`: every command line of adnanh/webhook 2.8 works unchanged.
#[derive(Debug, Parser)]
#[command(
    name = "hookwire",
    version,
    disable_version_flag = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Flags of the server (adnanh/webhook's flags first, then hookwire's own).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Path to a hooks file (JSON, YAML or TOML); repeat to load several [default: hooks.json]
    #[arg(long = "hooks", value_name = "FILE", action = clap::ArgAction::Append)]
    pub hooks: Vec<PathBuf>,

    /// IP address to listen on (bracket IPv6 addresses: [::1])
    #[arg(long, default_value = "0.0.0.0")]
    pub ip: String,

    /// Port to listen on (0 picks a free port)
    #[arg(long, default_value_t = 9000)]
    pub port: u16,

    /// URL prefix under which hooks are served: /URLPREFIX/HOOK-ID
    #[arg(long, default_value = "hooks")]
    pub urlprefix: String,

    /// Log requests and commands to stderr
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub verbose: bool,

    /// Log everything, including full request and response dumps (implies -verbose)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub debug: bool,

    /// Append the log to this file (implies -verbose)
    #[arg(long, value_name = "FILE")]
    pub logfile: Option<PathBuf>,

    /// Keep running when no hook could be loaded
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub nopanic: bool,

    /// Reload hooks files when they change (atomic saves and symlink swaps included)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub hotreload: bool,

    /// Render hooks files as Go templates first (getenv, cat, credential, js, ...)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub template: bool,

    /// Default allowed HTTP methods, comma-separated (e.g. "POST,PUT"); empty allows any
    #[arg(long = "http-methods", default_value = "", value_name = "METHODS")]
    pub http_methods: String,

    /// Response header for matched hooks, as name=value; repeat for several
    #[arg(long = "header", value_name = "NAME=VALUE", action = clap::ArgAction::Append)]
    pub header: Vec<String>,

    /// Serve HTTPS with -cert and -key
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub secure: bool,

    /// TLS certificate chain (PEM), server certificate first
    #[arg(long, default_value = "cert.pem", value_name = "FILE")]
    pub cert: PathBuf,

    /// TLS private key (PEM)
    #[arg(long, default_value = "key.pem", value_name = "FILE")]
    pub key: PathBuf,

    /// Minimum TLS version: 1.2 or 1.3 (1.0 and 1.1 are raised to 1.2 with a warning)
    #[arg(
        long = "tls-min-version",
        default_value = "1.2",
        value_name = "VERSION"
    )]
    pub tls_min_version: String,

    /// TLS cipher suites, comma-separated (Go or IANA names); empty uses the defaults
    #[arg(long = "cipher-suites", default_value = "", value_name = "SUITES")]
    pub cipher_suites: String,

    /// Print the available TLS cipher suites and exit
    #[arg(long = "list-cipher-suites", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub list_cipher_suites: bool,

    /// Accepted for compatibility: multipart bodies are parsed in memory within -max-body-size
    #[arg(long = "max-multipart-mem", default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_multipart_mem: i64,

    /// Use the X-Request-Id header, if present, as the request id in logs
    #[arg(long = "x-request-id", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub x_request_id: bool,

    /// Truncate X-Request-Id to this many bytes (0: no limit)
    #[arg(long = "x-request-id-limit", default_value_t = 0, value_name = "BYTES")]
    pub x_request_id_limit: usize,

    /// Write the process id to this file; refuse to start if it names a running process
    #[arg(long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Switch to this user id after opening the listener (requires -setgid)
    #[arg(long, default_value_t = 0, value_name = "UID")]
    pub setuid: u32,

    /// Switch to this group id after opening the listener (requires -setuid)
    #[arg(long, default_value_t = 0, value_name = "GID")]
    pub setgid: u32,

    /// Listen on this Unix socket instead of IP:PORT (@name for an abstract socket)
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Print the version and exit
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub version: bool,

    /// Largest request body accepted, in bytes; larger bodies get 413
    #[arg(long = "max-body-size", default_value_t = 10 << 20, value_name = "BYTES", help_heading = "Limits")]
    pub max_body_size: u64,

    /// Seconds a client has to send the request headers, and then the body
    #[arg(
        long = "read-timeout",
        default_value_t = 30,
        value_name = "SECONDS",
        help_heading = "Limits"
    )]
    pub read_timeout: u64,

    /// Most headers accepted in one request (431 beyond)
    #[arg(
        long = "max-headers",
        default_value_t = 100,
        value_name = "COUNT",
        help_heading = "Limits"
    )]
    pub max_headers: usize,

    /// Most connections served at once; further clients wait in the kernel's backlog
    #[arg(
        long = "max-connections",
        default_value_t = 1024,
        value_name = "COUNT",
        help_heading = "Limits"
    )]
    pub max_connections: usize,
}

/// Parses the process arguments, accepting Go-style flags. Exits with usage on error, as
/// adnanh's `flag` package does (status 2).
pub fn parse(args: Vec<OsString>) -> Cli {
    let args = goflags::normalize::<Cli>(args);
    Cli::parse_from(args)
}

/// Placeholder so the crate builds while subcommands are added.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {}
