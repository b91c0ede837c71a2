//! Security end to end: every signature preset through the real server, secrets by reference,
//! deduplication across a restart, the client IP behind proxies, rate limits and the limits on
//! hostile bodies and slow clients.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use hookwire::pipeline::signature::preset::{self, Provider};
use hookwire::secret::Secret;

use crate::harness::{Request, Response, Server, wait_until};

// ---------------------------------------------------------------------------------------------
// Presets.

/// One provider as the tests drive it.
struct Case {
    /// The hook id, also passed to the command so records say which hook ran.
    id: &'static str,
    /// `signature:` in the hook, after `signature: `.
    signature: String,
    provider: Provider,
    /// What signs a valid delivery, and what signs with the wrong key.
    sign_key: String,
    wrong_key: String,
    /// Whether timestamps outside the tolerance are refused.
    timestamped: bool,
    /// Whether the signature covers the body (GitLab's plain token does not).
    covers_body: bool,
}

fn ed25519(seed: u8) -> (String, [u8; 32]) {
    let key = SigningKey::from_bytes(&[seed; 32]);
    (hex::encode(key.to_bytes()), key.verifying_key().to_bytes())
}

fn whsk(seed: u8) -> String {
    format!("whsk_{}", STANDARD.encode([seed; 32]))
}

const SW_HMAC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_HMAC_OTHER: &str = "whsec_c2Vjb25kIGtleSBmb3IgdGVzdHM=";

fn cases() -> Vec<Case> {
    let hmac = |id: &'static str, provider: Provider, name: &str, secret: &str| Case {
        id,
        signature: format!("{{provider: {name}, secret: \"{secret}\"}}"),
        provider,
        sign_key: secret.into(),
        wrong_key: format!("{secret}-wrong"),
        timestamped: false,
        covers_body: true,
    };
    let (discord_seed, discord_public) = ed25519(7);
    let (discord_other, _) = ed25519(8);
    let sw_public = SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes();
    let mut cases = vec![
        hmac("github", Provider::Github, "github", "gh-secret"),
        Case {
            covers_body: false,
            ..hmac("gitlab", Provider::Gitlab, "gitlab", "gl-token")
        },
        hmac("gitea", Provider::Gitea, "gitea", "gitea-secret"),
        hmac("gogs", Provider::Gogs, "gogs", "gogs-secret"),
        hmac("bitbucket", Provider::Bitbucket, "bitbucket", "bb-secret"),
        hmac("shopify", Provider::Shopify, "shopify", "shop-secret"),
        hmac("sentry", Provider::Sentry, "sentry", "sentry-secret"),
        hmac("linear", Provider::Linear, "linear", "lin-secret"),
        Case {
            timestamped: true,
            ..hmac("stripe", Provider::Stripe, "stripe", "whsec_stripe")
        },
        Case {
            timestamped: true,
            ..hmac("slack", Provider::Slack, "slack", "slack-secret")
        },
        Case {
            wrong_key: SW_HMAC_OTHER.into(),
            timestamped: true,
            ..hmac(
                "standard",
                Provider::StandardWebhooks,
                "standard-webhooks",
                SW_HMAC,
            )
        },
        Case {
            wrong_key: SW_HMAC_OTHER.into(),
            timestamped: true,
            ..hmac("gitlab-signed", Provider::Gitlab, "gitlab", SW_HMAC)
        },
        Case {
            id: "standard-v1a",
            signature: format!(
                "{{provider: svix, secret: \"whpk_{}\"}}",
                STANDARD.encode(sw_public)
            ),
            provider: Provider::StandardWebhooks,
            sign_key: whsk(9),
            wrong_key: whsk(10),
            timestamped: true,
            covers_body: true,
        },
        Case {
            id: "discord",
            signature: format!(
                "{{provider: discord, secret: \"{}\"}}",
                hex::encode(discord_public)
            ),
            provider: Provider::Discord,
            sign_key: discord_seed,
            wrong_key: discord_other,
            timestamped: true,
            covers_body: true,
        },
    ];
    let generic = preset::GenericScheme {
        header: "X-Signature".into(),
        algorithm: hookwire::pipeline::signature::HmacAlgorithm::Sha512,
        encoding: preset::Encoding::Base64,
        prefix: "sha512=".into(),
    };
    cases.push(Case {
        signature: "{provider: generic, secret: gen-secret, header: X-Signature, algorithm: sha512, encoding: base64, prefix: sha512=}".into(),
        ..hmac("generic", Provider::Generic(generic), "generic", "gen-secret")
    });
    cases
}

fn hooks_for(cases: &[Case]) -> String {
    cases
        .iter()
        .map(|case| {
            format!(
                "- id: {id}\n  execute-command: {{fixtures}}/record.sh\n  pass-arguments-to-command: [{{source: string, name: {id}}}]\n  signature: {signature}\n",
                id = case.id,
                signature = case.signature
            )
        })
        .collect()
}

/// A body the provider would send: Linear's carries its timestamp, Discord's an interaction.
fn body_for(provider: &Provider, at: SystemTime) -> Vec<u8> {
    let millis = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    match provider {
        Provider::Linear => format!(r#"{{"action":"create","webhookTimestamp":{millis}}}"#),
        Provider::Discord => r#"{"type":2,"id":"1234"}"#.into(),
        _ => r#"{"action":"opened","id":"evt_1"}"#.into(),
    }
    .into_bytes()
}

/// The headers `case`'s provider sends for `body`, signed with `key` at `at`.
fn sign(case: &Case, key: &str, body: &[u8], at: SystemTime) -> Vec<(String, String)> {
    preset::sign(&case.provider, &Secret::new(key), body, at, "delivery-1")
        .unwrap_or_else(|e| panic!("{}: cannot sign: {e}", case.id))
}

/// Posts `body` with `headers` to `case`'s hook.
fn deliver(s: &Server, case: &Case, headers: &[(String, String)], body: &[u8]) -> Response {
    let mut request = s
        .request("POST", &format!("/hooks/{}", case.id))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send()
}

/// Signs and posts in one go; `edit` may change the headers first.
fn signed(
    s: &Server,
    case: &Case,
    key: &str,
    body: &[u8],
    at: SystemTime,
    edit: impl Fn(&mut Vec<(String, String)>),
) -> Response {
    let mut headers = sign(case, key, body, at);
    edit(&mut headers);
    deliver(s, case, &headers, body)
}

fn assert_refused(response: &Response, what: &str) {
    assert_eq!(
        (response.status, response.text().as_str()),
        (401, "Signature verification failed."),
        "{what}"
    );
}

#[test]
fn every_preset_verifies_and_refuses_end_to_end() {
    let cases = cases();
    let s = Server::start(&hooks_for(&cases));
    let now = SystemTime::now();
    let ten_minutes = Duration::from_secs(600);
    let mut runs = 0;
    for case in &cases {
        let body = body_for(&case.provider, now);
        let r = signed(&s, case, &case.sign_key, &body, now, |_| {});
        assert_eq!(r.status, 200, "{}: valid delivery: {}", case.id, r.text());
        runs += 1;
        let records = s.wait_for_records(runs);
        assert_eq!(records.len(), runs, "{}: the valid delivery ran", case.id);

        if case.covers_body {
            let mut tampered = body.clone();
            tampered.insert(1, b' ');
            assert_refused(
                &deliver(&s, case, &sign(case, &case.sign_key, &body, now), &tampered),
                &format!("{}: tampered body", case.id),
            );
        }
        assert_refused(
            &signed(&s, case, &case.wrong_key, &body, now, |_| {}),
            &format!("{}: wrong secret", case.id),
        );
        assert_refused(
            &signed(&s, case, &case.sign_key, &body, now, Vec::clear),
            &format!("{}: no signature headers", case.id),
        );
        assert_refused(
            &signed(&s, case, &case.sign_key, &body, now, |headers| {
                headers.iter_mut().for_each(|(_, value)| value.clear());
            }),
            &format!("{}: empty signature headers", case.id),
        );
        if case.timestamped {
            for at in [now - ten_minutes, now + ten_minutes] {
                let body = body_for(&case.provider, at);
                assert_refused(
                    &signed(&s, case, &case.sign_key, &body, at, |_| {}),
                    &format!("{}: timestamp {at:?}", case.id),
                );
            }
        }
        if case.provider == Provider::Linear {
            // Signed now, but the body's own timestamp is two minutes old.
            let stale = body_for(&case.provider, now - Duration::from_secs(120));
            assert_refused(
                &signed(&s, case, &case.sign_key, &stale, now, |_| {}),
                "linear: stale webhookTimestamp",
            );
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.records().len(), runs, "a refused delivery ran");
    let logs = s.logs();
    assert!(
        logs.contains(
            "signature check of github failed: X-Hub-Signature-256 matches no configured secret"
        ),
        "the log says which check failed:\n{logs}"
    );
    assert!(logs.contains("outside the tolerance"), "{logs}");
    for case in &cases {
        for key in [&case.sign_key, &case.wrong_key] {
            assert!(
                !logs.contains(key.as_str()),
                "{}: a secret reached the log",
                case.id
            );
        }
    }
}

#[test]
fn the_signature_is_checked_before_the_body_is_parsed() {
    let s = Server::start(
        "- id: deploy\n  execute-command: {fixtures}/record.sh\n  signature: {provider: github, secret: s3cret}\n",
    );
    let case = Case {
        id: "deploy",
        signature: String::new(),
        provider: Provider::Github,
        sign_key: String::new(),
        wrong_key: String::new(),
        timestamped: false,
        covers_body: true,
    };
    let broken = b"{\"unterminated";
    assert_refused(
        &signed(&s, &case, "wrong", broken, SystemTime::now(), |_| {}),
        "an unsigned broken body is a 401, not a 400",
    );
    let r = signed(&s, &case, "s3cret", broken, SystemTime::now(), |_| {});
    assert_eq!(r.status, 400, "a signed broken body is the sender's bug");
}

#[test]
fn rotation_accepts_either_secret_and_several_signatures() {
    let s = Server::start(
        "- id: rotating\n  execute-command: {fixtures}/record.sh\n  signature: {provider: stripe, secret: [whsec_old, whsec_new]}\n",
    );
    let case = Case {
        id: "rotating",
        signature: String::new(),
        provider: Provider::Stripe,
        sign_key: String::new(),
        wrong_key: String::new(),
        timestamped: true,
        covers_body: true,
    };
    let now = SystemTime::now();
    let body = body_for(&Provider::Stripe, now);
    for key in ["whsec_old", "whsec_new"] {
        assert_eq!(
            signed(&s, &case, key, &body, now, |_| {}).status,
            200,
            "{key}"
        );
    }
    assert_refused(
        &signed(&s, &case, "whsec_other", &body, now, |_| {}),
        "unknown key",
    );
    // Stripe sends one v1 per active secret during its own rotation: any may match.
    let r = signed(&s, &case, "whsec_new", &body, now, |headers| {
        let value = &mut headers[0].1;
        *value = value.replace(",v1=", ",v1=00ff,v1=");
    });
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.wait_for_records(3).len(), 3);
}

#[test]
fn discord_pings_are_answered_without_running_anything() {
    let (seed, public) = ed25519(7);
    let s = Server::start(&format!(
        "- id: interactions\n  execute-command: {{fixtures}}/record.sh\n  signature: {{provider: discord, secret: \"{}\"}}\n",
        hex::encode(public)
    ));
    let case = Case {
        id: "interactions",
        signature: String::new(),
        provider: Provider::Discord,
        sign_key: seed.clone(),
        wrong_key: String::new(),
        timestamped: true,
        covers_body: true,
    };
    let now = SystemTime::now();
    let r = signed(&s, &case, &seed, br#"{"type":1}"#, now, |_| {});
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"type":1}"#));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    // An unsigned PING is refused like anything else.
    let r = s.post("/hooks/interactions", "application/json", r#"{"type":1}"#);
    assert_eq!(r.status, 401);
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.records().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Secrets.

fn github_delivery(s: &Server, hook: &str, secret: &str, id: &str) -> Response {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let headers = preset::sign(
        &Provider::Github,
        &Secret::new(secret),
        body,
        SystemTime::now(),
        id,
    )
    .unwrap();
    let mut request = s
        .request("POST", &format!("/hooks/{hook}"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    request.send()
}

#[test]
fn secrets_from_env_file_and_credential() {
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("gh.secret"), "from-file\n").unwrap();
    std::fs::write(secrets.path().join("github"), "from-credential\n").unwrap();
    let hooks = format!(
        "- id: env\n  execute-command: {{fixtures}}/record.sh\n  signature: {{provider: github, secret: {{env: HOOKWIRE_GH}}}}\n\
         - id: file\n  execute-command: {{fixtures}}/record.sh\n  signature: {{provider: github, secret: {{file: {dir}/gh.secret}}}}\n\
         - id: credential\n  execute-command: {{fixtures}}/record.sh\n  signature: {{provider: github, secret: {{credential: github}}}}\n\
         - id: rule\n  execute-command: {{fixtures}}/record.sh\n  trigger-rule:\n    match: {{type: payload-hmac-sha256, secret: {{env: HOOKWIRE_GH}}, parameter: {{source: header, name: X-Hub-Signature-256}}}}\n",
        dir = secrets.path().display()
    );
    let s = Server::builder(&hooks)
        .env("HOOKWIRE_GH", "from-env")
        .env(
            "CREDENTIALS_DIRECTORY",
            &secrets.path().display().to_string(),
        )
        .start();
    for (hook, secret) in [
        ("env", "from-env"),
        ("file", "from-file"),
        ("credential", "from-credential"),
        ("rule", "from-env"),
    ] {
        assert_eq!(github_delivery(&s, hook, secret, "1").status, 200, "{hook}");
        let wrong = github_delivery(&s, hook, "wrong", "1");
        assert_ne!(wrong.status, 200, "{hook} with the wrong secret");
    }
    assert_eq!(s.wait_for_records(4).len(), 4);
    let logs = s.logs();
    for secret in ["from-env", "from-file", "from-credential"] {
        assert!(!logs.contains(secret), "{secret} reached the log");
    }
}

const MISSING_SECRET_HOOKS: &str = "- id: deploy\n  execute-command: {fixtures}/record.sh\n  signature:\n    provider: github\n    secret: [inline-secret-value, {env: HOOKWIRE_MISSING_SECRET}]\n";

#[test]
fn a_missing_secret_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks.yaml");
    std::fs::write(
        &hooks,
        crate::harness::expand(MISSING_SECRET_HOOKS, dir.path()),
    )
    .unwrap();
    // Without -verbose, as adnanh: no hooks loaded is fatal.
    let output = Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .arg("-hooks")
        .arg(&hooks)
        .args(["-ip", "127.0.0.1", "-port", "0"])
        .env_remove("HOOKWIRE_MISSING_SECRET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("hooks.yaml:5:") && text.contains("hook `deploy`: `signature.secret[1]`"),
        "{text}"
    );
    assert!(
        text.contains("environment variable HOOKWIRE_MISSING_SECRET is not set"),
        "{text}"
    );
    assert!(!text.contains("inline-secret-value"), "{text}");

    // With -verbose the server runs, but without the hook: nothing is served unverified.
    let s = Server::start(MISSING_SECRET_HOOKS);
    assert_eq!(
        s.post("/hooks/deploy", "application/json", "{}").status,
        404
    );
}

#[test]
fn a_secret_gone_missing_on_reload_keeps_the_old_hooks() {
    let good = "- id: deploy\n  execute-command: {fixtures}/record.sh\n  signature: {provider: github, secret: {env: HOOKWIRE_GH}}\n";
    let s = Server::builder(good).env("HOOKWIRE_GH", "s3cret").start();
    assert_eq!(github_delivery(&s, "deploy", "s3cret", "1").status, 200);
    s.replace_hooks(
        "- id: deploy\n  execute-command: {fixtures}/record.sh\n  signature: {provider: github, secret: {env: HOOKWIRE_GONE}}\n",
    );
    s.signal("HUP");
    assert!(s.wait_for_log(
        "environment variable HOOKWIRE_GONE is not set",
        Duration::from_secs(10)
    ));
    assert!(s.logs().contains("keeping the 1 hook(s) loaded before"));
    assert_eq!(github_delivery(&s, "deploy", "s3cret", "2").status, 200);
    assert_eq!(s.wait_for_records(2).len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Dedupe.

#[test]
fn a_redelivery_after_a_restart_runs_nothing() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("state");
    let hooks = "- id: deploy\n  execute-command: {fixtures}/record.sh\n  dedupe: 1h\n  signature: {provider: github, secret: s3cret}\n\
                 - id: explicit\n  execute-command: {fixtures}/record.sh\n  dedupe: 1h\n  delivery-id: {source: payload, name: ref}\n";
    let start = || {
        Server::builder(hooks)
            .args(&["-state-dir", &state_dir.display().to_string()])
            .start()
    };
    let first_run = {
        let s = start();
        let r = github_delivery(&s, "deploy", "s3cret", "delivery-a");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("X-Hookwire-Duplicate"), None);
        let run = r.header("X-Hookwire-Run").expect("a run id").to_owned();
        // A repeat while the first server runs.
        let again = github_delivery(&s, "deploy", "s3cret", "delivery-a");
        assert_eq!(again.header("X-Hookwire-Duplicate"), Some(run.as_str()));
        let r = s.post("/hooks/explicit", "application/json", r#"{"ref":"x"}"#);
        assert_eq!(r.status, 200);
        assert_eq!(s.wait_for_records(2).len(), 2);
        run
    };
    let mode = std::fs::metadata(state_dir.join("hookwire.db"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap();
    assert_eq!(mode, 0o600);

    let s = start();
    let r = github_delivery(&s, "deploy", "s3cret", "delivery-a");
    assert_eq!(
        (r.status, r.header("X-Hookwire-Duplicate")),
        (200, Some(first_run.as_str())),
        "{}",
        r.text()
    );
    assert_eq!(r.header("X-Hookwire-Run"), None);
    let r = s.post("/hooks/explicit", "application/json", r#"{"ref":"x"}"#);
    assert!(r.header("X-Hookwire-Duplicate").is_some());
    // A new delivery id runs.
    let r = github_delivery(&s, "deploy", "s3cret", "delivery-b");
    assert_eq!((r.status, r.header("X-Hookwire-Duplicate")), (200, None));
    assert_eq!(s.wait_for_records(1).len(), 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.records().len(), 1, "a duplicate ran");
}

// ---------------------------------------------------------------------------------------------
// Client IP.

const WHITELIST: &str = "- id: office\n  execute-command: {fixtures}/record.sh\n  pass-arguments-to-command: [{source: request, name: remote-addr}]\n  trigger-rule:\n    match: {type: ip-whitelist, ip-range: 198.51.100.0/24}\n";

#[test]
fn forwarded_for_is_honoured_behind_a_trusted_proxy() {
    let s = Server::builder(WHITELIST)
        .args(&["-trusted-proxies", "127.0.0.1,10.0.0.0/8"])
        .start();
    let r = s
        .request("POST", "/hooks/office")
        .header("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.0.0.3")
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.wait_for_records(1)[0].args, ["198.51.100.7:0"]);
    assert!(
        s.logs()
            .contains("request from 198.51.100.7:0 via 127.0.0.1:")
    );
    // A client forging an allowed address to the left of its own is not believed.
    let r = s
        .request("POST", "/hooks/office")
        .header("X-Forwarded-For", "198.51.100.7, 203.0.113.5")
        .send();
    assert_eq!(r.text(), "Hook rules were not satisfied.");
}

#[test]
fn forwarded_for_from_an_untrusted_client_is_ignored() {
    let s = Server::start(WHITELIST);
    let r = s
        .request("POST", "/hooks/office")
        .header("X-Forwarded-For", "198.51.100.7")
        .send();
    assert_eq!(r.text(), "Hook rules were not satisfied.");
    let s = Server::builder(WHITELIST)
        .args(&["-trusted-proxies", "10.0.0.0/8"])
        .start();
    let r = s
        .request("POST", "/hooks/office")
        .header("X-Forwarded-For", "198.51.100.7")
        .send();
    assert_eq!(r.text(), "Hook rules were not satisfied.");
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.records().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Rate limits and body limits.

#[test]
fn rate_limits_answer_429_then_recover() {
    let s = Server::start(
        "- id: limited\n  execute-command: {fixtures}/record.sh\n  rate-limit: {requests: 2, per: 2s}\n",
    );
    assert_eq!(s.post("/hooks/limited", "text/plain", "").status, 200);
    assert_eq!(s.post("/hooks/limited", "text/plain", "").status, 200);
    let r = s.post("/hooks/limited", "text/plain", "");
    assert_eq!((r.status, r.text().as_str()), (429, "Too many requests."));
    assert_eq!(r.header("Retry-After"), Some("1"));
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(s.post("/hooks/limited", "text/plain", "").status, 200);
    assert_eq!(s.wait_for_records(3).len(), 3);
}

fn multipart(parts: usize) -> Vec<u8> {
    let mut body = String::new();
    for i in 0..parts {
        body.push_str(&format!(
            "--XX\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv{i}\r\n"
        ));
    }
    body.push_str("--XX--\r\n");
    body.into_bytes()
}

#[test]
fn multipart_part_count_is_limited() {
    let s = Server::builder(
        "- id: form\n  execute-command: {fixtures}/record.sh\n  pass-arguments-to-command: [{source: payload, name: f0}]\n",
    )
    .args(&["-max-multipart-parts", "3"])
    .start();
    let content_type = "multipart/form-data; boundary=XX";
    assert_eq!(
        s.post("/hooks/form", content_type, multipart(3)).status,
        200
    );
    let r = s.post("/hooks/form", content_type, multipart(4));
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "The request body has too many parts.")
    );
    let s = Server::start("- id: form\n  execute-command: {fixtures}/record.sh\n");
    assert_eq!(
        s.post("/hooks/form", content_type, multipart(100)).status,
        200
    );
    assert_eq!(
        s.post("/hooks/form", content_type, multipart(101)).status,
        400
    );
}

#[test]
fn json_depth_follows_the_flag() {
    let s = Server::builder("- id: json\n  execute-command: {fixtures}/record.sh\n")
        .args(&["-max-json-depth", "5"])
        .start();
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(
        s.post("/hooks/json", "application/json", nested(5)).status,
        200
    );
    let r = s.post("/hooks/json", "application/json", nested(6));
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "The request body is nested too deeply.")
    );
    assert_eq!(s.wait_for_records(1).len(), 1);
}

/// The server's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Writes a chunked body of `total` bytes in 64 KiB chunks, stopping when the server closes.
fn send_chunked(addr: std::net::SocketAddr, total: usize) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _ = stream.write_all(
        b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let ok = stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|()| stream.write_all(&chunk))
            .and_then(|()| stream.write_all(b"\r\n"));
        if ok.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned()
}

#[test]
fn oversized_bodies_are_refused_while_streaming() {
    let s = Server::builder("- id: open\n  execute-command: {fixtures}/record.sh\n")
        .args(&["-max-body-size", "1048576"])
        .start();
    // Send more than the limit, then stall without ending the body: the 413 must come now,
    // not when the body ends (it never does).
    let mut stream = TcpStream::connect(s.addr()).unwrap();
    stream
        .write_all(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..17 {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .unwrap();
        stream.write_all(&chunk).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .expect("an answer before the body ends");
    assert_eq!(&head, b"HTTP/1.1 413");

    // Many oversized bodies at once, memory watched, while others are served.
    let pid = s.pid();
    let before = rss_kib(pid);
    let addr = s.addr();
    let senders: Vec<_> = (0..16)
        .map(|_| std::thread::spawn(move || send_chunked(addr, 8 * 1024 * 1024)))
        .collect();
    let mut peak = before;
    let started = Instant::now();
    while senders.iter().any(|t| !t.is_finished()) && started.elapsed() < Duration::from_secs(30) {
        peak = peak.max(rss_kib(pid));
        assert_eq!(s.get("/").text(), "OK", "another client was not served");
        std::thread::sleep(Duration::from_millis(50));
    }
    for sender in senders {
        let answer = sender.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    // 16 bodies of 8 MiB would be 128 MiB if buffered; each is cut at 1 MiB.
    assert!(
        peak - before < 48 * 1024,
        "RSS grew from {before} KiB to {peak} KiB"
    );
    assert!(s.records().is_empty());
}

#[test]
fn slow_clients_are_cut_off_with_bounded_memory() {
    let s = Server::builder("- id: open\n  execute-command: {fixtures}/record.sh\n")
        .args(&["-read-timeout", "3"])
        .start();
    let pid = s.pid();
    let before = rss_kib(pid);
    let addr = s.addr();
    // Clients sending one byte a second: half in the headers, half in the body.
    let slow: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                let head: &[u8] = if i % 2 == 0 {
                    b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nX-Slow: "
                } else {
                    b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                };
                stream.write_all(head).unwrap();
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(10) {
                    if stream.write_all(b"a").is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut raw = Vec::new();
                let _ = stream.read_to_end(&mut raw);
                (
                    started.elapsed(),
                    String::from_utf8_lossy(&raw).into_owned(),
                )
            })
        })
        .collect();
    let mut peak = before;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        peak = peak.max(rss_kib(pid));
        let r = Request::new(addr, "POST", "/hooks/open").send();
        assert_eq!(r.status, 200, "a normal client waited behind slow ones");
        std::thread::sleep(Duration::from_millis(200));
    }
    for (i, client) in slow.into_iter().enumerate() {
        let (elapsed, answer) = client.join().unwrap();
        assert!(
            elapsed < Duration::from_secs(9),
            "client {i} was not cut off: {elapsed:?}"
        );
        if i % 2 == 1 {
            assert!(answer.starts_with("HTTP/1.1 408"), "client {i}: {answer}");
        }
    }
    assert!(
        peak - before < 32 * 1024,
        "RSS grew from {before} KiB to {peak} KiB"
    );
    assert!(wait_until(Duration::from_secs(5), || s.records().len() >= 5));
    assert_eq!(s.get("/").text(), "OK");
}
