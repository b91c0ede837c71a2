//! Hostile input that must still be handled cleanly: log lines a request cannot forge.

use std::time::Duration;

use crate::harness::{Server, wait_until};

const FORGED_STAMP: &str = "2026-01-01T00:00:00Z";

/// A hook id with an encoded newline and a client-chosen `X-Request-Id` with a space and an
/// `=`: neither may start a line of its own or add a field to one.
#[test]
fn text_logs_cannot_be_forged_by_hook_ids_or_request_ids() {
    let server = Server::builder("- id: deploy\n  execute-command: /bin/true\n")
        .arg("-x-request-id")
        .start();
    let forged_line = format!("/hooks/x%0a{FORGED_STAMP}%20ERROR%20forged");
    for path in [forged_line.as_str(), "/hooks/deploy"] {
        let response = server
            .request("GET", path)
            .header("X-Request-Id", "a client=6.6.6.6")
            .send();
        assert!(matches!(response.status, 200 | 404), "{path}: {response:?}");
    }
    assert!(
        wait_until(Duration::from_secs(10), || {
            server.logs().matches("request answered").count() >= 2
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
    let unquoted = logs.replace(r#""a client=6.6.6.6""#, "");
    assert!(
        !unquoted.contains("client=6.6.6.6"),
        "a forged field:\n{logs}"
    );
}
