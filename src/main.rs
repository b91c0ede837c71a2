//! The `hookwire` binary: parse the command line and hand over to [`hookwire::app`].

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // A `run-as` command on its way: not a command line for people (see `exec::run_as`).
    if args
        .get(1)
        .is_some_and(|arg| arg == hookwire::engine::exec::EXEC_AS_SUBCOMMAND)
    {
        return hookwire::engine::exec::exec_as(&args[2..]);
    }
    let cli = hookwire::cli::parse(args);
    hookwire::app::run(cli)
}
