//! Start-up and shutdown, in the order that matters for security: log setup, listener (bound
//! or inherited), privilege drop, pid file, hooks, then the runtime and its tasks. Privileges are
//! dropped before the Tokio runtime exists, so no thread can keep root.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{self, Cli, ServeArgs};
use crate::cluster::{Cluster, ClusterJournal};
use crate::config::LoadOptions;
use crate::engine::exec;
use crate::engine::{Dispatcher, DispatcherSettings};
use crate::ops::logging;
use crate::ops::metrics::Metrics;
use crate::ops::privilege::{self, PidFile};
use crate::ops::reload::{self, HookStore, Reloader, Trigger};
use crate::ops::systemd;
use crate::server::{self, Settings, State, Surface};
use crate::store::{Journal, JournalError, NoJournal, SqliteJournal};

/// Runs hookwire with a parsed command line; returns the process exit status.
pub fn run(cli: Cli) -> ExitCode {
    if let Some(command) = cli.command {
        return crate::commands::run(command);
    }
    match serve(cli.serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Errors end the process with status 1; each says what to fix.
fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.version {
        println!("hookwire version {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    if args.list_cipher_suites {
        for suite in server::tls::list_cipher_suites(&args.tls_min_version)? {
            println!("{suite}");
        }
        return Ok(());
    }
    cli::validate(&args)?;
    logging::init(&args.log_settings())?;
    tracing::info!("version {} starting", env!("CARGO_PKG_VERSION"));

    let (listener, address) = server::listener::open(&server::listener::ListenSettings {
        ip: args.ip.clone(),
        port: args.port,
        socket: args.socket.clone(),
    })?;
    let admin = open_admin(&args)?;
    let (admin_listener, admin_socket) = match admin {
        Some(admin) => (Some((admin.listener, admin.transport)), admin.socket_file),
        None => (None, None),
    };
    if args.setuid != 0 {
        privilege::drop_privileges(args.setuid, args.setgid)?;
    }
    let pidfile = args.pidfile.as_deref().map(PidFile::create).transpose()?;

    let paths = if args.hooks.is_empty() {
        vec![PathBuf::from("hooks.json")]
    } else {
        args.hooks.clone()
    };
    let store = Arc::new(HookStore::default());
    let options = LoadOptions {
        template: args.template,
    };
    let metrics = Arc::new(Metrics::new());
    let reloader =
        Arc::new(Reloader::new(paths, options, store.clone()).with_metrics(metrics.clone()));
    let loaded = reloader.reload(Trigger::Start)?;
    let verbose = args.verbose || args.debug || args.logfile.is_some();
    if loaded == 0 && !verbose && !args.nopanic {
        println!(
            "couldn't load any hooks from file!\naborting webhook execution since the -verbose flag is set to false.\nIf, for some reason, you want webhook to start without the hooks, either use -verbose flag, or -nopanic"
        );
        return Err("no hooks loaded".into());
    }

    let (tls, certificate) = if args.secure {
        let (config, certificate) = server::tls::server_config(
            &args.cert,
            &args.key,
            &args.tls_min_version,
            &args.cipher_suites,
        )?;
        (Some(config), Some(certificate))
    } else {
        (None, None)
    };
    // Orphans of commands that leave their process group come to us, not to init.
    exec::become_subreaper();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hookwire")
        .build()
        .map_err(ServeError::Runtime)?;
    let (journal, cluster) = open_store(&args, &runtime)?;
    let dispatcher = Dispatcher::new(
        store.clone(),
        journal,
        metrics.clone(),
        dispatcher_settings(&args),
    );
    if let Some(cluster) = cluster {
        dispatcher.set_cluster(cluster);
    }
    let state = Arc::new(State {
        settings: settings(&args)?,
        hooks: store,
        dispatcher: dispatcher.clone(),
        metrics,
        dedupe: crate::store::dedupe::Deduper::new(args.state_directory()),
        rate_limits: crate::pipeline::rate_limit::RateLimiter::default(),
        admin_failures: server::admin::FailedAttempts::default(),
        sessions: crate::console::Sessions::default(),
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let result = runtime.block_on(async {
        tokio::spawn(exec::reap_orphans());
        // Before serving: what the last process accepted runs first.
        let recovered = dispatcher.recover().await.map_err(ServeError::Recover)?;
        if recovered != Default::default() {
            tracing::info!(
                "journal: {} run(s) resumed, {} interrupted, {} skipped",
                recovered.resumed,
                recovered.interrupted,
                recovered.skipped
            );
        }
        if let Some(cluster) = dispatcher.cluster() {
            cluster.start_work(dispatcher.clone());
        }
        // One shutdown: a stop signal starts the dispatcher's drain, and both listeners stop
        // when it starts.
        let signal = signals(reloader.clone(), certificate.clone())?;
        tokio::spawn({
            let dispatcher = dispatcher.clone();
            async move {
                signal.await;
                dispatcher.begin_shutdown();
                systemd::stopping();
            }
        });
        if args.hotreload {
            reload::watch(reloader.clone())?;
            if let Some(certificate) = &certificate {
                reload::watch_certificate(certificate.clone())?;
            }
        }
        let prefix = if args.urlprefix.is_empty() {
            String::new()
        } else {
            format!("/{}", args.urlprefix)
        };
        tracing::info!("serving hooks on {scheme}://{address}{prefix}/{{id}}");
        // The listener is open and the hooks are loaded: systemd may send traffic.
        let status = {
            let state = state.clone();
            move || systemd::status_line(state.hooks.load().len(), state.metrics.runs_in_flight())
        };
        systemd::ready(&status());
        systemd::spawn_heartbeat(status);
        let admin_server = async {
            let Some((listener, transport)) = admin_listener else {
                return Ok(());
            };
            let stop = dispatcher.draining();
            server::serve(
                listener,
                Surface::Admin(transport),
                None,
                state.clone(),
                stop,
            )
            .await
        };
        let stop = dispatcher.draining();
        let hooks_server = server::serve(listener, Surface::Hooks, tls, state.clone(), stop);
        let (hooks, admin) = tokio::join!(hooks_server, admin_server);
        hooks.map_err(ServeError::Server)?;
        admin.map_err(ServeError::AdminServer)?;
        dispatcher.finish().await;
        Ok::<(), ServeError>(())
    });
    if let Some(pidfile) = pidfile
        && let Err(error) = pidfile.remove()
    {
        tracing::warn!("{error}");
    }
    if let Some(socket) = &args.socket
        && !socket.to_string_lossy().starts_with('@')
    {
        let _ = std::fs::remove_file(socket);
    }
    if let Some(socket) = admin_socket {
        let _ = std::fs::remove_file(socket);
    }
    // Do not wait for blocked reads of stdin-less helpers and the like.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result.map_err(Into::into)
}

/// What stops serving once the hooks are loaded.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot read the run journal: {0}")]
    Recover(#[source] JournalError),
    #[error("cannot install a signal handler: {0}")]
    Signal(#[source] std::io::Error),
    #[error(transparent)]
    Watch(#[from] reload::WatchError),
    #[error("server error: {0}")]
    Server(#[source] std::io::Error),
    #[error("admin server error: {0}")]
    AdminServer(#[source] std::io::Error),
}

fn settings(args: &ServeArgs) -> Result<Settings, server::admin::AdminTokenError> {
    Ok(Settings {
        urlprefix: args.urlprefix.clone(),
        default_methods: cli::default_methods(args),
        response_headers: cli::response_headers(args),
        max_body_size: args.max_body_size,
        read_timeout: Duration::from_secs(args.read_timeout.max(1)),
        max_headers: args.max_headers,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        first_byte_timeout: Duration::from_secs(args.first_byte_timeout),
        x_request_id: args.x_request_id,
        x_request_id_limit: args.x_request_id_limit,
        shutdown_timeout: args.execution.shutdown_timeout,
        state_dir: args.state_directory(),
        journal: args.execution.journal,
        trusted_proxies: args.trusted_proxies.clone(),
        body_limits: crate::pipeline::request::body::BodyLimits {
            max_json_depth: args.max_json_depth,
            max_multipart_parts: args.max_multipart_parts,
        },
        admin_token: args
            .admin_token_file
            .as_deref()
            .map(server::admin::AdminToken::read)
            .transpose()?,
    })
}

/// Opens the admin listener of `-admin-listen` (by default `admin.sock` in the state
/// directory). A TCP address that other machines reach needs `-admin-token-file`. The default
/// socket may fail where the default state directory is not writable: then hookwire serves
/// without admin routes and says so; an address that was asked for must work.
fn open_admin(
    args: &ServeArgs,
) -> Result<Option<server::listener::AdminListener>, Box<dyn std::error::Error>> {
    use server::listener::{AdminAddress, open_admin};
    let state_dir = args.state_directory();
    let Some(address) = AdminAddress::parse(args.admin_listen.as_deref(), &state_dir)? else {
        tracing::info!("no admin listener (-admin-listen is empty)");
        return Ok(None);
    };
    let admin = match open_admin(&address) {
        Ok(admin) => admin,
        Err(error) if args.admin_listen.is_none() => {
            tracing::warn!("{error}; serving without the admin routes (set -admin-listen)");
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    if args.admin_token_file.is_none() {
        let open_to = match &address {
            AdminAddress::Tcp { .. } if !admin.loopback_only => Some("other machines"),
            // An abstract socket has no file, so no permissions: any local user connects.
            AdminAddress::Unix(_) if admin.socket_file.is_none() => Some("every local user"),
            _ => None,
        };
        if let Some(open_to) = open_to {
            return Err(format!(
                "-admin-listen {} is reachable from {open_to}, and the admin routes show \
                 requests and rerun commands: give -admin-token-file too, or listen on a \
                 loopback address such as 127.0.0.1:9001",
                admin.display
            )
            .into());
        }
    }
    if args.setuid != 0 {
        // The user hookwire becomes must be able to remove the socket file, and to write
        // the journal into the state directory created here for the socket.
        for path in admin.socket_file.iter().chain(&admin.created_dir) {
            privilege::hand_over(path, args.setuid, args.setgid)?;
        }
    }
    tracing::info!("admin listener on {}", admin.display);
    Ok(Some(admin))
}

/// The run journal in the state directory. A state directory that was asked for (`-state-dir`,
/// `$STATE_DIRECTORY`) must work; the default `./.hookwire` may not be writable where an
/// adnanh command line used to start (after `-setuid`, say): then hookwire still serves, without
/// a journal, and says so. A corrupt journal stops the start wherever it is.
fn open_journal(args: &ServeArgs) -> Result<Arc<dyn Journal>, JournalError> {
    if !args.execution.journal {
        tracing::warn!("the run journal is off: accepted runs are lost if hookwire stops");
        return Ok(Arc::new(NoJournal));
    }
    match SqliteJournal::open(&args.state_directory(), args.execution.keep_runs) {
        Ok(journal) => Ok(Arc::new(journal)),
        // Serving without it would hide the runs it holds: the user must decide.
        Err(error @ JournalError::Corrupt(_)) => Err(error),
        Err(error) if args.state_dir.is_none() && std::env::var_os("STATE_DIRECTORY").is_none() => {
            tracing::error!(
                "{error}; serving WITHOUT a run journal: accepted runs are lost if hookwire stops"
            );
            Ok(Arc::new(NoJournal))
        }
        Err(error) => Err(error),
    }
}

/// The run journal, and the NATS store when there is one.
type Store = (Arc<dyn Journal>, Option<Arc<Cluster>>);

/// The run journal: the embedded SQLite one, or with `-nats-url` the NATS store, whose history
/// is projected into the SQLite journal of the state directory.
fn open_store(
    args: &ServeArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<Store, Box<dyn std::error::Error>> {
    if args.cluster.nats_url.is_none() {
        return Ok((open_journal(args)?, None));
    }
    let node = (args.cluster.node_name.clone()).unwrap_or_else(crate::cluster::host_name);
    let cluster = runtime.block_on(crate::cluster::connect(&args.cluster, node))?;
    let local = SqliteJournal::open(&args.state_directory(), args.execution.keep_runs)?;
    let _runtime = runtime.enter();
    let journal = ClusterJournal::new(&cluster, Arc::new(local));
    Ok((Arc::new(journal), Some(cluster)))
}

fn dispatcher_settings(args: &ServeArgs) -> DispatcherSettings {
    let flags = &args.execution;
    DispatcherSettings {
        exec: exec::ExecOptions {
            output_limit: flags.max_output,
            timeout: Some(flags.command_timeout).filter(|t| !t.is_zero()),
            kill_grace: flags.kill_grace,
            kill_leftovers: false,
        },
        max_concurrent_runs: flags.max_concurrent_runs,
        shutdown_timeout: flags.shutdown_timeout,
    }
}

/// Installs the signal handlers: SIGHUP and SIGUSR1 reload (the hooks, and the `-secure`
/// certificate), SIGTERM and SIGINT stop. Returns the future that resolves on a stop signal.
fn signals(
    reloader: Arc<Reloader>,
    certificate: Option<Arc<server::tls::Certificate>>,
) -> Result<impl Future<Output = ()>, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind| signal(kind).map_err(ServeError::Signal);
    let mut hangup = install(SignalKind::hangup())?;
    let mut user1 = install(SignalKind::user_defined1())?;
    let mut terminate = install(SignalKind::terminate())?;
    let mut interrupt = install(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hangup.recv() => tracing::info!("caught SIGHUP; reloading hooks"),
                _ = user1.recv() => tracing::info!("caught SIGUSR1; reloading hooks"),
            }
            let reloader = reloader.clone();
            let certificate = certificate.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let _ = reloader.reload(Trigger::Signal);
                if let Some(certificate) = certificate {
                    reload::reload_certificate(&certificate);
                }
            })
            .await;
        }
    });
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("caught SIGTERM; shutting down"),
            _ = interrupt.recv() => tracing::info!("caught SIGINT; shutting down"),
        }
    })
}
