//! TEMPORARY stub.
pub fn open(args: &crate::cli::ServeArgs) -> Result<(super::Listener, String), String> {
    let l = std::net::TcpListener::bind(format!("{}:{}", args.ip, args.port))
        .map_err(|e| e.to_string())?;
    let a = l.local_addr().map_err(|e| e.to_string())?.to_string();
    Ok((super::Listener::Tcp(l), a))
}
