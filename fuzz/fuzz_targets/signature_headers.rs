//! Every signature preset's header parsing over arbitrary headers and bodies, and the round
//! trip: what `sign` produces, `verify` accepts.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use arbitrary::Arbitrary;
use hookwire::pipeline::signature::HmacAlgorithm;
use hookwire::pipeline::signature::preset::{
    self, Encoding, GenericScheme, PresetConfig, Provider,
};
use hookwire::secret::Secret;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    /// Which preset to check (one per run keeps the Ed25519 cases fast enough).
    preset: u8,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Seconds after the epoch the verifier believes it is.
    now: u32,
    id: String,
}

/// Each provider with a verifying secret and the secret that signs for it.
fn presets() -> &'static [(PresetConfig, Secret)] {
    static PRESETS: OnceLock<Vec<(PresetConfig, Secret)>> = OnceLock::new();
    PRESETS.get_or_init(|| {
        // Discord verifies with the app's hex public key and signs with its hex seed.
        let seed = [7u8; 32];
        let discord_public = hex::encode(
            ed25519_dalek::SigningKey::from_bytes(&seed)
                .verifying_key()
                .to_bytes(),
        );
        let discord_seed = hex::encode(seed);
        // A second configured secret of the same kind, as during a rotation.
        let hmac = |provider: Provider, secret: &str| {
            let other = if secret.starts_with("whsec_") {
                "whsec_b3RoZXI="
            } else {
                "other"
            };
            (
                PresetConfig::new(provider, vec![Secret::new(other), Secret::new(secret)]),
                Secret::new(secret),
            )
        };
        let mut presets = vec![
            hmac(Provider::Github, "s"),
            hmac(Provider::Gitlab, "token"),
            hmac(Provider::Gitlab, "whsec_c2VjcmV0"),
            hmac(Provider::Gitea, "s"),
            hmac(Provider::Gogs, "s"),
            hmac(Provider::Bitbucket, "s"),
            hmac(Provider::Stripe, "whsec_s"),
            hmac(Provider::Slack, "s"),
            hmac(Provider::StandardWebhooks, "whsec_c2VjcmV0"),
            hmac(Provider::Shopify, "s"),
            hmac(Provider::Sentry, "s"),
            hmac(Provider::Linear, "s"),
            (
                PresetConfig::new(Provider::Discord, vec![Secret::new(discord_public)]),
                Secret::new(discord_seed),
            ),
        ];
        for (algorithm, encoding, prefix) in [
            (HmacAlgorithm::Sha1, Encoding::Hex, ""),
            (HmacAlgorithm::Sha512, Encoding::Base64, "v1="),
        ] {
            let scheme = GenericScheme {
                header: "X-Signature".into(),
                algorithm,
                encoding,
                prefix: prefix.into(),
            };
            presets.push(hmac(Provider::Generic(scheme), "s"));
        }
        for (config, _) in &presets {
            if let Err(error) = preset::validate_secrets(config) {
                panic!("fixture key for {:?}: {error}", config.provider);
            }
        }
        presets
    })
}

fuzz_target!(|input: Input| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(input.now));
    let presets = presets();
    let (config, signer) = &presets[usize::from(input.preset) % presets.len()];
    // Arbitrary headers: any outcome but a panic.
    let _ = preset::verify(config, &input.headers, &input.body, now);
    // Signed headers, with the arbitrary ones after them (first value wins).
    let Ok(mut signed) = preset::sign(&config.provider, signer, &input.body, now, &input.id) else {
        return;
    };
    // Linear also needs a fresh timestamp inside the body: not a round trip.
    if config.provider != Provider::Linear {
        let header_safe = signed.iter().all(|(_, value)| {
            !value.is_empty() && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        });
        // HTTP trims header values, so an id with surrounding spaces could never arrive as signed.
        let id_safe = !input.id.is_empty() && input.id.trim() == input.id;
        if header_safe && id_safe {
            signed.extend(input.headers.iter().cloned());
            let verified = preset::verify(config, &signed, &input.body, now);
            assert!(verified.is_ok(), "{:?}: {verified:?}", config.provider);
        }
    }
});
