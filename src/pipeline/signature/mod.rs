//! Signature checks over the raw body: adnanh's `payload-hmac-*` and `scalr-signature` semantics,
//! every comparison in constant time. The expected value never leaves this module: errors list
//! only what the client sent.

mod scalr_date;

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::digest::block_api::EagerHash;
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

pub use scalr_date::ScalrDateError;

pub mod preset;
/// The hash behind an HMAC check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl HmacAlgorithm {
    /// The prefix a provider puts before the hex digest (`sha256=` in GitHub's
    /// `X-Hub-Signature-256`).
    pub fn prefix(self) -> &'static str {
        match self {
            HmacAlgorithm::Sha1 => "sha1=",
            HmacAlgorithm::Sha256 => "sha256=",
            HmacAlgorithm::Sha512 => "sha512=",
        }
    }

    /// The name used in match types (`payload-hmac-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            HmacAlgorithm::Sha1 => "sha1",
            HmacAlgorithm::Sha256 => "sha256",
            HmacAlgorithm::Sha512 => "sha512",
        }
    }
}

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The configured secret is empty: a configuration error, never a client's fault.
    #[error("signature validation secret can not be empty")]
    EmptySecret,
    /// No provided signature matched the body (adnanh's message; the expected value is never
    /// shown since adnanh#85).
    #[error("invalid payload signatures {provided:?}")]
    Mismatch { provided: Vec<String> },
    /// Scalr: `X-Signature` does not match body and date. The client's value is quoted, as
    /// it is logged.
    #[error("invalid payload signature {provided:?}")]
    ScalrMismatch { provided: String },
    /// Scalr: the `Date` header is more than 300 s away from now.
    #[error("invalid payload signature outdated")]
    ScalrOutdated,
    /// Scalr: the `Date` header is not in `Mon 02 Jan 2006 15:04:05 MST` form.
    #[error("parsing time {value:?}: {reason}")]
    ScalrDate {
        value: String,
        reason: scalr_date::ScalrDateError,
    },
}

impl SignatureError {
    /// Whether adnanh counts this as a signature error (its `SignatureError` type), which
    /// `trigger-signature-soft-failures` forgives inside an `or`. An empty secret and an
    /// unparsable Scalr date are other errors there, so they are never forgiven.
    pub fn is_signature_failure(&self) -> bool {
        matches!(
            self,
            SignatureError::Mismatch { .. }
                | SignatureError::ScalrMismatch { .. }
                | SignatureError::ScalrOutdated
        )
    }
}

/// The HMAC of the concatenated `parts` under `key`, as lowercase hex.
pub fn hmac_hex(algorithm: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> String {
    match algorithm {
        HmacAlgorithm::Sha1 => mac_hex::<sha1::Sha1>(key, parts),
        HmacAlgorithm::Sha256 => mac_hex::<sha2::Sha256>(key, parts),
        HmacAlgorithm::Sha512 => mac_hex::<sha2::Sha512>(key, parts),
    }
}

fn mac_hex<D: EagerHash>(key: &[u8], parts: &[&[u8]]) -> String
where
    Hmac<D>: Mac + KeyInit,
{
    // HMAC takes keys of any length (longer ones are hashed): `new_from_slice` cannot fail.
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// adnanh's `payload-hmac-*` check of `header_value` against the HMAC of `body`.
///
/// Signature parsing as in adnanh's `ExtractSignatures`: if the value contains a comma, it is
/// split on commas and only the parts starting exactly with the algorithm's prefix are kept,
/// prefix stripped and nothing trimmed (so `a, sha256=x` drops its second entry, and unprefixed
/// entries are dropped); otherwise the prefix is stripped if present. Each candidate is compared
/// in constant time with the lowercase hex digest (uppercase hex fails, as in Go).
pub fn check_payload_signature(
    algorithm: HmacAlgorithm,
    secret: &Secret,
    body: &[u8],
    header_value: &str,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::EmptySecret);
    }
    let prefix = algorithm.prefix();
    let candidates: Vec<&str> = if header_value.contains(',') {
        header_value
            .split(',')
            .filter_map(|part| part.strip_prefix(prefix))
            .collect()
    } else {
        vec![header_value.strip_prefix(prefix).unwrap_or(header_value)]
    };
    let expected = hmac_hex(algorithm, secret.expose(), &[body]);
    if candidates
        .iter()
        .any(|c| bool::from(c.as_bytes().ct_eq(expected.as_bytes())))
    {
        return Ok(());
    }
    Err(SignatureError::Mismatch {
        provided: candidates.into_iter().map(str::to_owned).collect(),
    })
}

/// adnanh's `CheckScalrSignature`: `X-Signature` must be the hex HMAC-SHA1 of the body followed
/// by the `Date` header, and that date (`Mon 02 Jan 2006 15:04:05 MST`) within 300 s of `now`.
///
/// Either header missing → `Ok(false)` (no error). Then, in adnanh's order: an empty secret,
/// a signature mismatch, an unparsable date, a stale date are errors.
pub fn check_scalr_signature(
    secret: &Secret,
    body: &[u8],
    signature: Option<&str>,
    date: Option<&str>,
    now: SystemTime,
) -> Result<bool, SignatureError> {
    let (Some(signature), Some(date)) = (signature, date) else {
        return Ok(false);
    };
    if secret.is_empty() {
        return Err(SignatureError::EmptySecret);
    }
    let expected = hmac_hex(
        HmacAlgorithm::Sha1,
        secret.expose(),
        &[body, date.as_bytes()],
    );
    if !bool::from(signature.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(SignatureError::ScalrMismatch {
            provided: signature.to_owned(),
        });
    }
    let sent = scalr_date::parse(date).map_err(|reason| SignatureError::ScalrDate {
        value: date.to_owned(),
        reason,
    })?;
    let now_nanos = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    };
    let delta = now_nanos - i128::from(sent) * 1_000_000_000;
    if delta.abs() > 300 * 1_000_000_000 {
        return Err(SignatureError::ScalrOutdated);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const GITHUB_SHA256: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    const GITHUB_SHA1: &str = "01dc10d0c83e72ed246219cdd91669667fe2ca59";

    fn secret() -> Secret {
        Secret::new(GITHUB_SECRET)
    }

    #[test]
    fn github_vectors() {
        let key = GITHUB_SECRET.as_bytes();
        assert_eq!(
            hmac_hex(HmacAlgorithm::Sha256, key, &[GITHUB_BODY]),
            GITHUB_SHA256
        );
        assert_eq!(
            hmac_hex(HmacAlgorithm::Sha1, key, &[GITHUB_BODY]),
            GITHUB_SHA1
        );
        // Parts are concatenated.
        assert_eq!(
            hmac_hex(HmacAlgorithm::Sha1, key, &[b"Hello, ", b"World!"]),
            GITHUB_SHA1
        );
        assert_eq!(hmac_hex(HmacAlgorithm::Sha512, b"k", &[b""]).len(), 128);
    }

    #[test]
    fn signature_header_forms() {
        let s256 = format!("sha256={GITHUB_SHA256}");
        let upper = GITHUB_SHA256.to_uppercase();
        let cases: Vec<(String, bool)> = vec![
            (s256.clone(), true),
            // The prefix is optional for a single value.
            (GITHUB_SHA256.to_owned(), true),
            // Another algorithm's prefix is not stripped.
            (format!("sha1={GITHUB_SHA256}"), false),
            // Lists: only entries starting exactly with the prefix count.
            (format!("sha256=bad,{s256}"), true),
            (format!("{s256},sha256=bad"), true),
            // `a, sha256=x`: the second entry starts with a space, so it is dropped.
            (format!("a, {s256}"), false),
            // Unprefixed entries are dropped in lists.
            (format!("{GITHUB_SHA256},x"), false),
            (format!("v1=abc,{s256}"), true),
            // No trimming.
            (format!("{s256} "), false),
            (format!(" {s256}"), false),
            // Uppercase hex fails, as in Go.
            (format!("sha256={upper}"), false),
            (String::new(), false),
            (",".to_owned(), false),
        ];
        for (header, ok) in cases {
            let got =
                check_payload_signature(HmacAlgorithm::Sha256, &secret(), GITHUB_BODY, &header);
            assert_eq!(got.is_ok(), ok, "{header:?}: {got:?}");
        }
        assert!(
            check_payload_signature(
                HmacAlgorithm::Sha1,
                &secret(),
                GITHUB_BODY,
                &format!("sha1={GITHUB_SHA1}")
            )
            .is_ok()
        );
    }

    #[test]
    fn mismatch_lists_only_provided_signatures() {
        let err = check_payload_signature(
            HmacAlgorithm::Sha256,
            &secret(),
            GITHUB_BODY,
            "sha256=aa,x,sha256=bb",
        )
        .unwrap_err();
        assert_eq!(
            err,
            SignatureError::Mismatch {
                provided: vec!["aa".into(), "bb".into()]
            }
        );
        assert!(err.is_signature_failure());
        let text = err.to_string();
        assert!(!text.contains(GITHUB_SHA256), "{text}");
    }

    #[test]
    fn empty_secret_is_not_a_signature_failure() {
        let err =
            check_payload_signature(HmacAlgorithm::Sha256, &Secret::new(""), b"", "x").unwrap_err();
        assert_eq!(err, SignatureError::EmptySecret);
        assert!(!err.is_signature_failure());
    }

    #[test]
    fn empty_body_is_allowed() {
        let sig = hmac_hex(HmacAlgorithm::Sha256, b"k", &[]);
        assert!(
            check_payload_signature(HmacAlgorithm::Sha256, &Secret::new("k"), b"", &sig).is_ok()
        );
    }

    /// 2017-09-08 11:24:32 UTC, Scalr's documented example date.
    const SCALR_DATE: &str = "Fri 08 Sep 2017 11:24:32 UTC";
    const SCALR_UNIX: u64 = 1_504_869_872;

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    fn scalr(sig: Option<&str>, date: Option<&str>, now: u64) -> Result<bool, SignatureError> {
        check_scalr_signature(&Secret::new("key"), b"body", sig, date, at(now))
    }

    fn scalr_sig(date: &str) -> String {
        hmac_hex(HmacAlgorithm::Sha1, b"key", &[b"body", date.as_bytes()])
    }

    #[test]
    fn scalr_signatures() {
        let sig = scalr_sig(SCALR_DATE);
        assert_eq!(scalr(Some(&sig), Some(SCALR_DATE), SCALR_UNIX), Ok(true));
        assert_eq!(
            scalr(Some(&sig), Some(SCALR_DATE), SCALR_UNIX + 300),
            Ok(true)
        );
        assert_eq!(
            scalr(Some(&sig), Some(SCALR_DATE), SCALR_UNIX - 300),
            Ok(true)
        );
        assert_eq!(
            scalr(Some(&sig), Some(SCALR_DATE), SCALR_UNIX + 301),
            Err(SignatureError::ScalrOutdated)
        );
        assert_eq!(
            scalr(Some(&sig), Some(SCALR_DATE), SCALR_UNIX - 301),
            Err(SignatureError::ScalrOutdated)
        );
        // Missing headers: false, no error.
        assert_eq!(scalr(None, Some(SCALR_DATE), SCALR_UNIX), Ok(false));
        assert_eq!(scalr(Some(&sig), None, SCALR_UNIX), Ok(false));
        // Mismatch (also uppercase hex).
        let err = scalr(Some(&sig.to_uppercase()), Some(SCALR_DATE), SCALR_UNIX).unwrap_err();
        assert!(matches!(err, SignatureError::ScalrMismatch { .. }));
        assert!(err.is_signature_failure());
        // The client's value is quoted in the message, which is logged.
        let forged = scalr(Some("x client=6.6.6.6"), Some(SCALR_DATE), SCALR_UNIX).unwrap_err();
        assert_eq!(
            forged.to_string(),
            r#"invalid payload signature "x client=6.6.6.6""#
        );
        // The signature covers the date text.
        let other = "Fri 08 Sep 2017 11:24:33 UTC";
        assert!(scalr(Some(&sig), Some(other), SCALR_UNIX).is_err());
        // Empty key is an error once both headers are there.
        assert_eq!(
            check_scalr_signature(&Secret::new(""), b"", Some("x"), Some("y"), at(0)),
            Err(SignatureError::EmptySecret)
        );
        assert_eq!(
            check_scalr_signature(&Secret::new(""), b"", None, Some("y"), at(0)),
            Ok(false)
        );
    }

    #[test]
    fn scalr_date_errors_are_hard() {
        let date = "2017-09-08T11:24:32Z";
        let err = scalr(Some(&scalr_sig(date)), Some(date), SCALR_UNIX).unwrap_err();
        assert!(matches!(err, SignatureError::ScalrDate { .. }), "{err:?}");
        assert!(!err.is_signature_failure());
    }

    #[test]
    fn scalr_zones() {
        // GMT+2 is two hours ahead: the same wall clock is two hours earlier in UTC.
        let cases = [
            ("Fri 08 Sep 2017 13:24:32 GMT+2", SCALR_UNIX),
            ("Fri 08 Sep 2017 11:24:32 GMT", SCALR_UNIX),
            // Unknown abbreviations get offset 0, as Go gives them.
            ("Fri 08 Sep 2017 11:24:32 EST", SCALR_UNIX),
            ("Fri 08 Sep 2017 11:24:32 CEST", SCALR_UNIX),
        ];
        for (date, unix) in cases {
            assert_eq!(
                scalr(Some(&scalr_sig(date)), Some(date), unix),
                Ok(true),
                "{date}"
            );
        }
    }
}
