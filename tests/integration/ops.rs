//! Operating hookwire: the systemd units and notifications, `check`, `explain` (and that it
//! agrees with the server), `sign`, `/-/metrics`, `/-/health`, JSON logs, completions and the
//! man page.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Server, hookwire, run_in, wait_until};

/// Fails unless a tool from the systemd package is installed.
fn require(tool: &str) {
    assert!(
        Command::new(tool).arg("--version").output().is_ok(),
        "{tool} is not installed (apt-get install systemd)"
    );
}

// ---------------------------------------------------------------------------------------------
// systemd

/// Both units pass `systemd-analyze verify` (with ExecStart pointing at the built binary, since
/// verify checks that the program exists).
#[test]
#[ignore = "needs systemd-analyze (apt-get install systemd)"]
fn systemd_units_verify() {
    require("systemd-analyze");
    let dir = tempfile::tempdir().unwrap();
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    for unit in ["hookwire.service", "hookwire.socket"] {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        let text = text.replace("/usr/bin/hookwire", env!("CARGO_BIN_EXE_hookwire"));
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        // The man page is not installed where the tests run.
        .args([
            "verify",
            "--man=no",
            "./hookwire.service",
            "./hookwire.socket",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        !stderr.contains("hookwire."),
        "systemd-analyze verify warned about the units:\n{stderr}"
    );
}

/// The unit declares what issue 5 asks for, so an edit cannot drop it silently.
#[test]
fn service_unit_has_notify_reload_watchdog_and_sandbox() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/hookwire.service"),
    )
    .unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=",
        "StateDirectory=hookwire",
        "#LoadCredential=",
        "NoNewPrivileges=yes",
        "ProtectSystem=",
        "ProtectHome=",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} missing from hookwire.service"
        );
    }
}

/// The unit is the Debian package's as it is: the packaged binary, hooks directory and state
/// directory, and the admin routes on loopback only.
#[test]
fn service_unit_runs_the_packaged_paths_with_a_loopback_admin_listener() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/hookwire.service"),
    )
    .unwrap();
    // ExecStart= continues over lines ending in a backslash.
    let mut exec_start = String::new();
    for line in text.lines().skip_while(|l| !l.starts_with("ExecStart=")) {
        exec_start.push_str(line.trim_end_matches('\\'));
        exec_start.push(' ');
        if !line.ends_with('\\') {
            break;
        }
    }
    let exec_start = exec_start.trim_start_matches("ExecStart=");
    let words: Vec<&str> = exec_start.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"/usr/bin/hookwire"), "{exec_start}");
    for pair in [
        ["-hooks", "/etc/hookwire/hooks.d"],
        ["-state-dir", "/var/lib/hookwire"],
        ["-admin-listen", "127.0.0.1:9001"],
    ] {
        assert!(
            words.windows(2).any(|w| w == pair),
            "{pair:?} missing from ExecStart={exec_start}"
        );
    }
}

/// Reads notification datagrams until one contains `wanted` or the time is up; returns all
/// messages read.
fn read_until(socket: &UnixDatagram, wanted: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        if let Ok(n) = socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
            let done = message.lines().any(|l| l == wanted);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
    panic!("no {wanted} within {timeout:?}; got {seen:?}");
}

/// READY=1 once the socket answers, WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 (with
/// MONOTONIC_USEC) then READY=1 around a SIGHUP reload, and STOPPING=1 on SIGTERM.
#[test]
fn systemd_notifications_at_the_right_moments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut server = Server::builder("- {id: ping, execute-command: /bin/true}")
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "400000")
        .start();

    let start = read_until(&socket, "READY=1", Duration::from_secs(10));
    assert_eq!(start.len(), 1, "READY=1 is the first message: {start:?}");
    assert!(start[0].contains("STATUS=serving 1 hook(s)"), "{start:?}");
    // Ready means ready: the hook answers now.
    assert_eq!(server.get("/hooks/ping").status, 200);

    // Two pings within a second: the interval is 200 ms.
    let began = Instant::now();
    read_until(&socket, "WATCHDOG=1", Duration::from_secs(2));
    read_until(&socket, "WATCHDOG=1", Duration::from_secs(2));
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );

    server.signal("HUP");
    let reload = read_until(&socket, "RELOADING=1", Duration::from_secs(5));
    let reloading = reload.last().unwrap();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    read_until(&socket, "READY=1", Duration::from_secs(5));

    server.signal("TERM");
    read_until(&socket, "STOPPING=1", Duration::from_secs(5));
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

// ---------------------------------------------------------------------------------------------
// check

const GOOD: &str = r#"
- id: deploy
  execute-command: /bin/echo
  command-working-directory: /tmp
  http-methods: [POST]
  pass-arguments-to-command:
    - {source: payload, name: head_commit.id}
    - {source: string, name: production}
  pass-environment-to-command:
    - {source: payload, name: ref, envname: REF}
  pass-file-to-command:
    - {source: entire-payload, envname: PAYLOAD}
  trigger-rule:
    and:
      - match:
          type: payload-hmac-sha256
          secret: s3cret-for-tests
          parameter: {source: header, name: X-Hub-Signature-256}
      - match: {type: value, value: refs/heads/main, parameter: {source: payload, name: ref}}
  response-message: Deploying.
- id: open
  execute-command: /bin/sh
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: payload, name: script}
- id: missing
  execute-command: /nonexistent/deploy.sh
  trigger-rules:
    match: {type: value, value: x, parameter: {source: header, name: X-Token}}
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A file that loads, with its hooks summarised and every risky setup warned about.
#[test]
fn check_good_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hooks.yaml", GOOD);
    let (stdout, stderr, code) = run_in(dir.path(), &["check", "hooks.yaml"]);
    assert_eq!(code, Some(0), "{stderr}");
    insta::assert_snapshot!("check_good", stdout);
}

/// Every error of every file, with FILE:LINE:COLUMN, the line, a caret and a hint; exit 1.
#[test]
fn check_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "syntax.yaml",
        "- id: a\n  execute-command: /bin/true\n  trigger-rule: {match: {type: value\n",
    );
    write(
        dir.path(),
        "typed.json",
        "[{\"id\": \"b\", \"execute-command\": \"/bin/true\",\n  \"success-http-response-code\": \"two hundred\"}]\n",
    );
    write(
        dir.path(),
        "one.toml",
        "[[hooks]]\nid = \"c\"\nexecute-command = \"/bin/true\"\n",
    );
    write(
        dir.path(),
        "two.yaml",
        "- {id: c, execute-command: /bin/true}\n",
    );
    let (stdout, _, code) = run_in(
        dir.path(),
        &[
            "check",
            "syntax.yaml",
            "typed.json",
            "one.toml",
            "two.yaml",
            "absent.yaml",
        ],
    );
    assert_eq!(code, Some(1));
    insta::assert_snapshot!("check_broken", stdout);
}

/// `-template` is honoured, and a secret a template fills in is not "written inline".
#[test]
fn check_with_template() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hooks.yaml.tmpl",
        "- id: t\n  execute-command: /bin/true\n  trigger-rule:\n    match:\n      type: payload-hmac-sha1\n      secret: '{{ getenv \"HOOKWIRE_TEST_SECRET\" }}'\n      parameter: {source: header, name: X-Sig}\n",
    );
    let out = hookwire()
        .args(["check", "-template", "hooks.yaml.tmpl"])
        .env("HOOKWIRE_TEST_SECRET", "from-the-environment")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 error(s), 0 warning(s)"), "{stdout}");
    // Without -template the braces are a plain string: an inline secret, and a loud one.
    let (stdout, _, _) = run_in(dir.path(), &["check", "hooks.yaml.tmpl"]);
    assert!(
        stdout.contains("the secret is written in the hooks file"),
        "{stdout}"
    );
}

/// A directory stands for its hooks files in name order, a glob pattern for the files it
/// matches; a directory with none is a warning, and a broken pattern an error saying where.
#[test]
fn check_takes_a_directory_or_a_glob_pattern() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("hooks.d")).unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    write(
        dir.path(),
        "hooks.d/b.yaml",
        "- {id: beta, execute-command: /bin/true}\n",
    );
    write(
        dir.path(),
        "hooks.d/a.toml",
        "[[hooks]]\nid = \"alpha\"\nexecute-command = \"/bin/true\"\n",
    );
    write(dir.path(), "hooks.d/README", "not a hooks file\n");

    let (stdout, stderr, code) = run_in(dir.path(), &["check", "hooks.d"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let a = stdout.find("hooks.d/a.toml: 1 hook(s)").expect(&stdout);
    let b = stdout.find("hooks.d/b.yaml: 1 hook(s)").expect(&stdout);
    assert!(a < b, "in name order: {stdout}");
    assert!(stdout.contains("2 hook(s), 0 error(s)"), "{stdout}");

    let (stdout, _, code) = run_in(dir.path(), &["check", "hooks.d/*.yaml"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("hooks.d/b.yaml: 1 hook(s)"), "{stdout}");
    assert!(!stdout.contains("a.toml"), "{stdout}");

    // explain loads the same way.
    let (stdout, stderr, code) = run_in(dir.path(), &["explain", "alpha", "--hooks", "hooks.d"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let (stdout, _, code) = run_in(dir.path(), &["check", "empty"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("warning: this directory holds no hooks file")
            && stdout.contains("--> empty"),
        "{stdout}"
    );
    let (stdout, _, code) = run_in(dir.path(), &["check", "--strict", "empty"]);
    assert_eq!(code, Some(1), "{stdout}");

    let (stdout, _, code) = run_in(dir.path(), &["check", "hooks.d/[ab.yaml"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("-hooks hooks.d/[ab.yaml: invalid glob pattern at character 9"),
        "{stdout}"
    );
}

/// `--strict`: the same report, and any warning fails the check.
#[test]
fn check_strict_fails_on_warnings() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hooks.yaml",
        "- id: a\n  execute-command: /bin/true\n  trigger-rules: {match: {type: value, value: x, parameter: {source: url, name: t}}}\n",
    );
    let (stdout, _, code) = run_in(dir.path(), &["check", "hooks.yaml"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("warning: hook `a`: `trigger-rules`: unknown key"),
        "{stdout}"
    );
    assert!(stdout.contains("--> hooks.yaml:3:3"), "{stdout}");
    assert!(!stdout.contains("--strict"), "{stdout}");

    let (strict, _, code) = run_in(dir.path(), &["check", "--strict", "hooks.yaml"]);
    assert_eq!(code, Some(1), "{strict}");
    assert!(
        strict.starts_with(&stdout),
        "the same report first: {strict}"
    );
    assert!(
        strict.contains("failed: --strict treats warnings as errors"),
        "{strict}"
    );

    write(
        dir.path(),
        "clean.yaml",
        "- id: ok\n  execute-command: /bin/true\n  trigger-rule: {match: {type: value, value: x, parameter: {source: url, name: t}}}\n",
    );
    let (stdout, _, code) = run_in(dir.path(), &["check", "--strict", "clean.yaml"]);
    assert_eq!(code, Some(0), "{stdout}");
}

/// The package's starter file, laid out as the package installs it, loads from the unit's
/// hooks directory.
#[test]
fn the_starter_hooks_file_loads_from_the_packaged_directory() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::fs::read_to_string(manifest.join("Cargo.toml")).unwrap();
    assert!(
        cargo.contains(r#"["packaging/hooks.yaml", "etc/hookwire/hooks.d/", "644"]"#),
        "the package installs the starter file into /etc/hookwire/hooks.d"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("hooks.d")).unwrap();
    std::fs::copy(
        manifest.join("packaging/hooks.yaml"),
        dir.path().join("hooks.d/hooks.yaml"),
    )
    .unwrap();
    let (stdout, stderr, code) = run_in(dir.path(), &["check", "--strict", "hooks.d"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("hooks.d/hooks.yaml: 1 hook(s)"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// explain and sign

const PUSH: &str = r#"{"ref":"refs/heads/main","head_commit":{"id":"abc123"},"script":"id"}"#;

/// `hookwire sign` headers as `--header` flags for `explain` and as header pairs for the
/// server.
fn sign(dir: &Path, body_file: &str) -> Vec<(String, String)> {
    let (stdout, stderr, code) = run_in(
        dir,
        &[
            "sign",
            "--provider",
            "github",
            "--secret-file",
            "secret",
            "--body",
            body_file,
            "--id",
            "delivery-1",
            "--timestamp",
            "1700000000",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    stdout
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(": ").expect("Name: value");
            (n.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn sign_prints_the_providers_headers() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "secret", "s3cret-for-tests\n");
    write(dir.path(), "push.json", PUSH);
    let headers = sign(dir.path(), "push.json");
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "X-Hub-Signature-256",
            "X-Hub-Signature",
            "X-GitHub-Delivery"
        ]
    );
    assert!(headers[0].1.starts_with("sha256=") && headers[0].1.len() == 71);
    // The same secret from the environment signs the same way.
    let out = hookwire()
        .args(["sign", "--provider", "github", "--body", "push.json"])
        .env("HOOKWIRE_SECRET", "s3cret-for-tests")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with(&format!("X-Hub-Signature-256: {}\n", headers[0].1))
    );
    let (_, stderr, code) = run_in(
        dir.path(),
        &[
            "sign",
            "--provider",
            "nope",
            "--secret",
            "x",
            "--body",
            "push.json",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("unknown provider \"nope\"; use one of github"),
        "{stderr}"
    );
}

fn explain_args(headers: &[(String, String)]) -> Vec<String> {
    let mut args: Vec<String> = [
        "explain",
        "deploy",
        "--hooks",
        "hooks.yaml",
        "--body",
        "push.json",
        "--content-type",
        "application/json",
    ]
    .map(String::from)
    .to_vec();
    for (name, value) in headers {
        args.push(format!("--header={name}:{value}"));
    }
    args
}

/// A signed request that triggers: the trace with masked signature, the argv, env and files.
#[test]
fn explain_triggered() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hooks.yaml", GOOD);
    write(dir.path(), "secret", "s3cret-for-tests");
    write(dir.path(), "push.json", PUSH);
    let headers = sign(dir.path(), "push.json");
    let args = explain_args(&headers);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (stdout, stderr, code) = run_in(dir.path(), &args);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        !stdout.contains(&headers[0].1[7..]),
        "the signature is masked"
    );
    insta::assert_snapshot!("explain_triggered", stdout);
}

/// A bad signature, a rule not satisfied, a wrong method, an unknown hook, a broken body.
#[test]
fn explain_not_triggered() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hooks.yaml", GOOD);
    write(dir.path(), "secret", "s3cret-for-tests");
    write(dir.path(), "push.json", PUSH);
    write(dir.path(), "other.json", &PUSH.replace("main", "dev"));
    write(dir.path(), "broken.json", "{\"ref\":");
    let mut text = String::new();
    let bad_signature = [(
        "X-Hub-Signature-256".to_string(),
        format!("sha256={}", "0f".repeat(32)),
    )];
    let mut cases: Vec<(&str, Vec<String>)> = vec![("bad signature", explain_args(&bad_signature))];
    let mut other = explain_args(&sign(dir.path(), "other.json"));
    other[5] = "other.json".into();
    cases.push(("rule not satisfied", other));
    let mut get = explain_args(&[]);
    get.extend(["--method".into(), "get".into()]);
    cases.push(("wrong method", get));
    let mut broken = explain_args(&[]);
    broken[5] = "broken.json".into();
    cases.push(("unparsable body", broken));
    for (name, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (stdout, stderr, code) = run_in(dir.path(), &args);
        assert_eq!(code, Some(1), "{name}: {stdout}{stderr}");
        text.push_str(&format!("=== {name}\n{stdout}"));
    }
    let (stdout, stderr, code) = run_in(dir.path(), &["explain", "nope", "--hooks", "hooks.yaml"]);
    assert_eq!(code, Some(2));
    assert_eq!(stdout, "");
    text.push_str(&format!("=== unknown hook (stderr)\n{stderr}"));
    insta::assert_snapshot!("explain_not_triggered", text);
}

/// `explain` and the server, given the same request, reach the same verdict and the same
/// argv: explain's argv lines are what record.sh receives.
#[test]
fn explain_agrees_with_the_server() {
    let hooks = r#"
- id: deploy
  execute-command: "{fixtures}/record.sh"
  pass-arguments-to-command:
    - {source: payload, name: head_commit.id}
    - {source: query, name: env}
    - {source: header, name: X-GitHub-Event}
    - {source: payload, name: missing}
  trigger-rule:
    and:
      - match:
          type: payload-hmac-sha256
          secret: s3cret-for-tests
          parameter: {source: header, name: X-Hub-Signature-256}
      - match: {type: regex, regex: ^refs/heads/(main|dev)$, parameter: {source: payload, name: ref}}
"#;
    let server = Server::start(hooks);
    let dir = server.dir.path();
    write(dir, "secret", "s3cret-for-tests");
    for (body, triggers) in [
        (PUSH.to_string(), true),
        (PUSH.replace("main", "feature"), false),
    ] {
        write(dir, "push.json", &body);
        let mut headers = sign(dir, "push.json");
        headers.push(("X-GitHub-Event".into(), "push".into()));
        let mut args = explain_args(&headers);
        args[3] = server.hooks_path.display().to_string();
        args.extend(["--query".into(), "env=prod".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (stdout, stderr, code) = run_in(dir, &args);
        let explained: Vec<String> = stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("argv["))
            .filter(|l| !l.starts_with("0]"))
            .map(|l| {
                let quoted = l.split_once(":  ").unwrap().1;
                serde_json::from_str::<String>(quoted).unwrap()
            })
            .collect();

        let before = server.records().len();
        let mut request = server
            .request("POST", "/hooks/deploy?env=prod")
            .header("Content-Type", "application/json")
            .body(body.clone());
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = request.send();
        assert_eq!(response.status, 200);
        if triggers {
            assert_eq!(code, Some(0), "{stdout}{stderr}");
            assert!(stdout.contains("verdict: triggered"), "{stdout}");
            assert!(response.header("X-Hookwire-Run").is_some());
            let records = server.wait_for_records(before + 1);
            assert_eq!(records[before].args, explained);
            assert_eq!(explained, ["abc123", "prod", "push", ""]);
        } else {
            assert_eq!(code, Some(1), "{stdout}{stderr}");
            assert!(stdout.contains("verdict: not-triggered"), "{stdout}");
            assert_eq!(response.text(), "Hook rules were not satisfied.");
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(server.records().len(), before, "nothing ran");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// metrics, health, logs

/// Parses Prometheus/OpenMetrics text: every line that is not a comment is
/// `name{label="value",...} number`. Returns `name{labels}` to value; panics on anything else.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(labels.ends_with('}'), "bad labels in {line:?}");
            for pair in labels[1..labels.len() - 1]
                .split("\",")
                .filter(|p| !p.is_empty())
            {
                let (key, value) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label in {line:?}"));
                assert!(
                    key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line:?}"
                );
                assert!(!value.trim_end_matches('"').contains('"'), "{line:?}");
            }
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        samples.insert(series.to_string(), value);
    }
    samples
}

/// After a known sequence of requests, the counters say exactly that, and the exposition
/// parses as Prometheus text.
#[test]
fn metrics_count_a_known_sequence() {
    let server = Server::start(
        r#"
- id: ok
  execute-command: /bin/true
- id: fails
  execute-command: /bin/false
- id: guarded
  execute-command: /bin/true
  trigger-rule-mismatch-http-response-code: 403
  trigger-rule: {match: {type: value, value: yes-please, parameter: {source: query, name: token}}}
"#,
    );
    assert_eq!(server.get("/hooks/ok").status, 200);
    assert_eq!(server.get("/hooks/ok").status, 200);
    assert_eq!(server.get("/hooks/fails").status, 200);
    assert_eq!(server.get("/hooks/guarded?token=no").status, 403);
    assert_eq!(server.get("/hooks/guarded?token=yes-please").status, 200);
    assert_eq!(server.get("/hooks/no-such-hook").status, 404);
    assert_eq!(server.get("/hooks/nope-either").status, 404);
    let scrape = || {
        let response = server.admin_get("/-/metrics");
        assert_eq!(response.status, 200);
        assert!(
            response
                .header("content-type")
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        parse_prometheus(&response.text())
    };
    // Runs finish after the responses; wait for all four.
    assert!(wait_until(Duration::from_secs(10), || {
        scrape()
            .iter()
            .filter(|(k, _)| k.starts_with("hookwire_runs_total"))
            .map(|(_, v)| v)
            .sum::<f64>()
            == 4.0
    }));
    let m = scrape();
    let expect = [
        ("hookwire_requests_total{hook=\"ok\",status=\"200\"}", 2.0),
        (
            "hookwire_requests_total{hook=\"fails\",status=\"200\"}",
            1.0,
        ),
        (
            "hookwire_requests_total{hook=\"guarded\",status=\"403\"}",
            1.0,
        ),
        (
            "hookwire_requests_total{hook=\"guarded\",status=\"200\"}",
            1.0,
        ),
        ("hookwire_requests_total{hook=\"\",status=\"404\"}", 2.0),
        ("hookwire_rule_mismatches_total{hook=\"guarded\"}", 1.0),
        (
            "hookwire_runs_total{hook=\"ok\",outcome=\"succeeded\"}",
            2.0,
        ),
        (
            "hookwire_runs_total{hook=\"fails\",outcome=\"failed\"}",
            1.0,
        ),
        (
            "hookwire_runs_total{hook=\"guarded\",outcome=\"succeeded\"}",
            1.0,
        ),
        ("hookwire_run_duration_seconds_count{hook=\"ok\"}", 2.0),
        ("hookwire_runs_in_flight", 0.0),
        ("hookwire_hooks_loaded", 3.0),
        ("hookwire_config_generation", 1.0),
        ("hookwire_reloads_total", 0.0),
        ("hookwire_reload_failures_total", 0.0),
    ];
    for (series, value) in expect {
        assert_eq!(m.get(series), Some(&value), "{series} in {m:#?}");
    }
    assert!(
        m.keys()
            .any(|k| k.starts_with("hookwire_build_info{version=\""))
    );
    // The admin routes are not hooks: not counted.
    assert!(!m.keys().any(|k| k.contains("hook=\"-\"")));

    // A reload that works bumps the generation; one that fails is counted as a failure.
    let health = server.admin_get("/-/health").text();
    assert_eq!(health, "{\"status\":\"ok\",\"hooks\":3,\"generation\":1}\n");
    server.replace_hooks("- {id: ok, execute-command: /bin/true}\n");
    server.signal("HUP");
    assert!(wait_until(Duration::from_secs(5), || server
        .admin_get("/-/health")
        .text()
        .contains("\"generation\":2")));
    assert_eq!(
        server.admin_get("/-/health").text(),
        "{\"status\":\"ok\",\"hooks\":1,\"generation\":2}\n"
    );
    server.replace_hooks("- {id: ok, execute-command: [");
    server.signal("HUP");
    assert!(wait_until(Duration::from_secs(5), || scrape()
        .get("hookwire_reload_failures_total")
        == Some(&1.0)));
    let m = scrape();
    assert_eq!(m.get("hookwire_reloads_total"), Some(&2.0));
    assert_eq!(m.get("hookwire_config_generation"), Some(&2.0));
    assert_eq!(m.get("hookwire_hooks_loaded"), Some(&1.0));
}

/// `--log-format json`: every line is a JSON object; a request's closing line carries the
/// request id, hook, client, verdict, run id, status and duration; a run has a start and an
/// end line with its exit status.
#[test]
fn json_logs_one_line_per_request_and_run() {
    let server = Server::builder("- {id: ok, execute-command: /bin/false}")
        .arg("--log-format=json")
        .start();
    let response = server.get("/hooks/ok");
    let run = response.header("X-Hookwire-Run").unwrap().to_string();
    assert!(server.wait_for_log("run finished", Duration::from_secs(10)));
    let logs = server.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |message: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in {logs}"))
    };
    let answered = find("request answered");
    assert_eq!(answered["fields"]["status"], 200);
    assert!(answered["fields"]["duration_ms"].is_u64());
    let span = &answered["span"];
    assert_eq!(span["hook"], "ok");
    assert_eq!(span["client"], "127.0.0.1");
    assert_eq!(span["verdict"], "triggered");
    assert_eq!(span["run"], run.as_str());
    assert_eq!(span["id"].as_str().unwrap().len(), 6);
    let started = find("run started");
    assert_eq!(started["fields"]["run"], run.as_str());
    let finished = find("run finished");
    assert_eq!(finished["level"], "WARN");
    assert_eq!(finished["fields"]["exit"], "exit status 1");
    assert_eq!(finished["fields"]["outcome"], "failed");
}

/// The text format carries the same fields.
#[test]
fn text_logs_carry_the_request_fields() {
    let server = Server::start("- {id: ok, execute-command: /bin/true}");
    server.get("/hooks/nope");
    assert!(server.wait_for_log("request answered", Duration::from_secs(5)));
    let logs = server.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("request answered"))
        .unwrap();
    for needle in [
        "hook=nope",
        "client=127.0.0.1",
        "verdict=unknown-hook",
        "status=404",
    ] {
        assert!(line.contains(needle), "{needle} missing from {line}");
    }
}

// ---------------------------------------------------------------------------------------------
// completions and man page

#[test]
fn completions_and_man_page() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef hookwire"),
        ("fish", "complete -c hookwire"),
    ] {
        let out = hookwire().args(["completions", shell]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}");
        assert!(text.contains(marker), "{shell}: {text}");
        for word in ["check", "explain", "hooks"] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    let out = hookwire().arg("man").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.starts_with(".ie") || text.contains(".TH hookwire"),
        "{text}"
    );
    assert!(text.contains("explain") && text.contains("hooks"), "{text}");
}

/// Every subcommand's help explains itself and shows an example.
#[test]
fn subcommand_help() {
    for sub in ["check", "explain", "sign", "completions", "man"] {
        let out = hookwire().args([sub, "--help"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub}");
        assert!(text.contains("Usage: hookwire "), "{sub}: {text}");
        assert!(
            text.contains("Example"),
            "{sub} --help has no example:\n{text}"
        );
    }
}
