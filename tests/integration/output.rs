//! Live output: `GET /-/runs/{id}/output` as text and as an event stream (framing, late and
//! many followers, the end event), `hookwire runs follow`, and `stream-output` answers.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Server, run_id, wait_until};

/// Prints `first`, waits until `$RECORD_DIR/go` exists, prints `second`, exits with the
/// code in the query.
const STAGED: &str = r#"
- id: staged
  execute-command: /bin/sh
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'echo first; while [ ! -e "$RECORD_DIR/go" ]; do sleep 0.02; done; echo second; exit "$1"'}
    - {source: string, name: sh}
    - {source: url, name: code}
- id: streamed
  execute-command: /bin/sh
  include-command-output-in-response: true
  stream-output: true
  pass-arguments-to-command:
    - {source: string, name: -c}
    - {source: string, name: 'echo first; while [ ! -e "$RECORD_DIR/go" ]; do sleep 0.02; done; echo second; exit "$1"'}
    - {source: string, name: sh}
    - {source: url, name: code}
"#;

fn release(s: &Server) {
    std::fs::write(s.dir.path().join("records/go"), "").unwrap();
}

/// A response read as it arrives: the head, then the body chunk by chunk.
struct Live {
    reader: BufReader<TcpStream>,
    pub status: u16,
    pub head: String,
    /// The body received so far, de-chunked.
    pub body: String,
}

impl Live {
    fn open(addr: SocketAddr, method: &str, path: &str, accept: &str) -> Live {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(
            head.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "not streamed: {head}"
        );
        Live {
            reader,
            status,
            head,
            body: String::new(),
        }
    }

    /// Reads chunks until the body contains `needle`; false at the end of the body.
    fn read_until(&mut self, needle: &str) -> bool {
        while !self.body.contains(needle) {
            let mut size = String::new();
            if self.reader.read_line(&mut size).unwrap() == 0 {
                return false;
            }
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                return self.body.contains(needle);
            }
            self.body.push_str(&String::from_utf8_lossy(&chunk[..size]));
        }
        true
    }

    /// Reads to the end of the body.
    fn finish(&mut self) -> &str {
        self.read_until("\u{0}never");
        &self.body
    }
}

/// The `output` events' text, joined, and the `end` event's data.
fn parse_events(body: &str) -> (String, Option<serde_json::Value>) {
    let mut text = String::new();
    let mut end = None;
    for block in body.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut name = "";
        let mut data = "";
        for line in block.lines() {
            if let Some(rest) = line.strip_prefix("event: ") {
                name = rest;
            } else if let Some(rest) = line.strip_prefix("data: ") {
                data = rest;
            }
        }
        match name {
            "output" => text.push_str(&serde_json::from_str::<String>(data).unwrap()),
            "end" => end = Some(serde_json::from_str(data).unwrap()),
            _ => {}
        }
    }
    (text, end)
}

#[test]
fn followers_get_the_output_so_far_then_live_output_then_the_outcome() {
    let s = Server::start(STAGED);
    let id = run_id(&s.get("/hooks/staged?code=3"));
    let path = format!("/-/runs/{id}/output");
    let mut early = Live::open(s.admin_addr(), "GET", &path, "text/event-stream");
    assert_eq!(early.status, 200);
    assert!(early.head.contains("text/event-stream"), "{}", early.head);
    assert!(early.read_until("first"), "{}", early.body);
    // The plain text form gives what was written so far.
    assert!(wait_until(Duration::from_secs(10), || {
        s.admin_get(&path).text() == "first\n"
    }));
    // A late follower starts with what was already written; many followers all get it all.
    let mut late: Vec<Live> = (0..20)
        .map(|_| Live::open(s.admin_addr(), "GET", &path, "text/event-stream"))
        .collect();
    for follower in &mut late {
        assert!(follower.read_until("first"), "{}", follower.body);
    }
    assert!(!early.body.contains("second"));
    release(&s);
    for follower in std::iter::once(&mut early).chain(&mut late) {
        let (text, end) = parse_events(follower.finish());
        assert_eq!(text, "first\nsecond\n");
        let end = end.expect("an end event");
        assert_eq!(end["status"], "failed");
        assert_eq!(end["exit_code"], 3);
    }
    // After the end: the stored output, then the end at once.
    let mut after = Live::open(s.admin_addr(), "GET", &path, "text/event-stream");
    let (text, end) = parse_events(after.finish());
    assert_eq!(
        (text.as_str(), end.unwrap()["status"].as_str()),
        ("first\nsecond\n", Some("failed"))
    );
    assert_eq!(s.admin_get(&path).text(), "first\nsecond\n");
    assert_eq!(s.admin_get("/-/runs/nope/output").status, 404);
}

#[test]
fn runs_follow_prints_the_output_and_exits_with_the_outcome() {
    let s = Server::start(STAGED);
    let url = format!("http://{}", s.admin_addr());
    for (code, ok) in [("0", true), ("5", false)] {
        let _ = std::fs::remove_file(s.dir.path().join("records/go"));
        let id = run_id(&s.get(&format!("/hooks/staged?code={code}")));
        let mut follow = Command::new(env!("CARGO_BIN_EXE_hookwire"))
            .args(["runs", "follow", &id, "--url", &url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(follow.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "first\n", "printed before the run ended");
        release(&s);
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "second\n");
        let output = follow.wait_with_output().unwrap();
        assert_eq!(output.status.success(), ok);
        if !ok {
            let err = String::from_utf8_lossy(&output.stderr);
            assert!(err.contains("failed, exit status 5"), "{err}");
        }
    }
}

#[test]
fn a_stream_output_answer_sends_the_output_as_it_comes() {
    let s = Server::start(STAGED);
    let started = Instant::now();
    let mut answer = Live::open(s.addr(), "POST", "/hooks/streamed?code=0", "*/*");
    assert_eq!(answer.status, 200);
    assert!(answer.head.contains("X-Hookwire-Run"), "{}", answer.head);
    assert!(answer.read_until("first\n"));
    assert!(!Path::new(&s.dir.path().join("records/go")).exists());
    release(&s);
    assert_eq!(answer.finish(), "first\nsecond\n");
    assert!(started.elapsed() < Duration::from_secs(20));

    let _ = std::fs::remove_file(s.dir.path().join("records/go"));
    let mut failing = Live::open(s.addr(), "POST", "/hooks/streamed?code=4", "*/*");
    assert_eq!(
        failing.status, 200,
        "the status went before the command ended"
    );
    let id = failing
        .head
        .lines()
        .find_map(|line| line.strip_prefix("X-Hookwire-Run: "))
        .unwrap()
        .trim()
        .to_owned();
    assert!(failing.read_until("first\n"));
    release(&s);
    assert_eq!(
        failing.finish(),
        format!("first\nsecond\n\nhookwire: run {id} failed (exit status 4)\n")
    );
}
