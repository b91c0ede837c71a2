//! Test fixture: starts the real `hookwire` binary on a loopback port, talks HTTP/1.1 to it over
//! a plain `TcpStream`, collects its log, and reads what the hook commands recorded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Absolute path of `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Replaces `{fixtures}` and `{dir}` in a hooks file template.
pub fn expand(template: &str, dir: &Path) -> String {
    template
        .replace("{fixtures}", &fixtures().display().to_string())
        .replace("{dir}", &dir.display().to_string())
}

/// How to start a server.
pub struct Builder {
    file_name: String,
    hooks: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    wait_for_port: bool,
    admin_port: bool,
    setup: Vec<Setup>,
}

/// Work done on the server's directory before it starts.
type Setup = Box<dyn FnOnce(&Path)>;

impl Builder {
    /// Runs `setup` on the server's directory before it starts (files a template reads, ...).
    pub fn before_start(mut self, setup: impl FnOnce(&Path) + 'static) -> Self {
        self.setup.push(Box::new(setup));
        self
    }

    /// The hooks file's name (its extension chooses TOML); default `hooks.yaml`.
    pub fn file_name(mut self, name: &str) -> Self {
        self.file_name = name.to_string();
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Leaves the admin listener at its default (the socket in the state directory) instead of
    /// a loopback port.
    pub fn default_admin(mut self) -> Self {
        self.admin_port = false;
        self
    }

    /// Starts without waiting for the listening line (for start-up failures).
    pub fn no_wait(mut self) -> Self {
        self.wait_for_port = false;
        self
    }

    /// Starts a server that must refuse to start: it exits with status 1 (its logs say why).
    pub fn start_failing(self) -> Server {
        let mut server = self.no_wait().start();
        assert_eq!(
            server.wait_exit(Duration::from_secs(20)),
            Some(1),
            "{}",
            server.logs()
        );
        server
    }

    pub fn start(self) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = dir.path().join("records");
        std::fs::create_dir(&records).expect("records dir");
        for setup in self.setup {
            setup(dir.path());
        }
        let hooks_path = dir.path().join(&self.file_name);
        std::fs::write(&hooks_path, expand(&self.hooks, dir.path())).expect("write hooks");
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookwire"));
        command
            .arg("-hooks")
            .arg(&hooks_path)
            .args(["-ip", "127.0.0.1", "-port", "0", "-verbose"]);
        // The admin routes on a loopback port the tests can reach, unless a test chooses.
        if self.admin_port && !self.args.iter().any(|arg| arg.contains("admin-listen")) {
            command.args(["-admin-listen", "127.0.0.1:0"]);
        }
        command
            .args(self.args.iter().map(|a| expand(a, dir.path())))
            .env("RECORD_DIR", &records)
            .env("NO_COLOR", "1")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            command.env(name, expand(value, dir.path()));
        }
        let mut child = command.spawn().expect("spawn hookwire");
        let logs = Arc::new(Mutex::new(String::new()));
        let admin_addr = Arc::new(Mutex::new(None));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let stdout = child.stdout.take().expect("stdout");
        forward(stdout, logs.clone(), None, admin_addr.clone());
        forward(stderr, logs.clone(), Some(port_tx), admin_addr.clone());
        let addr = if self.wait_for_port {
            match port_rx.recv_timeout(Duration::from_secs(60)) {
                Ok(addr) => Some(addr),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    std::thread::sleep(Duration::from_millis(100));
                    panic!("hookwire did not start; log:\n{}", logs.lock().unwrap());
                }
            }
        } else {
            None
        };
        Server {
            child,
            addr,
            admin_addr,
            logs,
            dir,
            hooks_path,
        }
    }
}

/// Copies a child's output into `logs`, notes the admin listener's TCP address, and reports
/// the address from the "serving hooks on" line (logged after the admin listener's).
fn forward(
    stream: impl Read + Send + 'static,
    logs: Arc<Mutex<String>>,
    port: Option<std::sync::mpsc::Sender<SocketAddr>>,
    admin: Arc<Mutex<Option<SocketAddr>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if std::env::var_os("HOOKWIRE_TEST_LOG").is_some() {
                eprintln!("[hookwire] {line}");
            }
            // Logged before the address is reported, so a test sees the line it waited for.
            logs.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.split("admin listener on http://").nth(1)
                && let Ok(addr) = rest.trim().parse()
            {
                *admin.lock().unwrap() = Some(addr);
            }
            if let Some(port) = &port
                && let Some(rest) = line.split("serving hooks on ").nth(1)
                && let Some(after) = rest.split("://").nth(1)
                && let Some(host_port) = after.split('/').next()
                && let Ok(addr) = host_port.parse()
            {
                let _ = port.send(addr);
            }
        }
    });
}

/// A running hookwire, killed on drop.
pub struct Server {
    child: Child,
    addr: Option<SocketAddr>,
    admin_addr: Arc<Mutex<Option<SocketAddr>>>,
    logs: Arc<Mutex<String>>,
    pub dir: tempfile::TempDir,
    pub hooks_path: PathBuf,
}

/// What one run of `record.sh` saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub cwd: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Contents of the `pass-file-to-command` files, by variable name.
    pub files: BTreeMap<String, String>,
}

impl Server {
    /// A server for the given hooks file (YAML unless the file name says otherwise).
    pub fn builder(hooks: &str) -> Builder {
        Builder {
            file_name: "hooks.yaml".to_string(),
            hooks: hooks.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            wait_for_port: true,
            admin_port: true,
            setup: Vec::new(),
        }
    }

    pub fn start(hooks: &str) -> Server {
        Self::builder(hooks).start()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("server address")
    }

    pub fn request(&self, method: &str, path: &str) -> Request {
        Request::new(self.addr(), method, path)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path).send()
    }

    /// The admin listener's TCP address (the harness asks for one on a loopback port).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
            .lock()
            .unwrap()
            .expect("the admin listener's address in the log")
    }

    /// A request to the admin listener.
    pub fn admin(&self, method: &str, path: &str) -> Request {
        Request::new(self.admin_addr(), method, path)
    }

    /// `GET` on the admin listener.
    pub fn admin_get(&self, path: &str) -> Response {
        self.admin("GET", path).send()
    }

    /// POST with a content type and body.
    pub fn post(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        self.request("POST", path)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.logs().contains(needle))
    }

    /// Every record written so far, oldest first.
    pub fn records(&self) -> Vec<Record> {
        read_records(&self.dir.path().join("records"))
    }

    /// Waits for `count` records and returns them.
    pub fn wait_for_records(&self, count: usize) -> Vec<Record> {
        wait_until(Duration::from_secs(10), || self.records().len() >= count);
        self.records()
    }

    /// Replaces the hooks file atomically (write a temp file, rename it over).
    pub fn replace_hooks(&self, hooks: &str) {
        let tmp = self.dir.path().join(".hooks.tmp");
        std::fs::write(&tmp, expand(hooks, self.dir.path())).unwrap();
        std::fs::rename(&tmp, &self.hooks_path).unwrap();
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the log threads drain.
                std::thread::sleep(Duration::from_millis(50));
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every record `record.sh` wrote into `dir`, oldest first.
pub fn read_records(dir: &Path) -> Vec<Record> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("records dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
        .collect();
    entries.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    entries
        .iter()
        .map(|p| parse_record(&std::fs::read(p).unwrap()))
        .collect()
}

fn parse_record(bytes: &[u8]) -> Record {
    let mut record = Record::default();
    for field in bytes.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let field = String::from_utf8_lossy(field);
        let (key, value) = field.split_once('=').unwrap_or((&field, ""));
        match key {
            "cwd" => record.cwd = value.to_string(),
            "arg" => record.args.push(value.to_string()),
            "env" => {
                let (name, value) = value.split_once('=').unwrap_or((value, ""));
                record.env.insert(name.to_string(), value.to_string());
            }
            "file" => {
                let (name, contents) = value.split_once('=').unwrap_or((value, ""));
                record.files.insert(name.to_string(), contents.to_string());
            }
            _ => {}
        }
    }
    record
}

/// The `X-Hookwire-Run` id of an accepted run's answer.
pub fn run_id(response: &Response) -> String {
    response
        .header("X-Hookwire-Run")
        .unwrap_or_else(|| panic!("no run id in {response:?}"))
        .to_owned()
}

/// Waits until run `id` has ended, reading it from the admin listener; returns it.
pub fn finished(s: &Server, id: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let ended = wait_until(Duration::from_secs(30), || {
        let response = s.admin_get(&format!("/-/runs/{id}"));
        last = serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
        !matches!(last["status"].as_str(), None | Some("queued" | "running"))
    });
    assert!(ended, "run {id} did not end: {last}");
    last
}

/// Runs `hookwire ARGS` (a subcommand): success, stdout, stderr.
pub fn run_hookwire(args: &[&str]) -> (bool, String, String) {
    let output = hookwire().args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Polls `condition` until it holds or the time is up.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP/1.1 request written by hand, so tests control every byte.
pub struct Request {
    addr: SocketAddr,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    pub fn new(addr: SocketAddr, method: &str, path: &str) -> Self {
        Self {
            addr,
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The request as bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.path, self.addr
        );
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    pub fn send(&self) -> Response {
        send_raw(self.addr, &self.to_bytes())
    }
}

/// A request over a Unix socket (the admin socket): `Connection: close`, the response read to
/// the end.
pub fn send_unix(socket: &Path, request: &Request) -> Response {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .unwrap_or_else(|error| panic!("connect to {}: {error}", socket.display()));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(&request.to_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    Response::parse(&raw)
}

/// Sends raw bytes and reads the response until the server closes the connection.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer (413) before reading everything; ignore a reset while writing.
    let _ = stream.write_all(bytes);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    Response::parse(&raw)
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        if chunked {
            body = dechunk(&body);
        }
        Response {
            status,
            headers,
            body,
        }
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&body[..end])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&body[start..(start + size).min(body.len())]);
        body = &body[(start + size + 2).min(body.len())..];
    }
    out
}

/// The lowercase hex HMAC of `body` under `key`, with `sha1`, `sha256` or `sha512`.
pub fn hmac_hex(algorithm: &str, key: &[u8], body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    fn mac<M: Mac + KeyInit>(key: &[u8], body: &[u8]) -> String {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("any key length");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }
    match algorithm {
        "sha1" => mac::<hmac::Hmac<sha1::Sha1>>(key, body),
        "sha256" => mac::<hmac::Hmac<sha2::Sha256>>(key, body),
        "sha512" => mac::<hmac::Hmac<sha2::Sha512>>(key, body),
        other => panic!("unknown algorithm {other}"),
    }
}

/// One part of a `multipart/form-data` body.
pub enum Part<'a> {
    /// A plain form value.
    Field(&'a str, &'a str),
    /// A file part: field name, file name, part content type, contents.
    File(&'a str, &'a str, &'a str, &'a str),
}

/// The boundary [`multipart`] uses.
pub const BOUNDARY: &str = "hookwire-test-boundary";

/// A `multipart/form-data` body with [`BOUNDARY`]; its content type is
/// `multipart/form-data; boundary=` followed by [`BOUNDARY`].
pub fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = String::new();
    for part in parts {
        out.push_str(&format!("--{BOUNDARY}\r\n"));
        match part {
            Part::Field(name, value) => out.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )),
            Part::File(name, file_name, content_type, contents) => out.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                 Content-Type: {content_type}\r\n\r\n{contents}\r\n"
            )),
        }
    }
    out.push_str(&format!("--{BOUNDARY}--\r\n"));
    out.into_bytes()
}

/// The content type for a [`multipart`] body.
pub fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// A `Date` header as Scalr sends it (`Mon 02 Jan 2006 15:04:05 UTC`), `offset` seconds from
/// now.
pub fn scalr_date(offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + offset;
    let (days, secs) = (now.div_euclid(86_400), now.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {day:02} {} {year} {:02}:{:02}:{:02} UTC",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Collects failed expectations so that a table-driven test reports all of them at once.
#[derive(Default)]
pub struct Checks {
    failures: Vec<String>,
}

impl Checks {
    /// Expects `response` to be `status` with exactly `body`.
    pub fn answer(&mut self, label: &str, response: &Response, status: u16, body: &str) {
        if response.status != status || response.text() != body {
            self.failures.push(format!(
                "{label}: expected {status} {body:?}, got {} {:?}",
                response.status,
                response.text()
            ));
        }
    }

    /// Expects `condition`, else records `message`.
    pub fn that(&mut self, condition: bool, message: impl Into<String>) {
        if !condition {
            self.failures.push(message.into());
        }
    }

    /// Panics with every failure, if any.
    pub fn assert(self) {
        assert!(
            self.failures.is_empty(),
            "{} failed expectation(s):\n  {}",
            self.failures.len(),
            self.failures.join("\n  ")
        );
    }
}

/// adnanh's answer when a hook fires with `response-message: fired`.
pub const FIRED: &str = "fired";
/// adnanh's answer when the trigger rule does not hold.
pub const NOT_SATISFIED: &str = "Hook rules were not satisfied.";
/// adnanh's answer when the trigger rule fails with an error.
pub const RULE_ERROR: &str = "Error occurred while evaluating hook rules.";

/// The `hookwire` binary as a command-line tool, without colour or an inherited secret.
pub fn hookwire() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookwire"));
    command.env("NO_COLOR", "1").env_remove("HOOKWIRE_SECRET");
    command
}

/// Runs hookwire in `dir` and returns stdout, stderr and the exit code.
pub fn run_in(dir: &Path, args: &[&str]) -> (String, String, Option<i32>) {
    let Output {
        status,
        stdout,
        stderr,
    } = hookwire().args(args).current_dir(dir).output().unwrap();
    (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
        status.code(),
    )
}

/// `hookwire check` in `dir`: its exit code and stdout followed by stderr.
pub fn check_in(dir: &Path, files: &[&str]) -> (Option<i32>, String) {
    let out = hookwire()
        .arg("check")
        .args(files)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}
