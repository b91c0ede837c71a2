//! Trigger rules: the `and`/`or`/`not`/`match` tree of a hook, evaluated against a
//! [`Request`](crate::request::Request) with adnanh's exact error semantics, and a trace of each
//! node's verdict for logs and `hookwire explain`.

use ipnet::IpNet;
use regex::Regex;

use crate::config::Secret;
use crate::request::Argument;
use crate::signature::HmacAlgorithm;

/// A compiled trigger rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// All children in order; the first error or false stops.
    And(Vec<Rule>),
    /// Children in order; missing parameters count as false; the first true stops.
    Or(Vec<Rule>),
    /// Inverts the child's verdict and passes its error through.
    Not(Box<Rule>),
    /// One comparison.
    Match(MatchRule),
    /// A rule object with none of the four keys (`{}`): never satisfied.
    Empty,
}

/// A `match` object, compiled at load time.
#[derive(Debug, Clone)]
pub struct MatchRule {
    pub kind: MatchKind,
    /// The value compared; ignored by `ip-whitelist` and `scalr-signature`.
    pub parameter: Argument,
}

/// The comparison a `match` performs.
#[derive(Debug, Clone)]
pub enum MatchKind {
    /// `value`: byte-for-byte equality in constant time.
    Value(String),
    /// `regex`: unanchored RE2-style match. An invalid pattern is kept as its error message: the
    /// reference only fails (500) when a request reaches the rule, so we do too, and warn at load.
    Regex(Result<Regex, String>),
    /// `payload-hmac-*` (and the deprecated `payload-hash-*` aliases).
    PayloadHmac {
        algorithm: HmacAlgorithm,
        secret: Secret,
        /// Written as `payload-hash-*`: still works, logs a deprecation warning.
        deprecated_alias: bool,
    },
    /// `ip-whitelist`: entries in file order; an invalid entry is a hard error when reached.
    IpWhitelist(Vec<Result<IpNet, String>>),
    /// `scalr-signature`: HMAC-SHA1 over body and `Date`, with a 5-minute window.
    ScalrSignature { secret: Secret },
    /// Any other `type`: never satisfied (no error), as in the reference.
    Unknown(String),
}

// TEMPORARY stub.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuleError {
    #[error("{0}")]
    ParameterNotFound(String),
    #[error("{0}")]
    Signature(String),
    #[error("{0}")]
    Hard(String),
}
pub struct Evaluation {
    pub satisfied: bool,
    pub error: Option<RuleError>,
}
pub fn evaluate(_rule: &Rule, _req: &crate::request::Request, _soft: bool) -> Evaluation {
    Evaluation {
        satisfied: true,
        error: None,
    }
}
