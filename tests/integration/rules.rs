//! Trigger rules through the running server (reference §3.1–3.2): `and`/`or`/`not` with
//! missing parameters and errors, every match type, signature parsing, IP ranges and Scalr.

use std::time::Duration;

use crate::harness::{Checks, FIRED, NOT_SATISFIED, RULE_ERROR, Server, hmac_hex, scalr_date};

/// A hook per rule shape; each answers `fired` when its rule holds.
const LOGIC: &str = r#"
- &fired
  id: and
  execute-command: /bin/true
  response-message: fired
  trigger-rule:
    and:
      - match: {type: value, value: a, parameter: {source: url, name: a}}
      - match: {type: value, value: b, parameter: {source: url, name: b}}
- <<: *fired
  id: or
  trigger-rule:
    or:
      - match: {type: value, value: a, parameter: {source: url, name: a}}
      - match: {type: value, value: b, parameter: {source: url, name: b}}
- <<: *fired
  id: or-error
  trigger-rule:
    or:
      - match: {type: value, value: a, parameter: {source: url, name: a}}
      - match: {type: regex, regex: "(", parameter: {source: url, name: b}}
- <<: *fired
  id: or-true-before-error
  trigger-rule:
    or:
      - match: {type: value, value: a, parameter: {source: url, name: a}}
      - match: {type: regex, regex: "(", parameter: {source: url, name: b}}
- <<: *fired
  id: and-false-before-error
  trigger-rule:
    and:
      - match: {type: value, value: a, parameter: {source: url, name: a}}
      - match: {type: regex, regex: "(", parameter: {source: url, name: b}}
- <<: *fired
  id: not
  trigger-rule:
    not:
      match: {type: value, value: a, parameter: {source: url, name: a}}
- <<: *fired
  id: not-in-and
  trigger-rule:
    and:
      - not:
          match: {type: value, value: a, parameter: {source: url, name: a}}
      - match: {type: value, value: b, parameter: {source: url, name: b}}
- <<: *fired
  id: not-in-or
  trigger-rule:
    or:
      - not:
          match: {type: value, value: a, parameter: {source: url, name: a}}
      - match: {type: value, value: b, parameter: {source: url, name: b}}
- <<: *fired
  id: not-error
  trigger-rule:
    not:
      match: {type: regex, regex: "(", parameter: {source: url, name: a}}
- <<: *fired
  id: empty-object
  trigger-rule: {}
- <<: *fired
  id: empty-and
  trigger-rule: {and: []}
- <<: *fired
  id: empty-or
  trigger-rule: {or: []}
- <<: *fired
  id: several-keys
  trigger-rule:
    match: {type: value, value: never, parameter: {source: url, name: a}}
    and: []
- <<: *fired
  id: unknown-type
  trigger-rule:
    match: {type: payload-hmac-md5, secret: x, parameter: {source: url, name: a}}
- <<: *fired
  id: unknown-source
  trigger-rule:
    match: {type: value, value: a, parameter: {source: body, name: a}}
- <<: *fired
  id: nested
  trigger-rule:
    and:
      - or:
          - match: {type: value, value: push, parameter: {source: header, name: X-Event}}
          - match: {type: value, value: tag, parameter: {source: header, name: X-Event}}
      - not:
          match: {type: regex, regex: "^refs/heads/wip-", parameter: {source: payload, name: ref}}
"#;

#[test]
fn and_or_not_follow_adnanh_with_missing_parameters_and_errors() {
    let s = Server::start(LOGIC);
    let mut checks = Checks::default();
    let mut expect = |path: &str, status: u16, body: &str| {
        checks.answer(path, &s.get(path), status, body);
    };
    // and: every child; a missing parameter is "not satisfied".
    expect("/hooks/and?a=a&b=b", 200, FIRED);
    expect("/hooks/and?a=a&b=x", 200, NOT_SATISFIED);
    expect("/hooks/and?b=b", 200, NOT_SATISFIED);
    // and: the first false stops before a later error.
    expect("/hooks/and-false-before-error?a=x&b=b", 200, NOT_SATISFIED);
    expect("/hooks/and-false-before-error?a=a&b=b", 500, RULE_ERROR);
    // or: a missing parameter counts as false and evaluation goes on.
    expect("/hooks/or?b=b", 200, FIRED);
    expect("/hooks/or?a=a", 200, FIRED);
    expect("/hooks/or?a=x&b=x", 200, NOT_SATISFIED);
    expect("/hooks/or", 200, NOT_SATISFIED);
    // or: any other error aborts, even after a missing parameter; a true child stops first.
    expect("/hooks/or-error?b=b", 500, RULE_ERROR);
    expect("/hooks/or-true-before-error?a=a&b=b", 200, FIRED);
    // not inverts; over a missing parameter it fires at the top level (the error is only
    // logged), fails inside an and (the error passes through), and holds inside an or.
    expect("/hooks/not?a=x", 200, FIRED);
    expect("/hooks/not?a=a", 200, NOT_SATISFIED);
    expect("/hooks/not", 200, FIRED);
    expect("/hooks/not-in-and?b=b", 200, NOT_SATISFIED);
    expect("/hooks/not-in-and?a=x&b=b", 200, FIRED);
    expect("/hooks/not-in-or?b=x", 200, FIRED);
    // not passes a hard error through: 500, not a fire.
    expect("/hooks/not-error?a=x", 500, RULE_ERROR);
    // Unknown source: a hard error.
    expect("/hooks/unknown-source?a=a", 500, RULE_ERROR);
    checks.assert();
}

/// `{}` never fires (adnanh#718); `and: []` holds, `or: []` does not; with several keys the
/// first of and/or/not/match wins.
#[test]
fn empty_rules_and_rule_objects_with_several_keys() {
    let s = Server::start(LOGIC);
    let mut checks = Checks::default();
    for (path, status, body) in [
        ("/hooks/empty-object", 200, NOT_SATISFIED),
        ("/hooks/empty-and", 200, FIRED),
        ("/hooks/empty-or", 200, NOT_SATISFIED),
        ("/hooks/several-keys?a=a", 200, FIRED),
    ] {
        checks.answer(path, &s.get(path), status, body);
    }
    checks.assert();
}

/// An unknown match type is simply false (never a 500), and the load warns about it.
#[test]
fn unknown_match_types_never_hold() {
    let s = Server::start(LOGIC);
    let r = s.get("/hooks/unknown-type?a=a");
    assert_eq!((r.status, r.text().as_str()), (200, NOT_SATISFIED));
    assert!(
        s.logs().contains("unknown match type `payload-hmac-md5`"),
        "no load warning:\n{}",
        s.logs()
    );
}

#[test]
fn nested_rules_over_a_realistic_push() {
    let s = Server::start(LOGIC);
    let send = |event: &str, git_ref: &str| {
        s.request("POST", "/hooks/nested")
            .header("X-Event", event)
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"ref":"{git_ref}"}}"#))
            .send()
            .text()
    };
    assert_eq!(send("push", "refs/heads/main"), FIRED);
    assert_eq!(send("tag", "refs/tags/v1"), FIRED);
    assert_eq!(send("push", "refs/heads/wip-x"), NOT_SATISFIED);
    assert_eq!(send("issues", "refs/heads/main"), NOT_SATISFIED);
}

const MATCHES: &str = r#"
- &fired
  id: value
  execute-command: /bin/true
  response-message: fired
  trigger-rule:
    match: {type: value, value: Main, parameter: {source: payload, name: branch}}
- <<: *fired
  id: number
  trigger-rule:
    match: {type: value, value: "42", parameter: {source: payload, name: count}}
- <<: *fired
  id: decimal
  trigger-rule:
    match: {type: value, value: "1.50", parameter: {source: payload, name: price}}
- <<: *fired
  id: boolean
  trigger-rule:
    match: {type: value, value: "false", parameter: {source: payload, name: draft}}
- <<: *fired
  id: regex
  trigger-rule:
    match: {type: regex, regex: 'heads/(main|release-\d+)', parameter: {source: payload, name: ref}}
- <<: *fired
  id: anchored
  trigger-rule:
    match: {type: regex, regex: '^refs/heads/main$', parameter: {source: payload, name: ref}}
- <<: *fired
  id: invalid-regex
  trigger-rule:
    match: {type: regex, regex: 'a(b', parameter: {source: payload, name: ref}}
"#;

/// `value` compares the string form byte for byte: numbers as the digits sent, booleans as
/// `true`/`false`, case-sensitive.
#[test]
fn value_compares_the_string_form_exactly() {
    let s = Server::start(MATCHES);
    let mut checks = Checks::default();
    for (hook, body, expected) in [
        ("value", r#"{"branch":"Main"}"#, FIRED),
        ("value", r#"{"branch":"main"}"#, NOT_SATISFIED),
        ("value", r#"{"branch":"Main "}"#, NOT_SATISFIED),
        ("number", r#"{"count":42}"#, FIRED),
        ("number", r#"{"count":"42"}"#, FIRED),
        ("number", r#"{"count":42.0}"#, NOT_SATISFIED),
        ("number", r#"{"count":4.2e1}"#, NOT_SATISFIED),
        ("decimal", r#"{"price":1.50}"#, FIRED),
        ("decimal", r#"{"price":1.5}"#, NOT_SATISFIED),
        ("boolean", r#"{"draft":false}"#, FIRED),
        ("boolean", r#"{"draft":"false"}"#, FIRED),
        ("boolean", r#"{"draft":0}"#, NOT_SATISFIED),
        ("boolean", r#"{"draft":null}"#, NOT_SATISFIED),
    ] {
        let r = s.post(&format!("/hooks/{hook}"), "application/json", body);
        checks.answer(&format!("{hook} {body}"), &r, 200, expected);
    }
    checks.assert();
}

/// Go's `MatchString` is unanchored; an invalid pattern is a 500 only when a request reaches
/// it (warned at load).
#[test]
fn regex_is_unanchored_and_invalid_patterns_are_500() {
    let s = Server::start(MATCHES);
    let mut checks = Checks::default();
    for (hook, git_ref, status, expected) in [
        ("regex", "refs/heads/main", 200, FIRED),
        ("regex", "refs/heads/release-12", 200, FIRED),
        ("regex", "xheads/mainx", 200, FIRED),
        ("regex", "refs/heads/dev", 200, NOT_SATISFIED),
        ("anchored", "refs/heads/main", 200, FIRED),
        ("anchored", "refs/heads/main2", 200, NOT_SATISFIED),
        ("anchored", " refs/heads/main", 200, NOT_SATISFIED),
        ("invalid-regex", "ab", 500, RULE_ERROR),
    ] {
        let body = format!(r#"{{"ref":"{git_ref}"}}"#);
        let r = s.post(&format!("/hooks/{hook}"), "application/json", body);
        checks.answer(&format!("{hook} {git_ref}"), &r, status, expected);
    }
    // The parameter is read first: missing means "not satisfied", not 500.
    let r = s.post("/hooks/invalid-regex", "application/json", "{}");
    checks.answer("invalid-regex without ref", &r, 200, NOT_SATISFIED);
    checks.that(
        s.logs().contains("invalid regex"),
        "no load warning for the invalid regex",
    );
    checks.assert();
}

const SIGNATURES: &str = r#"
- &fired
  id: sha1
  execute-command: /bin/true
  response-message: fired
  trigger-rule:
    match: {type: payload-hmac-sha1, secret: s3cret, parameter: {source: header, name: x-hub-signature}}
- <<: *fired
  id: sha256
  trigger-rule:
    match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Hub-Signature-256}}
- <<: *fired
  id: sha512
  trigger-rule:
    match: {type: payload-hmac-sha512, secret: s3cret, parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: hash-sha1
  trigger-rule:
    match: {type: payload-hash-sha1, secret: s3cret, parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: hash-sha512
  trigger-rule:
    match: {type: payload-hash-sha512, secret: s3cret, parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: query-signature
  trigger-rule:
    match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: url, name: sig}}
- <<: *fired
  id: empty-secret
  trigger-rule:
    match: {type: payload-hmac-sha256, secret: "", parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: soft-or
  trigger-signature-soft-failures: true
  trigger-rule:
    or:
      - match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
      - match: {type: value, value: let-me-in, parameter: {source: url, name: token}}
- <<: *fired
  id: hard-or
  trigger-rule:
    or:
      - match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
      - match: {type: value, value: let-me-in, parameter: {source: url, name: token}}
- <<: *fired
  id: soft-and
  trigger-signature-soft-failures: true
  trigger-rule:
    and:
      - match: {type: value, value: let-me-in, parameter: {source: url, name: token}}
      - match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: soft-alone
  trigger-signature-soft-failures: true
  trigger-rule:
    match: {type: payload-hmac-sha256, secret: s3cret, parameter: {source: header, name: X-Signature}}
- <<: *fired
  id: soft-or-empty-secret
  trigger-signature-soft-failures: true
  trigger-rule:
    or:
      - match: {type: payload-hmac-sha256, secret: "", parameter: {source: header, name: X-Signature}}
      - match: {type: value, value: let-me-in, parameter: {source: url, name: token}}
"#;

const BODY: &str = r#"{"ref":"refs/heads/main","after":"c0ffee"}"#;

fn signed(s: &Server, path: &str, header: &str, value: &str, body: &str) -> (u16, String) {
    let r = s
        .request("POST", path)
        .header("Content-Type", "application/json")
        .header(header, value)
        .body(body)
        .send();
    (r.status, r.text())
}

/// Signature parsing as adnanh's `ExtractSignatures`: an optional `algo=` prefix for one value;
/// with a comma, only the parts starting exactly with the prefix (no trimming).
#[test]
fn hmac_signatures_parse_like_adnanh() {
    let s = Server::start(SIGNATURES);
    let sha1 = hmac_hex("sha1", b"s3cret", BODY.as_bytes());
    let sha256 = hmac_hex("sha256", b"s3cret", BODY.as_bytes());
    let sha512 = hmac_hex("sha512", b"s3cret", BODY.as_bytes());
    let fired = (200, FIRED.to_string());
    let error = (500, RULE_ERROR.to_string());
    let mut checks = Checks::default();
    let cases = [
        (
            "sha1 prefixed",
            "/hooks/sha1",
            "X-Hub-Signature",
            format!("sha1={sha1}"),
            &fired,
        ),
        (
            "sha1 bare",
            "/hooks/sha1",
            "X-Hub-Signature",
            sha1.clone(),
            &fired,
        ),
        (
            "sha1 upper-case hex",
            "/hooks/sha1",
            "X-Hub-Signature",
            sha1.to_uppercase(),
            &error,
        ),
        (
            "sha1 upper-case prefix",
            "/hooks/sha1",
            "X-Hub-Signature",
            format!("SHA1={sha1}"),
            &error,
        ),
        (
            "sha1 with sha256",
            "/hooks/sha1",
            "X-Hub-Signature",
            format!("sha1={sha256}"),
            &error,
        ),
        (
            "sha256 prefixed",
            "/hooks/sha256",
            "X-Hub-Signature-256",
            format!("sha256={sha256}"),
            &fired,
        ),
        (
            "sha256 bare",
            "/hooks/sha256",
            "X-Hub-Signature-256",
            sha256.clone(),
            &fired,
        ),
        (
            "sha256 list",
            "/hooks/sha256",
            "X-Hub-Signature-256",
            format!("sha256=00,sha256={sha256}"),
            &fired,
        ),
        (
            "sha256 list, match first",
            "/hooks/sha256",
            "X-Hub-Signature-256",
            format!("sha256={sha256},sha1={sha1}"),
            &fired,
        ),
        (
            "sha256 list with a space",
            "/hooks/sha256",
            "X-Hub-Signature-256",
            format!("a, sha256={sha256}"),
            &error,
        ),
        (
            "sha256 unprefixed in a list",
            "/hooks/sha256",
            "X-Hub-Signature-256",
            format!("{sha256},x"),
            &error,
        ),
        (
            "sha256 wrong prefix",
            "/hooks/sha256",
            "X-Hub-Signature-256",
            format!("sha512={sha256}"),
            &error,
        ),
        (
            "sha256 truncated",
            "/hooks/sha256",
            "X-Hub-Signature-256",
            sha256[..60].to_string(),
            &error,
        ),
        (
            "sha512 prefixed",
            "/hooks/sha512",
            "X-Signature",
            format!("sha512={sha512}"),
            &fired,
        ),
        (
            "sha512 bare",
            "/hooks/sha512",
            "X-Signature",
            sha512.clone(),
            &fired,
        ),
        (
            "sha512 of another secret",
            "/hooks/sha512",
            "X-Signature",
            hmac_hex("sha512", b"other", BODY.as_bytes()),
            &error,
        ),
        (
            "deprecated payload-hash-sha1",
            "/hooks/hash-sha1",
            "X-Signature",
            format!("sha1={sha1}"),
            &fired,
        ),
        (
            "deprecated payload-hash-sha512",
            "/hooks/hash-sha512",
            "X-Signature",
            sha512.clone(),
            &fired,
        ),
        (
            "empty secret",
            "/hooks/empty-secret",
            "X-Signature",
            hmac_hex("sha256", b"", BODY.as_bytes()),
            &error,
        ),
    ];
    for (label, path, header, value, expected) in &cases {
        let got = signed(&s, path, header, value, BODY);
        checks.that(
            &got == *expected,
            format!("{label}: expected {expected:?}, got {got:?}"),
        );
    }
    // The signature may come from any source, e.g. the query string.
    let r = s
        .request(
            "POST",
            &format!("/hooks/query-signature?sig=sha256={sha256}"),
        )
        .header("Content-Type", "application/json")
        .body(BODY)
        .send();
    checks.answer("signature in the query", &r, 200, FIRED);
    // A missing signature header is a missing parameter: not satisfied, not 500.
    let r = s.post("/hooks/sha256", "application/json", BODY);
    checks.answer("no signature", &r, 200, NOT_SATISFIED);
    // An empty body is signed too.
    let empty = hmac_hex("sha256", b"s3cret", b"");
    let r = s
        .request("POST", "/hooks/sha256")
        .header("X-Hub-Signature-256", &format!("sha256={empty}"))
        .send();
    checks.answer("empty body", &r, 200, FIRED);
    // One changed byte in the body fails.
    let tampered = BODY.replace("c0ffee", "c0ffef");
    let got = signed(
        &s,
        "/hooks/sha256",
        "X-Hub-Signature-256",
        &sha256,
        &tampered,
    );
    checks.that(got == error, format!("tampered body: got {got:?}"));
    checks.that(
        s.logs().contains("`payload-hash-sha1` is deprecated"),
        "no deprecation warning at load",
    );
    checks.that(
        s.wait_for_log(
            "use of deprecated option payload-hash-sha1",
            Duration::from_secs(2),
        ),
        "no deprecation warning at use",
    );
    // The log lists what the client sent, never the signature that was expected.
    let expected_for_tampered = hmac_hex("sha256", b"s3cret", tampered.as_bytes());
    checks.that(
        !s.logs().contains(&expected_for_tampered),
        "the log reveals the expected signature",
    );
    checks.assert();
}

/// `trigger-signature-soft-failures` forgives a bad signature inside an `or` only; alone or
/// inside an `and` it is still a 500, and an empty secret is never forgiven.
#[test]
fn soft_signature_failures_only_count_inside_or() {
    let s = Server::start(SIGNATURES);
    let good = hmac_hex("sha256", b"s3cret", BODY.as_bytes());
    let mut checks = Checks::default();
    for (path, signature, status, body) in [
        ("/hooks/soft-or?token=let-me-in", "bad", 200, FIRED),
        ("/hooks/soft-or?token=wrong", "bad", 200, NOT_SATISFIED),
        ("/hooks/soft-or", good.as_str(), 200, FIRED),
        ("/hooks/hard-or?token=let-me-in", "bad", 500, RULE_ERROR),
        ("/hooks/soft-and?token=let-me-in", "bad", 500, RULE_ERROR),
        ("/hooks/soft-and?token=let-me-in", good.as_str(), 200, FIRED),
        ("/hooks/soft-alone", "bad", 500, RULE_ERROR),
        (
            "/hooks/soft-or-empty-secret?token=let-me-in",
            "bad",
            500,
            RULE_ERROR,
        ),
    ] {
        let got = signed(&s, path, "X-Signature", signature, BODY);
        checks.that(
            got == (status, body.to_string()),
            format!("{path} with {signature:.8}: expected {status} {body:?}, got {got:?}"),
        );
    }
    checks.assert();
}

const IP_RANGES: &str = r#"
- &fired
  id: loopback-cidr
  execute-command: /bin/true
  response-message: fired
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "127.0.0.0/8"}
- <<: *fired
  id: other-networks
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "10.0.0.0/8   192.168.1.0/24"}
- <<: *fired
  id: bare-ipv4
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "192.0.2.1 127.0.0.1"}
- <<: *fired
  id: host-bits
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "127.0.0.99/24"}
- <<: *fired
  id: invalid
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "127.0.0.0/8 300.1.1.1"}
- <<: *fired
  id: ignores-parameter
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "127.0.0.1", parameter: {source: header, name: X-Missing}}
- <<: *fired
  id: ipv6-bare-unspecified
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "::"}
- <<: *fired
  id: ipv6-bare-loopback
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "::1"}
- <<: *fired
  id: ipv6-cidr
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "::/64"}
- <<: *fired
  id: forwarded
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "203.0.113.0/24"}
"#;

/// The TCP peer against CIDRs and bare addresses (a bare IPv4 address is a /32); an invalid
/// entry is a 500 when reached; `X-Forwarded-For` is ignored.
#[test]
fn ip_whitelist_over_ipv4() {
    let s = Server::start(IP_RANGES);
    let mut checks = Checks::default();
    for (path, status, body) in [
        ("/hooks/loopback-cidr", 200, FIRED),
        ("/hooks/other-networks", 200, NOT_SATISFIED),
        ("/hooks/bare-ipv4", 200, FIRED),
        ("/hooks/host-bits", 200, FIRED),
        ("/hooks/invalid", 200, FIRED),
        ("/hooks/ignores-parameter", 200, FIRED),
        ("/hooks/ipv6-cidr", 200, NOT_SATISFIED),
        ("/hooks/ipv6-bare-loopback", 200, NOT_SATISFIED),
    ] {
        checks.answer(path, &s.get(path), status, body);
    }
    // Entries are read in order: the invalid one is only reached when nothing before matched.
    let s2 = Server::start(
        r#"
- id: invalid-first
  execute-command: /bin/true
  trigger-rule:
    match: {type: ip-whitelist, ip-range: "300.1.1.1 127.0.0.1"}
"#,
    );
    let r = s2.get("/hooks/invalid-first");
    checks.answer("invalid first", &r, 500, RULE_ERROR);
    checks.that(
        s2.logs().contains("invalid CIDR address: 300.1.1.1"),
        "no load warning for the invalid entry",
    );
    let r = s
        .request("GET", "/hooks/forwarded")
        .header("X-Forwarded-For", "203.0.113.7")
        .header("X-Real-Ip", "203.0.113.7")
        .send();
    checks.answer("X-Forwarded-For is not the peer", &r, 200, NOT_SATISFIED);
    checks.assert();
}

/// Divergence (README): a bare IPv6 address means that one address, where adnanh appends `/32`
/// and so allows a whole network (`::` would then cover `::1`).
#[test]
fn ip_whitelist_bare_ipv6_means_one_address() {
    let s = Server::builder(IP_RANGES).args(&["-ip", "[::1]"]).start();
    assert!(s.addr().is_ipv6());
    let mut checks = Checks::default();
    for (path, status, body) in [
        ("/hooks/ipv6-bare-unspecified", 200, NOT_SATISFIED),
        ("/hooks/ipv6-bare-loopback", 200, FIRED),
        ("/hooks/ipv6-cidr", 200, FIRED),
        ("/hooks/loopback-cidr", 200, NOT_SATISFIED),
    ] {
        checks.answer(path, &s.get(path), status, body);
    }
    checks.that(
        s.logs()
            .contains("bare IPv6 address `::` allows that one address"),
        format!("no load warning:\n{}", s.logs()),
    );
    checks.assert();
}

const SCALR: &str = r#"
- id: scalr
  execute-command: /bin/true
  response-message: fired
  trigger-rule:
    match: {type: scalr-signature, secret: s3cret}
- id: scalr-soft
  execute-command: /bin/true
  response-message: fired
  trigger-signature-soft-failures: true
  trigger-rule:
    or:
      - match: {type: scalr-signature, secret: s3cret}
      - match: {type: value, value: "1", parameter: {source: url, name: fallback}}
"#;

/// Scalr: `X-Signature` = HMAC-SHA1(secret, body ‖ Date); the date within ±300 s.
#[test]
fn scalr_signature_checks_body_date_and_freshness() {
    let s = Server::start(SCALR);
    let body = r#"{"eventName":"HostUp"}"#;
    let sign = |date: &str| hmac_hex("sha1", b"s3cret", format!("{body}{date}").as_bytes());
    let send = |path: &str, date: Option<&str>, signature: Option<String>| {
        let mut r = s
            .request("POST", path)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(date) = date {
            r = r.header("Date", date);
        }
        if let Some(signature) = signature {
            r = r.header("X-Signature", &signature);
        }
        r.send()
    };
    let mut checks = Checks::default();
    let now = scalr_date(0);
    let recent = scalr_date(-200);
    let stale = scalr_date(-400);
    let future = scalr_date(400);
    checks.answer(
        "fresh",
        &send("/hooks/scalr", Some(&now), Some(sign(&now))),
        200,
        FIRED,
    );
    checks.answer(
        "200 s old",
        &send("/hooks/scalr", Some(&recent), Some(sign(&recent))),
        200,
        FIRED,
    );
    checks.answer(
        "400 s old",
        &send("/hooks/scalr", Some(&stale), Some(sign(&stale))),
        500,
        RULE_ERROR,
    );
    checks.answer(
        "400 s ahead",
        &send("/hooks/scalr", Some(&future), Some(sign(&future))),
        500,
        RULE_ERROR,
    );
    checks.answer(
        "signed for another date",
        &send("/hooks/scalr", Some(&now), Some(sign(&recent))),
        500,
        RULE_ERROR,
    );
    checks.answer(
        "no signature",
        &send("/hooks/scalr", Some(&now), None),
        200,
        NOT_SATISFIED,
    );
    checks.answer(
        "no date",
        &send("/hooks/scalr", None, Some(sign(&now))),
        200,
        NOT_SATISFIED,
    );
    let rfc1123 = "Mon, 02 Jan 2006 15:04:05 GMT";
    checks.answer(
        "unparsable date",
        &send("/hooks/scalr", Some(rfc1123), Some(sign(rfc1123))),
        500,
        RULE_ERROR,
    );
    // Stale and mismatched signatures are signature failures: forgiven inside a soft `or`.
    checks.answer(
        "stale, soft or",
        &send(
            "/hooks/scalr-soft?fallback=1",
            Some(&stale),
            Some(sign(&stale)),
        ),
        200,
        FIRED,
    );
    checks.assert();
}
