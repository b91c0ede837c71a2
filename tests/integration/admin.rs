//! The admin surface: its own listener (never the hooks listener), who may use it without and
//! with a token, requests from pages of other sites, and credentials masked in the history.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Request, Server, finished, run_hookwire, run_id, send_unix, wait_until};

const QUICK: &str = "- {id: quick, execute-command: /bin/true}\n";

#[test]
fn the_hooks_listener_never_serves_admin_routes() {
    // Behind a local reverse proxy that is declared: every client is forwarded from loopback.
    let s = Server::builder(QUICK)
        .args(&["-trusted-proxies", "127.0.0.1"])
        .start();
    let id = run_id(&s.get("/hooks/quick"));
    finished(&s, &id);
    for path in [
        "/-/health".to_owned(),
        "/-/metrics".to_owned(),
        "/-/runs".to_owned(),
        format!("/-/runs/{id}"),
        "/%2d/health".to_owned(),
        "/%2D/runs".to_owned(),
        "/-/%68ealth".to_owned(),
    ] {
        let response = s
            .request("GET", &path)
            .header("X-Forwarded-For", "203.0.113.7")
            .send();
        assert_eq!(response.status, 404, "GET {path}: {}", response.text());
    }
    let rerun = s.request("POST", &format!("/-/runs/{id}/rerun")).send();
    assert_eq!(rerun.status, 404);
    // With an empty URL prefix `/-/health` is a hook id, unknown as in webhook.
    let bare = Server::builder(QUICK).args(&["-urlprefix", ""]).start();
    let response = bare.get("/-/health");
    assert_eq!(
        (response.status, response.text().as_str()),
        (404, "Hook not found.")
    );
    // The admin listener serves them, and matches paths as sent, not decoded.
    assert_eq!(s.admin_get("/-/health").status, 200);
    assert_eq!(s.admin_get("/-/%68ealth").status, 404);
}

#[test]
fn by_default_the_admin_routes_are_on_an_owner_only_socket_in_the_state_directory() {
    let mut s = Server::builder(QUICK)
        .default_admin()
        .args(&["-state-dir", "{dir}/state"])
        .start();
    let state = s.dir.path().join("state");
    let socket = state.join("admin.sock");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(&state), 0o700);
    assert!(
        s.logs()
            .contains(&format!("admin listener on {{unix:{}}}", socket.display()))
    );

    let health = send_unix(&socket, &Request::new(s.addr(), "GET", "/-/health"));
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(health.text().contains("\"hooks\":1"));

    // `hookwire runs rerun` finds the server through the state directory.
    let id = run_id(&s.get("/hooks/quick"));
    let shown = |id: &str| {
        let response = send_unix(
            &socket,
            &Request::new(s.addr(), "GET", &format!("/-/runs/{id}")),
        );
        serde_json::from_slice::<Value>(&response.body).unwrap()
    };
    assert!(wait_until(Duration::from_secs(15), || shown(&id)["status"]
        == "succeeded"));
    let state_arg = state.to_str().unwrap();
    let (ok, new_id, err) = run_hookwire(&["runs", "rerun", &id, "--state-dir", state_arg]);
    assert!(ok, "{err}");
    assert!(wait_until(Duration::from_secs(15), || shown(new_id.trim())
        ["rerun_of"]
        == id.as_str()));

    // The socket file goes with the server.
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(20)), Some(0));
    assert!(!socket.exists());
    let (ok, _, err) = run_hookwire(&["runs", "rerun", &id, "--state-dir", state_arg]);
    assert!(!ok && err.contains("admin.sock"), "{err}");
}

#[test]
fn an_empty_admin_listen_serves_no_admin_routes() {
    let s = Server::builder(QUICK)
        .args(&["-state-dir", "{dir}/state", "-admin-listen", ""])
        .start();
    assert!(s.logs().contains("no admin listener"), "{}", s.logs());
    let id = run_id(&s.get("/hooks/quick"));
    assert!(!id.is_empty());
    assert!(!s.dir.path().join("state/admin.sock").exists());
}

#[test]
fn without_a_token_tcp_serves_only_direct_loopback_clients() {
    let s = Server::start(QUICK);
    assert_eq!(s.admin_get("/-/runs").status, 200);
    for (name, value) in [
        ("X-Forwarded-For", "203.0.113.7"),
        ("Forwarded", "for=203.0.113.7"),
        ("X-Real-IP", "203.0.113.7"),
        // A page whose name was rebound to 127.0.0.1 sends its own name.
        ("Host", "rebound.example:9001"),
    ] {
        let response = s.admin("GET", "/-/runs").header(name, value).send();
        assert_eq!(response.status, 403, "{name}: {}", response.text());
    }
    assert!(s.logs().contains("forwarded by a proxy for another client"));
}

#[test]
fn an_admin_listener_other_machines_or_users_reach_needs_a_token() {
    let abstract_name = format!("@hookwire-admin-test-{}", std::process::id());
    for (address, open_to) in [
        ("0.0.0.0:0", "other machines"),
        (abstract_name.as_str(), "every local user"),
    ] {
        let refused = Server::builder(QUICK)
            .args(&["-admin-listen", address])
            .start_failing();
        let logs = refused.logs();
        assert!(
            logs.contains(&format!("reachable from {open_to}"))
                && logs.contains("-admin-token-file"),
            "{logs}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken-t0ken\n").unwrap();
    let s = Server::builder(QUICK)
        .args(&["-admin-listen", "0.0.0.0:0"])
        .args(&["-admin-token-file", token.to_str().unwrap()])
        .start();
    assert_eq!(s.admin_get("/-/health").status, 401);
    let allowed = s
        .admin("GET", "/-/health")
        .header("Authorization", "Bearer t0ken-t0ken")
        .send();
    assert_eq!(allowed.status, 200);
}

#[test]
fn failed_token_attempts_are_logged_without_flooding_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "right\n").unwrap();
    let s = Server::builder(QUICK)
        .args(&["-admin-token-file", token.to_str().unwrap()])
        .start();
    for guess in ["wrong", "Right", "righ", "right2", ""] {
        let response = s
            .admin("GET", "/-/runs")
            .header("Authorization", &format!("Bearer {guess}"))
            .send();
        assert_eq!(response.status, 401);
    }
    let marker = "missing or wrong admin token";
    assert!(s.wait_for_log(marker, Duration::from_secs(5)));
    assert_eq!(s.logs().matches(marker).count(), 1, "{}", s.logs());
    assert!(!s.logs().contains("right"), "a token guess reached the log");
}

#[test]
fn pages_of_other_sites_cannot_rerun() {
    let s = Server::start(QUICK);
    let id = run_id(&s.get("/hooks/quick"));
    finished(&s, &id);
    let path = format!("/-/runs/{id}/rerun");
    let own = format!("http://{}", s.admin_addr());
    for (name, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let response = s.admin("POST", &path).header(name, value).send();
        assert_eq!(response.status, 403, "{name}: {value}");
    }
    let runs = || {
        let list: Value = serde_json::from_slice(&s.admin_get("/-/runs").body).unwrap();
        list["runs"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(runs(), 1, "a refused rerun ran");
    // The listener's own pages, and clients that send no Origin, may.
    let same = s.admin("POST", &path).header("Origin", &own).send();
    assert_eq!(same.status, 202, "{}", same.text());
    let api = s.admin("POST", &path).send();
    assert_eq!(api.status, 202, "{}", api.text());
    assert!(wait_until(Duration::from_secs(15), || runs() == 3));
}

/// A hook that runs only with the right credentials, so a rerun proves they were kept.
const GUARDED: &str = r#"
- id: guarded
  execute-command: /bin/true
  trigger-rule:
    and:
      - match: {type: value, value: "Bearer s3cret-bearer", parameter: {source: header, name: Authorization}}
      - match: {type: value, value: q-s3cret, parameter: {source: url, name: token}}
"#;

#[test]
fn history_masks_credentials_and_a_rerun_still_has_them() {
    let s = Server::builder(GUARDED)
        .args(&["-state-dir", "{dir}/state"])
        .start();
    let response = s
        .request("POST", "/hooks/guarded?ref=main&token=q-s3cret")
        .header("Authorization", "Bearer s3cret-bearer")
        .header("X-Gitlab-Token", "gl-s3cret")
        .header("Cookie", "session=c00kie-s3cret")
        .header("Content-Type", "application/json")
        .body("{}")
        .send();
    assert_eq!(response.status, 200, "{}", response.text());
    let id = run_id(&response);
    let run = finished(&s, &id);
    assert_eq!(run["status"], "succeeded");
    let shown = s.admin_get(&format!("/-/runs/{id}")).text();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert_eq!(run["request"]["query"], "ref=main&token=********");
    let headers = run["request"]["headers"].as_array().unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|pair| pair[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|pair| pair[1].as_str().unwrap().to_owned())
    };
    assert_eq!(header("authorization").as_deref(), Some("********"));
    assert_eq!(header("cookie").as_deref(), Some("********"));
    assert_eq!(header("x-gitlab-token").as_deref(), Some("********"));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));

    let state = s.dir.path().join("state");
    let state = state.to_str().unwrap();
    for args in [
        &["runs", "show", &id, "--state-dir", state][..],
        &["runs", "show", &id, "--json", "--state-dir", state][..],
    ] {
        let (ok, out, err) = run_hookwire(args);
        assert!(ok, "{err}");
        assert!(!out.contains("s3cret"), "{out}");
    }

    let rerun = s.admin("POST", &format!("/-/runs/{id}/rerun")).send();
    assert_eq!(rerun.status, 202, "{}", rerun.text());
    let new_id = serde_json::from_slice::<Value>(&rerun.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(finished(&s, &new_id)["status"], "succeeded");
}
