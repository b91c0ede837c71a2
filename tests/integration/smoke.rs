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
