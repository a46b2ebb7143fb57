//! Webhook signatures: `Connector-Host-Signature: t=<unix seconds>,v1=<hex>` where
//! `<hex>` is HMAC-SHA256 keyed with the webhook secret over `"<t>.<raw body>"`
//! (the scheme of Stripe and Standard Webhooks). The timestamp is signed, so a
//! receiver that checks it against its own clock rejects replays of old requests.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Connector-Host-Signature";
/// The header carrying the event id (the same on every attempt: deduplicate on it).
pub const EVENT_ID_HEADER: &str = "Connector-Host-Event-Id";
/// The header carrying the event type (`connection.created`, …).
pub const EVENT_TYPE_HEADER: &str = "Connector-Host-Event-Type";

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Checks a [`SIGNATURE_HEADER`] value against the raw request body, for
/// receivers (and tests). True when the header has a `t=` within
/// `tolerance_secs` of `now` (Unix seconds, either direction) and at least one
/// `v1=` that is the HMAC of `"<t>.<body>"` under `secret` (compared in
/// constant time). Several `v1=` entries are accepted so that a sender may sign
/// with two secrets while they are being rotated; unknown schemes are ignored.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> bool {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => {
                if timestamp.is_some() {
                    return false;
                }
                match value.parse::<i64>() {
                    Ok(t) => timestamp = Some(t),
                    Err(_) => return false,
                }
            }
            Some(("v1", value)) => {
                if let Ok(tag) = hex::decode(value) {
                    tags.push(tag);
                }
            }
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if now.abs_diff(timestamp) > tolerance_secs.max(0).unsigned_abs() {
        return false;
    }
    tags.iter()
        .any(|tag| mac(secret, timestamp, body).verify_slice(tag).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let header = sign(b"whsec", 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
        assert!(verify_signature(
            b"whsec",
            &header,
            b"{\"a\":1}",
            1_700_000_000,
            300
        ));
        assert!(verify_signature(
            b"whsec",
            &header,
            b"{\"a\":1}",
            1_700_000_300,
            300
        ));
        assert!(!verify_signature(
            b"whsec",
            &header,
            b"{\"a\":1}",
            1_700_000_301,
            300
        ));
        assert!(!verify_signature(
            b"other",
            &header,
            b"{\"a\":1}",
            1_700_000_000,
            300
        ));
        assert!(!verify_signature(
            b"whsec",
            &header,
            b"{\"a\":2}",
            1_700_000_000,
            300
        ));
        // The timestamp is signed.
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert!(!verify_signature(
            b"whsec",
            &moved,
            b"{\"a\":1}",
            1_700_000_000,
            300
        ));
        // A second v1 (secret rotation) is accepted; garbage is refused.
        let rotated = format!(
            "{},v1={}",
            sign(b"old", 1_700_000_000, b"x"),
            &sign(b"new", 1_700_000_000, b"x")[16..]
        );
        assert!(verify_signature(b"new", &rotated, b"x", 1_700_000_000, 5));
        assert!(verify_signature(b"old", &rotated, b"x", 1_700_000_000, 5));
        for bad in ["", "v1=00", "t=x,v1=00", "t=1700000000", "t=1,t=2,v1=00"] {
            assert!(!verify_signature(
                b"whsec",
                bad,
                b"x",
                1_700_000_000,
                5000000000
            ));
        }
    }
}
