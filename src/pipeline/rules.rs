//! Trigger rules: the `and`/`or`/`not`/`match` tree of a hook, evaluated against a
//! [`Request`] with adnanh's exact error semantics, and a trace of each
//! node's verdict for logs and `hookwire explain`.

use std::fmt;
use std::time::SystemTime;

use ipnet::IpNet;
use regex::Regex;
use subtle::ConstantTimeEq;

use crate::pipeline::request::value::to_go_string;
use crate::pipeline::request::{Argument, ParamError, Request};
use crate::pipeline::signature::{
    HmacAlgorithm, SignatureError, check_payload_signature, check_scalr_signature,
};
use crate::secret::Secret;

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

/// An `ip-whitelist` entry that is neither an address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR address: {0}")]
pub struct InvalidIpRange(pub String);

/// The entries of an `ip-whitelist` as text, an invalid one as `(invalid)`.
pub fn ip_ranges(entries: &[Result<IpNet, InvalidIpRange>]) -> Vec<String> {
    entries
        .iter()
        .map(|entry| match entry {
            Ok(net) => net.to_string(),
            Err(_) => "(invalid)".to_owned(),
        })
        .collect()
}

impl Rule {
    /// Calls `visit` with the parameter of every `match` in the tree.
    pub fn visit_parameters<'a>(&'a self, visit: &mut impl FnMut(&'a Argument)) {
        match self {
            Rule::And(rules) | Rule::Or(rules) => {
                for rule in rules {
                    rule.visit_parameters(visit);
                }
            }
            Rule::Not(rule) => rule.visit_parameters(visit),
            Rule::Match(matcher) => visit(&matcher.parameter),
            Rule::Empty => {}
        }
    }
}

/// A `match` object, compiled at load time.
#[derive(Debug, Clone)]
pub struct MatchRule {
    pub kind: MatchKind,
    /// The value compared; ignored by `ip-whitelist` and `scalr-signature`.
    pub parameter: Argument,
    /// `all` (hookwire's extension): over a wildcard parameter, every selected value must match
    /// instead of any one; an empty selection matches neither way.
    pub all: bool,
}

/// The comparison a `match` performs.
#[derive(Debug, Clone)]
pub enum MatchKind {
    /// `value`: byte-for-byte equality in constant time.
    Value(String),
    /// `regex`: unanchored RE2-style match. An invalid pattern is kept as its error: the
    /// reference only fails (500) when a request reaches the rule, so we do too, and warn at load.
    Regex(Result<Regex, regex::Error>),
    /// `payload-hmac-*` (and the deprecated `payload-hash-*` aliases).
    PayloadHmac {
        algorithm: HmacAlgorithm,
        secret: Secret,
        /// Written as `payload-hash-*`: still works, logs a deprecation warning.
        deprecated_alias: bool,
    },
    /// `ip-whitelist`: entries in file order; an invalid entry is a hard error when reached.
    IpWhitelist(Vec<Result<IpNet, InvalidIpRange>>),
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
                    Err(e) => return (Evaluation::fail(RuleError::Hard(e.to_string())), detail),
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

    if let Some(selected) = m.parameter.selected(req) {
        return eval_selection(m, &selected, tracing);
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
        MatchKind::Regex(Err(e)) => Evaluation::fail(RuleError::Hard(e.to_string())),
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

/// A `value` or `regex` match over a wildcard's values: any one matching (every one with
/// `all`), and never an empty selection, so a deploy does not fire on an empty list.
fn eval_selection(
    m: &MatchRule,
    selected: &[&crate::pipeline::request::Value],
    tracing: bool,
) -> (Evaluation, Option<String>) {
    // An invalid pattern fails whatever was selected, as it does over one value.
    if let MatchKind::Regex(Err(e)) = &m.kind {
        return (Evaluation::fail(RuleError::Hard(e.to_string())), None);
    }
    let matches = |text: &str| match &m.kind {
        MatchKind::Value(expected) => bool::from(text.as_bytes().ct_eq(expected.as_bytes())),
        MatchKind::Regex(Ok(re)) => re.is_match(text),
        // The loader refuses a wildcard on signature matches; the others never hold.
        _ => false,
    };
    let matched = selected
        .iter()
        .filter(|value| matches(&to_go_string(value)))
        .count();
    let satisfied = if m.all {
        matched > 0 && matched == selected.len()
    } else {
        matched > 0
    };
    let detail = tracing.then(|| format!("{matched} of {} selected values match", selected.len()));
    (Evaluation::new(satisfied, None), detail)
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
                    return format!("match ip-whitelist {}", ip_ranges(entries).join(" "));
                }
                MatchKind::ScalrSignature { .. } => return "match scalr-signature".to_owned(),
                MatchKind::Unknown(t) => format!("{} (unknown type)", quote(t)),
            };
            let every = if m.all { " (all)" } else { "" };
            format!(
                "match {kind} {} {}{every}",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::request::{Source, test_request};
    use crate::pipeline::signature::hmac_hex;

    const BODY: &str = r#"{"ref": "refs/heads/main", "n": 42.0, "flag": true}"#;

    /// A `regex` rule's pattern that does not compile, as the loader keeps it.
    #[allow(clippy::invalid_regex)]
    fn invalid_regex() -> Result<Regex, regex::Error> {
        Regex::new("(")
    }

    fn req() -> Request {
        let sig = hmac_hex(HmacAlgorithm::Sha256, b"s3cret", &[BODY.as_bytes()]);
        let sig = format!("sha256={sig}");
        test_request(
            &[("x-hub-signature-256", &sig), ("x-bad", "sha256=00")],
            "",
            BODY,
        )
    }

    fn param(source: &str, name: &str) -> Argument {
        Argument {
            source: Source::parse(source),
            name: name.to_owned(),
            envname: String::new(),
            base64decode: false,
        }
    }

    fn rule(kind: MatchKind, source: &str, name: &str) -> Rule {
        Rule::Match(MatchRule {
            kind,
            parameter: param(source, name),
            all: false,
        })
    }

    fn value(source: &str, name: &str, expected: &str) -> Rule {
        rule(MatchKind::Value(expected.to_owned()), source, name)
    }

    fn yes() -> Rule {
        value("payload", "ref", "refs/heads/main")
    }

    fn no() -> Rule {
        value("payload", "ref", "refs/heads/other")
    }

    fn missing() -> Rule {
        value("payload", "nope", "x")
    }

    fn hard() -> Rule {
        rule(MatchKind::Regex(invalid_regex()), "payload", "ref")
    }

    fn hmac(header: &str, secret: &str) -> Rule {
        rule(
            MatchKind::PayloadHmac {
                algorithm: HmacAlgorithm::Sha256,
                secret: Secret::new(secret),
                deprecated_alias: false,
            },
            "header",
            header,
        )
    }

    fn bad_sig() -> Rule {
        hmac("X-Bad", "s3cret")
    }

    fn not(r: Rule) -> Rule {
        Rule::Not(Box::new(r))
    }

    fn ip(ranges: &[&str]) -> Rule {
        let entries = ranges
            .iter()
            .map(|r| {
                r.parse::<IpNet>()
                    .map_err(|_| InvalidIpRange(r.to_string()))
            })
            .collect();
        rule(MatchKind::IpWhitelist(entries), "payload", "ignored")
    }

    #[derive(Debug, PartialEq)]
    enum Err {
        None,
        Missing,
        Sig,
        Hard,
    }

    fn run(r: &Rule, soft: bool) -> (bool, Err) {
        run_on(r, &req(), soft)
    }

    fn run_on(r: &Rule, request: &Request, soft: bool) -> (bool, Err) {
        let ev = evaluate(r, request, soft);
        // The traced path must agree with the plain one.
        let (traced, trace) = evaluate_traced(r, request, soft);
        assert_eq!(ev, traced, "{trace}");
        let kind = match ev.error {
            None => Err::None,
            Some(RuleError::ParameterNotFound(_)) => Err::Missing,
            Some(RuleError::Signature(_)) => Err::Sig,
            Some(RuleError::Hard(_)) => Err::Hard,
        };
        (ev.satisfied, kind)
    }

    #[test]
    fn boolean_combinators_as_in_adnanh() {
        let cases: Vec<(&str, Rule, bool, (bool, Err))> = vec![
            (
                "and all true",
                Rule::And(vec![yes(), yes()]),
                false,
                (true, Err::None),
            ),
            ("and empty", Rule::And(vec![]), false, (true, Err::None)),
            // The first false stops before the hard error is reached.
            (
                "and stops at false",
                Rule::And(vec![yes(), no(), hard()]),
                false,
                (false, Err::None),
            ),
            (
                "and stops at error",
                Rule::And(vec![hard(), no()]),
                false,
                (false, Err::Hard),
            ),
            (
                "and missing",
                Rule::And(vec![missing(), yes()]),
                false,
                (false, Err::Missing),
            ),
            (
                "or skips missing",
                Rule::Or(vec![missing(), yes()]),
                false,
                (true, Err::None),
            ),
            (
                "or only missing",
                Rule::Or(vec![missing()]),
                false,
                (false, Err::None),
            ),
            ("or empty", Rule::Or(vec![]), false, (false, Err::None)),
            (
                "or hard aborts",
                Rule::Or(vec![no(), hard(), yes()]),
                false,
                (false, Err::Hard),
            ),
            (
                "or first true wins",
                Rule::Or(vec![yes(), hard()]),
                false,
                (true, Err::None),
            ),
            (
                "or signature hard",
                Rule::Or(vec![bad_sig(), yes()]),
                false,
                (false, Err::Sig),
            ),
            (
                "or signature soft",
                Rule::Or(vec![bad_sig(), yes()]),
                true,
                (true, Err::None),
            ),
            (
                "or only signature soft",
                Rule::Or(vec![bad_sig()]),
                true,
                (false, Err::None),
            ),
            // Soft failures only apply inside an `or`.
            ("lone signature soft", bad_sig(), true, (false, Err::Sig)),
            (
                "and signature soft",
                Rule::And(vec![bad_sig(), yes()]),
                true,
                (false, Err::Sig),
            ),
            // An empty secret is not a signature error: never forgiven.
            (
                "or empty secret soft",
                Rule::Or(vec![hmac("X-Bad", ""), yes()]),
                true,
                (false, Err::Hard),
            ),
            // `not` inverts and passes the error through.
            ("not missing", not(missing()), false, (true, Err::Missing)),
            (
                "and(not missing)",
                Rule::And(vec![not(missing()), yes()]),
                false,
                (false, Err::Missing),
            ),
            (
                "or(not missing)",
                Rule::Or(vec![not(missing())]),
                false,
                (true, Err::None),
            ),
            ("not true", not(yes()), false, (false, Err::None)),
            ("not false", not(no()), false, (true, Err::None)),
            ("not hard", not(hard()), false, (true, Err::Hard)),
            (
                "not not missing",
                not(not(missing())),
                false,
                (false, Err::Missing),
            ),
            ("empty", Rule::Empty, false, (false, Err::None)),
            (
                "and(empty)",
                Rule::And(vec![Rule::Empty]),
                false,
                (false, Err::None),
            ),
            (
                "or(empty, yes)",
                Rule::Or(vec![Rule::Empty, yes()]),
                false,
                (true, Err::None),
            ),
        ];
        for (name, r, soft, want) in cases {
            assert_eq!(run(&r, soft), want, "{name}");
        }
    }

    #[test]
    fn match_types() {
        let regex = |p: &str| MatchKind::Regex(Regex::new(p));
        let unknown = || MatchKind::Unknown("payload-hmac-md5".into());
        let cases: Vec<(&str, Rule, (bool, Err))> = vec![
            // Numbers compare as the digits sent.
            (
                "value number",
                value("payload", "n", "42.0"),
                (true, Err::None),
            ),
            (
                "value number digits",
                value("payload", "n", "42"),
                (false, Err::None),
            ),
            (
                "value bool",
                value("payload", "flag", "true"),
                (true, Err::None),
            ),
            (
                "value case",
                value("payload", "ref", "REFS/heads/main"),
                (false, Err::None),
            ),
            (
                "value header",
                value("header", "x-bad", "sha256=00"),
                (true, Err::None),
            ),
            (
                "regex unanchored",
                rule(regex("heads"), "payload", "ref"),
                (true, Err::None),
            ),
            (
                "regex anchored",
                rule(regex("^heads"), "payload", "ref"),
                (false, Err::None),
            ),
            (
                "regex missing",
                rule(regex("x"), "payload", "nope"),
                (false, Err::Missing),
            ),
            ("regex invalid", hard(), (false, Err::Hard)),
            (
                "hmac ok",
                hmac("X-Hub-Signature-256", "s3cret"),
                (true, Err::None),
            ),
            ("hmac mismatch", bad_sig(), (false, Err::Sig)),
            (
                "hmac missing header",
                hmac("X-None", "s3cret"),
                (false, Err::Missing),
            ),
            ("hmac empty secret", hmac("X-Bad", ""), (false, Err::Hard)),
            (
                "hash alias",
                rule(
                    MatchKind::PayloadHmac {
                        algorithm: HmacAlgorithm::Sha256,
                        secret: Secret::new("s3cret"),
                        deprecated_alias: true,
                    },
                    "header",
                    "X-Hub-Signature-256",
                ),
                (true, Err::None),
            ),
            (
                "unknown type",
                rule(unknown(), "payload", "ref"),
                (false, Err::None),
            ),
            // adnanh reads the parameter before looking at the type.
            (
                "unknown type, missing",
                rule(unknown(), "payload", "nope"),
                (false, Err::Missing),
            ),
            ("bad source", value("context", "x", ""), (false, Err::Hard)),
            (
                "bad request key",
                value("request", "path", ""),
                (false, Err::Hard),
            ),
            (
                "scalar descent",
                value("payload", "ref.x", ""),
                (false, Err::Missing),
            ),
        ];
        for (name, r, want) in cases {
            assert_eq!(run(&r, false), want, "{name}");
        }
        let nulls = test_request(&[], "", r#"{"n": null}"#);
        assert_eq!(
            run_on(&value("payload", "n.x", ""), &nulls, false),
            (false, Err::Hard)
        );
        assert_eq!(
            run_on(&value("payload", "n", "<nil>"), &nulls, false),
            (true, Err::None)
        );
    }

    #[test]
    fn ip_whitelist() {
        let at = |addr: &str| {
            let mut r = req();
            r.remote_addr = addr.parse().unwrap();
            r
        };
        let invalid = || {
            rule(
                MatchKind::IpWhitelist(vec![Err(InvalidIpRange("x".into()))]),
                "payload",
                "ignored",
            )
        };
        let with_invalid_last = rule(
            MatchKind::IpWhitelist(vec![
                "127.0.0.0/8"
                    .parse()
                    .map_err(|_| InvalidIpRange(String::new())),
                Err(InvalidIpRange("x".into())),
            ]),
            "payload",
            "ignored",
        );
        let cases: Vec<(&str, Rule, &str, (bool, Err))> = vec![
            (
                "v4 in",
                ip(&["10.0.0.0/8", "127.0.0.0/8"]),
                "127.0.0.1:1",
                (true, Err::None),
            ),
            (
                "v4 out",
                ip(&["10.0.0.0/8"]),
                "127.0.0.1:1",
                (false, Err::None),
            ),
            (
                "v4-mapped peer",
                ip(&["127.0.0.1/32"]),
                "[::ffff:127.0.0.1]:1",
                (true, Err::None),
            ),
            ("v6 in", ip(&["::1/128"]), "[::1]:1", (true, Err::None)),
            (
                "v6 out",
                ip(&["2001:db8::/32"]),
                "[::1]:1",
                (false, Err::None),
            ),
            ("empty list", ip(&[]), "127.0.0.1:1", (false, Err::None)),
            (
                "invalid entry",
                invalid(),
                "127.0.0.1:1",
                (false, Err::Hard),
            ),
            // Entries are tried in order: a match before the invalid one wins.
            (
                "match before invalid",
                with_invalid_last.clone(),
                "127.0.0.1:1",
                (true, Err::None),
            ),
            (
                "invalid reached",
                with_invalid_last,
                "10.0.0.1:1",
                (false, Err::Hard),
            ),
        ];
        for (name, r, addr, want) in cases {
            assert_eq!(run_on(&r, &at(addr), false), want, "{name}");
        }
    }

    #[test]
    fn scalr() {
        let scalr = rule(
            MatchKind::ScalrSignature {
                secret: Secret::new("key"),
            },
            "payload",
            "ignored",
        );
        // Headers missing: false, no error.
        assert_eq!(run(&scalr, false), (false, Err::None));
        // A wrong signature is a signature error (forgiven by soft failures in an `or`).
        let wrong = test_request(
            &[
                ("x-signature", "00"),
                ("date", "Fri 08 Sep 2017 11:24:32 UTC"),
            ],
            "",
            "{}",
        );
        assert_eq!(run_on(&scalr, &wrong, false), (false, Err::Sig));
        let or = Rule::Or(vec![scalr.clone()]);
        assert_eq!(run_on(&or, &wrong, true), (false, Err::None));
        // A correct signature on an old date: outdated, a signature error too.
        let date = "Fri 08 Sep 2017 11:24:32 UTC";
        let sig = hmac_hex(HmacAlgorithm::Sha1, b"key", &[b"{}", date.as_bytes()]);
        let stale = test_request(&[("x-signature", &sig), ("date", date)], "", "{}");
        assert_eq!(run_on(&scalr, &stale, false), (false, Err::Sig));
        // An unparsable date is a hard error, even with soft failures.
        let date = "yesterday";
        let sig = hmac_hex(HmacAlgorithm::Sha1, b"key", &[b"{}", date.as_bytes()]);
        let bad_date = test_request(&[("x-signature", &sig), ("date", date)], "", "{}");
        assert_eq!(run_on(&or, &bad_date, true), (false, Err::Hard));
    }

    #[test]
    fn trace_tree() {
        let r = Rule::And(vec![
            hmac("X-Hub-Signature-256", "s3cret"),
            Rule::Or(vec![missing(), value("header", "X-Bad", "t0ken")]),
        ]);
        let (ev, trace) = evaluate_traced(&r, &req(), false);
        assert!(!ev.satisfied);
        let text = trace.to_string();
        assert_eq!(
            text,
            "and: false\n\
             \x20 match payload-hmac-sha256 header X-Hub-Signature-256: true (got \"sha256=...\")\n\
             \x20 or: false\n\
             \x20   match value payload nope: false, parameter not found: couldn't retrieve argument for {Source:payload Name:nope} (parameter not found)\n\
             \x20   match value header X-Bad: false (got \"sha256=00\")\n"
                .replace(
                    "sha256=...",
                    req().headers["X-Hub-Signature-256"].as_str().unwrap(),
                )
        );
        // Neither the secret nor the expected `value` appears.
        assert!(
            !text.contains("s3cret") && !text.contains("t0ken"),
            "{text}"
        );
    }

    #[test]
    fn trace_never_shows_the_expected_hmac() {
        let expected = hmac_hex(HmacAlgorithm::Sha256, b"s3cret", &[BODY.as_bytes()]);
        let (ev, trace) = evaluate_traced(&bad_sig(), &req(), false);
        let text = format!("{trace}{ev:?}");
        assert!(!text.contains(&expected), "{text}");
        assert!(
            text.contains("sha256=00") || text.contains("\"00\""),
            "{text}"
        );
    }

    #[test]
    fn a_wildcard_match_holds_for_any_or_every_selected_value() {
        let push = |files: &str| test_request(&[], "", &format!(r#"{{"commits": [{files}]}}"#));
        let wildcard = |kind: MatchKind, all: bool| {
            Rule::Match(MatchRule {
                kind,
                parameter: param("payload", "commits.*.modified.*"),
                all,
            })
        };
        let regex = |pattern: &str| MatchKind::Regex(Ok(Regex::new(pattern).unwrap()));
        let mixed = push(r#"{"modified": ["docs/a"]}, {"modified": ["src/b", "docs/c"]}"#);
        let docs = push(r#"{"modified": ["docs/a"]}, {"modified": ["docs/c"]}"#);
        let empty = push(r#"{"modified": []}"#);
        let cases = [
            (wildcard(regex("^src/"), false), &mixed, true),
            (wildcard(regex("^src/"), false), &docs, false),
            (wildcard(regex("^docs/"), true), &mixed, false),
            (wildcard(regex("^docs/"), true), &docs, true),
            (wildcard(regex(""), false), &empty, false),
            (wildcard(regex(""), true), &empty, false),
            (
                wildcard(MatchKind::Value("docs/c".into()), false),
                &mixed,
                true,
            ),
            (
                wildcard(MatchKind::Value("docs/c".into()), true),
                &mixed,
                false,
            ),
        ];
        for (rule, req, want) in cases {
            assert_eq!(
                evaluate(&rule, req, false),
                Evaluation::new(want, None),
                "{}",
                label(&rule)
            );
        }
        let (_, trace) = evaluate_traced(&wildcard(regex("^docs/"), true), &mixed, false);
        assert_eq!(
            trace.to_string(),
            "match regex \"^docs/\" payload commits.*.modified.* (all): false (2 of 3 selected values match)\n"
        );
        let invalid = invalid_regex();
        let message = invalid.as_ref().unwrap_err().to_string();
        let broken = wildcard(MatchKind::Regex(invalid), false);
        for req in [&mixed, &empty] {
            assert_eq!(
                evaluate(&broken, req, false),
                Evaluation::fail(RuleError::Hard(message.clone()))
            );
        }
    }
}
