//! The console on the admin listener, over HTTP: pages, security headers, login and logout
//! with a session cookie, CSRF tokens, reruns, paging. (The browser tests drive the same pages
//! in Chromium.)

use std::time::Duration;

use crate::harness::{Response, Server, run_id, wait_until};

const HOOKS: &str = r#"
- id: hello
  execute-command: /bin/echo
  pass-arguments-to-command:
    - {source: string, name: hello-from-the-console}
- id: guarded
  execute-command: /bin/true
  concurrency: queue
  trigger-rule:
    match: {type: value, value: main, parameter: {source: url, name: ref}}
"#;

/// Waits until the run's page no longer says it is queued or running.
pub fn wait_ended(s: &Server, id: &str, cookie: Option<&str>) -> String {
    let mut page = String::new();
    let ended = wait_until(Duration::from_secs(15), || {
        let mut request = s.admin("GET", &format!("/runs/{id}"));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        page = request.send().text();
        !page.contains("status-queued") && !page.contains("status-running")
    });
    assert!(ended, "{page}");
    page
}

/// The value of a hidden `csrf` field in a page.
fn csrf(page: &str) -> String {
    let start = page
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("no csrf field in {page}"))
        + r#"name="csrf" value=""#.len();
    page[start..start + 64].to_owned()
}

fn form(s: &Server, path: &str, body: &str, cookie: Option<&str>) -> Response {
    let mut request = s
        .admin("POST", path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    request.send()
}

#[test]
fn pages_show_runs_hooks_and_health_with_a_strict_policy() {
    let s = Server::start(HOOKS);
    let id = run_id(&s.get("/hooks/hello"));
    let page = wait_ended(&s, &id, None);
    assert!(page.contains("hello-from-the-console"), "{page}");
    assert!(page.contains("status-succeeded"));

    let runs = s.admin_get("/");
    assert_eq!(runs.status, 200);
    let policy = runs.header("Content-Security-Policy").unwrap();
    assert!(policy.starts_with("default-src 'none'") && !policy.contains("unsafe"));
    assert_eq!(runs.header("X-Frame-Options"), Some("DENY"));
    assert!(runs.text().contains(&format!("/runs/{id}")));

    let hooks = s.admin_get("/hooks").text();
    for expected in [
        "/hooks/hello",
        "/hooks/guarded",
        "queue",
        "{query ref} == &quot;main&quot;",
        "100% of 1",
    ] {
        assert!(hooks.contains(expected), "{expected} in {hooks}");
    }
    let health = s.admin_get("/health").text();
    assert!(health.contains("Hooks loaded</dt><dd>2</dd>"), "{health}");

    let css = s.admin_get("/assets/console.css");
    assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
    let js = s.admin_get("/assets/console.js");
    assert_eq!(
        js.header("Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(s.admin_get("/nope").status, 404);
    assert_eq!(s.admin_get("/runs/nope").status, 404);
    // Without a token there is nothing to log into.
    assert_eq!(s.admin_get("/login").status, 303);
}

#[test]
fn the_runs_page_filters_and_pages() {
    let s = Server::start(HOOKS);
    let mut ids = Vec::new();
    for _ in 0..55 {
        ids.push(run_id(&s.get("/hooks/hello")));
    }
    let refused = s.get("/hooks/guarded?ref=dev");
    assert_eq!(refused.status, 200);
    let guarded = run_id(&s.get("/hooks/guarded?ref=main"));
    wait_ended(&s, &guarded, None);
    for id in &ids {
        wait_ended(&s, id, None);
    }
    let first = s.admin_get("/?hook=hello").text();
    assert_eq!(first.matches("<tr><td data-label=\"Run\">").count(), 50);
    assert!(!first.contains(&guarded));
    assert!(first.contains(&ids[54]) && !first.contains(&ids[4]));
    let next = first
        .split("href=\"")
        .find(|part| part.starts_with("/?hook=hello&amp;before="))
        .and_then(|part| part.split('"').next())
        .expect("a link to older runs")
        .replace("&amp;", "&");
    let second = s.admin_get(&next).text();
    assert_eq!(second.matches("<tr><td data-label=\"Run\">").count(), 5);
    assert!(second.contains(&ids[0]) && !second.contains("rel=\"next\""));
    let failed_only = s.admin_get("/?status=failed").text();
    assert!(failed_only.contains("No runs yet"), "{failed_only}");
}

#[test]
fn a_rerun_needs_the_form_token_and_the_listeners_own_origin() {
    let s = Server::start(HOOKS);
    let id = run_id(&s.get("/hooks/hello"));
    let page = wait_ended(&s, &id, None);
    let token = csrf(&page);
    let path = format!("/runs/{id}/rerun");
    assert_eq!(form(&s, &path, "csrf=0000", None).status, 403);
    assert_eq!(form(&s, &path, "", None).status, 403);
    let cross = s
        .admin("POST", &path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Origin", "https://evil.example")
        .body(format!("csrf={token}"))
        .send();
    assert_eq!(cross.status, 403);
    let rerun = form(&s, &path, &format!("csrf={token}"), None);
    assert_eq!(rerun.status, 303, "{}", rerun.text());
    let location = rerun.header("Location").unwrap().to_owned();
    assert!(location.starts_with("/runs/") && !location.ends_with(&id));
    let new_page = wait_ended(&s, location.trim_start_matches("/runs/"), None);
    assert!(
        new_page.contains(&format!("href=\"/runs/{id}\"")),
        "{new_page}"
    );
}

#[test]
fn with_a_token_the_console_needs_a_login_whose_cookie_is_strict() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "console-t0ken\n").unwrap();
    let s = Server::builder(HOOKS)
        .args(&["-admin-token-file", token_file.to_str().unwrap()])
        .start();
    let id = run_id(&s.get("/hooks/hello"));

    let first = s.admin_get("/");
    assert_eq!(
        (first.status, first.header("Location")),
        (303, Some("/login"))
    );
    assert_eq!(s.admin_get(&format!("/runs/{id}")).status, 303);
    assert_eq!(s.admin_get("/-/runs").status, 401);
    let login = s.admin_get("/login");
    assert_eq!(login.status, 200);
    let token = csrf(&login.text());

    let wrong = form(&s, "/login", &format!("csrf={token}&token=guess"), None);
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("Set-Cookie").is_none());
    let no_csrf = form(&s, "/login", "token=console-t0ken", None);
    assert_eq!(no_csrf.status, 403);

    let ok = form(
        &s,
        "/login",
        &format!("csrf={token}&token=console-t0ken"),
        None,
    );
    assert_eq!((ok.status, ok.header("Location")), (303, Some("/")));
    let set_cookie = ok.header("Set-Cookie").unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{flag} in {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(!cookie.contains("console-t0ken"));

    let page = wait_ended(&s, &id, Some(&cookie));
    assert!(page.contains("Log out"));
    let api = s.admin("GET", "/-/runs").header("Cookie", &cookie).send();
    assert_eq!(api.status, 200);

    // A CSRF token is bound to its session: one from the login page does not rerun.
    let path = format!("/runs/{id}/rerun");
    assert_eq!(
        form(&s, &path, &format!("csrf={token}"), Some(&cookie)).status,
        403
    );
    let session_token = csrf(&page);
    let rerun = form(&s, &path, &format!("csrf={session_token}"), Some(&cookie));
    assert_eq!(rerun.status, 303);

    let home = s.admin("GET", "/").header("Cookie", &cookie).send().text();
    let out = form(
        &s,
        "/logout",
        &format!("csrf={}", csrf(&home)),
        Some(&cookie),
    );
    assert_eq!(out.status, 303);
    assert!(out.header("Set-Cookie").unwrap().contains("Max-Age=0"));
    let after = s.admin("GET", "/").header("Cookie", &cookie).send();
    assert_eq!(after.status, 303, "the session outlived its logout");
}
