//! adnanh's response matrix (reference §4.3): status codes and bodies, wording included.

use crate::harness::Server;

const HOOKS: &str = r#"
- id: plain
  execute-command: /bin/true
  response-message: started
- id: coded
  execute-command: /bin/true
  response-message: accepted
  success-http-response-code: 202
  trigger-rule-mismatch-http-response-code: 418
  trigger-rule:
    match: {type: value, value: yes-please, parameter: {source: query, name: token}}
- id: bad-codes
  execute-command: /bin/true
  success-http-response-code: 999
  trigger-rule-mismatch-http-response-code: 299
  trigger-rule:
    match: {type: value, value: ok, parameter: {source: query, name: t}}
- id: output
  execute-command: {fixtures}/echo-args.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: hello}
    - {source: query, name: who}
- id: failing
  execute-command: /bin/sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: "echo partial; exit 3"}
- id: failing-with-output
  execute-command: /bin/sh
  include-command-output-in-response: true
  include-command-output-in-response-on-error: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: "echo partial; exit 3"}
- id: missing-command
  execute-command: /nonexistent/command
  include-command-output-in-response: true
- id: missing-command-on-error
  execute-command: /nonexistent/command
  include-command-output-in-response: true
  include-command-output-in-response-on-error: true
- id: missing-command-background
  execute-command: /nonexistent/command
  response-message: fine
- id: headers
  execute-command: /bin/true
  response-message: '{"ok":true}'
  response-headers:
    - {name: Content-Type, value: application/json}
    - {name: X-Custom, value: from-hook}
    - {name: X-Both, value: hook-wins}
  trigger-rule:
    match: {type: value, value: "1", parameter: {source: query, name: go}}
- id: post-only
  execute-command: /bin/true
  http-methods: [" post ", put]
- id: rule-error
  execute-command: /bin/true
  trigger-rule:
    match: {type: value, value: x, parameter: {source: request, name: bogus}}
- id: deploy/staging
  execute-command: /bin/true
  response-message: nested id
"#;

fn server() -> Server {
    Server::builder(HOOKS)
        .args(&["-header", "X-Global=g=1", "-header", "X-Both=global"])
        .start()
}

#[test]
fn success_and_mismatch_codes() {
    let s = server();
    let r = s.get("/hooks/plain");
    assert_eq!((r.status, r.text().as_str()), (200, "started"));
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let r = s.get("/hooks/coded?token=yes-please");
    assert_eq!((r.status, r.text().as_str()), (202, "accepted"));
    let r = s.get("/hooks/coded?token=no");
    assert_eq!(
        (r.status, r.text().as_str()),
        (418, "Hook rules were not satisfied.")
    );
    let r = s.get("/hooks/coded");
    assert_eq!(
        (r.status, r.text().as_str()),
        (418, "Hook rules were not satisfied."),
        "missing parameter is a mismatch"
    );
}

#[test]
fn unknown_status_codes_fall_back_to_200() {
    let s = server();
    assert_eq!(s.get("/hooks/bad-codes?t=ok").status, 200);
    let r = s.get("/hooks/bad-codes?t=no");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hook rules were not satisfied.")
    );
}

#[test]
fn command_output_in_response() {
    let s = server();
    let r = s.get("/hooks/output?who=world");
    assert_eq!((r.status, r.text().as_str()), (200, "hello\nworld\n"));
    let r = s.get("/hooks/failing");
    assert_eq!(r.status, 500);
    assert_eq!(
        r.text(),
        "Error occurred while executing the hook's command. Please check your logs for more details."
    );
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let r = s.get("/hooks/failing-with-output");
    assert_eq!((r.status, r.text().as_str()), (500, "partial\n"));
}

#[test]
fn a_command_that_cannot_start() {
    let s = server();
    let r = s.get("/hooks/missing-command");
    assert_eq!(r.status, 500);
    assert!(
        r.text()
            .starts_with("Error occurred while executing the hook's command.")
    );
    let r = s.get("/hooks/missing-command-on-error");
    assert_eq!((r.status, r.text().as_str()), (500, ""));
    // In the background the failure is only logged, as adnanh does.
    let r = s.get("/hooks/missing-command-background");
    assert_eq!((r.status, r.text().as_str()), (200, "fine"));
    assert!(s.wait_for_log("/nonexistent/command", std::time::Duration::from_secs(5)));
}

#[test]
fn response_headers_and_global_headers() {
    let s = server();
    let r = s.get("/hooks/headers?go=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("X-Custom"), Some("from-hook"));
    assert_eq!(
        r.header("X-Global"),
        Some("g=1"),
        "-header splits at the first ="
    );
    assert_eq!(r.header("X-Both"), Some("hook-wins"));
    // On a mismatch: the -header headers, not the hook's.
    let r = s.get("/hooks/headers?go=0");
    assert_eq!(r.header("X-Custom"), None);
    assert_eq!(r.header("X-Global"), Some("g=1"));
    assert_eq!(r.header("X-Both"), Some("global"));
    // Not on 404 or 405.
    assert_eq!(s.get("/hooks/none").header("X-Global"), None);
    assert_eq!(s.get("/hooks/post-only").header("X-Global"), None);
    // On / (as webhook 2.8.2 does).
    assert_eq!(s.get("/").header("X-Global"), Some("g=1"));
}

#[test]
fn methods_are_checked_exactly() {
    let s = server();
    let r = s.get("/hooks/post-only");
    assert_eq!((r.status, r.text().as_str()), (405, ""));
    assert_eq!(s.request("POST", "/hooks/post-only").send().status, 200);
    assert_eq!(s.request("PUT", "/hooks/post-only").send().status, 200);
    assert_eq!(s.request("Post", "/hooks/post-only").send().status, 405);
    // Without a list, any method runs the hook, HEAD and OPTIONS included.
    assert_eq!(s.request("OPTIONS", "/hooks/plain").send().status, 200);
    assert_eq!(s.request("DELETE", "/hooks/plain").send().status, 200);
}

#[test]
fn global_http_methods_apply_to_hooks_without_their_own() {
    let s = Server::builder(HOOKS)
        .args(&["-http-methods", "post, Patch"])
        .start();
    assert_eq!(s.get("/hooks/plain").status, 405);
    assert_eq!(s.request("POST", "/hooks/plain").send().status, 200);
    assert_eq!(s.request("PATCH", "/hooks/plain").send().status, 200);
    assert_eq!(
        s.request("PUT", "/hooks/post-only").send().status,
        200,
        "the hook's own list wins"
    );
}

#[test]
fn rule_errors_are_500() {
    let s = server();
    let r = s.get("/hooks/rule-error");
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "Error occurred while evaluating hook rules.")
    );
}

#[test]
fn routing_edges() {
    let s = server();
    assert_eq!(s.get("/hooks/deploy/staging").text(), "nested id");
    assert_eq!(s.get("/hooks/deploy%2Fstaging").text(), "nested id");
    let r = s.get("/hooks/plain/");
    assert_eq!((r.status, r.text().as_str()), (404, "Hook not found."));
    let r = s.get("/hooks/PLAIN");
    assert_eq!(r.status, 404);
    let r = s.get("/hooks");
    assert_eq!((r.status, r.text().as_str()), (404, "404 page not found\n"));
    let r = s.get("/hooks//plain?x=1");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/hooks/plain?x=1"));
    let r = s.request("POST", "/").send();
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));
}

#[test]
fn url_prefix_is_configurable() {
    let s = Server::builder(HOOKS)
        .args(&["-urlprefix", "api/v2"])
        .start();
    assert_eq!(s.get("/api/v2/plain").text(), "started");
    assert_eq!(s.get("/hooks/plain").status, 404);
    let s = Server::builder(HOOKS).args(&["-urlprefix", ""]).start();
    assert_eq!(s.get("/plain").text(), "started");
    assert_eq!(s.get("/").text(), "OK");
}
