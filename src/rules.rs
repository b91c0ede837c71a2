//! Trigger rules: the `and`/`or`/`not`/`match` tree of a hook, evaluated against a
//! [`Request`](crate::request::Request) with adnanh's exact error semantics, and a trace of each
//! node's verdict for logs and `hookwire explain`.

use std::fmt;
use std::time::SystemTime;

use ipnet::IpNet;
use regex::Regex;
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::request::value::to_go_string;
use crate::request::{Argument, ParamError, Request};
use crate::signature::{
    HmacAlgorithm, SignatureError, check_payload_signature, check_scalr_signature,
};

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

/// Why a rule could not be decided, in adnanh's three kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// adnanh's "parameter node not found": an `or` skips it; at the top level it means "not
    /// satisfied" (logged).
    #[error("{0}")]
    ParameterNotFound(String),
    /// A signature that did not match (HMAC mismatch, Scalr mismatch or stale date): a 500,
    /// except inside an `or` with `trigger-signature-soft-failures`, where it counts as false.
    #[error("{0}")]
    Signature(String),
    /// Anything else (invalid regex or CIDR, empty secret, unknown source, ...): a 500.
    #[error("{0}")]
    Hard(String),
}

/// The outcome of a rule: Go's `(bool, error)` pair, kept whole because `not` inverts the
/// boolean and passes the error through, so both matter to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub satisfied: bool,
    pub error: Option<RuleError>,
}

impl Evaluation {
    fn new(satisfied: bool, error: Option<RuleError>) -> Self {
        Evaluation { satisfied, error }
    }

    fn fail(error: RuleError) -> Self {
        Evaluation::new(false, Some(error))
    }
}

/// One node of an evaluation trace: what was checked, its verdict and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The node: `and`, `or`, `not`, `match value header X-Foo`, ...
    pub label: String,
    /// `true` or `false`, followed by the error kind and message when there is one.
    pub verdict: String,
    /// What was compared, e.g. `got "abc"`. Never a secret or an expected signature.
    pub detail: Option<String>,
    pub children: Vec<Trace>,
}

impl Trace {
    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        write!(
            f,
            "{:indent$}{}: {}",
            "",
            self.label,
            self.verdict,
            indent = depth * 2
        )?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        writeln!(f)?;
        self.children.iter().try_for_each(|c| c.write(f, depth + 1))
    }
}

/// An indented tree, one node per line: `label: verdict (detail)`.
impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

/// Evaluates `rule` against `req` with adnanh's semantics:
///
/// - `and`: children in order; the first error stops it (false + that error), so does the
///   first false; no children is true;
/// - `or`: children in order; a missing parameter counts as false and evaluation goes on, and
///   so does a signature error when `soft_signature_failures` is on; any other error stops it;
///   the first true stops it; no children is false;
/// - `not`: inverts the boolean and passes the error through (so a top-level `not` over a
///   missing field is satisfied, with the error only to log);
/// - an empty rule object is false;
/// - `match`: see [`MatchKind`]; the parameter is read first (except for `ip-whitelist` and
///   `scalr-signature`, which ignore it), so even an unknown match type reports a missing
///   parameter, as adnanh's `MatchRule.Evaluate` does.
///
/// What the top-level result means stays with the caller (adnanh: a missing parameter is "not
/// satisfied", any other error a 500).
pub fn evaluate(rule: &Rule, req: &Request, soft_signature_failures: bool) -> Evaluation {
    let cx = Context {
        req,
        soft: soft_signature_failures,
    };
    eval_node(rule, &cx, None).0
}

/// [`evaluate`], also returning a trace of every node visited (for `hookwire explain` and
/// debug logs). Nodes after the one that decided an `and`/`or` are not visited, so they do not
/// appear.
pub fn evaluate_traced(
    rule: &Rule,
    req: &Request,
    soft_signature_failures: bool,
) -> (Evaluation, Trace) {
    let cx = Context {
        req,
        soft: soft_signature_failures,
    };
    let mut nodes = Vec::with_capacity(1);
    let evaluation = eval(rule, &cx, Some(&mut nodes));
    let trace = nodes.pop().unwrap_or_else(|| Trace {
        label: label(rule),
        verdict: verdict(&evaluation),
        detail: None,
        children: Vec::new(),
    });
    (evaluation, trace)
}

struct Context<'a> {
    req: &'a Request,
    soft: bool,
}

/// Evaluates one node; when `out` is given, appends the node's trace to it. The untraced path
/// builds no labels, details or vectors.
fn eval(rule: &Rule, cx: &Context<'_>, out: Option<&mut Vec<Trace>>) -> Evaluation {
    match out {
        None => eval_node(rule, cx, None).0,
        Some(out) => {
            let mut children = Vec::new();
            let (evaluation, detail) = eval_node(rule, cx, Some(&mut children));
            out.push(Trace {
                label: label(rule),
                verdict: verdict(&evaluation),
                detail,
                children,
            });
            evaluation
        }
    }
}

/// The node's evaluation and, when tracing (`children` given), its detail line.
fn eval_node(
    rule: &Rule,
    cx: &Context<'_>,
    mut children: Option<&mut Vec<Trace>>,
) -> (Evaluation, Option<String>) {
    let evaluation = match rule {
        Rule::And(rules) => {
            let mut result = Evaluation::new(true, None);
            for child in rules {
                let ev = eval(child, cx, children.as_deref_mut());
                if ev.error.is_some() {
                    result = Evaluation::new(false, ev.error);
                    break;
                }
                if !ev.satisfied {
                    result = Evaluation::new(false, None);
                    break;
                }
            }
            result
        }
        Rule::Or(rules) => {
            let mut result = Evaluation::new(false, None);
            for child in rules {
                let ev = eval(child, cx, children.as_deref_mut());
                let forgiven = match &ev.error {
                    None | Some(RuleError::ParameterNotFound(_)) => true,
                    Some(RuleError::Signature(_)) => cx.soft,
                    Some(RuleError::Hard(_)) => false,
                };
                if !forgiven {
                    result = Evaluation::new(false, ev.error);
                    break;
                }
                // As in Go, a forgiven error's boolean still counts: `not` over a missing
                // field inside an `or` is true.
                if ev.satisfied {
                    result = Evaluation::new(true, None);
                    break;
                }
            }
            result
        }
        Rule::Not(child) => {
            let ev = eval(child, cx, children);
            Evaluation::new(!ev.satisfied, ev.error)
        }
        Rule::Match(m) => return eval_match(m, cx, children.is_some()),
        Rule::Empty => Evaluation::new(false, None),
    };
    (evaluation, None)
}

fn eval_match(m: &MatchRule, cx: &Context<'_>, tracing: bool) -> (Evaluation, Option<String>) {
    let req = cx.req;
    match &m.kind {
        MatchKind::IpWhitelist(entries) => {
            // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; Go's
            // IPNet.Contains handles that form itself, ipnet does not.
            let peer = req.remote_addr.ip().to_canonical();
            let detail = tracing.then(|| format!("peer {peer}"));
            for entry in entries {
                match entry {
                    Ok(net) if net.contains(&peer) => {
                        return (Evaluation::new(true, None), detail);
                    }
                    Ok(_) => {}
                    Err(e) => return (Evaluation::fail(RuleError::Hard(e.clone())), detail),
                }
            }
            return (Evaluation::new(false, None), detail);
        }
        MatchKind::ScalrSignature { secret } => {
            let header = |name: &str| req.headers.get(name).map(to_go_string);
            let signature = header("X-Signature");
            let date = header("Date");
            let detail = tracing.then(|| match (&signature, &date) {
                (Some(s), Some(d)) => format!("X-Signature {}, Date {}", quote(s), quote(d)),
                _ => "X-Signature or Date header missing".to_owned(),
            });
            let result = check_scalr_signature(
                secret,
                &req.body,
                signature.as_deref(),
                date.as_deref(),
                SystemTime::now(),
            );
            let evaluation = match result {
                Ok(ok) => Evaluation::new(ok, None),
                Err(e) => Evaluation::fail(signature_error(&e)),
            };
            return (evaluation, detail);
        }
        _ => {}
    }

    let arg = match m.parameter.get(req) {
        Ok(arg) => arg,
        Err(e @ ParamError::NotFound { .. }) => {
            let detail = tracing.then(|| "parameter not found".to_owned());
            return (
                Evaluation::fail(RuleError::ParameterNotFound(e.to_string())),
                detail,
            );
        }
        Err(ParamError::Hard(e)) => return (Evaluation::fail(RuleError::Hard(e)), None),
    };
    let detail = tracing.then(|| format!("got {}", quote(&arg)));
    let evaluation = match &m.kind {
        MatchKind::Value(expected) => {
            Evaluation::new(arg.as_bytes().ct_eq(expected.as_bytes()).into(), None)
        }
        MatchKind::Regex(Ok(re)) => Evaluation::new(re.is_match(&arg), None),
        MatchKind::Regex(Err(e)) => Evaluation::fail(RuleError::Hard(e.clone())),
        MatchKind::PayloadHmac {
            algorithm,
            secret,
            deprecated_alias,
        } => {
            if *deprecated_alias {
                let name = algorithm.name();
                tracing::warn!(
                    "use of deprecated option payload-hash-{name}; use payload-hmac-{name} instead"
                );
            }
            match check_payload_signature(*algorithm, secret, &req.body, &arg) {
                Ok(()) => Evaluation::new(true, None),
                Err(e) => Evaluation::fail(signature_error(&e)),
            }
        }
        // adnanh: an unknown type is simply false, once the parameter was found.
        MatchKind::Unknown(_) | MatchKind::IpWhitelist(_) | MatchKind::ScalrSignature { .. } => {
            Evaluation::new(false, None)
        }
    };
    (evaluation, detail)
}

fn signature_error(e: &SignatureError) -> RuleError {
    if e.is_signature_failure() {
        RuleError::Signature(e.to_string())
    } else {
        RuleError::Hard(e.to_string())
    }
}

fn label(rule: &Rule) -> String {
    match rule {
        Rule::And(_) => "and".to_owned(),
        Rule::Or(_) => "or".to_owned(),
        Rule::Not(_) => "not".to_owned(),
        Rule::Empty => "empty rule".to_owned(),
        Rule::Match(m) => {
            let kind = match &m.kind {
                MatchKind::Value(_) => "value".to_owned(),
                MatchKind::Regex(Ok(re)) => format!("regex {}", quote(re.as_str())),
                MatchKind::Regex(Err(_)) => "regex (invalid)".to_owned(),
                MatchKind::PayloadHmac {
                    algorithm,
                    deprecated_alias,
                    ..
                } => {
                    let word = if *deprecated_alias { "hash" } else { "hmac" };
                    format!("payload-{word}-{}", algorithm.name())
                }
                MatchKind::IpWhitelist(entries) => {
                    let ranges: Vec<String> = entries
                        .iter()
                        .map(|e| match e {
                            Ok(net) => net.to_string(),
                            Err(_) => "(invalid)".to_owned(),
                        })
                        .collect();
                    return format!("match ip-whitelist {}", ranges.join(" "));
                }
                MatchKind::ScalrSignature { .. } => return "match scalr-signature".to_owned(),
                MatchKind::Unknown(t) => format!("{} (unknown type)", quote(t)),
            };
            format!(
                "match {kind} {} {}",
                m.parameter.source.as_str(),
                m.parameter.name
            )
        }
    }
}

fn verdict(ev: &Evaluation) -> String {
    let kind = match &ev.error {
        None => return ev.satisfied.to_string(),
        Some(RuleError::ParameterNotFound(_)) => "parameter not found",
        Some(RuleError::Signature(_)) => "signature error",
        Some(RuleError::Hard(_)) => "error",
    };
    let message = ev
        .error
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    format!("{}, {kind}: {message}", ev.satisfied)
}

/// A client-supplied value for a trace line, quoted and cut to a readable length.
fn quote(s: &str) -> String {
    const MAX: usize = 120;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}
