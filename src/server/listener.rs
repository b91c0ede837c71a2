//! Opening the listening socket, before the runtime starts and before privileges are dropped.
//!
//! The choice follows adnanh/webhook 2.8.2:
//! 1. the sockets passed by systemd socket activation (`LISTEN_FDS`): TCP or Unix stream
//!    sockets, every one of them served (a `.socket` unit may have several `ListenStream=`
//!    lines); `-ip`, `-port` and `-socket` are then ignored;
//! 2. `-socket PATH`: a Unix socket (`@NAME` is a Linux abstract socket);
//! 3. TCP on `-ip:-port`, with Go's address rules (IPv6 bracketed: `[::1]`; a bare `::1` is
//!    "too many colons"; an empty `-ip` listens on every address, IPv4 and IPv6).
//!
//! Listeners come back blocking (the server makes them non-blocking when it hands them to
//! Tokio) and close-on-exec (std and listenfd set `CLOEXEC`), so hook commands never inherit
//! the server's socket. std sets `SO_REUSEADDR` on TCP listeners, as Go does, so a restart
//! does not wait for old connections in `TIME_WAIT`.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use listenfd::ListenFd;

use super::Listener;

/// Where the hooks listener listens without systemd's sockets: `-socket`, else `-ip:-port`.
#[derive(Debug, Clone, Default)]
pub struct ListenSettings {
    pub ip: String,
    pub port: u16,
    pub socket: Option<PathBuf>,
}

/// Why a listener cannot be opened. `flag` is the flag that chose the address (`-socket`,
/// `-ip`, `-admin-listen`), so that the message says which one to change.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("the socket passed by systemd (number {0}) is gone")]
    PassedGone(usize),
    #[error(
        "the socket passed by systemd (number {index}) is neither a TCP nor a Unix stream \
         socket ({tcp_error}): use ListenStream= in the .socket unit"
    )]
    PassedUnknown {
        index: usize,
        tcp_error: std::io::Error,
    },
    #[error("cannot listen on Unix socket {path}: {source}")]
    Unix {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "cannot listen on abstract Unix socket {path}: another process is listening on \
         it; stop it or choose another {flag} name"
    )]
    AbstractInUse { path: String, flag: &'static str },
    #[error(
        "cannot listen on Unix socket {path}: another process is listening on it; \
         stop it or choose another {flag} path"
    )]
    SocketInUse { path: String, flag: &'static str },
    #[error("cannot replace the stale Unix socket {path}: {source}; remove it by hand")]
    StaleSocket {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "cannot listen on Unix socket {path}: the path exists and is not a socket; \
         remove it or choose another {flag} path"
    )]
    NotASocket { path: String, flag: &'static str },
    #[error("cannot listen on {address}: malformed {flag}; write IPv6 addresses as [::1]")]
    MalformedIp { address: String, flag: &'static str },
    #[error(
        "cannot listen on {address}: too many colons in address; write IPv6 addresses in \
         brackets: {flag} '[{ip}]'"
    )]
    TooManyColons {
        address: String,
        ip: String,
        flag: &'static str,
    },
    #[error("cannot listen on {address}: cannot resolve {host:?}: {source}; check {flag}")]
    Resolve {
        address: String,
        host: String,
        source: std::io::Error,
        flag: &'static str,
    },
    #[error("cannot listen on {0}: the name resolves to no address")]
    NoAddress(String),
    #[error("cannot listen on {address}: {source}{}", tcp_hint(source))]
    Tcp {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "-admin-listen {0:?} is neither HOST:PORT (127.0.0.1:9001, [::1]:9001) nor \
         a Unix socket path (/run/hookwire/admin.sock, ./admin.sock, @name)"
    )]
    AdminAddress(String),
    #[error(
        "-admin-listen {value:?} names no host: the admin routes need a deliberate \
         address, such as 127.0.0.1:{port}"
    )]
    AdminNoHost { value: String, port: u16 },
    #[error("cannot create {} for the admin socket: {source}", dir.display())]
    AdminDirectory {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make the admin socket {} owner-only: {source}", path.display())]
    AdminPermissions {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("-admin-listen {0}: the name resolves to no address")]
    AdminNoAddress(String),
    #[error(
        "cannot serve the admin routes on {address}: {source}{}",
        admin_hint(source)
    )]
    AdminTcp {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the admin listener's address: {0}")]
    AdminLocalAddress(std::io::Error),
}

/// What to do when binding `-ip:-port` failed.
fn tcp_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        ErrorKind::AddrInUse => {
            "; another process is using this port: stop it or choose another -port"
        }
        ErrorKind::PermissionDenied => {
            "; ports below 1024 need root or CAP_NET_BIND_SERVICE (hookwire can then drop \
             privileges with -setuid and -setgid)"
        }
        ErrorKind::AddrNotAvailable => "; that address does not belong to this machine: check -ip",
        _ => "",
    }
}

/// What to do when binding `-admin-listen` failed.
fn admin_hint(error: &std::io::Error) -> &'static str {
    if error.kind() == ErrorKind::AddrInUse {
        "; another process uses this port: choose another -admin-listen port"
    } else {
        ""
    }
}

/// Opens the listener the flags and the environment ask for (see the module docs) and
/// returns it with the address to show in logs: `IP:PORT` with the real port (so `-port 0`
/// shows the one the kernel chose), or `{unix:PATH}` as adnanh writes Unix sockets.
///
/// Reads and clears `LISTEN_PID`/`LISTEN_FDS`, which is only sound while the process has a
/// single thread: call it before the Tokio runtime starts. Errors say what to do; the app
/// exits 1 on them.
pub fn open(settings: &ListenSettings) -> Result<(Listener, String), ListenError> {
    open_with(ListenFd::from_env(), settings)
}

/// [`open`] with the systemd sockets given explicitly (`ListenFd::empty()` to ignore them).
pub fn open_with(
    mut passed: ListenFd,
    settings: &ListenSettings,
) -> Result<(Listener, String), ListenError> {
    match passed.len() {
        0 => {}
        1 => {
            let (listener, address) = take_passed(&mut passed, 0)?;
            tracing::info!(
                "listening on {address}, the socket passed by systemd; -ip, -port and -socket are ignored"
            );
            return Ok((listener, address));
        }
        n => {
            let (listeners, addresses): (Vec<_>, Vec<_>) = (0..n)
                .map(|index| take_passed(&mut passed, index))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .unzip();
            let address = addresses.join(", ");
            tracing::info!(
                "listening on {address}, the {n} sockets passed by systemd; -ip, -port and -socket are ignored"
            );
            return Ok((Listener::Many(listeners), address));
        }
    }
    if let Some(path) = &settings.socket {
        return open_unix(path, "-socket");
    }
    open_tcp(&settings.ip, settings.port)
}

fn take_passed(passed: &mut ListenFd, index: usize) -> Result<(Listener, String), ListenError> {
    let tcp_error = match passed.take_tcp_listener(index) {
        Ok(Some(listener)) => {
            let display = tcp_display(&listener);
            return Ok((Listener::Tcp(listener), display));
        }
        Ok(None) => return Err(ListenError::PassedGone(index)),
        Err(err) => err,
    };
    match passed.take_unix_listener(index) {
        Ok(Some(listener)) => {
            let display = match listener.local_addr() {
                Ok(addr) => unix_display(&addr),
                Err(_) => "{unix:?}".to_string(),
            };
            Ok((Listener::Unix(listener), display))
        }
        _ => Err(ListenError::PassedUnknown { index, tcp_error }),
    }
}

fn tcp_display(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |addr| addr.to_string())
}

fn unix_display(addr: &std::os::unix::net::SocketAddr) -> String {
    if let Some(path) = addr.as_pathname() {
        format!("{{unix:{}}}", path.display())
    } else if let Some(name) = addr.as_abstract_name() {
        format!("{{unix:@{}}}", String::from_utf8_lossy(name))
    } else {
        "{unix:unnamed}".to_string()
    }
}

/// `-socket`: an abstract socket for `@NAME` (as Go does on Linux), else a socket file. A
/// socket file left by a server that is gone is replaced; one with a live server behind it,
/// or a path that is not a socket, is an error rather than silently taken over.
fn open_unix(path: &Path, flag: &'static str) -> Result<(Listener, String), ListenError> {
    let shown = path.display();
    let fail = |source| ListenError::Unix {
        path: shown.to_string(),
        source,
    };
    if let Some(name) = path.as_os_str().as_bytes().strip_prefix(b"@") {
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(fail)?;
        let listener = UnixListener::bind_addr(&addr).map_err(|err| match err.kind() {
            ErrorKind::AddrInUse => ListenError::AbstractInUse {
                path: shown.to_string(),
                flag,
            },
            _ => fail(err),
        })?;
        return Ok((Listener::Unix(listener), format!("{{unix:{shown}}}")));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(ListenError::SocketInUse {
                    path: shown.to_string(),
                    flag,
                });
            }
            Err(err) if err.kind() == ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(|source| ListenError::StaleSocket {
                    path: shown.to_string(),
                    source,
                })?;
            }
            // Let bind report whatever this is.
            Err(_) => {}
        },
        Ok(_) => {
            return Err(ListenError::NotASocket {
                path: shown.to_string(),
                flag,
            });
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(fail)?;
    Ok((Listener::Unix(listener), format!("{{unix:{shown}}}")))
}

/// Where `-admin-listen` asks the admin routes to be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAddress {
    /// A socket file (owner-only) or, for `@NAME`, an abstract socket.
    Unix(PathBuf),
    /// `HOST:PORT`, IPv6 in brackets.
    Tcp { host: String, port: u16 },
}

impl AdminAddress {
    /// Reads `-admin-listen`: `None` for empty (no admin listener); a value starting with `/`,
    /// `.` or `@` is a Unix socket, anything else `HOST:PORT`. Without the flag the admin
    /// socket is `admin.sock` in `state_dir`.
    pub fn parse(flag: Option<&str>, state_dir: &Path) -> Result<Option<Self>, ListenError> {
        let Some(value) = flag else {
            return Ok(Some(Self::Unix(state_dir.join(ADMIN_SOCKET))));
        };
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.starts_with(['/', '.', '@']) {
            return Ok(Some(Self::Unix(PathBuf::from(value))));
        }
        let bad = || ListenError::AdminAddress(value.to_owned());
        let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(ListenError::AdminNoHost {
                value: value.to_owned(),
                port,
            });
        }
        Ok(Some(Self::Tcp {
            host: host.to_owned(),
            port,
        }))
    }
}

/// The admin socket's name in the state directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

/// An open admin listener.
#[derive(Debug)]
pub struct AdminListener {
    pub listener: Listener,
    /// For the log: `http://127.0.0.1:9001` or `{unix:PATH}`.
    pub display: String,
    /// Every address it listens on is a loopback address (false for Unix sockets).
    pub loopback_only: bool,
    pub transport: super::admin::Transport,
    /// The socket file to remove at exit.
    pub socket_file: Option<PathBuf>,
    /// The directory created for the socket file, if it was missing.
    pub created_dir: Option<PathBuf>,
}

/// Opens the admin listener. A socket file is made owner-only, in a directory created
/// owner-only when it is missing (the state directory).
pub fn open_admin(address: &AdminAddress) -> Result<AdminListener, ListenError> {
    match address {
        AdminAddress::Unix(path) => {
            let is_file = !path.as_os_str().as_bytes().starts_with(b"@");
            let mut created_dir = None;
            if is_file
                && let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
                && !dir.exists()
            {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|source| ListenError::AdminDirectory {
                        dir: dir.to_owned(),
                        source,
                    })?;
                created_dir = Some(dir.to_owned());
            }
            let (listener, display) = open_unix(path, "-admin-listen")?;
            if is_file {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                    |source| ListenError::AdminPermissions {
                        path: path.clone(),
                        source,
                    },
                )?;
            }
            Ok(AdminListener {
                listener,
                display,
                loopback_only: false,
                transport: super::admin::Transport::Unix,
                socket_file: is_file.then(|| path.clone()),
                created_dir,
            })
        }
        AdminAddress::Tcp { host, port } => {
            let addrs = tcp_addrs(host, *port, "-admin-listen")?;
            let addr = addrs
                .first()
                .ok_or_else(|| ListenError::AdminNoAddress(format!("{host}:{port}")))?;
            let listener = TcpListener::bind(addr).map_err(|source| ListenError::AdminTcp {
                address: *addr,
                source,
            })?;
            let local = listener
                .local_addr()
                .map_err(ListenError::AdminLocalAddress)?;
            Ok(AdminListener {
                listener: Listener::Tcp(listener),
                display: format!("http://{local}"),
                loopback_only: local.ip().to_canonical().is_loopback(),
                transport: super::admin::Transport::Tcp,
                socket_file: None,
                created_dir: None,
            })
        }
    }
}

/// TCP on `ip:port`, with Go's `net.Listen("tcp", ip+":"+port)` address rules.
fn open_tcp(ip: &str, port: u16) -> Result<(Listener, String), ListenError> {
    let addrs = tcp_addrs(ip, port, "-ip")?;
    let mut last_error = None;
    for addr in &addrs {
        match TcpListener::bind(addr) {
            Ok(listener) => {
                let display = tcp_display(&listener);
                return Ok((Listener::Tcp(listener), display));
            }
            Err(err) => last_error = Some((addr, err)),
        }
    }
    match last_error {
        Some((address, source)) => Err(ListenError::Tcp {
            address: *address,
            source,
        }),
        None => Err(ListenError::NoAddress(format!("{ip}:{port}"))),
    }
}

/// The addresses to try for `-ip`/`-port`, in order. Mirrors Go's `SplitHostPort` on
/// `ip + ":" + port`: brackets are required around an IPv6 address, so `::1` fails as it does
/// in adnanh, with a hint. A host name listens on one of its addresses, IPv4 first, as Go does.
fn tcp_addrs(ip: &str, port: u16, flag: &'static str) -> Result<Vec<SocketAddr>, ListenError> {
    let address = format!("{ip}:{port}");
    let malformed = || ListenError::MalformedIp {
        address: address.clone(),
        flag,
    };
    let host = if let Some(inner) = ip.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(host) if !host.contains(['[', ']']) => host,
            _ => return Err(malformed()),
        }
    } else if ip.contains(':') {
        return Err(ListenError::TooManyColons {
            address,
            ip: ip.to_owned(),
            flag,
        });
    } else if ip.contains([']', '[']) {
        return Err(malformed());
    } else {
        ip
    };
    if host.is_empty() {
        // Go listens on every address of both families; `[::]` is dual-stack on Linux unless
        // net.ipv6.bindv6only is set, and 0.0.0.0 covers machines without IPv6.
        return Ok(vec![
            SocketAddr::new(IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED), port),
        ]);
    }
    if let Ok(addr) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(addr, port)]);
    }
    // Names, and IPv6 addresses with a zone (`fe80::1%eth0`), go through the resolver.
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|source| ListenError::Resolve {
            address: address.clone(),
            host: host.to_owned(),
            source,
            flag,
        })?
        .collect();
    addrs.sort_by_key(|a| a.is_ipv6());
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, OwnedFd};

    fn args(ip: &str, port: u16, socket: Option<&str>) -> ListenSettings {
        ListenSettings {
            ip: ip.into(),
            port,
            socket: socket.map(Into::into),
        }
    }

    fn open_test(settings: &ListenSettings) -> Result<(Listener, String), ListenError> {
        open_with(ListenFd::empty(), settings)
    }

    /// The message of a listen that must fail.
    fn open_error(settings: &ListenSettings) -> String {
        match open_test(settings) {
            Err(error) => error.to_string(),
            Ok((_, display)) => panic!("listens on {display}"),
        }
    }

    fn assert_cloexec(fd: impl AsFd) {
        let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).expect("F_GETFD");
        assert_ne!(
            flags & nix::libc::FD_CLOEXEC,
            0,
            "listener must be close-on-exec"
        );
    }

    #[test]
    fn tcp_reports_the_real_port_and_is_cloexec_and_reuseaddr() {
        let (listener, display) = open_test(&args("127.0.0.1", 0, None)).expect("listens");
        let Listener::Tcp(listener) = listener else {
            panic!("expected TCP")
        };
        let port = listener.local_addr().expect("addr").port();
        assert_ne!(port, 0);
        assert_eq!(display, format!("127.0.0.1:{port}"));
        assert_cloexec(&listener);
        let reuse = nix::sys::socket::getsockopt(&listener, nix::sys::socket::sockopt::ReuseAddr)
            .expect("getsockopt");
        assert!(reuse, "SO_REUSEADDR, as Go sets it");
    }

    #[test]
    fn tcp_ipv6_needs_brackets_as_in_go() {
        let err = open_error(&args("::1", 0, None));
        assert!(
            err.contains("too many colons") && err.contains("-ip '[::1]'"),
            "{err}"
        );
        assert!(open_error(&args("[::1", 0, None)).contains("malformed -ip"));
        match open_test(&args("[::1]", 0, None)) {
            Ok((_, display)) => assert!(display.starts_with("[::1]:"), "{display}"),
            // Machines without IPv6 loopback cannot run this half.
            Err(err) => assert!(
                err.to_string().contains("Cannot assign requested address"),
                "{err}"
            ),
        }
    }

    #[test]
    fn tcp_address_resolution() {
        assert_eq!(
            tcp_addrs("10.0.0.1", 80, "-ip").unwrap(),
            ["10.0.0.1:80".parse().unwrap()]
        );
        assert_eq!(
            tcp_addrs("[127.0.0.1]", 80, "-ip").unwrap(),
            ["127.0.0.1:80".parse().unwrap()]
        );
        assert_eq!(
            tcp_addrs("", 80, "-ip").unwrap(),
            ["[::]:80".parse().unwrap(), "0.0.0.0:80".parse().unwrap()]
        );
        assert_eq!(
            tcp_addrs("localhost", 80, "-ip").unwrap()[0],
            "127.0.0.1:80".parse().unwrap()
        );
        assert!(
            tcp_addrs("no-such-host.invalid", 80, "-ip")
                .unwrap_err()
                .to_string()
                .contains("cannot resolve")
        );
    }

    #[test]
    fn tcp_port_in_use_says_so() {
        let (first, display) = open_test(&args("127.0.0.1", 0, None)).expect("listens");
        let port: u16 = display.rsplit(':').next().unwrap().parse().unwrap();
        let err = open_error(&args("127.0.0.1", port, None));
        assert!(
            err.contains(&format!("127.0.0.1:{port}")) && err.contains("choose another -port"),
            "{err}"
        );
        drop(first);
    }

    #[test]
    fn unix_socket_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.sock");
        let path_text = path.to_str().unwrap();
        let (listener, display) = open_test(&args("ignored", 1, Some(path_text))).expect("listens");
        assert_eq!(display, format!("{{unix:{path_text}}}"));
        let Listener::Unix(listener) = listener else {
            panic!("expected Unix")
        };
        assert_cloexec(&listener);
        // A live server behind the path is not taken over.
        let err = open_error(&args("", 1, Some(path_text)));
        assert!(err.contains("another process is listening"), "{err}");
        // Once it is gone, its leftover socket file is replaced.
        drop(listener);
        assert!(path.exists());
        open_test(&args("", 1, Some(path_text))).expect("stale socket replaced");
    }

    #[test]
    fn unix_socket_never_replaces_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("precious.txt");
        std::fs::write(&path, "data").unwrap();
        let err = open_error(&args("", 1, Some(path.to_str().unwrap())));
        assert!(err.contains("not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
    }

    #[test]
    fn abstract_unix_socket() {
        let name = format!("@hookwire-test-{}", std::process::id());
        let (listener, display) = open_test(&args("", 1, Some(&name))).expect("listens");
        assert_eq!(display, format!("{{unix:{name}}}"));
        let Listener::Unix(listener) = listener else {
            panic!("expected Unix")
        };
        assert_eq!(
            listener.local_addr().unwrap().as_abstract_name(),
            Some(&name.as_bytes()[1..])
        );
        assert!(open_error(&args("", 1, Some(&name))).contains("another process"));
    }

    /// Socket activation, in a child process: the environment is per process, and handing
    /// the child a socket on its stdin (fd 0, with `LISTEN_FDS_FIRST_FD=0`) needs no unsafe
    /// fd juggling. The child is this test binary running `systemd_child`.
    fn run_child(socket: Option<OwnedFd>, listen_fds: &str, expect: &str) {
        let mut command = std::process::Command::new(std::env::current_exe().expect("test binary"));
        command
            .args([
                "--exact",
                "server::listener::tests::systemd_child",
                "--ignored",
                "--nocapture",
            ])
            .env("HOOKWIRE_TEST_SYSTEMD_EXPECT", expect)
            .env("LISTEN_FDS", listen_fds)
            .env("LISTEN_FDS_FIRST_FD", "0")
            .env_remove("LISTEN_PID");
        if let Some(fd) = socket {
            command.stdin(std::process::Stdio::from(fd));
        }
        let out = command.output().expect("run child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn systemd_tcp_socket_wins_over_the_flags() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let expect = listener.local_addr().unwrap().to_string();
        run_child(Some(OwnedFd::from(listener)), "1", &expect);
    }

    #[test]
    fn systemd_unix_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("act.sock");
        let listener = UnixListener::bind(&path).unwrap();
        run_child(
            Some(OwnedFd::from(listener)),
            "1",
            &format!("{{unix:{}}}", path.display()),
        );
    }

    #[test]
    fn systemd_sockets_that_are_not_there_are_an_error() {
        run_child(None, "2", "error: the socket passed by systemd (number 0)");
    }

    #[test]
    #[ignore = "the child half of the systemd_* tests, which run it with a socket to find"]
    fn systemd_child() {
        // Run on its own (`--ignored`) there is nothing to check.
        let Ok(expect) = std::env::var("HOOKWIRE_TEST_SYSTEMD_EXPECT") else {
            return;
        };
        // The flags ask for something else entirely; the passed socket must win.
        let result = open(&args("127.0.0.2", 1, Some("/nonexistent/flag.sock")));
        match expect.strip_prefix("error: ") {
            Some(message) => assert!(result.unwrap_err().to_string().contains(message)),
            None => {
                let (listener, display) = result.expect("passed socket used");
                assert_eq!(display, expect);
                match &listener {
                    Listener::Tcp(l) => assert_cloexec(l),
                    Listener::Unix(l) => assert_cloexec(l),
                    Listener::Many(_) => panic!("one socket was passed"),
                }
                // listenfd clears the variables so hook commands do not see them.
                assert!(std::env::var_os("LISTEN_FDS").is_none());
            }
        }
    }
}
