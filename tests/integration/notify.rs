//! Notifications (`notify:`): a receiver in the test records what hookwire POSTs (JSON, Slack,
//! Discord bodies, over HTTP and HTTPS), a notification command records its variables, and
//! failures are retried, counted in `/-/metrics` and never hold a run back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::harness::{Server, fixtures, wait_until};

const WAIT: Duration = Duration::from_secs(20);

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    content_type: String,
    body: serde_json::Value,
}

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Reads the request and never answers.
    Never,
}

/// An HTTP receiver on loopback, recording every request; with `tls`, it speaks HTTPS with the
/// fixture certificate for `localhost` and `127.0.0.1`.
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(answer: Answer, tls: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let config = tls.then(server_tls);
        let record = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let record = record.clone();
                let config = config.clone();
                std::thread::spawn(move || match config {
                    Some(config) => {
                        let connection = rustls::ServerConnection::new(config).unwrap();
                        let mut tls = rustls::StreamOwned::new(connection, stream);
                        serve(&mut tls, answer, &record);
                    }
                    None => {
                        let mut stream = stream;
                        serve(&mut stream, answer, &record);
                    }
                });
            }
        });
        Self { addr, received }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn wait_for(&self, count: usize) -> Vec<Received> {
        wait_until(WAIT, || self.received().len() >= count);
        self.received()
    }
}

fn server_tls() -> Arc<rustls::ServerConfig> {
    let tls = fixtures().join("tls");
    let cert = CertificateDer::from_pem_file(tls.join("cert.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_file(tls.join("key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    )
}

/// Reads one request (head and `Content-Length` body), records it and answers.
fn serve(stream: &mut (impl Read + Write), answer: Answer, record: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(&mut *stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let (mut length, mut content_type) = (0, String::new());
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or_default();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "content-type" => content_type = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    record.lock().unwrap().push(Received {
        path,
        content_type,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    match answer {
        Answer::Status(status) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.flush();
        }
        Answer::Never => std::thread::sleep(Duration::from_secs(120)),
    }
}

/// Writes an executable script into `dir`.
fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The value of a counter line of `/-/metrics`, 0 when absent.
fn counter(server: &Server, series: &str) -> u64 {
    server
        .admin_get("/-/metrics")
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn notifications(hook: &str, outcome: &str) -> String {
    format!("hookwire_notifications_total{{hook=\"{hook}\",outcome=\"{outcome}\"}}")
}

fn run_id(response: &crate::harness::Response) -> String {
    response
        .header("X-Hookwire-Run")
        .expect("a run id")
        .to_owned()
}

#[test]
fn url_notifications_send_their_format_for_the_outcomes_in_on_only() {
    let receiver = Receiver::start(Answer::Status(200), false);
    let hooks = format!(
        r#"
- id: good
  execute-command: /bin/echo
  pass-arguments-to-command: [{{source: string, name: all done}}]
  include-command-output-in-response: true
  notify:
    - {{on: [succeeded], url: '{json}', format: json}}
    - {{on: [failed, timed-out], url: '{never}'}}
- id: bad
  execute-command: /bin/false
  include-command-output-in-response: true
  notify:
    - {{on: [failed], url: '{slack}', format: slack}}
    - {{on: [failed], url: {{env: DISCORD_URL}}, format: discord}}
    - {{on: [succeeded, superseded], url: '{never}', format: slack}}
"#,
        json = receiver.url("/json"),
        never = receiver.url("/never"),
        slack = receiver.url("/slack"),
    );
    let server = Server::builder(&hooks)
        .env("DISCORD_URL", &receiver.url("/discord"))
        .start();
    let good = server.get("/hooks/good");
    assert_eq!(good.status, 200, "{}", good.text());
    let bad = server.get("/hooks/bad");
    assert_eq!(bad.status, 500, "{}", bad.text());
    let received = receiver.wait_for(3);
    assert!(
        wait_until(WAIT, || counter(&server, &notifications("good", "sent"))
            == 1
            && counter(&server, &notifications("bad", "sent")) == 2),
        "{}",
        server.admin_get("/-/metrics").text()
    );
    let by_path = |path: &str| {
        let found: Vec<_> = received.iter().filter(|r| r.path == path).collect();
        assert_eq!(found.len(), 1, "{path}: {received:?}");
        found[0].clone()
    };
    assert!(
        received.iter().all(|r| r.path != "/never"),
        "a notification for an outcome not in `on`: {received:?}"
    );
    assert_eq!(received.len(), 3, "{received:?}");

    let json = by_path("/json");
    assert_eq!(json.content_type, "application/json");
    let document = &json.body;
    assert_eq!(document["id"], run_id(&good).as_str());
    assert_eq!(document["hook"], "good");
    assert_eq!(document["status"], "succeeded");
    assert_eq!(document["exit_code"], 0);
    assert_eq!(document["attempt"], 1);
    assert_eq!(document["output_tail"], "all done\n");
    assert_eq!(document["output_truncated"], false);
    assert!(document["duration_ms"].is_u64(), "{document}");
    for time in ["started_at", "finished_at"] {
        assert!(
            document[time].as_str().is_some_and(|t| t.ends_with('Z')),
            "{document}"
        );
    }

    let slack = by_path("/slack").body;
    let text = slack["text"].as_str().expect("a text field");
    let bad_id = run_id(&bad);
    assert!(
        text.contains(&format!("run {bad_id} of hook `bad` failed (exit code 1)")),
        "{text}"
    );
    assert_eq!(slack.as_object().unwrap().len(), 1, "{slack}");
    let discord = by_path("/discord").body;
    assert_eq!(discord["content"].as_str(), Some(text), "{discord}");
}

#[test]
fn a_notification_command_sees_the_final_attempt_only() {
    let hooks = r#"
- id: deploy
  execute-command: '{dir}/deploy.sh'
  retry: {attempts: 1, backoff: 100ms}
  notify:
    - on: [failed]
      execute-command: '{dir}/notified.sh'
"#;
    let server = Server::builder(hooks)
        .before_start(|dir| {
            script(dir, "deploy.sh", "echo deploying; exit 3");
            script(
                dir,
                "notified.sh",
                "env | grep '^HOOKWIRE_' | sort > \"$PWD/notified.env\"\n\
                 cat > \"$PWD/notified.json\"\n\
                 echo \"$HOOKWIRE_ATTEMPT\" >> \"$PWD/notified.count\"",
            );
        })
        .start();
    let response = server.get("/hooks/deploy");
    assert_eq!(response.status, 200);
    let id = run_id(&response);
    let dir = server.dir.path();
    let json_path = dir.join("notified.json");
    assert!(
        wait_until(WAIT, || std::fs::read_to_string(&json_path)
            .is_ok_and(|text| text.ends_with('}'))),
        "no notification; log:\n{}",
        server.logs()
    );
    assert!(wait_until(WAIT, || counter(
        &server,
        &notifications("deploy", "sent")
    ) == 1));
    // One notification, for the second and last attempt: the first was retried.
    assert_eq!(
        std::fs::read_to_string(dir.join("notified.count")).unwrap(),
        "2\n"
    );
    let variables = std::fs::read_to_string(dir.join("notified.env")).unwrap();
    for expected in [
        format!("HOOKWIRE_RUN_ID={id}"),
        "HOOKWIRE_HOOK_ID=deploy".to_owned(),
        "HOOKWIRE_ATTEMPT=2".to_owned(),
        "HOOKWIRE_STATUS=failed".to_owned(),
        "HOOKWIRE_EXIT_CODE=3".to_owned(),
    ] {
        assert!(
            variables.lines().any(|line| line == expected),
            "{expected} missing:\n{variables}"
        );
    }
    let duration = variables
        .lines()
        .find_map(|line| line.strip_prefix("HOOKWIRE_DURATION_MS="))
        .expect("HOOKWIRE_DURATION_MS");
    assert!(duration.parse::<u64>().is_ok(), "{duration}");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(document["id"], id.as_str());
    assert_eq!(document["output_tail"], "deploying\n");
}

#[test]
fn a_failing_receiver_is_retried_then_counted_and_logged_without_its_path() {
    let receiver = Receiver::start(Answer::Status(500), false);
    let hooks = format!(
        "- id: x\n  execute-command: /bin/true\n  notify:\n    - {{on: [succeeded], url: '{}'}}\n",
        receiver.url("/services/T000/SECRET-TOKEN")
    );
    let server = Server::start(&hooks);
    assert_eq!(server.get("/hooks/x").status, 200);
    let failed = notifications("x", "failed");
    assert!(
        wait_until(WAIT, || counter(&server, &failed) == 1),
        "{}\n{}",
        server.admin_get("/-/metrics").text(),
        server.logs()
    );
    // Three attempts, the first and the last apart by the backoff (1 s, then 2 s).
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(counter(&server, &notifications("x", "sent")), 0);
    let origin = format!("http://{}", receiver.addr);
    assert!(
        server.wait_for_log(&format!("to {origin} failed"), WAIT),
        "{}",
        server.logs()
    );
    assert!(
        !server.logs().contains("SECRET-TOKEN"),
        "the URL's path was logged:\n{}",
        server.logs()
    );
}

#[test]
fn a_receiver_that_never_answers_does_not_delay_the_next_run() {
    let receiver = Receiver::start(Answer::Never, false);
    let hooks = format!(
        "- id: q\n  execute-command: /bin/true\n  concurrency: queue\n  include-command-output-in-response: true\n  notify:\n    - {{on: [succeeded], url: '{}'}}\n",
        receiver.url("/hang")
    );
    let server = Server::start(&hooks);
    let started = Instant::now();
    assert_eq!(server.get("/hooks/q").status, 200);
    // The first notification is sent and left hanging by the receiver.
    assert_eq!(receiver.wait_for(1).len(), 1);
    for _ in 0..3 {
        assert_eq!(server.get("/hooks/q").status, 200);
    }
    // Well below the 10 s notification timeout.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(wait_until(WAIT, || receiver.received().len() == 4));
}

#[test]
fn https_notifications_trust_ssl_cert_file_and_refuse_other_certificates() {
    let receiver = Receiver::start(Answer::Status(204), true);
    let url = format!("https://localhost:{}/secure", receiver.addr.port());
    let hooks = format!(
        "- id: x\n  execute-command: /bin/true\n  notify:\n    - {{on: [succeeded], url: '{url}', format: discord}}\n"
    );
    let tls = fixtures().join("tls");
    let trusted = Server::builder(&hooks)
        .env("SSL_CERT_FILE", &tls.join("cert.pem").display().to_string())
        .start();
    assert_eq!(trusted.get("/hooks/x").status, 200);
    let received = receiver.wait_for(1);
    assert_eq!(received.len(), 1, "log:\n{}", trusted.logs());
    assert_eq!(received[0].path, "/secure");
    assert!(received[0].body["content"].is_string());
    assert!(wait_until(WAIT, || counter(
        &trusted,
        &notifications("x", "sent")
    ) == 1));

    // A receiver whose certificate no trusted CA signed: refused, logged and counted.
    let untrusted = Server::builder(&hooks)
        .env(
            "SSL_CERT_FILE",
            &tls.join("cert-b.pem").display().to_string(),
        )
        .start();
    assert_eq!(untrusted.get("/hooks/x").status, 200);
    assert!(
        wait_until(WAIT, || counter(&untrusted, &notifications("x", "failed"))
            == 1),
        "{}",
        untrusted.logs()
    );
    let logs = untrusted.logs();
    assert!(
        logs.contains(&format!(
            "to https://localhost:{} failed",
            receiver.addr.port()
        )) && logs.contains("certificate"),
        "{logs}"
    );
    // A refused certificate is not tried again: another attempt cannot change it.
    assert!(logs.contains("(attempt 1 of 3)"), "{logs}");
    assert_eq!(
        receiver.received().len(),
        1,
        "an untrusted receiver got a body"
    );
}

#[test]
fn check_lists_notifications_and_bad_values_fail_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooks.yaml"),
        "- id: deploy\n  execute-command: /bin/true\n  notify:\n    - {on: [failed, timed-out], url: 'https://hooks.slack.com/services/T0/B0/TOKEN', format: slack}\n    - {on: [succeeded], execute-command: /usr/local/bin/deploy-done}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "- id: deploy\n  execute-command: /bin/true\n  notify:\n    - on: [failed]\n      url: 'https://hooks.slack.com/x'\n      format: teams\n",
    )
    .unwrap();
    let check = |file: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_hookwire"))
            .args(["check", file])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, text) = check("hooks.yaml");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "notify:     on failed, timed-out: POST slack to https://hooks.slack.com/..."
        ),
        "{text}"
    );
    assert!(
        text.contains("notify:     on succeeded: run \"/usr/local/bin/deploy-done\""),
        "{text}"
    );
    assert!(!text.contains("TOKEN"), "{text}");
    let (code, text) = check("bad.yaml");
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("--> bad.yaml:6:15") && text.contains("unknown format `teams`"),
        "{text}"
    );
}
