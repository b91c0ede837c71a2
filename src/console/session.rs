//! Console sessions and CSRF tokens.
//!
//! With `-admin-token-file`, the login form takes the token once and sets a session cookie
//! (HttpOnly, SameSite=Strict), so the browser never stores the token itself. Sessions live in
//! memory: a restart logs everyone out, which is fine for an operator's console.
//!
//! Every form that changes state carries a CSRF token: an HMAC of the session id under a key
//! made at start (of a fixed label when no token is required, since there is no session then;
//! the listener's checks of `Origin`, `Sec-Fetch-Site` and `Host` stand in front of it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// The session cookie's name.
pub const COOKIE: &str = "hookwire_session";

/// How long a session lasts after its login.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Most sessions kept: logging in again and again cannot grow memory without bound.
const MAX_SESSIONS: usize = 256;

/// The live sessions and the CSRF key.
pub struct Sessions {
    key: [u8; 32],
    live: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions(***)")
    }
}

impl Default for Sessions {
    fn default() -> Self {
        let mut key = [0; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self {
            key,
            live: Mutex::default(),
        }
    }
}

impl Sessions {
    /// Starts a session; returns its id (for the cookie). The oldest session goes when there
    /// are too many.
    pub fn open(&self) -> String {
        // Two version 4 UUIDs: 244 random bits from the operating system.
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut live = self.lock();
        let now = Instant::now();
        live.retain(|_, expires| *expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(id, _)| id.clone())
        {
            live.remove(&oldest);
        }
        live.insert(id.clone(), now + LIFETIME);
        id
    }

    /// Whether `id` is a session that has not expired or been closed.
    pub fn is_live(&self, id: &str) -> bool {
        let live = self.lock();
        // Looked up by hash, then compared in constant time: the map's key comparison is not.
        live.iter().any(|(known, expires)| {
            bool::from(known.as_bytes().ct_eq(id.as_bytes())) && *expires > Instant::now()
        })
    }

    /// Ends a session (logout).
    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The CSRF token of forms shown in `session` (`None`: no token is required, no session).
    pub fn csrf(&self, session: Option<&str>) -> String {
        hex::encode(self.mac(session).finalize().into_bytes())
    }

    /// Whether `token` is the CSRF token of `session`, compared in constant time.
    pub fn csrf_matches(&self, session: Option<&str>, token: &str) -> bool {
        hex::decode(token).is_ok_and(|bytes| self.mac(session).verify_slice(&bytes).is_ok())
    }

    fn mac(&self, session: Option<&str>) -> Hmac<Sha256> {
        // The key has the length HMAC wants; `new_from_slice` takes any length anyway.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(b"hookwire console csrf\0");
        mac.update(session.unwrap_or("no session").as_bytes());
        mac
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`).
pub fn cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_check_and_close() {
        let sessions = Sessions::default();
        let id = sessions.open();
        assert_eq!(id.len(), 64);
        assert!(sessions.is_live(&id));
        assert!(!sessions.is_live("nope"));
        assert!(!sessions.is_live(""));
        sessions.close(&id);
        assert!(!sessions.is_live(&id));
    }

    #[test]
    fn sessions_are_bounded() {
        let sessions = Sessions::default();
        let first = sessions.open();
        for _ in 0..MAX_SESSIONS {
            sessions.open();
        }
        assert!(!sessions.is_live(&first));
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session_and_the_process() {
        let sessions = Sessions::default();
        let token = sessions.csrf(Some("a"));
        assert!(sessions.csrf_matches(Some("a"), &token));
        assert!(!sessions.csrf_matches(Some("b"), &token));
        assert!(!sessions.csrf_matches(None, &token));
        assert!(!sessions.csrf_matches(Some("a"), "zz"));
        assert!(!sessions.csrf_matches(Some("a"), ""));
        assert!(sessions.csrf_matches(None, &sessions.csrf(None)));
        assert!(!Sessions::default().csrf_matches(Some("a"), &token));
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(
            cookie("a=1; hookwire_session=xyz; b=2", COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie("hookwire_session_x=1", COOKIE), None);
        assert_eq!(cookie("", COOKIE), None);
    }
}
