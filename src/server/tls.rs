//! TLS for `-secure`: a rustls server configuration (ring provider) from `-cert`, `-key`,
//! `-tls-min-version` and `-cipher-suites`, and the suite list for `-list-cipher-suites`.
//!
//! Differences from adnanh/webhook, which uses Go's crypto/tls:
//! - rustls speaks TLS 1.2 and 1.3 only: `-tls-min-version 1.0`/`1.1` start with TLS 1.2 and
//!   a warning instead of failing.
//! - rustls implements only AEAD suites with forward secrecy. Go names of the others (RSA key
//!   exchange, CBC) are refused by name with that explanation; everything else Go lists is
//!   accepted under its Go name (rustls's `TLS13_*` names work too, case does not matter).
//! - As in Go, TLS 1.3 suites are not restricted by a `-cipher-suites` that names only TLS 1.2
//!   suites. Naming TLS 1.3 suites does restrict TLS 1.3 (Go would ignore them).
//! - Key exchange groups are rustls's (X25519, P-256, P-384) rather than Go's P-521/P-384/P-256
//!   preference; every client that speaks TLS 1.2+ supports one of them.
//!
//! As in adnanh, only HTTP/1.1 is offered over ALPN. Unlike adnanh, which reads the
//! certificate once, the [`Certificate`] is re-read on SIGHUP and, with `-hotreload`, when its
//! files change (a renewed Let's Encrypt certificate needs no restart); a pair that fails to
//! load leaves the one being served in place.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::cipher_suite as suite;
use rustls::pki_types::pem;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};

/// Why `-secure` or `-list-cipher-suites` cannot go ahead; each says which flag or file to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("unknown TLS version {0:?} for -tls-min-version: use 1.2 or 1.3")]
    UnknownVersion(String),
    #[error(
        "TLS cipher suite {0} (-cipher-suites) is not supported: hookwire's TLS library \
         implements only suites with forward secrecy and AEAD encryption (ECDHE with \
         AES-GCM or ChaCha20-Poly1305, and TLS 1.3's); see hookwire -list-cipher-suites"
    )]
    UnsupportedSuite(String),
    #[error("unknown TLS cipher suite {0:?} in -cipher-suites; see hookwire -list-cipher-suites")]
    UnknownSuite(String),
    #[error("invalid TLS settings (-tls-min-version, -cipher-suites): {0}")]
    Settings(rustls::Error),
    #[error(
        "the private key {} does not belong to the certificate {}: pass the matching -cert and -key",
        key.display(),
        cert.display()
    )]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("cannot use certificate {} with its key: {source}", cert.display())]
    Unusable {
        cert: PathBuf,
        source: rustls::Error,
    },
    #[error(
        "cannot read {what} {}: {source}; pass -cert and -key (PEM files) with -secure",
        path.display()
    )]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse certificate {}: {source}", path.display())]
    BadCertificate { path: PathBuf, source: pem::Error },
    #[error(
        "no certificate in {}: -cert needs a PEM file with a \"BEGIN CERTIFICATE\" block",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "no private key in {}: -key needs a PEM file with a \"BEGIN PRIVATE KEY\" (or RSA / EC \
         PRIVATE KEY) block, unencrypted",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("cannot parse private key {}: {source}", path.display())]
    BadKey { path: PathBuf, source: pem::Error },
}

/// The suites hookwire offers, in the order Go's `tls.CipherSuites()` lists them, with the
/// Go name first and other accepted spellings after it.
const SUITES: &[(&[&str], SupportedCipherSuite)] = &[
    (
        &["TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"],
        suite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        &["TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384"],
        suite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        &[
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS13_CHACHA20_POLY1305_SHA256",
        ],
        suite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    (
        &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        &["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"],
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        &["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        &["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        &[
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        ],
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        &[
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        ],
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Suites Go knows (secure or insecure lists) that rustls does not implement.
const UNSUPPORTED_GO_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

static FROM_12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
static FROM_13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The TLS versions a `-tls-min-version` value allows. `""` means the default, 1.2, as in Go.
fn versions(min_version: &str) -> Result<&'static [&'static SupportedProtocolVersion], TlsError> {
    match min_version {
        "1.0" | "1.1" | "1.2" | "" => Ok(FROM_12),
        "1.3" => Ok(FROM_13),
        other => Err(TlsError::UnknownVersion(other.to_string())),
    }
}

fn is_tls13(suite: &SupportedCipherSuite) -> bool {
    matches!(suite, SupportedCipherSuite::Tls13(_))
}

/// Reads a `-cipher-suites` list (comma-separated, spaces and empty entries ignored).
fn parse_suites(list: &str) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let mut chosen = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some((_, suite)) = SUITES
            .iter()
            .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        {
            if !chosen.contains(suite) {
                chosen.push(*suite);
            }
        } else if UNSUPPORTED_GO_SUITES
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            return Err(TlsError::UnsupportedSuite(name.to_string()));
        } else {
            return Err(TlsError::UnknownSuite(name.to_string()));
        }
    }
    Ok(chosen)
}

/// The certificate and key being served, from `-cert` and `-key`; [`Certificate::reload`]
/// swaps in the files' current pair, and handshakes after it see the new one.
#[derive(Debug)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let current = RwLock::new(Arc::new(certified_key(cert, key, &provider)?));
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current,
        })
    }

    /// Re-reads the pair: whether it differs from the one served. On an error the current one
    /// stays in place.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let fresh = certified_key(&self.cert, &self.key, &self.provider)?;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let changed = current.cert != fresh.cert;
        *current = Arc::new(fresh);
        Ok(changed)
    }

    /// The `-cert` file, for messages.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The `-cert` and `-key` files, for the watcher.
    pub fn paths(&self) -> Vec<PathBuf> {
        vec![self.cert.clone(), self.key.clone()]
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Reads a certificate chain and its key, checking that they belong together.
fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    CertifiedKey::from_der(load_certs(cert)?, load_key(key)?, provider).map_err(|err| match err {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            key: key.to_path_buf(),
            cert: cert.to_path_buf(),
        },
        source => TlsError::Unusable {
            cert: cert.to_path_buf(),
            source,
        },
    })
}

/// Builds the server configuration for `-secure`. Warns (via `tracing`) when `min_version` is
/// 1.0 or 1.1, which rustls does not speak. Errors name the flag or file at fault and say what
/// to do; the app exits 1 on them.
pub fn server_config(
    cert: &Path,
    key: &Path,
    min_version: &str,
    cipher_suites: &str,
) -> Result<(Arc<ServerConfig>, Arc<Certificate>), TlsError> {
    if matches!(min_version, "1.0" | "1.1") {
        tracing::warn!(
            "-tls-min-version {min_version}: hookwire supports TLS 1.2 and 1.3 only, so the minimum is TLS 1.2"
        );
    }
    let mut versions = versions(min_version)?;
    let named = parse_suites(cipher_suites)?;
    let suites: Vec<SupportedCipherSuite> = if named.is_empty() {
        SUITES.iter().map(|(_, s)| *s).collect()
    } else {
        let mut suites: Vec<_> = named.iter().copied().filter(is_tls13).collect();
        if suites.is_empty() {
            // Go never restricts TLS 1.3 suites; keep them all.
            suites.extend(SUITES.iter().map(|(_, s)| *s).filter(is_tls13));
        }
        let tls12: Vec<_> = named.iter().copied().filter(|s| !is_tls13(s)).collect();
        if versions.len() == 1 && !tls12.is_empty() {
            tracing::warn!(
                "-cipher-suites names TLS 1.2 suites, which -tls-min-version 1.3 leaves unused"
            );
        } else if versions.len() > 1 && tls12.is_empty() {
            tracing::warn!(
                "-cipher-suites names no TLS 1.2 suite: only TLS 1.3 clients can connect"
            );
            versions = FROM_13;
        }
        suites.extend(tls12);
        suites
    };
    // Keep only suites of the enabled versions, so the provider says what is really offered.
    let suites: Vec<_> = suites
        .into_iter()
        .filter(|s| versions.iter().any(|v| v.version == s.version().version))
        .collect();
    let provider = CryptoProvider {
        cipher_suites: suites,
        ..rustls::crypto::ring::default_provider()
    };

    let provider = Arc::new(provider);
    let certificate = Arc::new(Certificate::load(cert, key, provider.clone())?);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(TlsError::Settings)?
        .with_no_client_auth()
        .with_cert_resolver(certificate.clone());
    // adnanh disables HTTP/2; hookwire's server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), certificate))
}

fn read_pem_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The certificate chain in `path`: every `CERTIFICATE` block, server certificate first.
fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem_file(path, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::BadCertificate {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key in `path` (PKCS#8, PKCS#1 RSA or SEC1 EC).
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem_file(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| match err {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        source => TlsError::BadKey {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// The Go names of the suites usable at `min_version`, for `-list-cipher-suites`: all of them
/// from TLS 1.2 (1.0 and 1.1 included, as rustls starts at 1.2), TLS 1.3's only at 1.3.
pub fn list_cipher_suites(min_version: &str) -> Result<Vec<String>, TlsError> {
    let tls13_only = versions(min_version)?.len() == 1;
    Ok(SUITES
        .iter()
        .filter(|(_, suite)| !tls13_only || is_tls13(suite))
        .map(|(names, _)| names[0].to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name)
    }

    fn config(min_version: &str, suites: &str) -> Result<Arc<ServerConfig>, TlsError> {
        server_config(
            &fixture("cert.pem"),
            &fixture("key.pem"),
            min_version,
            suites,
        )
        .map(|(config, _)| config)
    }

    fn versions_of(config: &ServerConfig) -> Vec<rustls::ProtocolVersion> {
        let mut v: Vec<_> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| s.version().version)
            .collect();
        v.dedup();
        v
    }

    fn suite_names(config: &ServerConfig) -> Vec<String> {
        config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect()
    }

    /// The protocol version and ALPN protocol a handshake settled on.
    type Negotiated = (rustls::ProtocolVersion, Option<Vec<u8>>);

    /// A real handshake over memory buffers: the client trusts the fixture certificate and
    /// offers the given ALPN protocols; returns what was negotiated.
    fn handshake(
        config: Arc<ServerConfig>,
        alpn: &[&[u8]],
        client_versions: &[&'static SupportedProtocolVersion],
    ) -> Result<Negotiated, Box<dyn std::error::Error>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in load_certs(&fixture("cert.pem"))? {
            roots.add(cert)?;
        }
        let mut client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(client_versions)?
        .with_root_certificates(roots)
        .with_no_client_auth();
        client_config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        let mut client = rustls::ClientConnection::new(Arc::new(client_config), name)?;
        let mut server = rustls::ServerConnection::new(config)?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            client.write_tls(&mut buf)?;
            server.read_tls(&mut buf.as_slice())?;
            server.process_new_packets()?;
            let mut buf = Vec::new();
            server.write_tls(&mut buf)?;
            client.read_tls(&mut buf.as_slice())?;
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok((
                    server.protocol_version().expect("version"),
                    server.alpn_protocol().map(<[u8]>::to_vec),
                ));
            }
        }
        Err("handshake did not finish".into())
    }

    #[test]
    fn defaults_serve_tls12_and_13_with_http11_only() {
        let config = config("1.2", "").expect("config");
        assert_eq!(
            versions_of(&config),
            [
                rustls::ProtocolVersion::TLSv1_3,
                rustls::ProtocolVersion::TLSv1_2
            ]
        );
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        let (version, alpn) =
            handshake(config.clone(), &[b"h2", b"http/1.1"], FROM_12).expect("handshake");
        assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        let (version, _) = handshake(config.clone(), &[], &[&rustls::version::TLS12]).expect("1.2");
        assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);
        // A client offering only h2 is refused rather than served HTTP/1.1 unannounced.
        let err = handshake(config, &[b"h2"], FROM_12).unwrap_err();
        assert!(
            err.to_string()
                .contains("peer doesn't support any known protocol"),
            "{err}"
        );
    }

    #[test]
    fn min_version() {
        let tls13 = config("1.3", "").unwrap();
        assert!(handshake(tls13.clone(), &[], &[&rustls::version::TLS12]).is_err());
        assert!(handshake(tls13, &[], FROM_12).is_ok());
        assert_eq!(
            versions_of(&config("1.3", "").unwrap()),
            [rustls::ProtocolVersion::TLSv1_3]
        );
        assert_eq!(
            versions_of(&config("", "").unwrap()).len(),
            2,
            "empty means 1.2, as in Go"
        );
        for old in ["1.0", "1.1"] {
            assert_eq!(
                versions_of(&config(old, "").unwrap()).len(),
                2,
                "{old} is raised to 1.2"
            );
        }
        for bad in ["1.4", "tls1.2", "1", "TLS1.3"] {
            let err = config(bad, "").unwrap_err().to_string();
            assert!(
                err.contains("unknown TLS version") && err.contains("use 1.2 or 1.3"),
                "{err}"
            );
        }
    }

    #[test]
    fn cipher_suites_by_go_name() {
        let c = config(
            "1.2",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,",
        )
        .unwrap();
        // TLS 1.3 suites stay, as Go never restricts them.
        assert_eq!(
            suite_names(&c),
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            ]
        );
        // Naming only TLS 1.3 suites restricts them and leaves TLS 1.2 without any: 1.3 only.
        let c = config("1.2", "tls13_aes_256_gcm_sha384").unwrap();
        assert_eq!(suite_names(&c), ["TLS13_AES_256_GCM_SHA384"]);
        assert_eq!(versions_of(&c), [rustls::ProtocolVersion::TLSv1_3]);
    }

    #[test]
    fn cipher_suite_errors_name_the_suite() {
        let err = config("1.2", "TLS_RSA_WITH_AES_128_CBC_SHA")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("TLS_RSA_WITH_AES_128_CBC_SHA") && err.contains("not supported"),
            "{err}"
        );
        let err = config("1.2", "TLS_AES_128_GCM_SHA256,NOPE")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown TLS cipher suite \"NOPE\"")
                && err.contains("-list-cipher-suites"),
            "{err}"
        );
    }

    #[test]
    fn listing_follows_the_min_version() {
        let all = list_cipher_suites("1.2").unwrap();
        assert_eq!(all.len(), 9);
        assert_eq!(all[0], "TLS_AES_128_GCM_SHA256");
        assert!(all.contains(&"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".to_string()));
        assert_eq!(list_cipher_suites("1.0").unwrap(), all);
        assert_eq!(
            list_cipher_suites("1.3").unwrap(),
            [
                "TLS_AES_128_GCM_SHA256",
                "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256"
            ]
        );
        assert!(list_cipher_suites("2").is_err());
        // Every listed name is accepted back by -cipher-suites.
        assert!(config("1.2", &all.join(",")).is_ok());
    }

    #[test]
    fn file_errors_say_what_to_do() {
        let err = server_config(
            Path::new("missing-cert.pem"),
            &fixture("key.pem"),
            "1.2",
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cannot read certificate missing-cert.pem: No such file or directory"),
            "{err}"
        );
        assert!(err.contains("pass -cert and -key"), "{err}");
        let err = server_config(&fixture("cert.pem"), Path::new("nokey.pem"), "1.2", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read private key nokey.pem"), "{err}");
        // The certificate file given as the key, and the other way round.
        let err = server_config(&fixture("cert.pem"), &fixture("cert.pem"), "1.2", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no private key in"), "{err}");
        let err = server_config(&fixture("key.pem"), &fixture("key.pem"), "1.2", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no certificate in"), "{err}");
        let err = server_config(&fixture("cert.pem"), &fixture("other-key.pem"), "1.2", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not belong to the certificate"), "{err}");
    }

    #[test]
    fn reload_swaps_the_pair_and_keeps_it_when_the_new_one_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::copy(fixture("cert.pem"), &cert).unwrap();
        std::fs::copy(fixture("key.pem"), &key).unwrap();
        let (_, certificate) = server_config(&cert, &key, "1.2", "").unwrap();
        let served = || certificate.current.read().unwrap().cert[0].clone();
        let a = served();
        std::fs::copy(fixture("cert-b.pem"), &cert).unwrap();
        std::fs::copy(fixture("key-b.pem"), &key).unwrap();
        assert!(certificate.reload().unwrap());
        let b = served();
        assert!(
            !certificate.reload().unwrap(),
            "the same pair again is no change"
        );
        assert_ne!(a, b);
        // A key that belongs to another certificate: refused, B stays.
        std::fs::copy(fixture("key.pem"), &key).unwrap();
        let error = certificate.reload().unwrap_err().to_string();
        assert!(
            error.contains("does not belong to the certificate"),
            "{error}"
        );
        assert_eq!(served(), b);
    }
}
