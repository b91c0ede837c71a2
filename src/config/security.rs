//! hookwire's security extensions of a hook (`signature`, `dedupe`, `delivery-id`,
//! `rate-limit`), read from the hook object.
//!
//! ```yaml
//! signature:
//!   provider: github            # a preset name, or `generic` with header/algorithm/encoding/prefix
//!   secret: {env: GH_SECRET}    # a string, {env}, {file}, {credential}, or a list (rotation)
//!   tolerance: 5m               # timestamped schemes; past and future
//!   allow-sha1: false           # github only
//! dedupe: 72h                   # ignore a repeated delivery id for this long
//! delivery-id: {source: payload, name: id}   # instead of the preset's delivery id
//! rate-limit: {requests: 10, per: 1m}        # per client IP
//! ```
//!
//! Everything that could make a hook accept what its author meant to refuse is a load error
//! (unknown provider, missing or unusable secret, `dedupe` without a delivery id); keys that only
//! have no effect are warnings.

use std::time::Duration;

use super::Diagnostic;
use super::format::Node;
use super::schema::{self, Object, ObjectKind, Reader};
use crate::pipeline::request::Argument;
use crate::pipeline::signature::HmacAlgorithm;
use crate::pipeline::signature::preset::{
    self, DEFAULT_TOLERANCE, DeliveryIdSource, Encoding, GenericScheme, PresetConfig, Provider,
};

/// How a hook's deliveries are authenticated, deduplicated and rate limited.
#[derive(Debug, Clone, Default)]
pub struct SecurityOptions {
    /// `signature`: the provider preset checked on the raw body before `trigger-rule`.
    pub signature: Option<PresetConfig>,
    /// `dedupe`: how long a delivery id is remembered; `None` turns deduplication off.
    pub dedupe: Option<Duration>,
    /// `delivery-id`: where the delivery id comes from instead of the preset's own.
    pub delivery_id: Option<Argument>,
    /// `rate-limit`: requests allowed per client IP.
    pub rate_limit: Option<RateLimit>,
}

/// `rate-limit: {requests: N, per: DURATION}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in a burst, and per `per` on average.
    pub requests: u32,
    pub per: Duration,
}

/// The provider names accepted in `signature.provider`.
const PROVIDERS: &[&str] = &[
    "github",
    "gitlab",
    "gitea",
    "forgejo",
    "gogs",
    "bitbucket",
    "stripe",
    "slack",
    "standard-webhooks",
    "svix",
    "shopify",
    "sentry",
    "linear",
    "discord",
    "generic",
];

/// The `signature` object.
const SIGNATURE: ObjectKind = ObjectKind {
    name: "signature",
    keys: &[
        "provider",
        "secret",
        "tolerance",
        "allow-sha1",
        "header",
        "algorithm",
        "encoding",
        "prefix",
    ],
    extensions: &[],
};

/// The keys that describe a `generic` scheme.
const GENERIC_KEYS: &[&str] = &["header", "algorithm", "encoding", "prefix"];

/// The `rate-limit` object.
const RATE_LIMIT: ObjectKind = ObjectKind {
    name: "rate limit",
    keys: &["requests", "per"],
    extensions: &[],
};

/// Reads the security extensions of one hook object.
pub(crate) fn compile(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
) -> Result<SecurityOptions, Box<Diagnostic>> {
    let signature = match object.present("signature") {
        Some(node) => Some(signature(reader, node, &object.path_of("signature"))?),
        None => None,
    };
    let dedupe = optional_duration(reader, object, "dedupe")?;
    let delivery_id = match object.present("delivery-id") {
        Some(node) => Some(super::compile::argument(
            reader,
            Some(node),
            node.pos,
            &object.path_of("delivery-id"),
            true,
        )?),
        None => None,
    };
    let rate_limit = match object.present("rate-limit") {
        Some(node) => Some(rate_limit(reader, node, &object.path_of("rate-limit"))?),
        None => None,
    };
    let options = SecurityOptions {
        signature,
        dedupe,
        delivery_id,
        rate_limit,
    };
    check_delivery_id(reader, object, &options)?;
    Ok(options)
}

/// `dedupe` needs a delivery id.
fn check_delivery_id(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
    options: &SecurityOptions,
) -> Result<(), Box<Diagnostic>> {
    let preset_has_id = options
        .signature
        .as_ref()
        .is_some_and(|config| config.provider.delivery_id_source() != DeliveryIdSource::None);
    if options.dedupe.is_some() && options.delivery_id.is_none() && !preset_has_id {
        let why = match &options.signature {
            Some(config) => format!("the `{}` preset has no delivery id", config.provider.name()),
            None => "this hook has no `signature` preset to take a delivery id from".into(),
        };
        return Err(Box::new(reader.diagnostic(
            object.pos_of("dedupe"),
            "dedupe",
            format!("`dedupe` needs a delivery id, and {why}"),
            Some("name one with `delivery-id: {source: header, name: X-Delivery}` (any argument object)".into()),
        )));
    }
    Ok(())
}

fn signature(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<PresetConfig, Box<Diagnostic>> {
    let object = reader
        .object(node, &SIGNATURE, path)?
        .unwrap_or_else(|| Object::empty(node.pos, path));
    let name = reader.string(&object, "provider")?;
    let provider = match name.to_ascii_lowercase().as_str() {
        "generic" => Provider::Generic(generic(reader, &object)?),
        lower => {
            let provider = Provider::parse(lower).ok_or_else(|| {
                let (message, hint) = if name.is_empty() {
                    ("`provider` is missing".to_owned(), None)
                } else {
                    let hint = schema::did_you_mean(&name, PROVIDERS.iter())
                        .map(|p| format!("did you mean `{p}`?"));
                    (format!("unknown provider `{name}`"), hint)
                };
                let hint = hint.unwrap_or_else(|| {
                    format!("`provider` is one of {}", schema::backticked(PROVIDERS))
                });
                Box::new(reader.diagnostic(
                    object.pos_of("provider"),
                    &object.path_of("provider"),
                    message,
                    Some(hint),
                ))
            })?;
            for key in GENERIC_KEYS {
                if object.present(key).is_some() {
                    reader.warn(
                        object.pos_of(key),
                        &object.path_of(key),
                        format!("`{key}` is ignored: the `{}` preset fixes it", provider.name()),
                        Some("only the `generic` provider takes `header`, `algorithm`, `encoding` and `prefix`".into()),
                    );
                }
            }
            provider
        }
    };
    let Some(secret_node) = object.present("secret") else {
        return Err(Box::new(reader.diagnostic(
            object.pos,
            &object.path_of("secret"),
            "a signature preset needs a `secret`",
            Some("write `secret: {env: NAME}` (or a string, `{file: PATH}`, `{credential: NAME}`, or a list of these)".into()),
        )));
    };
    let secrets = super::secret::read_list(reader, secret_node, &object.path_of("secret"))?;
    let allow_sha1 = reader.bool(&object, "allow-sha1")?;
    if allow_sha1 && provider != Provider::Github {
        reader.warn(
            object.pos_of("allow-sha1"),
            &object.path_of("allow-sha1"),
            "`allow-sha1` only applies to the `github` provider",
            None,
        );
    }
    let tolerance = optional_duration(reader, &object, "tolerance")?.unwrap_or(DEFAULT_TOLERANCE);
    if tolerance.is_zero() {
        return Err(Box::new(reader.diagnostic(
            object.pos_of("tolerance"),
            &object.path_of("tolerance"),
            "a zero `tolerance` refuses every timestamped delivery",
            Some("leave it out for the default of 5m".into()),
        )));
    }
    let config = PresetConfig {
        provider,
        secrets,
        tolerance,
        allow_sha1,
    };
    preset::validate_secrets(&config).map_err(|error| {
        Box::new(reader.diagnostic(
            secret_node.pos,
            &object.path_of("secret"),
            error.to_string(),
            Some(key_hint(&config.provider).into()),
        ))
    })?;
    Ok(config)
}

/// What a `secret` is for each provider, for the "unusable key" error.
fn key_hint(provider: &Provider) -> &'static str {
    match provider {
        Provider::StandardWebhooks => {
            "use the endpoint's `whsec_...` signing secret, or its `whpk_...` public key for v1a"
        }
        Provider::Gitlab => "use the webhook's secret token, or its `whsec_...` signing token",
        Provider::Discord => "use the application's public key (64 hex digits)",
        _ => "use the shared secret configured at the sender",
    }
}

/// The `generic` preset's own keys.
fn generic(reader: &mut Reader<'_>, object: &Object<'_>) -> Result<GenericScheme, Box<Diagnostic>> {
    let header = reader.string(object, "header")?;
    if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
        let message = if header.is_empty() {
            "the `generic` provider needs `header`".to_owned()
        } else {
            format!("`{header}` is not a valid header name")
        };
        return Err(Box::new(reader.diagnostic(
            object.pos_of("header"),
            &object.path_of("header"),
            message,
            Some("name the header that carries the signature, e.g. `header: X-Signature`".into()),
        )));
    }
    let algorithm = match reader.string(object, "algorithm")?.as_str() {
        "" | "sha256" => HmacAlgorithm::Sha256,
        "sha1" => HmacAlgorithm::Sha1,
        "sha512" => HmacAlgorithm::Sha512,
        other => {
            return Err(Box::new(reader.diagnostic(
                object.pos_of("algorithm"),
                &object.path_of("algorithm"),
                format!("unknown algorithm `{other}`"),
                Some("`algorithm` is one of `sha1`, `sha256` (the default), `sha512`".into()),
            )));
        }
    };
    let encoding = match reader.string(object, "encoding")?.as_str() {
        "" | "hex" => Encoding::Hex,
        "base64" => Encoding::Base64,
        other => {
            return Err(Box::new(reader.diagnostic(
                object.pos_of("encoding"),
                &object.path_of("encoding"),
                format!("unknown encoding `{other}`"),
                Some("`encoding` is `hex` (the default) or `base64`".into()),
            )));
        }
    };
    Ok(GenericScheme {
        header,
        algorithm,
        encoding,
        prefix: reader.string(object, "prefix")?,
    })
}

fn rate_limit(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Result<RateLimit, Box<Diagnostic>> {
    let object = reader
        .object(node, &RATE_LIMIT, path)?
        .unwrap_or_else(|| Object::empty(node.pos, path));
    let hint = || Some("write e.g. `rate-limit: {requests: 10, per: 1m}`".to_owned());
    let requests = match reader.int(&object, "requests")? {
        Some((n, pos)) => u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            Box::new(reader.diagnostic(
                pos,
                &object.path_of("requests"),
                format!("`requests` must be between 1 and {}", u32::MAX),
                hint(),
            ))
        })?,
        None => {
            return Err(Box::new(reader.diagnostic(
                object.pos,
                &object.path_of("requests"),
                "`rate-limit` needs `requests`",
                hint(),
            )));
        }
    };
    let per = optional_duration(reader, &object, "per")?
        .filter(|per| !per.is_zero())
        .ok_or_else(|| {
            Box::new(reader.diagnostic(
                object.pos_of("per"),
                &object.path_of("per"),
                "`rate-limit` needs a non-zero `per`",
                hint(),
            ))
        })?;
    Ok(RateLimit { requests, per })
}

/// A duration field written as humantime text (`90s`, `5m`, `72h`, `1h 30m`).
fn optional_duration(
    reader: &mut Reader<'_>,
    object: &Object<'_>,
    key: &str,
) -> Result<Option<Duration>, Box<Diagnostic>> {
    let Some(node) = object.present(key) else {
        return Ok(None);
    };
    let text = reader.string_value(node, &object.path_of(key))?;
    parse_duration(&text).map(Some).map_err(|reason| {
        Box::new(reader.diagnostic(
            node.pos,
            &object.path_of(key),
            format!("`{text}` is not a duration: {reason}"),
            Some("write a number with a unit, e.g. `30s`, `5m`, `72h`".into()),
        ))
    })
}

/// Parses a duration with its unit; a bare number is refused, since seconds and minutes are
/// both plausible readings.
pub fn parse_duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text.trim())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::compile::compile_file;
    use crate::config::{Hook, LoadError, LoadOptions, LoadedFile};
    use crate::secret::Origin;

    #[allow(clippy::result_large_err)] // `LoadError::Invalid` carries a whole `Diagnostic`.
    fn load_in(dir: &Path, hooks: &str) -> Result<LoadedFile, LoadError> {
        let path = dir.join("hooks.yaml");
        compile_file(&path, hooks.as_bytes(), &LoadOptions::default())
    }

    fn hook(hooks: &str) -> Hook {
        let file = load_in(Path::new("/nonexistent"), hooks).unwrap_or_else(|e| panic!("{e}"));
        file.hooks.into_iter().next().unwrap()
    }

    fn error(hooks: &str) -> String {
        match load_in(Path::new("/nonexistent"), hooks) {
            Err(error) => error.to_string(),
            Ok(file) => panic!("loaded: {:?}", file.hooks),
        }
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 1h 30m "), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("300").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn every_key_compiles() {
        let h = hook(
            "- id: deploy\n  signature:\n    provider: GitHub\n    secret: [old, new]\n    tolerance: 90s\n    allow-sha1: true\n  dedupe: 72h\n  rate-limit: {requests: 10, per: 1m}\n",
        );
        let config = h.security.signature.unwrap();
        assert_eq!(config.provider, Provider::Github);
        assert_eq!(config.secrets.len(), 2);
        assert_eq!(config.secrets[1].expose(), b"new");
        assert_eq!(config.tolerance, Duration::from_secs(90));
        assert!(config.allow_sha1);
        assert_eq!(h.security.dedupe, Some(Duration::from_secs(72 * 3600)));
        assert_eq!(
            h.security.rate_limit,
            Some(RateLimit {
                requests: 10,
                per: Duration::from_secs(60)
            })
        );
        // Defaults.
        let h = hook("- id: x\n  signature: {provider: stripe, secret: whsec_abc}\n");
        let config = h.security.signature.unwrap();
        assert_eq!(config.tolerance, DEFAULT_TOLERANCE);
        assert!(!config.allow_sha1);
        assert!(h.security.dedupe.is_none() && h.security.rate_limit.is_none());
    }

    #[test]
    fn generic_scheme() {
        let h = hook(
            "- id: x\n  signature: {provider: generic, secret: s, header: X-Sig, algorithm: sha512, encoding: base64, prefix: 'v1='}\n",
        );
        let Provider::Generic(scheme) = h.security.signature.unwrap().provider else {
            panic!("not generic");
        };
        assert_eq!(scheme.header, "X-Sig");
        assert_eq!(scheme.algorithm, HmacAlgorithm::Sha512);
        assert_eq!(scheme.encoding, Encoding::Base64);
        assert_eq!(scheme.prefix, "v1=");
        let e = error("- id: x\n  signature: {provider: generic, secret: s}\n");
        assert!(e.contains("needs `header`"), "{e}");
        let e = error(
            "- id: x\n  signature: {provider: generic, secret: s, header: X, algorithm: md5}\n",
        );
        assert!(e.contains("unknown algorithm `md5`"), "{e}");
    }

    #[test]
    fn mistakes_fail_the_load_with_place_and_hint() {
        let e = error("- id: x\n  signature: {provider: githb, secret: s}\n");
        assert!(e.contains("hooks.yaml:2:"), "{e}");
        assert!(
            e.contains("hook `x`: `signature.provider`: unknown provider `githb`"),
            "{e}"
        );
        assert!(e.contains("did you mean `github`?"), "{e}");
        let e = error("- id: x\n  signature: {provider: github}\n");
        assert!(e.contains("needs a `secret`"), "{e}");
        let e = error("- id: x\n  signature: {provider: github, secret: ''}\n");
        assert!(e.contains("secret #1 is empty"), "{e}");
        let e = error("- id: x\n  signature: {provider: discord, secret: not-hex-key}\n");
        assert!(e.contains("invalid configured key"), "{e}");
        assert!(!e.contains("not-hex-key"), "the key is not repeated: {e}");
        let e = error("- id: x\n  signature: {provider: github, secret: s, tolerance: 300}\n");
        assert!(e.contains("`300` is not a duration"), "{e}");
        let e = error("- id: x\n  rate-limit: {requests: 0, per: 1m}\n");
        assert!(e.contains("`requests` must be"), "{e}");
        let e = error("- id: x\n  rate-limit: {requests: 5}\n");
        assert!(e.contains("non-zero `per`"), "{e}");
    }

    #[test]
    fn dedupe_needs_a_delivery_id() {
        let e = error("- id: x\n  dedupe: 1h\n");
        assert!(e.contains("`dedupe` needs a delivery id"), "{e}");
        let e = error(
            "- id: x\n  dedupe: 1h\n  signature: {provider: generic, secret: s, header: X}\n",
        );
        assert!(e.contains("the `generic` preset has no delivery id"), "{e}");
        let h = hook("- id: x\n  dedupe: 1h\n  delivery-id: {source: header, name: X-Id}\n");
        assert_eq!(h.security.delivery_id.unwrap().name, "X-Id");
        let file = load_in(
            Path::new("/x"),
            "- id: x\n  delivery-id: {source: header, name: X-Id}\n",
        )
        .unwrap();
        // Without `dedupe` it still names the delivery for the command (HOOKWIRE_DELIVERY_ID).
        assert!(
            !file
                .warnings
                .iter()
                .any(|w| w.message.contains("delivery-id")),
            "{:?}",
            file.warnings
        );
    }

    #[test]
    fn preset_only_keys_are_warned_about() {
        let file = load_in(
            Path::new("/x"),
            "- id: x\n  signature: {provider: stripe, secret: s, allow-sha1: true, header: X}\n",
        )
        .unwrap();
        let messages: Vec<_> = file.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("`allow-sha1` only applies")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("`header` is ignored")),
            "{messages:?}"
        );
    }

    #[test]
    fn secrets_by_reference() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gh.secret"), "from-file\n").unwrap();
        let file = load_in(
            dir.path(),
            "- id: x\n  signature: {provider: github, secret: [{file: gh.secret}, {env: PATH}]}\n  trigger-rule:\n    match: {type: payload-hmac-sha256, secret: {file: gh.secret}, parameter: {source: header, name: X-Sig}}\n",
        )
        .unwrap();
        let hook = &file.hooks[0];
        let secrets = &hook.security.signature.as_ref().unwrap().secrets;
        assert_eq!(secrets[0].expose(), b"from-file");
        assert_eq!(
            secrets[0].origin(),
            &Origin::File(dir.path().join("gh.secret"))
        );
        assert_eq!(secrets[1].origin(), &Origin::Env("PATH".into()));
        let debug = format!("{hook:?}");
        assert!(!debug.contains("from-file"), "{debug}");
        let crate::pipeline::rules::Rule::Match(rule) = hook.trigger_rule.as_ref().unwrap() else {
            panic!("not a match");
        };
        let crate::pipeline::rules::MatchKind::PayloadHmac { secret, .. } = &rule.kind else {
            panic!("not an hmac match");
        };
        assert_eq!(secret.expose(), b"from-file");
    }

    #[test]
    fn missing_secrets_name_hook_field_and_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_in(
            dir.path(),
            "- id: deploy\n  signature:\n    provider: github\n    secret: [inline-value, {env: HOOKWIRE_SURELY_UNSET_VAR}]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":4:"), "{e}");
        assert!(e.contains("hook `deploy`: `signature.secret[1]`"), "{e}");
        assert!(
            e.contains("environment variable HOOKWIRE_SURELY_UNSET_VAR is not set"),
            "{e}"
        );
        assert!(!e.contains("inline-value"), "{e}");
        let e = load_in(
            dir.path(),
            "- id: deploy\n  trigger-rule:\n    match: {type: payload-hmac-sha1, secret: {file: nope}, parameter: {source: header, name: X}}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`trigger-rule.match.secret`"), "{e}");
        assert!(e.contains("cannot read secret file"), "{e}");
        let e = load_in(
            dir.path(),
            "- id: d\n  signature: {provider: github, secret: {env: A, file: b}}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("exactly one of"), "{e}");
    }
}
