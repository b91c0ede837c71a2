//! TEMPORARY stub.
pub struct LogSettings {
    pub verbose: bool,
}
impl From<&crate::cli::ServeArgs> for LogSettings {
    fn from(a: &crate::cli::ServeArgs) -> Self {
        Self {
            verbose: a.verbose || a.debug,
        }
    }
}
pub fn init(s: &LogSettings) -> Result<(), String> {
    let level = if s.verbose { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(level)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}
