//! `hookwire sign`: the headers a provider would send with a body, from the same preset code
//! that verifies deliveries ([`preset::sign`]), so a signature that `sign` makes is one the
//! server accepts.

use std::io::Read as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli::ops::SignArgs;
use crate::pipeline::signature::preset::{self, Provider};
use crate::secret::Secret;

/// Why `hookwire sign` cannot sign.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(
        "unknown provider {0:?}; use one of github, gitlab, gitea, forgejo, gogs, bitbucket, \
         stripe, slack, standard-webhooks, svix, shopify, sentry, linear, discord"
    )]
    UnknownProvider(String),
    #[error("cannot read the secret from {}: {error}", path.display())]
    SecretFile {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("no secret: give --secret-file FILE, set HOOKWIRE_SECRET, or --secret")]
    NoSecret,
    #[error("the secret is empty")]
    EmptySecret,
    #[error("cannot read the body from stdin: {0}")]
    Stdin(std::io::Error),
    #[error("cannot read the body from {}: {error}", path.display())]
    BodyFile {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("cannot sign for {provider}: {error}")]
    Preset {
        provider: String,
        error: preset::PresetError,
    },
}

/// Prints one `Name: value` line per header; exits 1 with a message on a bad provider,
/// secret or body.
pub fn run(args: &SignArgs) -> ExitCode {
    match headers(args) {
        Ok(headers) => {
            let text: String = headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}\n"))
                .collect();
            super::emit(&text);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The headers for `args`.
pub fn headers(args: &SignArgs) -> Result<Vec<(String, String)>, SignError> {
    let provider = Provider::parse(&args.provider)
        .ok_or_else(|| SignError::UnknownProvider(args.provider.clone()))?;
    let secret = secret(args)?;
    let body = read_body(args)?;
    let now = match args.timestamp {
        Some(seconds) => UNIX_EPOCH + Duration::from_secs(seconds),
        None => SystemTime::now(),
    };
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    preset::sign(&provider, &secret, &body, now, &id).map_err(|error| SignError::Preset {
        provider: provider.name().to_string(),
        error,
    })
}

fn secret(args: &SignArgs) -> Result<Secret, SignError> {
    let text = match (&args.secret, &args.secret_file) {
        (Some(secret), _) => secret.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|error| SignError::SecretFile {
                path: path.clone(),
                error,
            })?;
            // As `{file: PATH}` secrets are read: one trailing newline is not part of it.
            let trimmed = text.strip_suffix('\n').unwrap_or(&text);
            trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
        }
        (None, None) => {
            return Err(SignError::NoSecret);
        }
    };
    if text.is_empty() {
        return Err(SignError::EmptySecret);
    }
    Ok(Secret::new(text))
}

fn read_body(args: &SignArgs) -> Result<Vec<u8>, SignError> {
    if args.body.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .map_err(SignError::Stdin)?;
        return Ok(body);
    }
    std::fs::read(&args.body).map_err(|error| SignError::BodyFile {
        path: args.body.clone(),
        error,
    })
}
