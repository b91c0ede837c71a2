//! HTTPS (`-secure -cert -key`, reference §4.5) with a rustls client built here and the test
//! certificate in `tests/fixtures/tls`; `-tls-min-version`, `-cipher-suites` and
//! `-list-cipher-suites`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedCipherSuite};

use crate::harness::{Response, Server, fixtures, wait_until};

const HOOKS: &str = r#"
- id: ping
  execute-command: /bin/true
  response-message: pong over TLS
- id: echo
  execute-command: {fixtures}/echo-args.sh
  include-command-output-in-response: true
  pass-arguments-to-command:
    - {source: payload, name: greeting}
"#;

fn secure(extra: &[&str]) -> Server {
    let tls = fixtures().join("tls");
    let cert = tls.join("cert.pem").display().to_string();
    let key = tls.join("key.pem").display().to_string();
    let mut args = vec!["-secure", "-cert", cert.as_str(), "-key", key.as_str()];
    args.extend_from_slice(extra);
    Server::builder(HOOKS).args(&args).start()
}

/// A client trusting only the test certificate, limited to `versions` and, if given, `suites`.
fn client(
    versions: &[&'static rustls::SupportedProtocolVersion],
    suites: Option<Vec<SupportedCipherSuite>>,
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let cert = CertificateDer::from_pem_file(fixtures().join("tls/cert.pem")).unwrap();
    roots.add(cert).unwrap();
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suites) = suites {
        provider.cipher_suites = suites;
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// What one HTTPS exchange gave: the negotiated version and ALPN protocol, and the response.
struct Exchange {
    version: Option<rustls::ProtocolVersion>,
    alpn: Option<Vec<u8>>,
    response: Response,
}

/// Sends `request` over TLS; `Err` with the TLS error when the handshake fails.
fn https(addr: SocketAddr, config: Arc<ClientConfig>, request: &[u8]) -> Result<Exchange, String> {
    let name = ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = StreamOwned::new(connection, tcp);
    stream.write_all(request).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // The server may close without close_notify after `Connection: close`.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(Exchange {
        version: stream.conn.protocol_version(),
        alpn: stream.conn.alpn_protocol().map(<[u8]>::to_vec),
        response: Response::parse(&raw),
    })
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

const ALL: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

#[test]
fn https_serves_hooks_with_the_given_certificate() {
    let s = secure(&[]);
    assert!(
        s.logs().contains("serving hooks on https://"),
        "{}",
        s.logs()
    );
    let exchange = https(s.addr(), client(ALL, None, &[]), &get("/hooks/ping")).unwrap();
    assert_eq!(exchange.response.status, 200);
    assert_eq!(exchange.response.text(), "pong over TLS");
    assert_eq!(exchange.version, Some(rustls::ProtocolVersion::TLSv1_3));
    // A body and the command's output travel over TLS too.
    let body = r#"{"greeting":"hello"}"#;
    let request = format!(
        "POST /hooks/echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = https(s.addr(), client(ALL, None, &[]), request.as_bytes()).unwrap();
    assert_eq!(exchange.response.text(), "hello\n");
    // TLS 1.2 is accepted by default.
    let exchange = https(s.addr(), client(TLS12, None, &[]), &get("/")).unwrap();
    assert_eq!(exchange.version, Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(exchange.response.text(), "OK");
}

/// As in adnanh, HTTP/2 is off: a client offering h2 gets HTTP/1.1.
#[test]
fn only_http_1_1_is_negotiated() {
    let s = secure(&[]);
    let exchange = https(
        s.addr(),
        client(ALL, None, &[b"h2", b"http/1.1"]),
        &get("/hooks/ping"),
    )
    .unwrap();
    assert_eq!(exchange.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(exchange.response.text(), "pong over TLS");
}

/// Plain HTTP to the HTTPS port gets no HTTP answer.
#[test]
fn plain_http_to_the_tls_port_gets_no_hook() {
    let s = secure(&[]);
    let mut tcp = TcpStream::connect(s.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(&get("/hooks/ping")).unwrap();
    let mut raw = Vec::new();
    let _ = tcp.read_to_end(&mut raw);
    assert!(
        !String::from_utf8_lossy(&raw).contains("pong"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn tls_min_version_1_3_refuses_tls_1_2_clients() {
    let s = secure(&["-tls-min-version", "1.3"]);
    let refused = https(s.addr(), client(TLS12, None, &[]), &get("/hooks/ping"));
    assert!(refused.is_err(), "a TLS 1.2 client was served");
    let exchange = https(s.addr(), client(TLS13, None, &[]), &get("/hooks/ping")).unwrap();
    assert_eq!(exchange.response.text(), "pong over TLS");
}

/// `-cipher-suites` limits TLS 1.2 suites by their Go names; an unknown name is fatal.
#[test]
fn cipher_suites_restrict_tls_1_2() {
    use rustls::crypto::ring::cipher_suite as suite;
    let s = secure(&["-cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]);
    let only = |one: SupportedCipherSuite| client(TLS12, Some(vec![one]), &[]);
    let refused = https(
        s.addr(),
        only(suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        &get("/hooks/ping"),
    );
    assert!(refused.is_err(), "a suite outside -cipher-suites was used");
    let exchange = https(
        s.addr(),
        only(suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
        &get("/hooks/ping"),
    )
    .unwrap();
    assert_eq!(exchange.response.text(), "pong over TLS");

    let out = Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .args(["-nopanic", "-hooks", "/nonexistent/hooks.yaml", "-secure"])
        .args(["-port", "0", "-cipher-suites", "TLS_NO_SUCH_SUITE"])
        .arg("-cert")
        .arg(fixtures().join("tls/cert.pem"))
        .arg("-key")
        .arg(fixtures().join("tls/key.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS_NO_SUCH_SUITE"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key that does not match the certificate, or a missing file, stops the start (exit 1).
#[test]
fn bad_key_or_certificate_fails_the_start() {
    let tls = fixtures().join("tls");
    for (cert, key) in [
        (tls.join("cert.pem"), tls.join("other-key.pem")),
        (tls.join("missing.pem"), tls.join("key.pem")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hooks.yaml"), "[]").unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hookwire"))
            .args(["-hooks", "hooks.yaml", "-port", "0", "-nopanic", "-secure"])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{} / {}: {}",
            cert.display(),
            key.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `-list-cipher-suites` prints the suites usable at `-tls-min-version`, one per line, with
/// Go's names, and exits 0 (those rustls implements: AEAD with forward secrecy).
#[test]
fn list_cipher_suites_follows_the_min_version() {
    let list = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hookwire"))
            .arg("-list-cipher-suites")
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let tls13 = "TLS_AES_128_GCM_SHA256\nTLS_AES_256_GCM_SHA384\nTLS_CHACHA20_POLY1305_SHA256\n";
    assert_eq!(list(&["-tls-min-version", "1.3"]), tls13);
    assert_eq!(
        list(&[]),
        format!(
            "{tls13}TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n\
             TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n\
             TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n\
             TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n\
             TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256\n\
             TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n"
        )
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .args(["-list-cipher-suites", "-tls-min-version", "2.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "an unknown version is fatal");
}

/// A server whose `-cert` and `-key` are copies of the fixture pair `A` in its directory.
fn secure_with_copied_pair(extra: &[&str]) -> Server {
    Server::builder(HOOKS)
        .before_start(|dir| install_pair(dir, "cert.pem", "key.pem"))
        .args(&[
            "-secure",
            "-cert",
            "{dir}/cert.pem",
            "-key",
            "{dir}/key.pem",
        ])
        .args(extra)
        .start()
}

/// Puts the fixtures `cert` and `key` in place as `dir`'s pair, each by a rename (whole files).
fn install_pair(dir: &std::path::Path, cert: &str, key: &str) {
    for (fixture, target) in [(key, "key.pem"), (cert, "cert.pem")] {
        let temporary = dir.join(format!(".{target}.new"));
        std::fs::copy(fixtures().join("tls").join(fixture), &temporary).unwrap();
        std::fs::rename(&temporary, dir.join(target)).unwrap();
    }
}

/// The certificate the server shows a new client (which trusts both fixture certificates).
fn served_certificate(addr: SocketAddr) -> Result<CertificateDer<'static>, String> {
    let mut roots = RootCertStore::empty();
    for name in ["cert.pem", "cert-b.pem"] {
        let path = fixtures().join("tls").join(name);
        roots
            .add(CertificateDer::from_pem_file(path).unwrap())
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = StreamOwned::new(connection, tcp);
    stream.write_all(&get("/")).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let certificates = stream.conn.peer_certificates().ok_or("no certificate")?;
    Ok(certificates[0].clone().into_owned())
}

fn fixture_certificate(name: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(fixtures().join("tls").join(name)).unwrap()
}

/// SIGHUP re-reads `-cert` and `-key`; a pair that does not load keeps the served one.
#[test]
fn sighup_reloads_the_certificate_and_keeps_it_when_the_new_pair_is_broken() {
    let (a, b) = (
        fixture_certificate("cert.pem"),
        fixture_certificate("cert-b.pem"),
    );
    let s = secure_with_copied_pair(&[]);
    assert_eq!(served_certificate(s.addr()), Ok(a));
    install_pair(s.dir.path(), "cert-b.pem", "key-b.pem");
    s.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || served_certificate(s.addr())
            .as_ref()
            == Ok(&b)),
        "{}",
        s.logs()
    );
    assert!(
        s.logs().contains("reloaded the TLS certificate"),
        "{}",
        s.logs()
    );
    // A key of another certificate: refused with the reason, B stays.
    install_pair(s.dir.path(), "cert-b.pem", "key.pem");
    s.signal("HUP");
    assert!(
        s.wait_for_log(
            "cannot reload the TLS certificate: the private key",
            Duration::from_secs(10)
        ),
        "{}",
        s.logs()
    );
    assert!(s.logs().contains("still serving the previous one"));
    assert_eq!(served_certificate(s.addr()), Ok(b));
    // Only B is served: a client trusting only A is refused.
    let exchange = https(s.addr(), client(ALL, None, &[]), &get("/hooks/ping"));
    assert!(exchange.is_err(), "a client trusting only A still got in");
}

/// With `-hotreload`, replacing the files is enough.
#[test]
fn hotreload_switches_the_certificate_when_its_files_change() {
    let b = fixture_certificate("cert-b.pem");
    let s = secure_with_copied_pair(&["-hotreload"]);
    assert_eq!(
        served_certificate(s.addr()),
        Ok(fixture_certificate("cert.pem"))
    );
    install_pair(s.dir.path(), "cert-b.pem", "key-b.pem");
    assert!(
        wait_until(Duration::from_secs(10), || served_certificate(s.addr())
            .as_ref()
            == Ok(&b)),
        "{}",
        s.logs()
    );
}
