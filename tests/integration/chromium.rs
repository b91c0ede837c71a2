//! Test fixture: a headless Chromium driven over WebDriver. Each [`Browser`] starts its own
//! `chromedriver` on a free loopback port (in a process group of its own), opens a session with
//! a fresh profile, and on drop ends the session and kills whatever of the group is left.

use std::future::Future;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::harness::Server;

const MISSING: &str = "the browser tests need Debian's Chromium and its WebDriver: \
     apt-get install chromium chromium-driver";

/// How long a page condition may take to hold.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Runs a browser test's body on a current-thread runtime.
pub fn run(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(test);
}

/// A headless Chromium session, ended on drop.
pub struct Browser {
    client: Client,
    /// Dropped after the client: ends the session and stops chromedriver and Chromium.
    _driver: Driver,
    /// The console's origin, `http://127.0.0.1:PORT`.
    pub origin: String,
}

/// A running chromedriver, the leader of its own process group (Chromium joins it).
struct Driver {
    process: Child,
    addr: SocketAddr,
    /// The WebDriver session to end, once there is one.
    session: Option<String>,
    /// The profile and chromedriver's log; removed after the processes are gone.
    dir: tempfile::TempDir,
}

/// The first `name` on `PATH`.
fn find_program(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A loopback port free a moment ago (chromedriver takes only a port number).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

impl Browser {
    /// Opens Chromium (1280x900) on the console of `server`.
    pub async fn open(server: &Server) -> Browser {
        let chromium = find_program("chromium").unwrap_or_else(|| panic!("{MISSING}"));
        let chromedriver = find_program("chromedriver").unwrap_or_else(|| panic!("{MISSING}"));
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("chromedriver.log");
        let port = free_port();
        let process = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so that drop can kill Chromium with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", chromedriver.display()));
        // From here on, a panic stops chromedriver too.
        let mut driver = Driver {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            session: None,
            dir,
        };
        let client = connect_driver(&mut driver, &chromium).await;
        driver.session = Some(
            client
                .session_id()
                .await
                .expect("session id")
                .expect("a WebDriver session"),
        );
        Browser {
            client,
            _driver: driver,
            origin: format!("http://{}", server.admin_addr()),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The console's URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Loads a console page and waits until its `h1` is there.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&self.url(path))
            .await
            .unwrap_or_else(|error| panic!("load {path}: {error}"));
        self.wait_for(
            &format!("{path} has a heading"),
            "document.querySelector('h1')",
        )
        .await;
    }

    /// The value of a JavaScript expression in the page.
    pub async fn eval(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), Vec::new())
            .await
            .unwrap_or_else(|error| panic!("evaluate {expression}: {error}"))
    }

    /// Runs JavaScript statements in the page, with `arguments[0..]` = `args`.
    pub async fn script(&self, statements: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(statements, args)
            .await
            .unwrap_or_else(|error| panic!("run {statements}: {error}"))
    }

    /// The trimmed text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let element = match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(error) => panic!("no {css} on {}: {error}", self.here().await),
        };
        element
            .text()
            .await
            .expect("element text")
            .trim()
            .to_owned()
    }

    /// The path of the page shown.
    pub async fn here(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|url| url.path().to_owned())
            .unwrap_or_else(|error| format!("(no page: {error})"))
    }

    /// Waits until a JavaScript expression is truthy in the page (which may be reloading).
    pub async fn wait_for(&self, what: &str, expression: &str) {
        let deadline = Instant::now() + PATIENCE;
        let script = format!("return Boolean({expression});");
        loop {
            // An error means the page is between two documents: try again.
            if let Ok(Value::Bool(true)) = self.client.execute(&script, Vec::new()).await {
                return;
            }
            if Instant::now() >= deadline {
                let body = self
                    .client
                    .execute(
                        "return document.body && document.body.innerText;",
                        Vec::new(),
                    )
                    .await
                    .unwrap_or_default();
                panic!(
                    "timed out waiting until {what} ({expression}) on {}; the page says:\n{body}",
                    self.here().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a Chrome DevTools command through chromedriver.
    pub async fn devtools(&self, method: &str, params: Value) -> Result<Value, String> {
        self.client
            .issue_cmd(DevTools {
                method: method.to_owned(),
                params,
            })
            .await
            .map_err(|error| error.to_string())
    }

    /// Makes the page's viewport exactly `width` x `height` CSS pixels.
    pub async fn viewport(&self, width: u32, height: u32) {
        let metrics = json!({
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600,
        });
        self.devtools("Emulation.setDeviceMetricsOverride", metrics)
            .await
            .expect("set the viewport");
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }
}

/// Waits for chromedriver to listen, then opens a headless session.
async fn connect_driver(driver: &mut Driver, chromium: &Path) -> Client {
    let addr = driver.addr;
    let dir = driver.dir.path().to_owned();
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = driver.process.try_wait() {
            panic!("chromedriver stopped ({status}); its log: {}", log_of(&dir));
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {addr}; its log: {}",
            log_of(&dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let profile = dir.join("profile");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                // Tests run as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-extensions",
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("an object literal")
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://{addr}"))
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot open a Chromium session ({MISSING}): {error}; chromedriver's log: {}",
                log_of(&dir)
            )
        })
}

fn log_of(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium and reap it. A blocking request,
        // because drop cannot wait on the runtime (and runs on panics too).
        if let Some(session) = &self.session
            && self.process.try_wait().ok().flatten().is_none()
        {
            end_session(self.addr, session);
        }
        let group = Pid::from_raw(self.process.id() as i32);
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.process.wait();
        // Anything of the group still alive (a Chromium helper) goes too, before its profile.
        let deadline = Instant::now() + Duration::from_secs(5);
        while killpg(group, None).is_ok() && Instant::now() < deadline {
            let _ = killpg(group, Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `DELETE /session/{id}`, without panicking (drop may run while a test panics).
fn end_session(driver: SocketAddr, session: &str) {
    let Ok(mut stream) = TcpStream::connect_timeout(&driver, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: {driver}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    // chromedriver answers once Chromium has quit, and may keep the connection open: read
    // the answer's head and its body, not to the end of the stream.
    let mut answer = Vec::new();
    let mut chunk = [0; 4096];
    while let Ok(read @ 1..) = stream.read(&mut chunk) {
        answer.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return;
            }
        }
    }
}

/// `POST /session/{id}/goog/cdp/execute`: a DevTools command through chromedriver.
#[derive(Debug)]
struct DevTools {
    method: String,
    params: Value,
}

impl WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.method, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}
