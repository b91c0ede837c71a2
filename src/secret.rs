//! A secret value: never printed, compared in constant time, and read from wherever the hooks
//! file says it lives.
//!
//! Wherever a hooks file takes a secret (a preset's `signature.secret`, a `payload-hmac-*` or
//! `scalr-signature` match's `secret`), it may be written as:
//!
//! - a plain string (adnanh's form);
//! - `{env: NAME}`: the environment variable `NAME`;
//! - `{file: PATH}`: the file's content with one trailing newline removed (a relative path is
//!   relative to the hooks file's directory, so the pair can move together);
//! - `{credential: NAME}`: systemd's `$CREDENTIALS_DIRECTORY/NAME` (`LoadCredential=`), read as
//!   a file.
//!
//! Secrets are resolved when the hooks file is loaded ([`crate::config`] reads the fields and
//! calls [`Reference::resolve`]). A missing or empty one fails the load
//! (fail closed): the error names the hook, the field and what is missing, never a value. On a
//! reload the hooks loaded before stay in place.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq as _;

/// Secret bytes, from the hooks file itself or from the environment, a file or a credential.
///
/// `Debug` shows where the secret came from, never its bytes; there is no `Display`. Equality
/// is constant-time.
#[derive(Clone, Default)]
pub struct Secret {
    value: Vec<u8>,
    origin: Origin,
}

/// Where a [`Secret`] was read from (safe to show: it names a place, not a value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origin {
    /// Written in the hooks file.
    #[default]
    Inline,
    /// `{env: NAME}`.
    Env(String),
    /// `{file: PATH}`, the path as resolved.
    File(PathBuf),
    /// `{credential: NAME}`.
    Credential(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Inline => f.write_str("inline"),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Credential(name) => write!(f, "credential {name}"),
        }
    }
}

impl Secret {
    /// A secret written in the hooks file.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self {
            value: value.into(),
            origin: Origin::Inline,
        }
    }

    /// The secret's bytes, for computing a MAC. Never log them.
    pub fn expose(&self) -> &[u8] {
        &self.value
    }

    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// Where the secret came from, for `check` and error messages.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.value.ct_eq(&other.value)) && self.origin == other.origin
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Inline => f.write_str("Secret(***)"),
            origin => write!(f, "Secret({origin}: ***)"),
        }
    }
}

/// Why a secret could not be resolved. The messages name the variable, file or credential,
/// never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error("environment variable {0} is not valid UTF-8")]
    EnvNotUnicode(String),
    #[error("cannot read secret file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("secret file {0} is empty")]
    FileEmpty(String),
    #[error("secret file {0} is larger than {MAX_SECRET_FILE} bytes")]
    FileTooLarge(String),
    #[error("credential {0} needs $CREDENTIALS_DIRECTORY, which is not set")]
    NoCredentialsDirectory(String),
    #[error("credential name {0:?} is not a plain file name")]
    BadCredentialName(String),
}

impl SecretError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            SecretError::EnvMissing(name) | SecretError::EnvEmpty(name) => {
                format!("export {name} in hookwire's environment (systemd: Environment= or EnvironmentFile=)")
            }
            SecretError::EnvNotUnicode(_) => "store binary secrets in a file instead".into(),
            SecretError::File { .. } | SecretError::FileEmpty(_) | SecretError::FileTooLarge(_) => {
                "check the path (relative paths start at the hooks file's directory) and that hookwire's user can read it".into()
            }
            SecretError::NoCredentialsDirectory(_) => {
                "run under systemd with LoadCredential=NAME:PATH, or use {file: PATH}".into()
            }
            SecretError::BadCredentialName(_) => {
                "a credential is named by its file name in $CREDENTIALS_DIRECTORY".into()
            }
        }
    }
}

/// Larger secret files are almost certainly the wrong file.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// A secret given by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Env(String),
    /// The path as written; relative to `base` when resolved.
    File(PathBuf),
    Credential(String),
}

impl Reference {
    /// Reads the secret now. `base` is the directory relative file paths start from.
    pub fn resolve(&self, base: &Path) -> Result<Secret, SecretError> {
        match self {
            Reference::Env(name) => {
                let value = std::env::var(name).map_err(|error| match error {
                    std::env::VarError::NotPresent => SecretError::EnvMissing(name.clone()),
                    std::env::VarError::NotUnicode(_) => SecretError::EnvNotUnicode(name.clone()),
                })?;
                if value.is_empty() {
                    return Err(SecretError::EnvEmpty(name.clone()));
                }
                Ok(Secret {
                    value: value.into_bytes(),
                    origin: Origin::Env(name.clone()),
                })
            }
            Reference::File(path) => {
                let path = base.join(path);
                let value = read_secret_file(&path)?;
                Ok(Secret {
                    value,
                    origin: Origin::File(path),
                })
            }
            Reference::Credential(name) => {
                let plain = !name.is_empty()
                    && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
                    && name != "."
                    && name != "..";
                if !plain {
                    return Err(SecretError::BadCredentialName(name.clone()));
                }
                let directory = std::env::var_os("CREDENTIALS_DIRECTORY")
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| SecretError::NoCredentialsDirectory(name.clone()))?;
                let value = read_secret_file(&Path::new(&directory).join(name))?;
                Ok(Secret {
                    value,
                    origin: Origin::Credential(name.clone()),
                })
            }
        }
    }
}

/// A secret file's bytes without one trailing newline (`\n` or `\r\n`), as editors and
/// `echo` leave one.
fn read_secret_file(path: &Path) -> Result<Vec<u8>, SecretError> {
    let shown = path.display().to_string();
    let io_error = |error: std::io::Error| SecretError::File {
        path: shown.clone(),
        reason: error.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut value = Vec::new();
    // Read one byte past the cap to tell "exactly at the cap" from "larger".
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut value)
        .map_err(io_error)?;
    if value.len() as u64 > MAX_SECRET_FILE {
        return Err(SecretError::FileTooLarge(shown));
    }
    if value.ends_with(b"\n") {
        value.pop();
        if value.ends_with(b"\r") {
            value.pop();
        }
    }
    if value.is_empty() {
        return Err(SecretError::FileEmpty(shown));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let inline = Secret::new("hunter2");
        assert_eq!(format!("{inline:?}"), "Secret(***)");
        let from_env = Secret {
            value: b"hunter2".to_vec(),
            origin: Origin::Env("TOKEN".into()),
        };
        assert_eq!(format!("{from_env:?}"), "Secret(env TOKEN: ***)");
    }

    #[test]
    fn files_lose_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        for (content, want) in [
            (&b"abc\n"[..], &b"abc"[..]),
            (b"abc\r\n", b"abc"),
            (b"abc\n\n", b"abc\n"),
            (b"a b ", b"a b "),
            (b"\x00\xff", b"\x00\xff"),
        ] {
            std::fs::write(dir.path().join("s"), content).unwrap();
            let secret = Reference::File("s".into()).resolve(dir.path()).unwrap();
            assert_eq!(secret.expose(), want);
            assert_eq!(secret.origin(), &Origin::File(dir.path().join("s")));
        }
    }

    #[test]
    fn missing_and_empty_files_fail() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Reference::File("nope".into()).resolve(dir.path());
        assert!(matches!(missing, Err(SecretError::File { .. })));
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        let empty = Reference::File("empty".into()).resolve(dir.path());
        assert!(matches!(empty, Err(SecretError::FileEmpty(_))));
        let big = vec![b'x'; usize::try_from(MAX_SECRET_FILE).unwrap() + 1];
        std::fs::write(dir.path().join("big"), big).unwrap();
        let big = Reference::File("big".into()).resolve(dir.path());
        assert!(matches!(big, Err(SecretError::FileTooLarge(_))));
    }

    #[test]
    fn credential_names_cannot_escape_the_directory() {
        for name in ["", "..", ".", "a/b", "/etc/passwd"] {
            assert_eq!(
                Reference::Credential(name.into()).resolve(Path::new(".")),
                Err(SecretError::BadCredentialName(name.into())),
                "{name:?}"
            );
        }
    }

    #[test]
    fn env_errors_name_the_variable() {
        let error = Reference::Env("HOOKWIRE_TEST_SURELY_UNSET".into())
            .resolve(Path::new("."))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment variable HOOKWIRE_TEST_SURELY_UNSET is not set"
        );
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(Secret::new("a"), Secret::new("a"));
        assert_ne!(Secret::new("a"), Secret::new("b"));
        assert_ne!(Secret::new("a"), Secret::new("ab"));
    }
}
