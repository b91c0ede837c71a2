//! The command line and process behaviour: adnanh's flags, exit codes, pid file, Unix sockets,
//! socket activation, privilege drop, log files and request ids.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Response, Server, check_in, hookwire, wait_until};

const HOOKS: &str = r#"
- id: whoami
  execute-command: /bin/sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'id -u; id -g; id -G'}
- id: ping
  execute-command: /bin/true
  response-message: pong
"#;

#[test]
fn version_and_help() {
    for flag in ["-version", "--version"] {
        let out = hookwire().arg(flag).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("hookwire version "));
    }
    for flag in ["-h", "-help", "--help"] {
        let out = hookwire().arg(flag).output().unwrap();
        assert!(out.status.success(), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        for expected in [
            "-hooks",
            "-hotreload",
            "-urlprefix",
            "-x-request-id",
            "-setuid",
        ] {
            assert!(
                text.contains(&expected[1..]),
                "{flag} does not mention {expected}:\n{text}"
            );
        }
    }
}

#[test]
fn bad_flags_exit_2_like_go() {
    let out = hookwire().arg("-no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("flag provided but not defined: -no-such-flag")
    );
    let out = hookwire().args(["-port", "abc"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("port"));
}

#[test]
fn setuid_and_setgid_go_together() {
    let out = hookwire()
        .args(["-setuid", "1000", "-port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("setuid and setgid options must be used together")
    );
}

#[test]
fn no_hooks_exits_unless_verbose_or_nopanic() {
    let dir = tempfile::tempdir().unwrap();
    let out = hookwire()
        .args(["-hooks", "missing.json", "-port", "0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("couldn't load any hooks from file!"));
    // With -nopanic it serves (nothing).
    let s = Server::builder("[]").arg("-nopanic").start();
    assert_eq!(s.get("/").text(), "OK");
}

#[test]
fn flags_take_one_or_two_dashes_and_equals() {
    let s = Server::builder(HOOKS)
        .args(&[
            "--urlprefix=x",
            "-verbose=true",
            "--header",
            "A=1",
            "-header=B=2",
        ])
        .start();
    let r = s.get("/x/ping");
    assert_eq!(r.text(), "pong");
    assert_eq!(r.header("A"), Some("1"));
    assert_eq!(r.header("B"), Some("2"));
}

#[test]
fn pidfile_is_written_and_removed() {
    let mut s = Server::builder(HOOKS)
        .args(&["-pidfile", "{dir}/run/hookwire.pid"])
        .start();
    let path = s.dir.path().join("run/hookwire.pid");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), s.pid().to_string());
    // A second instance refuses to start while the first runs.
    let out = hookwire()
        .args([
            "-hooks",
            s.hooks_path.to_str().unwrap(),
            "-port",
            "0",
            "-pidfile",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(!path.exists(), "the pid file was not removed on SIGTERM");
}

#[test]
fn unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hookwire.sock");
    let hooks = dir.path().join("hooks.yaml");
    std::fs::write(&hooks, HOOKS).unwrap();
    let mut child = hookwire()
        .args([
            "-hooks",
            hooks.to_str().unwrap(),
            "-socket",
            socket.to_str().unwrap(),
        ])
        // The run journal goes to ./.hookwire: keep it out of the repository.
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || socket.exists()));
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    stream
        .write_all(b"GET /hooks/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    assert_eq!(Response::parse(&raw).text(), "pong");
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap();
    assert!(
        !socket.exists(),
        "the socket file was not removed on SIGTERM"
    );
}

#[test]
#[ignore = "needs systemd-socket-activate (apt-get install systemd)"]
fn systemd_socket_activation() {
    assert!(
        Command::new("systemd-socket-activate")
            .arg("--help")
            .output()
            .is_ok(),
        "systemd-socket-activate is not installed (apt-get install systemd)"
    );
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks.yaml");
    std::fs::write(&hooks, HOOKS).unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    // Two sockets, TCP and Unix: hookwire serves both.
    let unix = dir.path().join("activated.sock");
    let mut child = Command::new("systemd-socket-activate")
        .args(["-l", &format!("127.0.0.1:{port}")])
        .arg("-l")
        .arg(&unix)
        .arg(env!("CARGO_BIN_EXE_hookwire"))
        // -ip/-port are ignored when a socket is passed.
        .args(["-hooks", hooks.to_str().unwrap(), "-port", "1", "-verbose"])
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut answer = None;
    wait_until(
        Duration::from_secs(10),
        || match std::net::TcpStream::connect(addr) {
            Ok(_) => {
                answer = Some(crate::harness::Request::new(addr, "GET", "/hooks/ping").send());
                true
            }
            Err(_) => false,
        },
    );
    let through_unix = std::os::unix::net::UnixStream::connect(&unix).and_then(|mut stream| {
        stream.write_all(b"GET /hooks/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Ok(Response::parse(&raw).text())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answer.map(|r| r.text()), Some("pong".to_string()));
    assert_eq!(through_unix.ok().as_deref(), Some("pong"));
}

#[test]
#[ignore = "needs root: the server switches to the user nobody"]
fn privileges_are_dropped_after_binding() {
    assert!(nix_is_root(), "switching users needs root");
    let s = Server::builder(HOOKS)
        .args(&["-setuid", "65534", "-setgid", "65534", "-port", "0"])
        .start();
    let text = s.get("/hooks/whoami").text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["65534", "65534", "65534"],
        "uid, gid and supplementary groups"
    );
}

fn nix_is_root() -> bool {
    String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0"
}

#[test]
fn logfile_and_request_ids() {
    // With -logfile the log goes to the file only, so read the address from there.
    let s = Server::builder(HOOKS)
        .args(&[
            "-logfile",
            "{dir}/hookwire.log",
            "-x-request-id",
            "-x-request-id-limit",
            "8",
        ])
        .no_wait()
        .start();
    let log = s.dir.path().join("hookwire.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(10), || read_log()
        .contains("serving hooks on")));
    let text = read_log();
    let addr = text
        .split("serving hooks on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .expect("address in the log file");
    let r = crate::harness::Request::new(addr, "GET", "/hooks/ping")
        .header("X-Request-Id", "abcdefghijklmnop")
        .send();
    assert_eq!(r.text(), "pong");
    assert!(
        r.header("X-Request-Id").is_none(),
        "the request id is never sent back"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        let l = read_log();
        l.contains("abcdefgh") && !l.contains("abcdefghi")
    }));
}

/// A file name that leaves the working directory fails the load with its place; a request
/// value in a variable such as `LD_PRELOAD` or `BASH_ENV` is a warning.
#[test]
fn check_refuses_escaping_file_names_and_warns_about_risky_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("escape.yaml"),
        "- id: a\n  execute-command: /bin/true\n  pass-file-to-command:\n    - {source: payload, name: x, envname: ../../x}\n",
    )
    .unwrap();
    let (code, text) = check_in(dir.path(), &["escape.yaml"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("escape.yaml:4:43"), "{text}");
    assert!(text.contains("outside the working directory"), "{text}");

    std::fs::write(
        dir.path().join("risky.yaml"),
        "- id: a\n  execute-command: /bin/true\n  trigger-rule: {match: {type: value, value: x, parameter: {source: url, name: t}}}\n  pass-environment-to-command:\n    - {source: header, name: X-Lib, envname: LD_PRELOAD}\n    - {source: string, name: /usr/bin, envname: PATH}\n  pass-file-to-command:\n    - {source: payload, name: script, envname: BASH_ENV}\n",
    )
    .unwrap();
    let (code, text) = check_in(dir.path(), &["risky.yaml"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("sets LD_PRELOAD from the request"), "{text}");
    assert!(text.contains("sets BASH_ENV from the request"), "{text}");
    // A constant is the author's choice, not the request's.
    assert!(!text.contains("sets PATH"), "{text}");
}

/// Secrets written in the file (a payload-hmac secret, a `value` rule token, preset secrets
/// alone and in a list) never reach the report, which still points at them.
#[test]
fn check_never_prints_inline_secrets() {
    const SECRETS: [&str; 4] = [
        "hmac-secret-12345",
        "value-token-67890",
        "preset-secret-abcde",
        "rotated-secret-fghij",
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooks.yaml"),
        format!(
            "- id: a\n  execute-command: /bin/true\n  trigger-rule:\n    and:\n      - match: {{type: payload-hmac-sha256, secret: {}, parameter: {{source: header, name: X-Sig}}}}\n      - match: {{type: value, value: {}, parameter: {{source: header, name: X-Token}}, unknown-key: 1}}\n- id: b\n  execute-command: /bin/true\n  signature: {{provider: github, secret: {}}}\n- id: c\n  execute-command: /bin/true\n  signature: {{provider: github, secret: [{}, {{env: HOME}}]}}\n",
            SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3]
        ),
    )
    .unwrap();
    // And a file that does not even parse, its error on a line with a secret.
    std::fs::write(
        dir.path().join("broken.yaml"),
        format!(
            "- id: d\n  execute-command: /bin/true\n  signature: {{provider: github, secret: \"{}\n",
            SECRETS[0]
        ),
    )
    .unwrap();
    let (code, text) = check_in(dir.path(), &["hooks.yaml", "broken.yaml"]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        text.matches("the secret is written in the hooks file")
            .count(),
        3,
        "{text}"
    );
    assert!(text.contains("unknown-key"), "{text}");
    assert!(text.contains("broken.yaml:3:"), "{text}");
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} shown:\n{text}");
    }
}
