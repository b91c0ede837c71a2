//! The `hookwire` binary: parse the command line and hand over to [`hookwire::app`].

fn main() -> std::process::ExitCode {
    let cli = hookwire::cli::parse(std::env::args_os().collect());
    hookwire::app::run(cli)
}
