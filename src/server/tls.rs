//! TEMPORARY stub.
pub fn server_config(
    _c: &std::path::Path,
    _k: &std::path::Path,
    _v: &str,
    _s: &str,
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    Err("stub".into())
}
pub fn list_cipher_suites(_v: &str) -> Result<Vec<String>, String> {
    Ok(vec![])
}
