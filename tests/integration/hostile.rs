//! Hostile input that must still be handled cleanly: log lines a request cannot forge.

use std::time::Duration;

use crate::harness::{Server, wait_until};

const FORGED_STAMP: &str = "2026-01-01T00:00:00Z";

/// A hook id with an encoded newline, a client-chosen `X-Request-Id` with a space and an `=`,
/// and command output echoing a header: none may start a line of its own or add a field.
#[test]
fn text_logs_cannot_be_forged_by_hook_ids_request_ids_or_output() {
    let server = Server::builder(
        "- id: deploy\n  execute-command: /bin/echo\n  pass-arguments-to-command:\n    - {source: header, name: X-Note}\n",
    )
    .args(&["-x-request-id", "-debug"])
    .start();
    let forged_line = format!("/hooks/x%0a{FORGED_STAMP}%20ERROR%20forged");
    for path in [forged_line.as_str(), "/hooks/deploy"] {
        let response = server
            .request("GET", path)
            .header("X-Request-Id", "a client=6.6.6.6")
            .header("X-Note", "note client=6.6.6.6")
            .send();
        assert!(matches!(response.status, 200 | 404), "{path}: {response:?}");
    }
    assert!(
        wait_until(Duration::from_secs(10), || {
            let logs = server.logs();
            logs.matches("request answered").count() >= 2 && logs.contains("command output")
        }),
        "{}",
        server.logs()
    );
    let logs = server.logs();
    assert!(
        !logs.lines().any(|line| line.starts_with(FORGED_STAMP)),
        "a forged line:\n{logs}"
    );
    assert!(logs.contains(r#"id="a client=6.6.6.6""#), "{logs}");
    assert!(
        logs.contains(r#"command output: "note client=6.6.6.6\n""#),
        "{logs}"
    );
    assert!(
        !logs
            .lines()
            .any(|line| outside_quotes(line).contains("client=6.6.6.6")),
        "a forged field:\n{logs}"
    );
}

/// `line` without its quoted strings (`"…"`, backslash escapes included).
fn outside_quotes(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => break,
                _ => {}
            }
        }
    }
    out
}

/// A realistic hooks file with `count` hooks (id, command, message, four arguments, a two-part
/// trigger rule), about 430 bytes each.
fn many_hooks(count: usize) -> String {
    (0..count)
        .map(|n| {
            format!(
                "- id: deploy-{n:05}
  execute-command: /bin/true
  response-message: deploying app-{n:05}
  pass-arguments-to-command:
    - {{source: payload, name: repository.full_name}}
    - {{source: payload, name: head_commit.id}}
    - {{source: header, name: X-GitHub-Delivery}}
    - {{source: string, name: app-{n:05}}}
  trigger-rule:
    and:
      - match: {{type: value, value: push, parameter: {{source: header, name: X-GitHub-Event}}}}
      - match: {{type: value, value: refs/heads/main, parameter: {{source: payload, name: ref}}}}
"
            )
        })
        .collect()
}

/// The YAML reader's limits grow with the file: 10 000 ordinary hooks (5 MB) load. Checked
/// with `check`, which loads as the server does, as the server's start-up wait is too short
/// for a debug build reading 5 MB on a busy machine.
#[test]
fn ten_thousand_hooks_load() {
    let hooks = many_hooks(10_000);
    assert!(hooks.len() > 4_000_000, "{}", hooks.len());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hooks.yaml"), &hooks).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .args(["check", "hooks.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: String = stdout.lines().last().unwrap_or_default().to_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{tail}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tail, "10000 hook(s), 0 error(s), 0 warning(s)");
}

/// Billion laughs: nine levels of nine aliases, refused with a message that says so, even
/// when padded to megabytes to raise the limits that grow with the file.
#[test]
fn alias_bombs_are_refused_however_large_the_file() {
    let mut bomb = String::from(
        "- id: a\n  execute-command: /bin/true\n  x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for level in 1..10 {
        let refs = vec![format!("*x{}", level - 1); 9].join(", ");
        bomb.push_str(&format!("  x{level}: &x{level} [{refs}]\n"));
    }
    let padded = format!("{bomb}{}", "# padding\n".repeat(400_000));
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("bomb.yaml", &bomb), ("padded.yaml", &padded)] {
        std::fs::write(dir.path().join(name), text).unwrap();
        let started = std::time::Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookwire"))
            .args(["check", name])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name}: {stdout}");
        assert!(
            stdout.contains("expands to more than") && stdout.contains("alias bomb"),
            "{name}: {stdout}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{name}");
    }
}
