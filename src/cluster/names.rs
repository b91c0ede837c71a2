//! Names in NATS: streams, buckets, subjects, consumers and keys. Hook ids, concurrency keys
//! and delivery ids are user data, so they are encoded before they become a subject token, a
//! consumer name or a KV key (`.`, `*`, `>` and spaces have meanings there).

use sha2::{Digest as _, Sha256};

/// The work queue: one message per accepted run, removed once the run has ended.
pub const WORK_STREAM: &str = "HOOKWIRE_RUNS";
pub const WORK_SUBJECTS: &str = "hookwire.runs.>";
/// The history: every event of every run, projected into each node's SQLite.
pub const EVENTS_STREAM: &str = "HOOKWIRE_EVENTS";
pub const EVENTS_SUBJECTS: &str = "hookwire.events.>";
/// Delivery ids claimed (`dedupe`).
pub const DEDUPE_BUCKET: &str = "hookwire-dedupe";
/// Per lane: the newest accepted run (`latest`, `cancel`) and the lease of the run holding it.
pub const LANES_BUCKET: &str = "hookwire-lanes";

/// Key partitions of a `queue`, `latest`, `cancel` or `reject` hook with a `concurrency-key`:
/// each is served one run at a time, so keys sharing a partition wait for each other.
pub const PARTITIONS: u32 = 8;

/// `text` as one subject token, consumer-name part or KV key part: ASCII letters, digits, `-`
/// and `_` as they are, every other byte as `=XX`; the empty string as `=`.
pub fn token(text: &str) -> String {
    if text.is_empty() {
        return "=".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("={byte:02X}"));
        }
    }
    out
}

/// The partition of a concurrency key; runs without a key use partition 0.
pub fn partition(key: Option<&str>) -> u32 {
    let Some(key) = key else { return 0 };
    let digest = Sha256::digest(key.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % PARTITIONS
}

/// The subject a run of `hook` is published on.
pub fn work_subject(hook: &str, partition: u32) -> String {
    format!("hookwire.runs.{}.{partition}", token(hook))
}

/// The durable consumer that every node pulls the runs of `hook`'s `partition` from.
pub fn consumer_name(hook: &str, partition: u32) -> String {
    format!("run-{}-{partition}", token(hook))
}

/// The subject of run `id`'s events.
pub fn events_subject(id: &str) -> String {
    format!("hookwire.events.{}", token(id))
}

/// A lane's key in [`LANES_BUCKET`] (`what` is `latest` or `lease`).
pub fn lane_key(what: &str, hook: &str, key: Option<&str>) -> String {
    match key {
        None => format!("{what}.{}", token(hook)),
        Some(key) => format!("{what}.{}.{}", token(hook), hashed(key)),
    }
}

/// A delivery id's key in [`DEDUPE_BUCKET`].
pub fn delivery_key(hook: &str, delivery: &str) -> String {
    format!("{}.{}", token(hook), hashed(delivery))
}

/// Long or odd values as a short, fixed-size key part.
fn hashed(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cannot_split_a_subject_or_collide_with_plain_names() {
        assert_eq!(token("deploy-web_1"), "deploy-web_1");
        assert_eq!(token("a.b *>"), "a=2Eb=20=2A=3E");
        assert_eq!(token(""), "=");
        assert_ne!(token("=2E"), token("."));
        assert!(!work_subject("x.>", 0)["hookwire.runs.".len()..].contains(['*', '>', ' ']));
        assert_eq!(work_subject("x.>", 3).matches('.').count(), 3);
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        assert_eq!(partition(None), 0);
        assert_eq!(partition(Some("main")), partition(Some("main")));
        let seen: std::collections::HashSet<u32> = (0..200)
            .map(|i| partition(Some(&format!("branch-{i}"))))
            .collect();
        assert!(seen.iter().all(|p| *p < PARTITIONS));
        assert_eq!(
            seen.len(),
            PARTITIONS as usize,
            "keys spread over every partition"
        );
    }
}
