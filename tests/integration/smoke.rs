//! The first request a newcomer sends.

use crate::harness::Server;

#[test]
fn root_answers_ok_and_unknown_hooks_404() {
    let server = Server::start("[]");
    let response = server.get("/");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "OK");
    let response = server.get("/hooks/nope");
    assert_eq!(response.status, 404);
    assert_eq!(response.text(), "Hook not found.");
}

#[test]
fn toml_hooks_files_load_like_yaml() {
    let hooks = r#"
[[hooks]]
id = "toml"
execute-command = "/bin/true"
response-message = "from toml"
"#;
    let server = Server::builder(hooks).file_name("hooks.toml").start();
    assert_eq!(server.get("/hooks/toml").text(), "from toml");
}

#[test]
fn templates_read_the_environment() {
    let hooks = r#"
- id: templated
  execute-command: /bin/true
  response-message: "{{ getenv "GREETING" | js }}"
"#;
    let server = Server::builder(hooks)
        .arg("-template")
        .env("GREETING", "it's \"here\"")
        .start();
    assert_eq!(server.get("/hooks/templated").text(), "it's \"here\"");
}
