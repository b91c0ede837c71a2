//! Many or slow clients: the cap per client address, the first-byte timeout, idle keep-alive
//! connections, and shedding idle connections so a fresh request is answered at once.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::harness::{Response, Server};

const HOOKS: &str = r#"
- id: open
  execute-command: {fixtures}/record.sh
"#;

/// Another loopback address: Linux routes all of 127/8 to `lo`.
const OTHER_CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A TCP connection to `server` from the local address `client`.
fn connect_from(client: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddrV4::new(client, 0).into())
        .expect("bind the client address");
    socket.connect(&server.into()).expect("connect");
    socket.into()
}

/// `GET /` from `client`, with the time it took to be answered.
fn timed_get(client: Ipv4Addr, server: SocketAddr) -> (Response, Duration) {
    let started = Instant::now();
    let mut stream = connect_from(client, server);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    (Response::parse(&raw), started.elapsed())
}

/// What the server sent on `stream` before closing it, or `None` if it was still open after
/// `timeout`.
fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    let mut buffer = [0; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return Some(received),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return Some(received),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(error) => panic!("reading: {error}"),
        }
    }
}

/// Whether the server closed `stream` within `timeout`.
fn closed_within(stream: &mut TcpStream, timeout: Duration) -> bool {
    read_until_closed(stream, timeout).is_some()
}

/// Whether `stream` is still open: nothing to read and no EOF right now.
fn still_open(stream: &mut TcpStream) -> bool {
    !closed_within(stream, Duration::from_millis(100))
}

/// A connection with a request in progress: headers read, body still to come. Returns once
/// the server asked for the body (`100 Continue`), so it is known to be serving the request.
fn busy_connection(client: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let mut stream = connect_from(client, server);
    stream
        .write_all(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = [0; 25];
    stream.read_exact(&mut head).expect("100 Continue");
    assert!(
        head.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

fn silent_connections(count: usize, server: SocketAddr) -> Vec<TcpStream> {
    (0..count)
        .map(|_| TcpStream::connect(server).expect("connect"))
        .collect()
}

/// One client holding 2,000 idle connections (more than `-max-connections`) delays neither a
/// fresh request from another address nor one from its own address. The first-byte timeout is
/// long, so the idle connections stay open throughout and it is shedding that makes room.
#[test]
fn thousands_of_idle_connections_delay_no_fresh_request() {
    let patient = ["-first-byte-timeout", "600"];
    let no_cap_per_address = ["-first-byte-timeout", "600", "-max-connections-per-ip", "0"];
    for args in [&patient[..], &no_cap_per_address[..]] {
        let s = Server::builder(HOOKS).args(args).start();
        let _idle = silent_connections(2000, s.addr());
        for client in [OTHER_CLIENT, Ipv4Addr::LOCALHOST] {
            let (response, took) = timed_get(client, s.addr());
            assert_eq!(response.text(), "OK", "{args:?}, from {client}");
            assert!(
                took < Duration::from_secs(2),
                "{args:?}: the request from {client} took {took:?}"
            );
        }
    }
}

/// At the cap per address, the address's connection idle the longest makes room; other
/// addresses are not affected.
#[test]
fn a_full_address_sheds_its_oldest_idle_connection() {
    let s = Server::builder(HOOKS)
        .args(&["-max-connections-per-ip", "2"])
        .start();
    let mut other = connect_from(OTHER_CLIENT, s.addr());
    let mut idle = silent_connections(2, s.addr());
    let (response, _) = timed_get(Ipv4Addr::LOCALHOST, s.addr());
    assert_eq!(response.text(), "OK");
    assert!(
        closed_within(&mut idle[0], Duration::from_secs(2)),
        "the oldest idle connection was not closed"
    );
    assert!(still_open(&mut idle[1]));
    assert!(
        still_open(&mut other),
        "another address lost its connection"
    );
}

/// At the cap per address with every connection serving a request, a new connection from that
/// address is closed at once, while other addresses are served.
#[test]
fn a_full_address_with_every_request_in_progress_is_refused() {
    let s = Server::builder(HOOKS)
        .args(&["-max-connections-per-ip", "2"])
        .start();
    let mut busy: Vec<_> = (0..2)
        .map(|_| busy_connection(Ipv4Addr::LOCALHOST, s.addr()))
        .collect();
    let mut refused = connect_from(Ipv4Addr::LOCALHOST, s.addr());
    let _ = refused.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let received = read_until_closed(&mut refused, Duration::from_secs(5))
        .expect("the connection over the cap was not closed");
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    let (response, _) = timed_get(OTHER_CLIENT, s.addr());
    assert_eq!(response.text(), "OK");
    // The busy requests were left alone and complete.
    for stream in &mut busy {
        stream.write_all(b"{}").unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }
    assert_eq!(s.wait_for_records(2).len(), 2);
}

/// At `-max-connections`, the connection idle the longest makes room for a new one.
#[test]
fn a_full_server_sheds_its_oldest_idle_connection() {
    let s = Server::builder(HOOKS)
        .args(&["-max-connections", "2", "-max-connections-per-ip", "0"])
        .start();
    let mut idle = silent_connections(2, s.addr());
    let (response, took) = timed_get(OTHER_CLIENT, s.addr());
    assert_eq!(response.text(), "OK");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(closed_within(&mut idle[0], Duration::from_secs(2)));
    assert!(still_open(&mut idle[1]));
}

/// A connection that sends nothing is closed after `-first-byte-timeout`.
#[test]
fn silent_connections_are_closed_after_the_first_byte_timeout() {
    let s = Server::builder(HOOKS)
        .args(&["-first-byte-timeout", "1"])
        .start();
    let started = Instant::now();
    let mut silent = TcpStream::connect(s.addr()).unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)),
        "a silent connection was still open after 3 s: {}",
        s.logs()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before its time: {:?}",
        started.elapsed()
    );
    assert_eq!(s.get("/").text(), "OK");
}

/// A keep-alive connection idle after a response is closed after `-read-timeout` (hyper's
/// header timer starts as soon as the connection waits for the next request).
#[test]
fn idle_keep_alive_connections_are_closed_after_the_read_timeout() {
    let s = Server::builder(HOOKS).args(&["-read-timeout", "1"]).start();
    let mut stream = TcpStream::connect(s.addr()).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut raw = Vec::new();
    let mut buffer = [0; 1024];
    while !raw.ends_with(b"\r\n\r\nOK") {
        let read = stream.read(&mut buffer).expect("the response");
        assert!(read > 0, "closed before answering");
        raw.extend_from_slice(&buffer[..read]);
    }
    assert!(still_open(&mut stream), "keep-alive was not kept");
    assert!(
        closed_within(&mut stream, Duration::from_secs(3)),
        "an idle keep-alive connection was still open after 3 s"
    );
}
