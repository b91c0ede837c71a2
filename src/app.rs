//! Start-up and shutdown, in the order that matters for security: log setup, listener (bound
//! or inherited), privilege drop, pid file, hooks, then the runtime and its tasks. Privileges are
//! dropped before the Tokio runtime exists, so no thread can keep root.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{self, Cli, ServeArgs};
use crate::config::LoadOptions;
use crate::exec::ExecOptions;
use crate::logging;
use crate::metrics::Metrics;
use crate::privilege::{self, PidFile};
use crate::reload::{self, HookStore, Reloader, Trigger};
use crate::server::{self, Settings, State};
use crate::systemd;

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

fn serve(args: ServeArgs) -> Result<(), String> {
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
    logging::init(&logging::LogSettings::from(&args))?;
    tracing::info!("version {} starting", env!("CARGO_PKG_VERSION"));

    let (listener, address) = server::listener::open(&args)?;
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

    let tls = if args.secure {
        Some(server::tls::server_config(
            &args.cert,
            &args.key,
            &args.tls_min_version,
            &args.cipher_suites,
        )?)
    } else {
        None
    };
    let state = Arc::new(State {
        settings: settings(&args),
        hooks: store,
        runs: server::RunTracker::default(),
        metrics,
        dedupe: crate::dedupe::Deduper::new(args.state_directory()),
        rate_limits: crate::rate_limit::RateLimiter::default(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hookwire")
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let result = runtime.block_on(async {
        let shutdown = signals(reloader.clone())?;
        if args.hotreload {
            reload::watch(reloader.clone())?;
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
        let shutdown = async {
            shutdown.await;
            systemd::stopping();
        };
        server::serve(listener, tls, state.clone(), shutdown)
            .await
            .map_err(|error| format!("server error: {error}"))?;
        wait_for_runs(&state).await;
        Ok::<(), String>(())
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
    // Do not wait for blocked reads of stdin-less helpers and the like.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

fn settings(args: &ServeArgs) -> Settings {
    Settings {
        urlprefix: args.urlprefix.clone(),
        default_methods: cli::default_methods(args),
        response_headers: cli::response_headers(args),
        max_body_size: args.max_body_size,
        read_timeout: Duration::from_secs(args.read_timeout.max(1)),
        max_headers: args.max_headers,
        max_connections: args.max_connections,
        x_request_id: args.x_request_id,
        x_request_id_limit: args.x_request_id_limit,
        exec: ExecOptions::default(),
        shutdown_timeout: Duration::from_secs(30),
        state_dir: args.state_directory(),
        trusted_proxies: args.trusted_proxies.clone(),
        body_limits: crate::request::body::BodyLimits {
            max_json_depth: args.max_json_depth,
            max_multipart_parts: args.max_multipart_parts,
        },
    }
}

/// Installs the signal handlers: SIGHUP and SIGUSR1 reload, SIGTERM and SIGINT stop. Returns
/// the future that resolves on a stop signal.
fn signals(reloader: Arc<Reloader>) -> Result<impl Future<Output = ()>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let install =
        |kind| signal(kind).map_err(|error| format!("cannot install a signal handler: {error}"));
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
            let _ = tokio::task::spawn_blocking(move || reloader.reload(Trigger::Signal)).await;
        }
    });
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("caught SIGTERM; shutting down"),
            _ = interrupt.recv() => tracing::info!("caught SIGINT; shutting down"),
        }
    })
}

/// Lets commands still running finish, up to the shutdown timeout.
async fn wait_for_runs(state: &State) {
    let active = state.runs.active();
    if active == 0 {
        return;
    }
    tracing::info!("waiting for {active} running command(s) to finish");
    if tokio::time::timeout(state.settings.shutdown_timeout, state.runs.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!("{} command(s) still running at exit", state.runs.active());
    }
}
