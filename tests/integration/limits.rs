//! Bad input: malformed and oversized bodies, slow clients, deep nesting, header floods. The
//! server answers with the right status, never crashes, and never runs a command it should not.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{Server, send_raw};

/// A hook that records every run, and one guarded by a payload rule.
const HOOKS: &str = r#"
- id: open
  execute-command: {fixtures}/record.sh
  pass-arguments-to-command:
    - {source: payload, name: a}
- id: guarded
  execute-command: {fixtures}/record.sh
  trigger-rule:
    match: {type: value, value: "1", parameter: {source: payload, name: a}}
"#;

fn assert_alive(s: &Server) {
    assert_eq!(s.get("/").text(), "OK", "the server stopped answering");
}

#[test]
fn unparsable_bodies_are_400_and_run_nothing() {
    let s = Server::start(HOOKS);
    let cases: &[(&str, &[u8])] = &[
        ("application/json", b"{\"a\": \"1\""),
        ("application/json", b"{\"a\": \xff\xfe}"),
        ("application/json", b"\"just a string\""),
        ("application/x-www-form-urlencoded", b"a=%zz"),
        ("application/x-www-form-urlencoded", b"a=1;b=2"),
        ("application/xml", b"<a><b></a>"),
    ];
    for (content_type, body) in cases {
        for hook in ["open", "guarded"] {
            let r = s.post(&format!("/hooks/{hook}"), content_type, body.to_vec());
            assert_eq!(
                r.status,
                400,
                "{content_type} {:?} to {hook}: {}",
                String::from_utf8_lossy(body),
                r.text()
            );
        }
    }
    let r = s.post(
        "/hooks/open",
        "multipart/form-data; boundary=xyz",
        b"garbage".to_vec(),
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "Error occurred while parsing multipart form.")
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        s.records().is_empty(),
        "a command ran for an unparsable body"
    );
    assert_alive(&s);
}

/// Deep nesting never crashes or runs anything: a deep value the hook reads is refused (400);
/// a deep part nobody reads is only checked for syntax, without recursion.
#[test]
fn deep_nesting_is_handled_quickly() {
    let s = Server::start(HOOKS);
    let depth = 100_000;
    let deep_array = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let started = Instant::now();
    let r = s.post(
        "/hooks/guarded",
        "application/json",
        format!("{{\"a\":{deep_array}}}"),
    );
    assert_eq!(r.status, 400, "the rule reads `a`, which nests too deep");
    let r = s.post(
        "/hooks/guarded",
        "application/json",
        format!("{{\"b\":{deep_array}}}"),
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hook rules were not satisfied."),
        "`b` is never read, so it is only checked for syntax"
    );
    let r = s.post(
        "/hooks/guarded",
        "application/json",
        format!("{{\"b\":{}}}", "[".repeat(depth)),
    );
    assert_eq!(
        r.status, 400,
        "an unclosed deep part is still a syntax error"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let body = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    assert_eq!(
        s.post("/hooks/guarded", "application/xml", body).status,
        400
    );
    assert!(
        s.records().is_empty(),
        "a command ran for a deeply nested body"
    );
    assert_alive(&s);
}

#[test]
fn oversized_bodies_are_413() {
    let s = Server::builder(HOOKS)
        .args(&["-max-body-size", "1048576"])
        .start();
    let big = vec![b'a'; 2 * 1024 * 1024];
    // Declared too large: refused before reading.
    let r = s.post("/hooks/open", "application/json", big.clone());
    assert_eq!(r.status, 413);
    // Chunked, so the size is only known while streaming.
    let mut stream = TcpStream::connect(s.addr()).unwrap();
    stream
        .write_all(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .unwrap();
    for chunk in big.chunks(64 * 1024) {
        if stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_err()
            || stream.write_all(chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    assert!(
        String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)])
    );
    assert!(s.records().is_empty());
    assert_alive(&s);
}

#[test]
fn ten_megabyte_bodies_within_the_default_limit_are_fine() {
    let s = Server::start(HOOKS);
    let mut body = String::from("{\"a\":\"1\",\"pad\":\"");
    body.push_str(&"x".repeat(10 * 1024 * 1024 - 100));
    body.push_str("\"}");
    let r = s.post("/hooks/guarded", "application/json", body);
    assert_eq!(r.status, 200);
    assert_eq!(s.wait_for_records(1).len(), 1);
}

#[test]
fn slow_clients_are_cut_off_and_others_still_served() {
    let s = Server::builder(HOOKS).args(&["-read-timeout", "2"]).start();
    // Headers that never finish.
    let mut slow = TcpStream::connect(s.addr()).unwrap();
    slow.write_all(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // A body that never finishes.
    let mut slow_body = TcpStream::connect(s.addr()).unwrap();
    slow_body
        .write_all(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
        .unwrap();
    assert_alive(&s);
    let started = Instant::now();
    let mut raw = Vec::new();
    slow_body
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = slow_body.read_to_end(&mut raw);
    assert!(
        String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = Vec::new();
    let _ = slow.read_to_end(&mut raw);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the header timeout did not fire"
    );
    assert!(s.records().is_empty());
}

#[test]
fn header_floods_are_refused() {
    let s = Server::start(HOOKS);
    let mut request = String::from("GET /hooks/guarded HTTP/1.1\r\nHost: x\r\n");
    for i in 0..1000 {
        request.push_str(&format!("X-Flood-{i}: {i}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    let r = send_raw(s.addr(), request.as_bytes());
    assert_eq!(r.status, 431);
    assert_alive(&s);
}

#[test]
fn wrong_content_types_give_no_payload() {
    let s = Server::start(HOOKS);
    // Not a known type: no payload, so the rule on a payload field does not hold.
    let r = s.post("/hooks/guarded", "text/plain", "{\"a\":\"1\"}");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hook rules were not satisfied.")
    );
    let r = s.post("/hooks/guarded", "application/json", "{\"a\":\"1\"}");
    assert_eq!(r.status, 200);
    assert_eq!(s.wait_for_records(1).len(), 1);
}
