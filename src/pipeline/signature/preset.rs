//! Signature presets: verify a webhook delivery exactly as a named provider signs it.
//!
//! A hook's `signature: {provider: …, secret: …}` key picks one [`Provider`]; [`verify`] then checks
//! the raw body and headers against it before any rule runs, and [`sign`] produces the headers the
//! provider would send (for `hookwire sign` and tests). Everything here is pure: no I/O, and the
//! clock is the `now` parameter.
//!
//! Rules shared by every scheme:
//! - the hook config names the provider; nothing in the request chooses the scheme or the parser
//!   (not even `Content-Type`);
//! - the MAC is over the exact raw body bytes, and is checked *before* anything in the body (or a
//!   timestamp) is trusted;
//! - a missing or empty header is "no signature" ([`PresetError::MissingHeader`]);
//! - signatures are decoded (hex or base64) and compared as bytes, in constant time;
//! - several secrets may be configured (rotation) and some providers send several signatures: any
//!   configured secret matching any sent signature is enough;
//! - errors say which check and which header failed, never the expected value or the secret.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::HmacAlgorithm;
use crate::secret::Secret;

#[cfg(test)]
mod tests;

/// The tolerance for timestamped schemes when the hook sets none: 5 minutes, in both directions
/// (what Stripe's, Slack's and the Standard Webhooks reference libraries use).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Linear's own window for the body's `webhookTimestamp`, as `@linear/sdk` enforces it. Fixed:
/// the hook's `tolerance` does not apply to Linear.
pub const LINEAR_TOLERANCE: Duration = Duration::from_secs(60);

/// A provider's signing scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// `X-Hub-Signature-256: sha256=<hex>`; legacy `X-Hub-Signature: sha1=<hex>` only by opt-in.
    Github,
    /// `X-Gitlab-Token` (a shared token), or Standard Webhooks with a `whsec_` signing token.
    Gitlab,
    /// Gitea and Forgejo: bare hex in `X-Gitea-Signature` / `X-Forgejo-Signature`.
    Gitea,
    /// `X-Gogs-Signature`: bare hex over the JSON payload (decoded from a form body).
    Gogs,
    /// Bitbucket Cloud and Data Center: `X-Hub-Signature: sha256=<hex>`.
    Bitbucket,
    /// `Stripe-Signature: t=…,v1=…`, HMAC over `"{t}.{body}"`.
    Stripe,
    /// `X-Slack-Signature: v0=<hex>` over `"v0:{ts}:{body}"`.
    Slack,
    /// Standard Webhooks (and Svix's `svix-*` names): `v1` HMAC or `v1a` Ed25519.
    StandardWebhooks,
    /// `X-Shopify-Hmac-Sha256: <base64>`.
    Shopify,
    /// `Sentry-Hook-Signature: <hex>`.
    Sentry,
    /// `Linear-Signature: <hex>`, plus the body's `webhookTimestamp` within 60 s.
    Linear,
    /// Discord interactions: Ed25519 over timestamp ‖ body, keyed by the app's public key.
    Discord,
    /// A single HMAC header described by the hook itself.
    Generic(GenericScheme),
}

/// How a signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Hex digits, either case.
    Hex,
    /// Standard base64 (padding optional).
    Base64,
}

/// The `generic` preset: an HMAC of the raw body in one header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericScheme {
    /// The header carrying the signature (matched case-insensitively).
    pub header: String,
    /// The HMAC's hash.
    pub algorithm: HmacAlgorithm,
    /// How the MAC is encoded after the prefix.
    pub encoding: Encoding,
    /// A literal before the encoded MAC, e.g. `sha256=`. When non-empty it is *required*: a
    /// header without it is malformed (accepting both forms would only widen what we parse).
    pub prefix: String,
}

/// Where a provider's delivery id (the dedupe key) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryIdSource {
    /// The first of these headers that is present and non-empty.
    Headers(&'static [&'static str]),
    /// A top-level string (or number) field of a JSON body.
    BodyField(&'static str),
    /// The scheme has none.
    None,
}

impl Provider {
    /// The provider named in a hook's `signature.provider`, or `None` if unknown. `forgejo` is an
    /// alias of `gitea` and `svix` of `standard-webhooks`. `generic` is not accepted here: it needs
    /// its [`GenericScheme`] fields, so the config loader builds [`Provider::Generic`] itself.
    pub fn parse(name: &str) -> Option<Provider> {
        Some(match name.to_ascii_lowercase().as_str() {
            "github" => Provider::Github,
            "gitlab" => Provider::Gitlab,
            "gitea" | "forgejo" => Provider::Gitea,
            "gogs" => Provider::Gogs,
            "bitbucket" => Provider::Bitbucket,
            "stripe" => Provider::Stripe,
            "slack" => Provider::Slack,
            "standard-webhooks" | "svix" => Provider::StandardWebhooks,
            "shopify" => Provider::Shopify,
            "sentry" => Provider::Sentry,
            "linear" => Provider::Linear,
            "discord" => Provider::Discord,
            _ => return None,
        })
    }

    /// The canonical config name (`generic` for [`Provider::Generic`]).
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Gitea => "gitea",
            Provider::Gogs => "gogs",
            Provider::Bitbucket => "bitbucket",
            Provider::Stripe => "stripe",
            Provider::Slack => "slack",
            Provider::StandardWebhooks => "standard-webhooks",
            Provider::Shopify => "shopify",
            Provider::Sentry => "sentry",
            Provider::Linear => "linear",
            Provider::Discord => "discord",
            Provider::Generic(_) => "generic",
        }
    }

    /// Where [`verify`] takes [`Verified::delivery_id`] from.
    pub fn delivery_id_source(&self) -> DeliveryIdSource {
        use DeliveryIdSource::{BodyField, Headers};
        match self {
            Provider::Github => Headers(&["X-GitHub-Delivery"]),
            // Idempotency-Key (17.4+) is stable across retries; the event UUID is older but is
            // shared by recursive hooks, so it is only the fallback.
            // webhook-id equals Idempotency-Key when GitLab signs; it is the last resort.
            Provider::Gitlab => Headers(&["Idempotency-Key", "X-Gitlab-Event-UUID", "webhook-id"]),
            Provider::Gitea => Headers(&["X-Gitea-Delivery", "X-Forgejo-Delivery"]),
            Provider::Gogs => Headers(&["X-Gogs-Delivery"]),
            // Cloud sends X-Request-UUID, Data Center X-Request-Id.
            Provider::Bitbucket => Headers(&["X-Request-UUID", "X-Request-Id"]),
            Provider::Stripe => BodyField("id"),
            Provider::Slack => BodyField("event_id"),
            Provider::StandardWebhooks => Headers(&["webhook-id", "svix-id"]),
            Provider::Shopify => Headers(&["X-Shopify-Event-Id"]),
            Provider::Sentry => Headers(&["Request-ID"]),
            Provider::Linear => Headers(&["Linear-Delivery"]),
            Provider::Discord => BodyField("id"),
            Provider::Generic(_) => DeliveryIdSource::None,
        }
    }
}

/// A hook's preset: the provider, its secrets and the replay window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetConfig {
    /// The scheme.
    pub provider: Provider,
    /// Candidate secrets, any of which may match (rotation: list the old and the new). What a
    /// secret is depends on the provider: a shared HMAC secret or token for most; a `whsec_…`
    /// (or bare base64) HMAC key or a `whpk_…` Ed25519 public key for Standard Webhooks; the
    /// app's hex public key for Discord.
    pub secrets: Vec<Secret>,
    /// Allowed clock difference, past and future, for timestamped schemes (Stripe, Slack,
    /// Standard Webhooks, Discord, GitLab's signing token). Linear uses its own 60 s.
    pub tolerance: Duration,
    /// GitHub only: accept the legacy SHA-1 `X-Hub-Signature` when `X-Hub-Signature-256` is
    /// absent. Ignored by every other provider.
    pub allow_sha1: bool,
}

impl PresetConfig {
    /// A config with the default tolerance and SHA-1 disallowed.
    pub fn new(provider: Provider, secrets: Vec<Secret>) -> Self {
        Self {
            provider,
            secrets,
            tolerance: DEFAULT_TOLERANCE,
            allow_sha1: false,
        }
    }
}

/// Header lookup for [`verify`].
pub trait Headers {
    /// The first value of header `name`, matched ASCII case-insensitively. [`verify`] treats an
    /// empty (or all-whitespace) value as missing, so implementations need not filter them.
    fn get(&self, name: &str) -> Option<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&str> {
        Headers::get(self.as_slice(), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Headers for [(K, V); N] {
    fn get(&self, name: &str) -> Option<&str> {
        Headers::get(self.as_slice(), name)
    }
}

/// The server's request headers. A value that is not visible ASCII counts as missing: no
/// provider sends one, and the schemes only parse ASCII.
impl Headers for http::HeaderMap {
    fn get(&self, name: &str) -> Option<&str> {
        http::HeaderMap::get(self, name).and_then(|value| value.to_str().ok())
    }
}

/// What a verified delivery tells the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// The provider's dedupe key (see [`Provider::delivery_id_source`]), if the request has one.
    pub delivery_id: Option<String>,
    /// Discord only: the body is a PING (`"type": 1`), to be answered with `{"type":1}`.
    pub discord_ping: bool,
}

/// Why a delivery was refused (answer 401) or a key was rejected (fail the config load).
///
/// The messages name the check and the header; they never contain the expected signature, the
/// secret, or the value that was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    /// A required header is absent or empty (also a prefix with nothing after it, e.g. `sha256=`).
    #[error("missing or empty header {0}")]
    MissingHeader(String),
    /// A header (or the body field named) cannot be parsed: bad hex or base64, wrong length, no
    /// prefix, bad timestamp.
    #[error("malformed {0}")]
    Malformed(String),
    /// Well formed, but no sent signature matches any configured secret. Names the header.
    #[error("{0} matches no configured secret")]
    Mismatch(String),
    /// Authentic, but the timestamp is older than the tolerance: a replay or a slow clock.
    #[error("timestamp is {age_secs} s old, outside the tolerance")]
    Stale {
        /// How old the timestamp is, rounded up.
        age_secs: u64,
    },
    /// Authentic, but the timestamp is further in the future than the tolerance.
    #[error("timestamp is {ahead_secs} s in the future, outside the tolerance")]
    Future {
        /// How far ahead the timestamp is, rounded up.
        ahead_secs: u64,
    },
    /// A configured secret is unusable for this provider (bad base64 or hex, wrong length, …).
    #[error("invalid configured key: {0}")]
    BadKey(String),
}

use PresetError::{BadKey, Malformed, Mismatch, MissingHeader};

// ---------------------------------------------------------------------------------------------
// Verification.

/// Verifies one delivery against `config`. `body` is the raw body as received; `now` is the
/// current time, used only by timestamped schemes.
pub fn verify(
    config: &PresetConfig,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: SystemTime,
) -> Result<Verified, PresetError> {
    if config.secrets.is_empty() {
        return Err(BadKey("no secret configured".into()));
    }
    let secrets = &config.secrets;
    let sha256 = HmacAlgorithm::Sha256;
    let mut ping = false;
    match &config.provider {
        Provider::Github => {
            // SHA-1 only when the SHA-256 header is absent: a present but wrong one never falls
            // back, or anyone could downgrade the check to SHA-1 by adding a header.
            let legacy = config.allow_sha1
                && header(headers, GITHUB_256).is_none()
                && header(headers, GITHUB_1).is_some();
            let scheme = match legacy {
                true => Single::hex(GITHUB_1, "sha1=", HmacAlgorithm::Sha1),
                false => Single::hex(GITHUB_256, "sha256=", sha256),
            };
            scheme.verify(headers, secrets, &[body])?;
        }
        Provider::Gitlab => verify_gitlab(config, headers, body, now)?,
        Provider::Gitea => {
            // Forgejo sends the same value under its own name; an empty one (sent when the hook
            // has no secret) counts as missing, so the other name is tried.
            let name = [GITEA, FORGEJO]
                .into_iter()
                .find(|name| header(headers, name).is_some())
                .ok_or_else(|| MissingHeader(format!("{GITEA} or {FORGEJO}")))?;
            Single::hex(name, "", sha256).verify(headers, secrets, &[body])?;
        }
        Provider::Gogs => {
            let payload = gogs_payload(body);
            Single::hex("X-Gogs-Signature", "", sha256).verify(headers, secrets, &[&payload])?;
        }
        // Bitbucket uses GitHub's *SHA-1* header name for a SHA-256 value.
        Provider::Bitbucket => {
            Single::hex(GITHUB_1, "sha256=", sha256).verify(headers, secrets, &[body])?;
        }
        Provider::Stripe => verify_stripe(config, headers, body, now)?,
        Provider::Slack => {
            let ts = require(headers, SLACK_TS)?;
            let seconds =
                parse_unix(ts).ok_or_else(|| Malformed(format!("{SLACK_TS}: not unix seconds")))?;
            let message: &[&[u8]] = &[b"v0:", ts.as_bytes(), b":", body];
            Single::hex("X-Slack-Signature", "v0=", sha256).verify(headers, secrets, message)?;
            check_window(seconds, 1000, now, config.tolerance)?;
        }
        Provider::StandardWebhooks => return verify_standard(config, headers, body, now, true),
        Provider::Shopify => {
            let scheme = Single {
                header: "X-Shopify-Hmac-Sha256",
                prefix: "",
                encoding: Encoding::Base64,
                algorithm: sha256,
            };
            scheme.verify(headers, secrets, &[body])?;
        }
        // Sentry-Hook-Timestamp is not signed, so there is no replay window to check.
        Provider::Sentry => {
            Single::hex("Sentry-Hook-Signature", "", sha256).verify(headers, secrets, &[body])?;
        }
        Provider::Linear => {
            Single::hex("Linear-Signature", "", sha256).verify(headers, secrets, &[body])?;
            // The timestamp is trusted only now that the MAC has authenticated the body.
            let millis = body_fields(body)
                .webhook_timestamp
                .and_then(|v| v.as_i64())
                .ok_or_else(|| {
                    Malformed("body: webhookTimestamp missing or not an integer".into())
                })?;
            check_window(i128::from(millis), 1, now, LINEAR_TOLERANCE)?;
        }
        Provider::Discord => ping = verify_discord(config, headers, body, now)?,
        Provider::Generic(scheme) => {
            let scheme = Single {
                header: &scheme.header,
                prefix: &scheme.prefix,
                encoding: scheme.encoding,
                algorithm: scheme.algorithm,
            };
            scheme.verify(headers, secrets, &[body])?;
        }
    }
    Ok(Verified {
        delivery_id: delivery_id(&config.provider, headers, body),
        discord_ping: ping,
    })
}

/// Checks every configured secret for use with `config.provider`, so the config loader can fail
/// the load on a key that could never verify: an empty list or secret, a `whsec_` / bare key that
/// is not base64, a `whpk_` that is not a 32-byte Ed25519 point, a `whsk_` private key where a
/// public key belongs, a Discord key that is not 32 bytes of hex; and a generic scheme without a
/// header name.
pub fn validate_secrets(config: &PresetConfig) -> Result<(), PresetError> {
    if config.secrets.is_empty() {
        return Err(BadKey("no secret configured".into()));
    }
    if let Some(n) = config.secrets.iter().position(Secret::is_empty) {
        return Err(BadKey(format!("secret #{} is empty", n + 1)));
    }
    match &config.provider {
        Provider::StandardWebhooks => standard_keys(&config.secrets, false).map(drop),
        Provider::Gitlab => standard_keys(&config.secrets, true).map(drop),
        Provider::Discord => discord_keys(&config.secrets).map(drop),
        Provider::Generic(scheme) if scheme.header.trim().is_empty() => {
            Err(BadKey("generic: the header name is empty".into()))
        }
        _ => Ok(()),
    }
}

const GITHUB_256: &str = "X-Hub-Signature-256";
const GITHUB_1: &str = "X-Hub-Signature";
const GITEA: &str = "X-Gitea-Signature";
const FORGEJO: &str = "X-Forgejo-Signature";
const SLACK_TS: &str = "X-Slack-Request-Timestamp";
const STRIPE: &str = "Stripe-Signature";
const GITLAB_TOKEN: &str = "X-Gitlab-Token";
const DISCORD_SIG: &str = "X-Signature-Ed25519";
const DISCORD_TS: &str = "X-Signature-Timestamp";

/// GitLab: a Standard Webhooks signature when the request carries one, else the plain token.
///
/// Configured secrets starting with `whsec_` are signing tokens (GitLab MR !231325), the others
/// are secret tokens. A `webhook-signature` is verified when a signing token is configured (and
/// ignored otherwise); without one the token is checked. With only signing tokens configured a
/// request must be signed: falling back to `X-Gitlab-Token` there would let a request drop the
/// signature and skip the replay window.
fn verify_gitlab(
    config: &PresetConfig,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: SystemTime,
) -> Result<(), PresetError> {
    let is_signing = |s: &&Secret| s.expose().starts_with(b"whsec_");
    let signing: Vec<Secret> = config.secrets.iter().filter(is_signing).cloned().collect();
    // Without a configured signing token the header cannot be checked, so it is ignored.
    if !signing.is_empty() && header(headers, "webhook-signature").is_some() {
        let config = PresetConfig {
            secrets: signing,
            ..config.clone()
        };
        return verify_standard(&config, headers, body, now, false).map(drop);
    }
    let mut tokens = config.secrets.iter().filter(|s| !is_signing(s)).peekable();
    if tokens.peek().is_none() {
        return Err(MissingHeader("webhook-signature".into()));
    }
    let sent = require(headers, GITLAB_TOKEN)?.as_bytes();
    // Every token is compared, so timing does not tell which one (if any) matched.
    let matched = tokens.fold(subtle::Choice::from(0), |acc, token| {
        acc | token.expose().ct_eq(sent)
    });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(Mismatch(GITLAB_TOKEN.into()))
    }
}

/// Stripe: `t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`, HMAC-SHA256 over `"{t}.{body}"`.
///
/// Trap: the key is the whole `whsec_…` string as bytes, *not* base64-decoded — the opposite of
/// Standard Webhooks, which uses the same prefix.
fn verify_stripe(
    config: &PresetConfig,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: SystemTime,
) -> Result<(), PresetError> {
    let value = require(headers, STRIPE)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let Some((key, val)) = item.split_once('=') else {
            return Err(Malformed(format!("{STRIPE}: an item is not key=value")));
        };
        match key {
            "t" if timestamp.is_some() => {
                return Err(Malformed(format!("{STRIPE}: more than one t=")));
            }
            "t" => timestamp = Some(val),
            "v1" => candidates.push(decode(Encoding::Hex, val, STRIPE)?),
            // v0 is the legacy test-mode scheme, and unknown schemes are Stripe's to add.
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(|| Malformed(format!("{STRIPE}: no t= timestamp")))?;
    let seconds =
        parse_unix(t).ok_or_else(|| Malformed(format!("{STRIPE}: t= is not unix seconds")))?;
    if candidates.is_empty() {
        return Err(Malformed(format!("{STRIPE}: no v1= signature")));
    }
    let message: &[&[u8]] = &[t.as_bytes(), b".", body];
    if !hmac_matches(
        HmacAlgorithm::Sha256,
        raw_keys(&config.secrets),
        message,
        &candidates,
    ) {
        return Err(Mismatch(STRIPE.into()));
    }
    check_window(seconds, 1000, now, config.tolerance)
}

/// The two header spellings of Standard Webhooks.
const STANDARD_NAMES: [[&str; 3]; 2] = [
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
    ["svix-id", "svix-timestamp", "svix-signature"],
];

/// Standard Webhooks (and Svix): `v1,<base64>` / `v1a,<base64>` entries, space-separated, over
/// `"{id}.{timestamp}.{body}"`. The `svix-*` names are used only when `webhook-signature` is
/// absent, and only if `svix` is allowed (GitLab sends the `webhook-*` names).
fn verify_standard(
    config: &PresetConfig,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: SystemTime,
    svix: bool,
) -> Result<Verified, PresetError> {
    let [id_name, ts_name, sig_name] = STANDARD_NAMES
        .into_iter()
        .take(if svix { 2 } else { 1 })
        .find(|names| header(headers, names[2]).is_some())
        .ok_or_else(|| MissingHeader(STANDARD_NAMES[0][2].into()))?;
    let signatures = require(headers, sig_name)?;
    let id = require(headers, id_name)?;
    let ts = require(headers, ts_name)?;
    // A dot in either would make the signed content ambiguous ("a.b" + "c" vs "a" + "b.c").
    if id.contains('.') {
        return Err(Malformed(format!("{id_name}: contains '.'")));
    }
    let seconds =
        parse_unix(ts).ok_or_else(|| Malformed(format!("{ts_name}: not unix seconds")))?;

    let (mut v1, mut v1a) = (Vec::new(), Vec::new());
    for entry in signatures.split_ascii_whitespace() {
        // Other versions (and entries without a comma) are skipped: the list may carry
        // schemes we do not know alongside one we do.
        match entry.split_once(',') {
            Some(("v1", sig)) => v1.push(decode(Encoding::Base64, sig, sig_name)?),
            Some(("v1a", sig)) => v1a.push(ed25519_signature(
                &decode(Encoding::Base64, sig, sig_name)?,
                sig_name,
            )?),
            _ => {}
        }
    }
    if v1.is_empty() && v1a.is_empty() {
        return Err(Malformed(format!("{sig_name}: no v1 or v1a entry")));
    }

    let keys = standard_keys(&config.secrets, false)?;
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
    let hmac_keys = keys.iter().filter_map(|k| match k {
        StandardKey::Hmac(key) => Some(key.as_slice()),
        StandardKey::Ed25519(_) => None,
    });
    let mut ok = hmac_matches(HmacAlgorithm::Sha256, hmac_keys, &parts, &v1);
    if !ok && !v1a.is_empty() {
        let message = parts.concat();
        ok = keys.iter().any(|k| match k {
            StandardKey::Ed25519(key) => v1a
                .iter()
                .any(|sig| key.verify_strict(&message, sig).is_ok()),
            StandardKey::Hmac(_) => false,
        });
    }
    if !ok {
        return Err(Mismatch(sig_name.into()));
    }
    check_window(seconds, 1000, now, config.tolerance)?;
    Ok(Verified {
        delivery_id: Some(id.to_owned()),
        discord_ping: false,
    })
}

/// Discord: Ed25519 over the timestamp header's bytes followed by the body (no separator).
/// Returns whether the body is a PING.
fn verify_discord(
    config: &PresetConfig,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: SystemTime,
) -> Result<bool, PresetError> {
    let signature = ed25519_signature(
        &decode(Encoding::Hex, require(headers, DISCORD_SIG)?, DISCORD_SIG)?,
        DISCORD_SIG,
    )?;
    let ts = require(headers, DISCORD_TS)?;
    let seconds =
        parse_unix(ts).ok_or_else(|| Malformed(format!("{DISCORD_TS}: not unix seconds")))?;
    let keys = discord_keys(&config.secrets)?;
    let message = [ts.as_bytes(), body].concat();
    if !keys
        .iter()
        .any(|key| key.verify_strict(&message, &signature).is_ok())
    {
        // Discord probes endpoints with bad signatures and drops those that accept them.
        return Err(Mismatch(DISCORD_SIG.into()));
    }
    // Discord publishes no window; we apply the hook's tolerance anyway against replays.
    check_window(seconds, 1000, now, config.tolerance)?;
    Ok(body_fields(body).kind.as_ref().and_then(Value::as_u64) == Some(1))
}

/// The provider's dedupe key for a verified request.
pub fn delivery_id(
    provider: &Provider,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
) -> Option<String> {
    match provider.delivery_id_source() {
        DeliveryIdSource::Headers(names) => names
            .iter()
            .find_map(|name| header(headers, name))
            .map(str::to_owned),
        DeliveryIdSource::BodyField(field) => {
            let fields = body_fields(body);
            let value = if field == "event_id" {
                fields.event_id
            } else {
                fields.id
            };
            match value? {
                Value::String(s) if !s.is_empty() => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        }
        DeliveryIdSource::None => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Signing.

/// The headers `provider` would send for `body` signed with `secret` at `now`, with `id` as the
/// delivery id where the provider sends one in a header. For the Ed25519 schemes the secret is the
/// private key: a `whsk_<base64 seed>` for Standard Webhooks (a `whsec_` or bare key signs `v1`),
/// the hex 32-byte seed for Discord. For GitLab, a `whsec_` secret signs as Standard Webhooks and
/// anything else is sent as the token. For Gogs a `payload=` form body is signed over its JSON.
pub fn sign(
    provider: &Provider,
    secret: &Secret,
    body: &[u8],
    now: SystemTime,
    id: &str,
) -> Result<Vec<(String, String)>, PresetError> {
    use HmacAlgorithm::Sha1;
    let key = secret.expose();
    let ts = unix_millis(now).div_euclid(1000).max(0).to_string();
    let hex256 = |message: &[&[u8]]| hex::encode(mac(HmacAlgorithm::Sha256, key, message));
    let pair = |name: &str, value: String| (name.to_owned(), value);
    Ok(match provider {
        Provider::Github => vec![
            pair(GITHUB_256, format!("sha256={}", hex256(&[body]))),
            pair(
                GITHUB_1,
                format!("sha1={}", hex::encode(mac(Sha1, key, &[body]))),
            ),
            pair("X-GitHub-Delivery", id.into()),
        ],
        Provider::Gitlab if key.starts_with(b"whsec_") => {
            let mut headers = sign(&Provider::StandardWebhooks, secret, body, now, id)?;
            headers.push(pair("Idempotency-Key", id.into()));
            headers
        }
        Provider::Gitlab => vec![
            pair(GITLAB_TOKEN, String::from_utf8_lossy(key).into_owned()),
            pair("Idempotency-Key", id.into()),
        ],
        Provider::Gitea => vec![
            pair(GITEA, hex256(&[body])),
            pair("X-Gitea-Delivery", id.into()),
        ],
        Provider::Gogs => vec![
            pair("X-Gogs-Signature", hex256(&[&gogs_payload(body)])),
            pair("X-Gogs-Delivery", id.into()),
        ],
        Provider::Bitbucket => vec![
            pair(GITHUB_1, format!("sha256={}", hex256(&[body]))),
            pair("X-Request-UUID", id.into()),
        ],
        Provider::Stripe => {
            vec![pair(
                STRIPE,
                format!("t={ts},v1={}", hex256(&[ts.as_bytes(), b".", body])),
            )]
        }
        Provider::Slack => vec![
            pair(SLACK_TS, ts.clone()),
            pair(
                "X-Slack-Signature",
                format!("v0={}", hex256(&[b"v0:", ts.as_bytes(), b":", body])),
            ),
        ],
        Provider::StandardWebhooks => {
            // The id is a field of the signed content, which `.` separates: verifiers refuse it.
            if id.contains('.') {
                return Err(Malformed("webhook-id: contains '.'".into()));
            }
            let message: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
            let signature = sign_standard(secret, &message)?;
            vec![
                pair("webhook-id", id.into()),
                pair("webhook-timestamp", ts.clone()),
                pair("webhook-signature", signature),
            ]
        }
        Provider::Shopify => vec![
            pair(
                "X-Shopify-Hmac-Sha256",
                STANDARD.encode(mac(HmacAlgorithm::Sha256, key, &[body])),
            ),
            pair("X-Shopify-Event-Id", id.into()),
        ],
        Provider::Sentry => vec![
            pair("Sentry-Hook-Signature", hex256(&[body])),
            pair("Request-ID", id.into()),
        ],
        Provider::Linear => vec![
            pair("Linear-Signature", hex256(&[body])),
            pair("Linear-Delivery", id.into()),
        ],
        Provider::Discord => {
            let seed = seed32(
                &hex::decode(key).unwrap_or_default(),
                "Discord signing seed (hex)",
            )?;
            let signature = SigningKey::from_bytes(&seed).sign(&[ts.as_bytes(), body].concat());
            vec![
                pair(DISCORD_SIG, hex::encode(signature.to_bytes())),
                pair(DISCORD_TS, ts.clone()),
            ]
        }
        Provider::Generic(scheme) => {
            let tag = mac(scheme.algorithm, key, &[body]);
            let encoded = match scheme.encoding {
                Encoding::Hex => hex::encode(tag),
                Encoding::Base64 => STANDARD.encode(tag),
            };
            vec![pair(&scheme.header, format!("{}{encoded}", scheme.prefix))]
        }
    })
}

/// A Standard Webhooks signature entry: `v1a` for a `whsk_` private key, else `v1`.
fn sign_standard(secret: &Secret, message: &[&[u8]]) -> Result<String, PresetError> {
    if let Some(seed) = secret.expose().strip_prefix(b"whsk_") {
        let seed = STANDARD_PAD_INDIFFERENT.decode(seed).unwrap_or_default();
        let key = SigningKey::from_bytes(&seed32(&seed, "whsk_ key")?);
        return Ok(format!(
            "v1a,{}",
            STANDARD.encode(key.sign(&message.concat()).to_bytes())
        ));
    }
    match standard_key(secret, 1)? {
        StandardKey::Hmac(key) => Ok(format!(
            "v1,{}",
            STANDARD.encode(mac(HmacAlgorithm::Sha256, &key, message))
        )),
        StandardKey::Ed25519(_) => Err(BadKey("cannot sign with a whpk_ public key".into())),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers.

/// A header's value, trimmed; empty counts as missing.
fn header<'h>(headers: &'h (impl Headers + ?Sized), name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

fn require<'h>(headers: &'h (impl Headers + ?Sized), name: &str) -> Result<&'h str, PresetError> {
    header(headers, name).ok_or_else(|| MissingHeader(name.to_owned()))
}

/// One encoded HMAC in one header, behind a required prefix (may be empty): the shape most
/// presets share.
struct Single<'a> {
    header: &'a str,
    prefix: &'a str,
    encoding: Encoding,
    algorithm: HmacAlgorithm,
}

impl<'a> Single<'a> {
    fn hex(header: &'a str, prefix: &'a str, algorithm: HmacAlgorithm) -> Self {
        let encoding = Encoding::Hex;
        Self {
            header,
            prefix,
            encoding,
            algorithm,
        }
    }

    /// Checks the header against the MAC of `message` under each secret.
    fn verify(
        &self,
        headers: &(impl Headers + ?Sized),
        secrets: &[Secret],
        message: &[&[u8]],
    ) -> Result<(), PresetError> {
        let name = self.header;
        let encoded = require(headers, name)?
            .strip_prefix(self.prefix)
            .ok_or_else(|| Malformed(format!("{name}: no {} prefix", self.prefix)))?;
        // Gitea sends `sha256=` with nothing after it when the hook has no secret.
        if encoded.is_empty() {
            return Err(MissingHeader(name.to_owned()));
        }
        let candidate = decode(self.encoding, encoded, name)?;
        if hmac_matches(self.algorithm, raw_keys(secrets), message, &[candidate]) {
            Ok(())
        } else {
            Err(Mismatch(name.to_owned()))
        }
    }
}

fn decode(encoding: Encoding, text: &str, name: &str) -> Result<Vec<u8>, PresetError> {
    match encoding {
        Encoding::Hex => hex::decode(text).map_err(|_| Malformed(format!("{name}: not hex"))),
        Encoding::Base64 => STANDARD_PAD_INDIFFERENT
            .decode(text)
            .map_err(|_| Malformed(format!("{name}: not base64"))),
    }
}

fn raw_keys(secrets: &[Secret]) -> impl Iterator<Item = &[u8]> {
    secrets.iter().map(Secret::expose)
}

/// The HMAC of the concatenated `parts` (streamed, so the body is not copied).
fn mac(algorithm: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        // HMAC takes keys of any length, so this never fails; an empty tag never matches.
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
            return Vec::new();
        };
        parts.iter().for_each(|part| mac.update(part));
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        HmacAlgorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        HmacAlgorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        HmacAlgorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

/// Whether any key's MAC of `parts` equals any candidate, each comparison in constant time.
fn hmac_matches<'k>(
    algorithm: HmacAlgorithm,
    keys: impl IntoIterator<Item = &'k [u8]>,
    parts: &[&[u8]],
    candidates: &[Vec<u8>],
) -> bool {
    keys.into_iter().any(|key| {
        let expected = mac(algorithm, key, parts);
        !expected.is_empty()
            && candidates
                .iter()
                .any(|c| bool::from(expected.as_slice().ct_eq(c)))
    })
}

/// Gogs signs the JSON payload: for a form body (`payload=<urlencoded JSON>`) that is the decoded
/// field, not the bytes on the wire. Detected from the body, never from `Content-Type`.
fn gogs_payload(body: &[u8]) -> Cow<'_, [u8]> {
    if !body.starts_with(b"payload=") {
        return Cow::Borrowed(body);
    }
    let value = form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .map(|(_, v)| v);
    Cow::Owned(value.unwrap_or_default().into_owned().into_bytes())
}

/// A Standard Webhooks key from a configured secret.
enum StandardKey {
    Hmac(Vec<u8>),
    Ed25519(VerifyingKey),
}

/// `whpk_<base64 32 bytes>` is an Ed25519 public key (v1a); `whsec_<base64>` or bare base64 is an
/// HMAC key (v1). Trap: unlike Stripe's `whsec_`, the key is the *decoded* bytes.
fn standard_key(secret: &Secret, n: usize) -> Result<StandardKey, PresetError> {
    let text = secret.expose();
    let b64 = |bytes: &[u8], what: &str| {
        STANDARD_PAD_INDIFFERENT
            .decode(bytes)
            .ok()
            .filter(|key| !key.is_empty())
            .ok_or_else(|| BadKey(format!("secret #{n}: {what} is not base64")))
    };
    if let Some(public) = text.strip_prefix(b"whpk_") {
        let bytes = b64(public, "whpk_ key")?;
        return ed25519_key(&bytes, &format!("secret #{n}: whpk_ key")).map(StandardKey::Ed25519);
    }
    if text.starts_with(b"whsk_") {
        return Err(BadKey(format!(
            "secret #{n}: whsk_ is a signing key; configure its whpk_ public key"
        )));
    }
    let what = if text.starts_with(b"whsec_") {
        "whsec_ key"
    } else {
        "key (no whsec_ prefix)"
    };
    b64(text.strip_prefix(b"whsec_").unwrap_or(text), what).map(StandardKey::Hmac)
}

/// The Standard Webhooks keys of `secrets`; with `signing_only` (GitLab), just the `whsec_` ones.
fn standard_keys(secrets: &[Secret], signing_only: bool) -> Result<Vec<StandardKey>, PresetError> {
    (secrets.iter().enumerate())
        .filter(|(_, s)| !signing_only || s.expose().starts_with(b"whsec_"))
        .map(|(i, s)| standard_key(s, i + 1))
        .collect()
}

/// Discord public keys: 32 bytes in hex, as the Developer Portal shows them.
fn discord_keys(secrets: &[Secret]) -> Result<Vec<VerifyingKey>, PresetError> {
    (secrets.iter().enumerate())
        .map(|(i, secret)| {
            let what = format!("secret #{}: Discord public key", i + 1);
            let bytes = hex::decode(secret.expose().trim_ascii())
                .map_err(|_| BadKey(format!("{what} is not hex")))?;
            ed25519_key(&bytes, &what)
        })
        .collect()
}

/// An Ed25519 public key, rejecting wrong lengths, invalid points and small-order (weak) keys.
fn ed25519_key(bytes: &[u8], what: &str) -> Result<VerifyingKey, PresetError> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| BadKey(format!("{what} is not 32 bytes")))?;
    VerifyingKey::from_bytes(&array)
        .ok()
        .filter(|key| !key.is_weak())
        .ok_or_else(|| BadKey(format!("{what} is not a valid Ed25519 public key")))
}

fn ed25519_signature(bytes: &[u8], name: &str) -> Result<Signature, PresetError> {
    let array: [u8; 64] = bytes
        .try_into()
        .map_err(|_| Malformed(format!("{name}: an Ed25519 signature is 64 bytes")))?;
    Ok(Signature::from_bytes(&array))
}

fn seed32(bytes: &[u8], what: &str) -> Result<[u8; 32], PresetError> {
    bytes
        .try_into()
        .map_err(|_| BadKey(format!("{what} is not 32 bytes")))
}

/// A unix timestamp: ASCII digits only (no sign, no spaces), at most 19 so it fits.
fn parse_unix(text: &str) -> Option<i128> {
    let valid = (1..=19).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| text.parse::<i128>().ok()).flatten()
}

/// Milliseconds since the epoch; negative before it.
fn unix_millis(now: SystemTime) -> i128 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_millis()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_millis()).unwrap_or(i128::MAX),
    }
}

/// Rejects a timestamp (`value` units of `unit_ms` milliseconds) further than `tolerance` from
/// `now`, in either direction. Second-resolution timestamps are compared with `now` truncated to
/// whole seconds, as the reference libraries do.
fn check_window(
    value: i128,
    unit_ms: i128,
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), PresetError> {
    let now_ms = unix_millis(now);
    let now_ms = now_ms - now_ms.rem_euclid(unit_ms);
    let diff = now_ms.saturating_sub(value.saturating_mul(unit_ms));
    let tolerance_ms = i128::try_from(tolerance.as_millis()).unwrap_or(i128::MAX);
    let secs = |ms: i128| u64::try_from((ms + 999) / 1000).unwrap_or(u64::MAX);
    if diff > tolerance_ms {
        Err(PresetError::Stale {
            age_secs: secs(diff),
        })
    } else if -diff > tolerance_ms {
        Err(PresetError::Future {
            ahead_secs: secs(-diff),
        })
    } else {
        Ok(())
    }
}

/// The few top-level body fields some presets read, parsed leniently: a body that is not a JSON
/// object, or a field of an unexpected type, just yields `None`. Read only after the MAC check.
#[derive(Default, serde::Deserialize)]
struct BodyFields {
    id: Option<Value>,
    event_id: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    #[serde(rename = "webhookTimestamp")]
    webhook_timestamp: Option<Value>,
}

fn body_fields(body: &[u8]) -> BodyFields {
    serde_json::from_slice(body).unwrap_or_default()
}
