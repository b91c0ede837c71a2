//! The command line: every flag of adnanh/webhook 2.8 plus hookwire's own, parsed with clap
//! after [`goflags::normalize`] has turned Go-style arguments (`-hooks x`, `-verbose=false`)
//! into clap's (`--hooks=x`, `--verbose=false`).
//!
//! What this module owns: the flag definitions ([`ServeArgs`]), parsing with Go's rules and
//! exit codes ([`parse`], [`try_parse`]), and the checks across flags that clap cannot express
//! ([`validate`]) plus small accessors that give flag values their meaning
//! ([`response_headers`], [`default_methods`]). What it does not do: act on the flags (that is
//! `app`), or print anything except usage and parse errors.
//!
//! Each flag's test sits in `tests` below, in the order of the fields, named after the flag:
//! a derive struct cannot interleave tests with fields, so the order is what keeps
//! definition, doc and test side by side.
//!
//! Subcommands ([`Command`]) sit next to the flattened serve flags: `hookwire -hooks x` serves,
//! `hookwire check x` does not. [`goflags::normalize`] continues into a subcommand's own flags
//! when it meets a subcommand name. The operating subcommands' flags live in [`ops`].

pub mod cluster;
pub mod execution;
pub mod goflags;
pub mod ops;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser};

/// hookwire: run commands when webhooks arrive.
///
/// Serves the hooks defined in one or more hooks files (YAML, JSON or TOML) at
/// http://IP:PORT/URLPREFIX/HOOK-ID. Flags may be written with one dash or two, as
/// `-flag value` or `-flag=value`; boolean flags as `-flag` or `-flag=false`. Every command
/// line of adnanh/webhook 2.8 works unchanged.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "hookwire",
    version,
    disable_version_flag = true,
    // Go's flag package lets a flag be given again; the last value wins.
    args_override_self = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The server's flags, at the top level as adnanh/webhook has them.
    #[command(flatten)]
    pub serve: ServeArgs,

    /// A subcommand; none serves the hooks.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What hookwire does instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    Check(ops::CheckArgs),
    Explain(ops::ExplainArgs),
    Sign(ops::SignArgs),
    Completions(ops::CompletionsArgs),
    /// Print the manual page (roff) to standard output
    #[command(
        after_help = "Example: hookwire man | gzip > /usr/local/share/man/man1/hookwire.1.gz"
    )]
    Man,
    /// List the run history, show one run, or run one again
    Runs(execution::RunsArgs),
}

const HOOKS: &str = "Hooks";
const LISTEN: &str = "Listening";
const TLS: &str = "TLS";
const LOGGING: &str = "Logging";
const PROCESS: &str = "Process";
const LIMITS: &str = "Limits (hookwire)";
const ADMIN: &str = "Admin (hookwire)";

/// Flags of the server: adnanh/webhook 2.8's, then hookwire's own limits.
///
/// Boolean flags follow Go: `-verbose` or `-verbose=true|false|1|0|t|f...`, never
/// `-verbose false` (see [`goflags`]).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Hooks file (JSON, YAML or TOML), directory of them, or glob pattern; repeat to load
    /// several [default: hooks.json]
    #[arg(long = "hooks", value_name = "FILE", action = clap::ArgAction::Append, help_heading = HOOKS)]
    pub hooks: Vec<PathBuf>,

    /// Render hooks files as Go templates first (getenv, cat, credential, js, ...)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", hide_default_value = true, value_parser = goflags::parse_bool, value_name = "BOOL", help_heading = HOOKS)]
    pub template: bool,

    /// Reload hooks files when they change (atomic saves and symlink swaps included)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", hide_default_value = true, value_parser = goflags::parse_bool, value_name = "BOOL", help_heading = HOOKS)]
    pub hotreload: bool,

    /// Keep running when no hook could be loaded
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", hide_default_value = true, value_parser = goflags::parse_bool, value_name = "BOOL", help_heading = HOOKS)]
    pub nopanic: bool,

    /// URL prefix under which hooks are served: /URLPREFIX/HOOK-ID (empty: /HOOK-ID)
    #[arg(long, default_value = "hooks", value_name = "PREFIX", help_heading = HOOKS)]
    pub urlprefix: String,

    /// Methods allowed for hooks that do not list their own, comma-separated (e.g. "POST,PUT");
    /// empty allows any
    #[arg(long = "http-methods", default_value = "", hide_default_value = true, value_name = "METHODS", help_heading = HOOKS)]
    pub http_methods: String,

    /// Response header for matched hooks, as NAME=VALUE; repeat for several
    #[arg(long = "header", value_name = "NAME=VALUE", action = clap::ArgAction::Append, value_parser = goflags::parse_header, help_heading = HOOKS)]
    pub header: Vec<String>,

    // `[::1]` is not a doc link; clap shows the text as written.
    #[allow(rustdoc::broken_intra_doc_links)]
    /// IP address to listen on (bracket IPv6 addresses: [::1]; empty: every address)
    #[arg(long, default_value = "0.0.0.0", help_heading = LISTEN)]
    pub ip: String,

    /// TCP port to listen on (0 picks a free port)
    #[arg(long, default_value = "9000", value_parser = goflags::parse_port, help_heading = LISTEN)]
    pub port: u16,

    /// Listen on this Unix socket instead of IP:PORT (@NAME: abstract socket)
    #[arg(long, value_name = "PATH", help_heading = LISTEN)]
    pub socket: Option<PathBuf>,

    /// Serve HTTPS with -cert and -key
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", hide_default_value = true, value_parser = goflags::parse_bool, value_name = "BOOL", help_heading = TLS)]
    pub secure: bool,

    /// TLS certificate chain (PEM), server certificate first
    #[arg(long, default_value = "cert.pem", value_name = "FILE", help_heading = TLS)]
    pub cert: PathBuf,

    /// TLS private key (PEM)
    #[arg(long, default_value = "key.pem", value_name = "FILE", help_heading = TLS)]
    pub key: PathBuf,

    /// Minimum TLS version: 1.2 or 1.3 (1.0 and 1.1 are raised to 1.2 with a warning)
    #[arg(long = "tls-min-version", default_value = "1.2", value_name = "VERSION", help_heading = TLS)]
    pub tls_min_version: String,

    /// TLS cipher suites, comma-separated Go names (see -list-cipher-suites); empty: all
    #[arg(long = "cipher-suites", default_value = "", hide_default_value = true, value_name = "SUITES", help_heading = TLS)]
    pub cipher_suites: String,

    /// Print the cipher suites usable at -tls-min-version and exit
    #[arg(long = "list-cipher-suites", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", hide_default_value = true, value_parser = goflags::parse_bool, value_name = "BOOL", help_heading = TLS)]
    pub list_cipher_suites: bool,

    /// Log requests and commands (info level; warnings and errors are always logged)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", hide_default_value = true, value_parser = goflags::parse_bool, value_name = "BOOL", help_heading = LOGGING)]
    pub verbose: bool,

    /// Log everything, including request and response dumps (implies -verbose)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", hide_default_value = true, value_parser = goflags::parse_bool, value_name = "BOOL", help_heading = LOGGING)]
    pub debug: bool,

    /// Append the log to this file instead of stderr (implies -verbose)
    #[arg(long, value_name = "FILE", help_heading = LOGGING)]
    pub logfile: Option<PathBuf>,

    /// Log format: text for people, json (one object per line) for log shippers
    #[arg(long = "log-format", value_enum, default_value = "text", value_name = "FORMAT", help_heading = LOGGING)]
    pub log_format: crate::ops::logging::LogFormat,

    /// Use the request's X-Request-Id header, if present, as its id in the log
    #[arg(long = "x-request-id", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", hide_default_value = true, value_parser = goflags::parse_bool, value_name = "BOOL", help_heading = LOGGING)]
    pub x_request_id: bool,

    /// Truncate X-Request-Id to this many bytes (0: no limit)
    #[arg(long = "x-request-id-limit", default_value = "0", value_parser = goflags::parse_limit, value_name = "BYTES", help_heading = LOGGING)]
    pub x_request_id_limit: usize,

    /// Write the process id to this file; refuse to start if it names a running process
    #[arg(long, value_name = "FILE", help_heading = PROCESS)]
    pub pidfile: Option<PathBuf>,

    /// Switch to this user id once listening (needs -setgid; not with -socket)
    #[arg(long, default_value = "0", value_parser = goflags::parse_id, value_name = "UID", hide_default_value = true, help_heading = PROCESS)]
    pub setuid: u32,

    /// Switch to this group id once listening (needs -setuid; not with -socket)
    #[arg(long, default_value = "0", value_parser = goflags::parse_id, value_name = "GID", hide_default_value = true, help_heading = PROCESS)]
    pub setgid: u32,

    /// Print the version and exit
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", hide_default_value = true, value_parser = goflags::parse_bool, value_name = "BOOL")]
    pub version: bool,

    /// Largest request body accepted, in bytes; larger bodies get 413
    #[arg(long = "max-body-size", default_value = "10485760", value_parser = goflags::parse_u64, value_name = "BYTES", help_heading = LIMITS)]
    pub max_body_size: u64,

    /// Seconds a client has to send the request headers, and then the body
    #[arg(long = "read-timeout", default_value = "30", value_parser = goflags::parse_u64, value_name = "SECONDS", help_heading = LIMITS)]
    pub read_timeout: u64,

    /// Most headers accepted in one request (431 beyond)
    #[arg(long = "max-headers", default_value = "100", value_parser = goflags::parse_usize, value_name = "COUNT", help_heading = LIMITS)]
    pub max_headers: usize,

    /// Most connections served at once; at the cap the one idle the longest is closed to make room, else new clients wait in the backlog
    #[arg(long = "max-connections", default_value = "1024", value_parser = goflags::parse_usize, value_name = "COUNT", help_heading = LIMITS)]
    pub max_connections: usize,

    /// Most connections from one client address (the TCP peer, so a reverse proxy counts as one); 0 for no cap
    #[arg(long = "max-connections-per-ip", default_value = "256", value_parser = goflags::parse_usize, value_name = "COUNT", help_heading = LIMITS)]
    pub max_connections_per_ip: usize,

    /// Seconds a new connection has to send its first byte before it is closed; 0 for no limit of its own
    #[arg(long = "first-byte-timeout", default_value = "5", value_parser = goflags::parse_u64, value_name = "SECONDS", help_heading = LIMITS)]
    pub first_byte_timeout: u64,

    /// Accepted for compatibility: multipart bodies are parsed in memory within -max-body-size
    #[arg(long = "max-multipart-mem", default_value = "1048576", value_parser = goflags::parse_i64, value_name = "BYTES", help_heading = LIMITS)]
    pub max_multipart_mem: i64,

    /// Deepest JSON nesting accepted in a body, 1 to 127 (the parser's own cap); deeper is 400
    #[arg(long = "max-json-depth", default_value = "127", value_parser = parse_json_depth, value_name = "LEVELS", help_heading = LIMITS)]
    pub max_json_depth: usize,

    /// Most parts accepted in a multipart body; more is 400
    #[arg(long = "max-multipart-parts", default_value = "100", value_parser = goflags::parse_usize, value_name = "COUNT", help_heading = LIMITS)]
    pub max_multipart_parts: usize,

    /// Reverse proxies whose X-Forwarded-For names the client, as CIDRs or addresses,
    /// comma-separated (e.g. "127.0.0.1,10.0.0.0/8"); empty trusts none
    #[arg(long = "trusted-proxies", default_value = "", hide_default_value = true, value_parser = crate::pipeline::client_ip::TrustedProxies::parse, value_name = "CIDRS", help_heading = LISTEN)]
    pub trusted_proxies: crate::pipeline::client_ip::TrustedProxies,

    /// Directory for hookwire's state (run journal, seen deliveries) [default:
    /// $STATE_DIRECTORY under systemd, else ./.hookwire]
    #[arg(long = "state-dir", value_name = "DIR", help_heading = PROCESS)]
    pub state_dir: Option<PathBuf>,

    /// Where the admin routes (/-/health, /-/metrics, /-/runs) are served: an address such as
    /// 127.0.0.1:9001, a Unix socket path (/run/hookwire/admin.sock) or @NAME (abstract socket);
    /// empty: nowhere. The hooks listener never serves them [default: admin.sock in the state
    /// directory]
    #[arg(long = "admin-listen", value_name = "ADDR", help_heading = ADMIN)]
    pub admin_listen: Option<String>,

    /// File holding a token that every admin request must carry (`Authorization: Bearer
    /// TOKEN`); required when -admin-listen is not a loopback address
    #[arg(long = "admin-token-file", value_name = "FILE", help_heading = ADMIN)]
    pub admin_token_file: Option<PathBuf>,

    /// How commands are run: concurrency cap, timeouts, output cap, journal.
    #[command(flatten)]
    pub execution: execution::ExecutionArgs,

    /// Where the shared store lives when several nodes run together (NATS JetStream).
    #[command(flatten)]
    pub cluster: cluster::ClusterArgs,
}

/// `-max-json-depth`: at least 1, at most what serde_json itself parses.
fn parse_json_depth(value: &str) -> Result<usize, goflags::FlagError> {
    let depth = goflags::parse_usize(value)?;
    let max = crate::pipeline::request::json::MAX_DEPTH;
    if (1..=max).contains(&depth) {
        Ok(depth)
    } else {
        Err(goflags::FlagError::OutOfRange {
            value: i64::try_from(depth).unwrap_or(i64::MAX),
            range: format!("1 to {max}, the JSON parser's own limit"),
        })
    }
}

impl ServeArgs {
    /// The state directory: `-state-dir`, else systemd's `$STATE_DIRECTORY` (its first entry),
    /// else `./.hookwire`.
    pub fn state_directory(&self) -> PathBuf {
        state_directory(self.state_dir.as_ref())
    }

    /// The logging flags, for [`crate::ops::logging::init`].
    pub fn log_settings(&self) -> crate::ops::logging::LogSettings {
        crate::ops::logging::LogSettings {
            verbose: self.verbose,
            debug: self.debug,
            logfile: self.logfile.clone(),
            format: self.log_format,
        }
    }
}

/// `given`, else systemd's `$STATE_DIRECTORY` (its first entry), else `./.hookwire`.
fn state_directory(given: Option<&PathBuf>) -> PathBuf {
    if let Some(dir) = given {
        return dir.clone();
    }
    std::env::var_os("STATE_DIRECTORY")
        .and_then(|dirs| std::env::split_paths(&dirs).next())
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from(".hookwire"))
}

impl Default for ServeArgs {
    /// Every flag at its default, as for `hookwire` with no arguments.
    fn default() -> Self {
        // Cannot fail: an empty command line only applies the defaults, which the
        // `defaults` test parses.
        Cli::try_parse_from(["hookwire"])
            .expect("defaults parse")
            .serve
    }
}

/// Parses a command line (`args[0]` is the program name) with Go's flag rules. On `-h`/`-help`
/// prints the usage to stdout and exits 0; on an error prints it with a usage hint to stderr
/// and exits 2, as Go's `flag` package does.
pub fn parse(args: Vec<OsString>) -> Cli {
    try_parse(args).unwrap_or_else(|err| err.exit())
}

/// [`parse`] without exiting: help requests come back as an error of kind
/// [`ErrorKind::DisplayHelp`], which [`clap::Error::exit`] prints and turns into status 0.
pub fn try_parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let args = goflags::normalize::<Cli>(args).map_err(|err| {
        let kind = match err {
            goflags::GoFlagError::Undefined { .. } => ErrorKind::UnknownArgument,
            goflags::GoFlagError::NeedsArgument { .. } => ErrorKind::InvalidValue,
            goflags::GoFlagError::BadSyntax { .. } | goflags::GoFlagError::Unexpected { .. } => {
                ErrorKind::ArgumentConflict
            }
        };
        Cli::command().error(kind, err)
    })?;
    Cli::try_parse_from(args)
}

/// Flags that parse one by one but not together (see [`validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    #[error("setuid and setgid options must be used together")]
    SetuidWithoutSetgid,
    #[error(
        "-setuid and -setgid cannot be used with -socket (adnanh/webhook 2.8.2 \
         refuses this too): to serve a Unix socket as an unprivileged user, start \
         hookwire as that user, or let systemd create the socket (socket activation)"
    )]
    SetuidWithSocket,
    #[error("invalid -header '{header}': {reason}")]
    Header {
        header: String,
        reason: goflags::FlagError,
    },
}

/// Checks the rules between flags that parsing cannot, in adnanh's words where it has them.
/// Returns the message to print (without an `error: ` prefix); the app exits 1 on it, as
/// adnanh does.
pub fn validate(args: &ServeArgs) -> Result<(), CliError> {
    // adnanh treats 0 as "not given", so `-setuid 0 -setgid 100` is also refused.
    if (args.setuid == 0) != (args.setgid == 0) {
        return Err(CliError::SetuidWithoutSetgid);
    }
    if args.setuid != 0 && args.socket.is_some() {
        return Err(CliError::SetuidWithSocket);
    }
    for header in &args.header {
        goflags::parse_header(header).map_err(|reason| CliError::Header {
            header: header.clone(),
            reason,
        })?;
    }
    Ok(())
}

/// The `-header` flags as (name, value) pairs, in order, split at the first `=`. Entries
/// without `=` (which [`validate`] and the parser refuse) are skipped.
pub fn response_headers(args: &ServeArgs) -> Vec<(String, String)> {
    args.header
        .iter()
        .filter_map(|h| h.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// The `-http-methods` list as adnanh normalises it: split on commas, whitespace removed,
/// upper-cased, empty entries dropped. Empty means any method is allowed.
pub fn default_methods(args: &ServeArgs) -> Vec<String> {
    args.http_methods
        .split(',')
        .map(|m| {
            m.chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_uppercase()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_settings_come_from_the_serve_flags() {
        let args = ServeArgs {
            debug: true,
            logfile: Some(PathBuf::from("/tmp/h.log")),
            ..ServeArgs::default()
        };
        let settings = args.log_settings();
        assert!(settings.debug && !settings.verbose);
        assert_eq!(settings.logfile, Some(PathBuf::from("/tmp/h.log")));
    }

    fn parse_ok(args: &[&str]) -> ServeArgs {
        let argv = std::iter::once("hookwire")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        match try_parse(argv) {
            Ok(cli) => cli.serve,
            Err(err) => panic!("{args:?} should parse, got: {err}"),
        }
    }

    fn parse_err(args: &[&str]) -> clap::Error {
        let argv = std::iter::once("hookwire")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        match try_parse(argv) {
            Ok(cli) => panic!("{args:?} should fail, got {cli:?}"),
            Err(err) => err,
        }
    }

    /// The rendered error, without terminal styling.
    fn err_text(args: &[&str]) -> String {
        parse_err(args).render().to_string()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let a = ServeArgs::default();
        assert!(a.hooks.is_empty());
        assert_eq!(a.ip, "0.0.0.0");
        assert_eq!(a.port, 9000);
        assert_eq!(a.urlprefix, "hooks");
        assert!(!a.verbose && !a.debug && !a.nopanic && !a.hotreload && !a.template);
        assert!(!a.secure && !a.list_cipher_suites && !a.x_request_id && !a.version);
        assert_eq!(a.cert, PathBuf::from("cert.pem"));
        assert_eq!(a.key, PathBuf::from("key.pem"));
        assert_eq!(a.tls_min_version, "1.2");
        assert_eq!(a.cipher_suites, "");
        assert_eq!(a.max_multipart_mem, 1 << 20);
        assert_eq!(a.x_request_id_limit, 0);
        assert_eq!((a.setuid, a.setgid), (0, 0));
        assert_eq!((a.pidfile, a.socket, a.logfile), (None, None, None));
        assert_eq!(a.max_body_size, 10 << 20);
        assert_eq!(a.read_timeout, 30);
        assert_eq!(a.max_headers, 100);
        assert_eq!(a.max_connections, 1024);
        assert_eq!(a.max_connections_per_ip, 256);
        assert_eq!(a.first_byte_timeout, 5);
        assert_eq!(a.max_json_depth, 127);
        assert_eq!(a.max_multipart_parts, 100);
        assert!(a.trusted_proxies.is_empty());
        assert!(validate(&ServeArgs::default()).is_ok());
    }

    /// Both dash styles, both value styles, repeats.
    #[test]
    fn mixed_go_and_gnu_styles() {
        let a = parse_ok(&[
            "-hooks",
            "a.yaml",
            "-hooks=b.yaml",
            "--port",
            "9001",
            "-verbose",
        ]);
        assert_eq!(a.hooks, [PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]);
        assert_eq!(a.port, 9001);
        assert!(a.verbose);
    }

    /// One line with every adnanh 2.8.0 flag in assorted spellings; Debian's `webhook` accepts
    /// exactly this line (checked by hand with `-version` appended).
    #[test]
    fn every_adnanh_flag_on_one_line() {
        let line = "-hooks /etc/webhook/hooks.json -hooks=b.yaml --verbose -ip 127.0.0.1 \
                    -port 0x2328 -hotreload=true -template=1 -urlprefix= -http-methods post,put \
                    -header X-A=1 --header=X-B=a=b -secure -cert c.pem -key k.pem \
                    -tls-min-version 1.3 -cipher-suites TLS_AES_128_GCM_SHA256 \
                    -list-cipher-suites=false -pidfile /run/w.pid -x-request-id \
                    -x-request-id-limit -8 -max-multipart-mem 0b101 -nopanic=F -debug=t \
                    -logfile /tmp/l -setuid 1000 -setgid 1000 -version";
        let args: Vec<&str> = line.split_whitespace().collect();
        let a = parse_ok(&args);
        assert_eq!(
            a.hooks,
            [
                PathBuf::from("/etc/webhook/hooks.json"),
                PathBuf::from("b.yaml")
            ]
        );
        assert!(a.verbose && a.hotreload && a.template && a.secure && a.x_request_id && a.debug);
        assert!(!a.list_cipher_suites && !a.nopanic);
        assert!(a.version);
        assert_eq!(
            (a.ip.as_str(), a.port, a.urlprefix.as_str()),
            ("127.0.0.1", 9000, "")
        );
        assert_eq!(default_methods(&a), ["POST", "PUT"]);
        assert_eq!(a.header, ["X-A=1", "X-B=a=b"]);
        assert_eq!(
            (a.cert, a.key),
            (PathBuf::from("c.pem"), PathBuf::from("k.pem"))
        );
        assert_eq!(
            (a.tls_min_version.as_str(), a.cipher_suites.as_str()),
            ("1.3", "TLS_AES_128_GCM_SHA256")
        );
        assert_eq!(a.pidfile, Some(PathBuf::from("/run/w.pid")));
        assert_eq!((a.x_request_id_limit, a.max_multipart_mem), (0, 5));
        assert_eq!(a.logfile, Some(PathBuf::from("/tmp/l")));
        assert_eq!((a.setuid, a.setgid), (1000, 1000));
    }

    #[test]
    fn flag_hooks() {
        assert_eq!(
            parse_ok(&["--hooks=x.json"]).hooks,
            [PathBuf::from("x.json")]
        );
        // A value flag takes the next argument whatever it looks like, as in Go.
        assert_eq!(
            parse_ok(&["-hooks", "-odd.json"]).hooks,
            [PathBuf::from("-odd.json")]
        );
        assert!(err_text(&["-hooks"]).contains("flag needs an argument: -hooks"));
    }

    #[test]
    fn flag_template() {
        assert!(parse_ok(&["-template"]).template);
        assert!(!parse_ok(&["-template=false"]).template);
    }

    #[test]
    fn flag_hotreload() {
        assert!(parse_ok(&["--hotreload"]).hotreload);
        assert!(!parse_ok(&["-hotreload=0"]).hotreload);
    }

    #[test]
    fn flag_nopanic() {
        assert!(parse_ok(&["-nopanic=T"]).nopanic);
    }

    #[test]
    fn flag_urlprefix() {
        assert_eq!(parse_ok(&["-urlprefix", "api/v2"]).urlprefix, "api/v2");
        // An empty prefix is meaningful (hooks at /ID) and must survive both spellings.
        assert_eq!(parse_ok(&["-urlprefix", ""]).urlprefix, "");
        assert_eq!(parse_ok(&["-urlprefix="]).urlprefix, "");
    }

    #[test]
    fn flag_http_methods() {
        let a = parse_ok(&["-http-methods", "post, put,,get "]);
        assert_eq!(default_methods(&a), ["POST", "PUT", "GET"]);
        assert!(default_methods(&ServeArgs::default()).is_empty());
    }

    #[test]
    fn flag_header() {
        let a = parse_ok(&[
            "-header",
            "X-A=1",
            "--header=X-B=a=b",
            "-header",
            "X-Empty=",
        ]);
        assert_eq!(
            response_headers(&a),
            [
                ("X-A".into(), "1".into()),
                ("X-B".into(), "a=b".into()),
                ("X-Empty".into(), String::new())
            ]
        );
        assert!(err_text(&["-header", "novalue"]).contains("expected name=value"));
        assert!(err_text(&["-header", "bad name=1"]).contains("not a valid HTTP header name"));
        assert!(err_text(&["-header", "=1"]).contains("not a valid HTTP header name"));
        assert!(err_text(&["-header", "X=a\nb"]).contains("cannot carry"));
    }

    #[test]
    fn flag_ip() {
        assert_eq!(parse_ok(&["-ip", "[::1]"]).ip, "[::1]");
        assert_eq!(parse_ok(&["-ip="]).ip, "");
    }

    #[test]
    fn flag_port() {
        assert_eq!(parse_ok(&["-port", "0"]).port, 0);
        assert_eq!(parse_ok(&["-port=65535"]).port, 65535);
        // Go's flag.Int reads base prefixes: adnanh accepts these, so do we.
        assert_eq!(parse_ok(&["-port", "0x2328"]).port, 9000);
        assert_eq!(parse_ok(&["-port", "010"]).port, 8);
        let err = parse_err(&["-port", "abc"]);
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert_eq!(err.exit_code(), 2);
        let text = err.render().to_string();
        assert!(text.contains("'abc'") && text.contains("--port"), "{text}");
        assert!(err_text(&["-port", "65536"]).contains("out of range (0 to 65535)"));
        assert!(err_text(&["-port", "-1"]).contains("out of range"));
        assert!(err_text(&["-port", "1e3"]).contains("invalid integer"));
        assert!(err_text(&["-port"]).contains("flag needs an argument: -port"));
    }

    #[test]
    fn flag_socket() {
        assert_eq!(
            parse_ok(&["-socket", "/run/h.sock"]).socket,
            Some(PathBuf::from("/run/h.sock"))
        );
        assert_eq!(
            parse_ok(&["-socket=@hook"]).socket,
            Some(PathBuf::from("@hook"))
        );
    }

    #[test]
    fn flag_secure() {
        assert!(parse_ok(&["-secure"]).secure);
    }

    #[test]
    fn flag_cert_and_key() {
        let a = parse_ok(&["-cert", "c.pem", "-key=k.pem"]);
        assert_eq!(
            (a.cert, a.key),
            (PathBuf::from("c.pem"), PathBuf::from("k.pem"))
        );
    }

    #[test]
    fn flag_tls_min_version() {
        // Checked when TLS is configured (server::tls), not here: the flag is a string in Go.
        assert_eq!(
            parse_ok(&["-tls-min-version", "1.3"]).tls_min_version,
            "1.3"
        );
    }

    #[test]
    fn flag_cipher_suites() {
        let a = parse_ok(&[
            "-cipher-suites",
            "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384",
        ]);
        assert_eq!(
            a.cipher_suites,
            "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384"
        );
    }

    #[test]
    fn flag_list_cipher_suites() {
        assert!(parse_ok(&["-list-cipher-suites"]).list_cipher_suites);
    }

    #[test]
    fn flag_verbose() {
        assert!(parse_ok(&["-verbose"]).verbose);
        assert!(parse_ok(&["--verbose"]).verbose);
        assert!(parse_ok(&["-verbose=1"]).verbose);
        assert!(parse_ok(&["-verbose=TRUE"]).verbose);
        assert!(!parse_ok(&["-verbose=false"]).verbose);
        assert!(!parse_ok(&["-verbose=f"]).verbose);
        let text = err_text(&["-verbose=yes"]);
        assert!(
            text.contains("'yes'") && text.contains("--verbose"),
            "{text}"
        );
    }

    /// `-verbose false` is not `verbose=false` in Go: it ends flag parsing, and adnanh then
    /// ignores `false` and every flag after it. hookwire refuses it and says what to write.
    #[test]
    fn bool_flag_with_separate_value_is_refused() {
        let text = err_text(&["-verbose", "false", "-port", "8000"]);
        assert!(
            text.contains("unexpected argument 'false' after -verbose"),
            "{text}"
        );
        assert!(text.contains("-verbose=false"), "{text}");
        assert_eq!(parse_err(&["-verbose", "true"]).exit_code(), 2);
    }

    #[test]
    fn positional_arguments_are_refused() {
        let text = err_text(&["-port", "1", "extra"]);
        assert!(text.contains("unexpected argument 'extra'"), "{text}");
        // After `--` too: hookwire has no positional arguments at all.
        assert!(err_text(&["--", "-port"]).contains("unexpected argument '-port'"));
        assert!(err_text(&["-"]).contains("unexpected argument '-'"));
        // A lone `--` is fine.
        assert_eq!(parse_ok(&["-port", "1", "--"]).port, 1);
    }

    #[test]
    fn flag_debug() {
        assert!(parse_ok(&["-debug"]).debug);
    }

    #[test]
    fn flag_logfile() {
        assert_eq!(
            parse_ok(&["-logfile", "/tmp/h.log"]).logfile,
            Some(PathBuf::from("/tmp/h.log"))
        );
    }

    #[test]
    fn flag_x_request_id() {
        assert!(parse_ok(&["-x-request-id"]).x_request_id);
    }

    #[test]
    fn flag_x_request_id_limit() {
        assert_eq!(
            parse_ok(&["-x-request-id-limit", "8"]).x_request_id_limit,
            8
        );
        // Go's flag is an int and adnanh only truncates when it is positive.
        assert_eq!(
            parse_ok(&["-x-request-id-limit", "-5"]).x_request_id_limit,
            0
        );
    }

    #[test]
    fn flag_pidfile() {
        assert_eq!(
            parse_ok(&["-pidfile", "/run/h.pid"]).pidfile,
            Some(PathBuf::from("/run/h.pid"))
        );
    }

    #[test]
    fn flag_setuid_and_setgid() {
        let a = parse_ok(&["-setuid", "1000", "-setgid=1000"]);
        assert_eq!((a.setuid, a.setgid), (1000, 1000));
        assert!(validate(&a).is_ok());
        for alone in [
            &["-setuid", "1000"][..],
            &["-setgid", "1000"],
            &["-setuid", "0", "-setgid", "5"],
        ] {
            assert_eq!(
                validate(&parse_ok(alone)).map_err(|e| e.to_string()),
                Err("setuid and setgid options must be used together".to_string())
            );
        }
        let with_socket = parse_ok(&["-setuid", "1", "-setgid", "1", "-socket", "/tmp/s"]);
        assert!(
            validate(&with_socket)
                .unwrap_err()
                .to_string()
                .contains("cannot be used with -socket")
        );
        assert!(err_text(&["-setuid", "-1"]).contains("out of range"));
    }

    #[test]
    fn flag_version() {
        assert!(parse_ok(&["-version"]).version);
        assert!(parse_ok(&["--version"]).version);
    }

    #[test]
    fn flag_max_body_size() {
        assert_eq!(parse_ok(&["-max-body-size", "1024"]).max_body_size, 1024);
    }

    #[test]
    fn flag_read_timeout() {
        assert_eq!(parse_ok(&["--read-timeout=5"]).read_timeout, 5);
    }

    #[test]
    fn flag_max_headers() {
        assert_eq!(parse_ok(&["-max-headers", "10"]).max_headers, 10);
    }

    #[test]
    fn flag_max_connections() {
        assert_eq!(parse_ok(&["-max-connections", "2"]).max_connections, 2);
    }

    #[test]
    fn flag_max_connections_per_ip() {
        assert_eq!(
            parse_ok(&["-max-connections-per-ip", "0"]).max_connections_per_ip,
            0
        );
        assert!(err_text(&["-max-connections-per-ip", "-1"]).contains("--max-connections-per-ip"));
    }

    #[test]
    fn flag_first_byte_timeout() {
        assert_eq!(parse_ok(&["--first-byte-timeout=2"]).first_byte_timeout, 2);
        assert!(err_text(&["-first-byte-timeout", "2s"]).contains("--first-byte-timeout"));
    }

    #[test]
    fn flag_max_multipart_mem() {
        assert_eq!(
            parse_ok(&["-max-multipart-mem", "1_000"]).max_multipart_mem,
            1000
        );
        assert!(err_text(&["-max-multipart-mem", "abc"]).contains("--max-multipart-mem"));
    }

    #[test]
    fn flag_max_json_depth() {
        assert_eq!(parse_ok(&["-max-json-depth", "16"]).max_json_depth, 16);
        assert!(err_text(&["-max-json-depth", "0"]).contains("out of range"));
        assert!(err_text(&["-max-json-depth=128"]).contains("the JSON parser's own limit"));
    }

    #[test]
    fn flag_max_multipart_parts() {
        assert_eq!(
            parse_ok(&["-max-multipart-parts", "5"]).max_multipart_parts,
            5
        );
    }

    #[test]
    fn flag_trusted_proxies() {
        let a = parse_ok(&["-trusted-proxies", "127.0.0.1, 10.0.0.0/8"]);
        assert!(a.trusted_proxies.contains("10.1.1.1".parse().unwrap()));
        assert!(!a.trusted_proxies.contains("192.0.2.1".parse().unwrap()));
        assert!(err_text(&["--trusted-proxies=10.0.0.0/33"]).contains("not an IP address or CIDR"));
    }

    #[test]
    fn flag_nats_url() {
        assert_eq!(parse_ok(&[]).cluster.nats_url, None);
        let a = parse_ok(&["-nats-url", "nats://h1:4222,nats://h2:4222"]);
        assert_eq!(
            a.cluster.nats_url.as_deref(),
            Some("nats://h1:4222,nats://h2:4222")
        );
    }

    #[test]
    fn flag_nats_user_and_password_file_come_together() {
        let a = parse_ok(&["-nats-user", "hw", "-nats-password-file", "/etc/pw"]);
        assert_eq!(a.cluster.nats_user.as_deref(), Some("hw"));
        assert!(
            parse_err(&["-nats-user", "hw"])
                .to_string()
                .contains("nats-password-file")
        );
        assert!(
            parse_err(&["-nats-password-file", "/p"])
                .to_string()
                .contains("nats-user")
        );
    }

    #[test]
    fn flag_nats_tls_cert_needs_its_key() {
        let a = parse_ok(&["-nats-tls-cert", "c.pem", "-nats-tls-key", "k.pem"]);
        assert!(a.cluster.nats_tls_key.is_some());
        assert!(
            parse_err(&["-nats-tls-cert", "c.pem"])
                .to_string()
                .contains("nats-tls-key")
        );
    }

    #[test]
    fn flag_nats_replicas() {
        assert_eq!(parse_ok(&[]).cluster.nats_replicas, 1);
        assert_eq!(parse_ok(&["-nats-replicas", "3"]).cluster.nats_replicas, 3);
        assert!(err_text(&["-nats-replicas", "0"]).contains("1 to 5"));
        assert!(err_text(&["-nats-replicas", "7"]).contains("1 to 5"));
    }

    #[test]
    fn flag_node_name() {
        assert_eq!(parse_ok(&[]).cluster.node_name, None);
        let a = parse_ok(&["-node-name", "web1"]);
        assert_eq!(a.cluster.node_name.as_deref(), Some("web1"));
    }

    #[test]
    fn undefined_flag_is_named_as_go_names_it() {
        let err = parse_err(&["-bogus", "x"]);
        assert_eq!(err.exit_code(), 2);
        let text = err.render().to_string();
        assert!(
            text.contains("flag provided but not defined: -bogus"),
            "{text}"
        );
        assert!(text.contains("--help"), "a usage hint: {text}");
        // Named without its value, and with one dash whatever was typed.
        assert!(err_text(&["--nope=1"]).contains("flag provided but not defined: -nope\n"));
        // clap's own short -V is not a flag here.
        assert!(err_text(&["-V"]).contains("flag provided but not defined: -V"));
    }

    #[test]
    fn bad_flag_syntax() {
        assert!(err_text(&["---port", "1"]).contains("bad flag syntax: ---port"));
        assert!(err_text(&["-=1"]).contains("bad flag syntax: -=1"));
    }

    #[test]
    fn help_flags_exit_zero() {
        for flag in ["-h", "-help", "--help", "--h"] {
            let err = parse_err(&["-port", "1", flag, "-bogus"]);
            assert_eq!(err.kind(), ErrorKind::DisplayHelp, "{flag}");
            assert_eq!(err.exit_code(), 0, "{flag}");
        }
    }

    #[test]
    fn help_lists_every_adnanh_flag_under_headings() {
        let help = Cli::command().render_long_help().to_string();
        for flag in [
            "hooks",
            "ip",
            "port",
            "urlprefix",
            "verbose",
            "debug",
            "logfile",
            "nopanic",
            "hotreload",
            "template",
            "http-methods",
            "header",
            "secure",
            "cert",
            "key",
            "tls-min-version",
            "cipher-suites",
            "list-cipher-suites",
            "max-multipart-mem",
            "x-request-id",
            "x-request-id-limit",
            "pidfile",
            "setuid",
            "setgid",
            "socket",
            "version",
        ] {
            assert!(
                help.contains(&format!("--{flag}")),
                "--{flag} missing from help"
            );
        }
        for heading in [
            "Hooks:",
            "Listening:",
            "TLS:",
            "Logging:",
            "Process:",
            "Limits (hookwire):",
        ] {
            assert!(help.contains(heading), "{heading} missing:\n{help}");
        }
        assert!(help.contains("[default: 9000]"));
    }

    #[test]
    fn non_utf8_values_pass_through() {
        use std::os::unix::ffi::OsStringExt;
        let argv = vec![
            OsString::from("hookwire"),
            OsString::from("-hooks"),
            OsString::from_vec(b"h\xff.yaml".to_vec()),
        ];
        let cli = try_parse(argv).expect("parses");
        assert_eq!(
            cli.serve.hooks[0].as_os_str().as_encoded_bytes(),
            b"h\xff.yaml"
        );
    }
}
