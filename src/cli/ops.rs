//! The flags of the operating subcommands: `check`, `explain`, `sign`, `completions` and `man`.
//! Definitions only; [`crate::commands`] carries them out.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::goflags::FlagError;

/// `hookwire check FILE...`
#[derive(Debug, Clone, Args)]
#[command(
    about = "Validate hooks files and print a summary of each hook",
    long_about = "Validate hooks files and print a summary of each hook.\n\n\
        Loads the files exactly as the server does (same reader, same compiler, same \
        duplicate-id rule) and prints each hook: its id, route, methods, rule, command and \
        extensions. Every error is shown with FILE:LINE:COLUMN and a hint. Also warns about \
        risky setups: a hook anyone can trigger (no rule, no signature), a secret written \
        inline, a command that does not exist or is not executable, a shell running `-c` \
        with arguments from the request.\n\n\
        A directory stands for every *.json, *.yaml, *.yml and *.toml file in it, and a \
        quoted glob pattern for the files it matches, as with the server's -hooks.\n\n\
        Exit status: 0 when every file loads (warnings allowed, unless --strict), 1 on any \
        error, or with --strict on any warning.",
    after_help = "Examples:\n  hookwire check /etc/hookwire/hooks.d\n  \
        hookwire check --strict 'hooks/*.yaml'"
)]
pub struct CheckArgs {
    /// Hooks files, directories or glob patterns to check (JSON, YAML or TOML)
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Treat warnings as errors: exit 1 when anything is warned about (for CI)
    #[arg(long)]
    pub strict: bool,

    /// Render the files as Go templates first, as the server's -template does
    #[arg(long)]
    pub template: bool,

    /// URL prefix for the printed routes, as the server's -urlprefix
    #[arg(long, default_value = "hooks", value_name = "PREFIX")]
    pub urlprefix: String,
}

/// `hookwire explain HOOK --hooks FILE ...`
#[derive(Debug, Clone, Args)]
#[command(
    about = "Show why a request would (or would not) trigger a hook, without running anything",
    long_about = "Show why a request would (or would not) trigger a hook, without running \
        anything.\n\n\
        Builds the request from the flags and runs it through the same stages the server \
        runs before executing (body parsing, parse-parameters-as-json, the signature and \
        trigger rules, the plan). Prints the rule tree with each node's verdict and the value \
        it compared (secrets and signatures masked), then the exact argv, environment and \
        files the command would get. Nothing is executed.\n\n\
        Exit status: 0 when the hook would run, 1 when it would not, 2 when the hooks or the \
        request cannot be read.",
    after_help = "Example:\n  hookwire sign --provider github --secret-file secret --body push.json > h.txt\n  \
        hookwire explain deploy --hooks hooks.yaml --body push.json \\\n    \
        --content-type application/json $(sed 's/^/--header=/; s/: /:/' h.txt)"
)]
pub struct ExplainArgs {
    /// The id of the hook to explain
    #[arg(value_name = "HOOK")]
    pub hook: String,

    /// Hooks file, directory or glob pattern holding the hook; repeat to load several, as the
    /// server does
    #[arg(long = "hooks", value_name = "FILE", required = true, action = clap::ArgAction::Append)]
    pub hooks: Vec<PathBuf>,

    /// Render hooks files as Go templates first, as the server's -template does
    #[arg(long)]
    pub template: bool,

    /// The request method
    #[arg(long, default_value = "POST", value_name = "METHOD")]
    pub method: String,

    /// A request header as NAME:VALUE; repeat for several
    #[arg(long = "header", value_name = "NAME:VALUE", action = clap::ArgAction::Append, value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// A query parameter as NAME=VALUE; repeat for several
    #[arg(long = "query", value_name = "NAME=VALUE", action = clap::ArgAction::Append, value_parser = parse_query)]
    pub query: Vec<(String, String)>,

    /// File holding the request body ("-" reads standard input)
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,

    /// The request's Content-Type (same as --header Content-Type:T)
    #[arg(long = "content-type", value_name = "TYPE")]
    pub content_type: Option<String>,

    /// The client's IP address, for ip-whitelist rules and the `request remote-addr` source
    #[arg(long = "remote-addr", default_value = "127.0.0.1", value_name = "IP")]
    pub remote_addr: std::net::IpAddr,
}

/// `hookwire sign --provider P ...`
#[derive(Debug, Clone, Args)]
#[command(
    about = "Print the headers a provider would send with a body, to test hooks with curl",
    long_about = "Print the headers a provider would send with a body, to test hooks with curl \
        or `hookwire explain`.\n\n\
        Prints one `Name: value` line per header: the signature and, where the provider sends \
        them, the delivery id and timestamp. The secret comes from --secret, --secret-file or \
        the HOOKWIRE_SECRET environment variable (prefer the last two: a command line is \
        visible to every user of the machine).",
    after_help = "Example:\n  hookwire sign --provider github --secret-file secret --body push.json > h.txt\n  \
        curl -H @h.txt -H 'Content-Type: application/json' --data-binary @push.json \\\n    \
        http://localhost:9000/hooks/deploy"
)]
pub struct SignArgs {
    /// The provider whose scheme to use: github, gitlab, gitea (forgejo), gogs, bitbucket,
    /// stripe, slack, standard-webhooks (svix), shopify, sentry, linear, discord
    #[arg(long, value_name = "PROVIDER")]
    pub provider: String,

    /// The shared secret (visible in the process list: prefer --secret-file)
    #[arg(
        long,
        value_name = "SECRET",
        env = "HOOKWIRE_SECRET",
        hide_env_values = true,
        conflicts_with = "secret_file"
    )]
    pub secret: Option<String>,

    /// File holding the secret (a trailing newline is ignored)
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// File holding the body to sign, byte for byte as it will be sent ("-" reads standard
    /// input)
    #[arg(long, value_name = "FILE")]
    pub body: PathBuf,

    /// Delivery id to send, for providers that send one [default: a random UUID]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,

    /// Signing time as Unix seconds, for timestamped schemes [default: now]
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<u64>,
}

/// `hookwire completions SHELL`
#[derive(Debug, Clone, Args)]
#[command(
    about = "Print a shell completion script",
    after_help = "Examples:\n  hookwire completions bash > /etc/bash_completion.d/hookwire\n  \
        hookwire completions zsh > \"${fpath[1]}/_hookwire\"\n  \
        hookwire completions fish > ~/.config/fish/completions/hookwire.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// Shells `hookwire completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `NAME:VALUE` for `explain --header`, split at the first colon, the value trimmed as HTTP
/// does.
fn parse_header(text: &str) -> Result<(String, String), FlagError> {
    let (name, value) = text
        .split_once(':')
        .ok_or(FlagError::ExplainHeaderNotPair)?;
    let name = name.trim();
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| FlagError::ExplainHeaderName(name.to_string()))?;
    http::HeaderValue::from_str(value.trim()).map_err(|_| FlagError::ExplainHeaderValue)?;
    Ok((name.to_string(), value.trim().to_string()))
}

/// `NAME=VALUE` for `explain --query`, split at the first `=`.
fn parse_query(text: &str) -> Result<(String, String), FlagError> {
    text.split_once('=')
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .ok_or(FlagError::QueryNotPair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_split_at_the_first_colon() {
        assert_eq!(
            parse_header("X-Time: 12:30").unwrap(),
            ("X-Time".into(), "12:30".into())
        );
        assert!(
            parse_header("novalue")
                .unwrap_err()
                .to_string()
                .contains("NAME:VALUE")
        );
        assert!(
            parse_header("bad name:1")
                .unwrap_err()
                .to_string()
                .contains("not a valid")
        );
    }

    #[test]
    fn query_values_split_at_the_first_equals() {
        assert_eq!(parse_query("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_query("a").is_err());
    }
}
