//! The example hooks served by the README's first command answer the README's requests.

use crate::harness::{Server, hmac_hex};

/// `hooks.example.yaml` with its relative commands pointed at the repository's `examples/`.
fn example_server() -> Server {
    let root = env!("CARGO_MANIFEST_DIR");
    let hooks = std::fs::read_to_string(format!("{root}/hooks.example.yaml")).unwrap();
    let hooks = hooks.replace(
        "execute-command: examples/",
        &format!("execute-command: {root}/examples/"),
    );
    Server::start(&hooks)
}

#[test]
fn example_hooks_load_without_warnings() {
    let server = example_server();
    let logs = server.logs();
    assert!(logs.contains("loaded 4 hook(s)"), "{logs}");
    assert!(!logs.contains("WARN"), "the example hooks warn:\n{logs}");
}

#[test]
fn the_readme_walk_through_works() {
    let server = example_server();
    let r = server.get("/hooks/status?who=me");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("requested by: me"), "{}", r.text());

    let form = "token=change-me-form-token&name=Ada&email=ada%40example.com&message=hello";
    let r = server.post(
        "/hooks/contact-form",
        "application/x-www-form-urlencoded",
        form,
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Thanks, your message was received.")
    );
    let r = server.post(
        "/hooks/contact-form",
        "application/x-www-form-urlencoded",
        "token=wrong",
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hook rules were not satisfied.")
    );

    let gitlab = r#"{"ref":"refs/heads/main","project":{"path_with_namespace":"team/app"}}"#;
    let r = server
        .request("POST", "/hooks/gitlab-push")
        .header("X-Gitlab-Token", "change-me-gitlab-token")
        .header("Content-Type", "application/json")
        .body(gitlab)
        .send();
    assert_eq!((r.status, r.text().as_str()), (200, "Pipeline queued."));

    let github = r#"{"ref":"refs/heads/main","head_commit":{"id":"abc123"},"pusher":{"name":"ada"},"repository":{"full_name":"team/app"}}"#;
    let signature = format!(
        "sha256={}",
        hmac_hex("sha256", b"change-me-github-secret", github.as_bytes())
    );
    let r = server
        .request("POST", "/hooks/github-deploy")
        .header("X-Hub-Signature-256", &signature)
        .header("Content-Type", "application/json")
        .body(github)
        .send();
    assert_eq!((r.status, r.text().as_str()), (200, "Deploy started."));
    let r = server
        .request("POST", "/hooks/github-deploy")
        .header("X-Hub-Signature-256", "sha256=0000")
        .header("Content-Type", "application/json")
        .body(github)
        .send();
    assert_eq!(
        r.status, 500,
        "a bad signature is a rule error, as in webhook"
    );
}
