//! Masking credentials in what the run history shows: the journal keeps requests as received
//! (a rerun replays them, signature headers and tokens included), but the admin API, the
//! console and `hookwire runs show` show credential headers and secret-looking query
//! parameters as [`MASK`].

use std::borrow::Cow;

/// What a masked value is shown as: it never hints at the length or the first characters.
pub const MASK: &str = "********";

/// Header names that carry a credential, besides those [`CREDENTIAL_WORDS`] catch.
const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    // Shopify's signature header names its algorithm, not what it is.
    "x-shopify-hmac-sha256",
];

/// Words that make a header or query parameter name look like a credential: provider token
/// and signature headers (`X-Gitlab-Token`, `X-Hub-Signature-256`, `Stripe-Signature`, ...)
/// and parameters like `?token=`, `api_key=`, `client_secret=`, `password=`.
const CREDENTIAL_WORDS: [&str; 7] = [
    "token",
    "secret",
    "signature",
    "password",
    "passwd",
    "key",
    "auth",
];

/// Whether a header or parameter called `name` holds a credential.
pub fn is_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_HEADERS.contains(&name.as_str())
        || CREDENTIAL_WORDS.iter().any(|word| name.contains(word))
}

/// The header's value as shown: [`MASK`] for a credential.
pub fn header_value<'v>(name: &str, value: &'v str) -> Cow<'v, str> {
    if is_credential(name) {
        Cow::Borrowed(MASK)
    } else {
        Cow::Borrowed(value)
    }
}

/// The raw query string with the values of credential parameters replaced by [`MASK`]; the
/// rest is kept byte for byte.
pub fn query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_credential(&decoded(name)) => format!("{name}={MASK}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A query parameter's name, percent- and plus-decoded (`api%5Fkey` is `api_key`).
fn decoded(name: &str) -> String {
    form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_masked_and_others_kept() {
        for name in [
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "X-Gitlab-Token",
            "X-Hub-Signature-256",
            "X-Gitea-Signature",
            "Stripe-Signature",
            "X-Slack-Signature",
            "webhook-signature",
            "Sentry-Hook-Signature",
            "X-Shopify-Hmac-Sha256",
            "X-Api-Key",
        ] {
            assert_eq!(header_value(name, "s3cret"), MASK, "{name}");
        }
        for name in [
            "Content-Type",
            "X-GitHub-Event",
            "X-GitHub-Delivery",
            "User-Agent",
        ] {
            assert_eq!(header_value(name, "visible"), "visible", "{name}");
        }
    }

    #[test]
    fn secret_looking_query_parameters_are_masked() {
        assert_eq!(
            query("ref=main&token=abc&api%5Fkey=k&Password=p&client_secret=s&sig=1&flag"),
            format!(
                "ref=main&token={MASK}&api%5Fkey={MASK}&Password={MASK}&client_secret={MASK}&sig=1&flag"
            )
        );
        assert_eq!(query(""), "");
        assert_eq!(query("signature="), format!("signature={MASK}"));
    }
}
