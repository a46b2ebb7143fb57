//! Webhook signatures in the [Standard Webhooks](https://www.standardwebhooks.com/)
//! format (symmetric scheme, `v1`). Every request carries:
//!
//! - `webhook-id`: the event id (the same on every attempt: deduplicate on it);
//! - `webhook-timestamp`: the attempt's time, Unix seconds;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>`,
//!   or several such values separated by spaces while a secret is being rotated
//!   (one per secret; a receiver accepts the request when any one verifies).
//!
//! The key is the configured secret: in the Standard Webhooks form `whsec_<base64>`
//! the key is the decoded base64; any other value is used as it is, its UTF-8
//! bytes being the key ([`secret_key`]). The id and the timestamp are signed, so a
//! receiver that checks the timestamp against its own clock ([`verify`]) refuses
//! replays of old requests.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the event id (Standard Webhooks).
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
/// The header carrying the attempt's Unix time in seconds (Standard Webhooks).
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header carrying the space-separated `v1,<base64>` signatures (Standard Webhooks).
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";
/// The header carrying the event id too (the same value as [`WEBHOOK_ID_HEADER`]).
pub const EVENT_ID_HEADER: &str = "Connector-Host-Event-Id";
/// The header carrying the event type (`connection.created`, …).
pub const EVENT_TYPE_HEADER: &str = "Connector-Host-Event-Type";

/// The prefix of a secret in the Standard Webhooks form (`whsec_<base64>`).
pub const SECRET_PREFIX: &str = "whsec_";
/// How far (seconds, either direction) [`verify`] lets `webhook-timestamp` be
/// from the receiver's clock: 5 minutes.
pub const TOLERANCE_SECS: i64 = 300;
/// The signature scheme's identifier (HMAC-SHA256).
const VERSION: &str = "v1";

/// Why a configured secret cannot be used. The message never contains the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Nothing to sign with.
    #[error("the secret is empty")]
    Empty,
    /// `whsec_` followed by something that is not standard base64.
    #[error(
        "the secret starts with `whsec_` but what follows is not standard base64 \
         (A-Z, a-z, 0-9, `+`, `/`, padded with `=`)"
    )]
    NotBase64,
    /// `whsec_` followed by nothing (or by padding only).
    #[error("the secret is `whsec_` with no key after it")]
    EmptyKey,
}

/// The HMAC key of a configured secret: for `whsec_<base64>` the decoded
/// base64 (standard alphabet, with padding), which must not be empty; for any
/// other non-empty value its UTF-8 bytes as they are.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, SecretError> {
    match secret.strip_prefix(SECRET_PREFIX) {
        Some(encoded) => {
            let key = STANDARD
                .decode(encoded)
                .map_err(|_| SecretError::NotBase64)?;
            if key.is_empty() {
                return Err(SecretError::EmptyKey);
            }
            Ok(key)
        }
        None if secret.is_empty() => Err(SecretError::Empty),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One signature, `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(key, id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("{VERSION},{}", STANDARD.encode(tag))
}

/// The value of [`WEBHOOK_SIGNATURE_HEADER`] for `body` of event `id` sent at
/// `timestamp` (Unix seconds): one [`signature`] per key, in the order given,
/// separated by single spaces.
pub fn sign<K: AsRef<[u8]>>(keys: &[K], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| signature(key.as_ref(), id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why [`verify`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `webhook-timestamp` is not a number of seconds.
    #[error("webhook-timestamp is not a Unix time in seconds")]
    InvalidTimestamp,
    /// `webhook-timestamp` is more than [`TOLERANCE_SECS`] from the receiver's clock.
    #[error("webhook-timestamp is more than 5 minutes away from now")]
    TimestampOutOfTolerance,
    /// No `v1` signature of `webhook-signature` matches.
    #[error("no signature in webhook-signature matches")]
    NoMatchingSignature,
}

/// Checks a request, for receivers (and tests): `id`, `timestamp` and
/// `signatures` are the values of the `webhook-id`, `webhook-timestamp` and
/// `webhook-signature` headers, `body` the raw request body, `key` the
/// secret's key ([`secret_key`]) and `now` the receiver's clock (Unix seconds).
///
/// Accepted when the timestamp is within [`TOLERANCE_SECS`] of `now` (either
/// direction) and at least one of the space-separated `v1,<base64>` entries is
/// the HMAC of `"<id>.<timestamp>.<body>"` under `key`, compared in constant
/// time. Entries of other schemes (`v1a,…`) and malformed entries are ignored.
pub fn verify(
    key: &[u8],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    if now.abs_diff(sent) > TOLERANCE_SECS.unsigned_abs() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    let expected = mac(key, id, timestamp, body);
    let matches = signatures
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .filter_map(|(_, tag)| STANDARD.decode(tag).ok())
        // `verify_slice` compares in constant time (and refuses other lengths).
        .any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"connection.created"}"#;
    const T: i64 = 1_700_000_000;

    fn check(key: &[u8], id: &str, t: &str, signatures: &str, body: &[u8], now: i64) -> bool {
        verify(key, id, t, signatures, body, now).is_ok()
    }

    /// The examples every reference library of Standard Webhooks tests
    /// against (github.com/standard-webhooks/standard-webhooks, `libraries/`).
    #[test]
    fn matches_the_published_example_vectors() {
        for (secret, id, timestamp, body, expected) in [
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                &br#"{"test": 2432232314}"#[..],
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
            (
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                &br#"{"email":"test@example.com","username":"test_user"}"#[..],
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
        ] {
            let key = secret_key(secret).unwrap();
            assert_eq!(signature(&key, id, timestamp, body), expected);
            assert_eq!(sign(&[&key], id, timestamp, body), expected);
            let t = timestamp.to_string();
            assert_eq!(verify(&key, id, &t, expected, body, timestamp), Ok(()));
        }
    }

    #[test]
    fn secrets_in_the_whsec_form_are_decoded_and_others_used_as_they_are() {
        assert_eq!(secret_key("whsec_AAEC").unwrap(), [0, 1, 2]);
        assert_eq!(secret_key("whsec_AAECAw==").unwrap(), [0, 1, 2, 3]);
        assert_eq!(secret_key("s3cret").unwrap(), b"s3cret");
        // Only the exact prefix makes a secret base64.
        assert_eq!(secret_key("whsec-s3cret").unwrap(), b"whsec-s3cret");
        assert_eq!(secret_key("WHSEC_AAEC").unwrap(), b"WHSEC_AAEC");
        assert_eq!(secret_key(""), Err(SecretError::Empty));
        assert_eq!(secret_key("whsec_"), Err(SecretError::EmptyKey));
        for bad in [
            "whsec_AAEC-_",
            "whsec_AAECAw",
            "whsec_not base64",
            "whsec_AAE",
        ] {
            assert_eq!(secret_key(bad), Err(SecretError::NotBase64), "{bad}");
        }
        // The message never repeats the value.
        let message = SecretError::NotBase64.to_string();
        assert!(!message.contains("AAEC") && message.contains("whsec_"));
    }

    #[test]
    fn a_signature_verifies_only_over_the_same_id_timestamp_and_body() {
        let key = b"key-one";
        let header = sign(&[key], "evt_1", T, BODY);
        assert!(header.starts_with("v1,") && !header.contains(' '));
        let t = T.to_string();
        assert!(check(key, "evt_1", &t, &header, BODY, T));

        let mut body = BODY.to_vec();
        body[5] ^= 1;
        assert!(!check(key, "evt_1", &t, &header, &body, T));
        assert!(!check(key, "evt_1", &t, &header, b"", T));
        assert!(!check(key, "evt_2", &t, &header, BODY, T));
        let later = (T + 1).to_string();
        assert_eq!(
            verify(key, "evt_1", &later, &header, BODY, T),
            Err(VerifyError::NoMatchingSignature)
        );
        assert!(!check(b"key-two", "evt_1", &t, &header, BODY, T));
        // The fields are delimited: moving a `.` between id and body does not verify.
        let shifted = sign(&[key], "evt", T, BODY);
        assert!(!check(key, "evt_1", &t, &shifted, BODY, T));
    }

    #[test]
    fn timestamps_more_than_five_minutes_away_are_refused() {
        let key = b"key-one";
        let header = sign(&[key], "evt_1", T, BODY);
        let t = T.to_string();
        for now in [T - 300, T, T + 300] {
            assert_eq!(
                verify(key, "evt_1", &t, &header, BODY, now),
                Ok(()),
                "{now}"
            );
        }
        for now in [T - 301, T + 301, T + 86_400, 0] {
            assert_eq!(
                verify(key, "evt_1", &t, &header, BODY, now),
                Err(VerifyError::TimestampOutOfTolerance),
                "{now}"
            );
        }
        for bad in [
            "",
            "-1700000000",
            "+1700000000",
            "1700000000.0",
            "17e8",
            " 1700000000",
        ] {
            assert_eq!(
                verify(key, "evt_1", bad, &header, BODY, T),
                Err(VerifyError::InvalidTimestamp),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn two_signatures_verify_with_either_secret() {
        let (new, old) = (&b"the-new-key"[..], &b"the-old-key"[..]);
        let header = sign(&[new, old], "evt_1", T, BODY);
        let parts: Vec<_> = header.split(' ').collect();
        assert_eq!(parts.len(), 2, "{header}");
        assert_eq!(parts[0], signature(new, "evt_1", T, BODY));
        assert_eq!(parts[1], signature(old, "evt_1", T, BODY));
        let t = T.to_string();
        assert!(check(new, "evt_1", &t, &header, BODY, T));
        assert!(check(old, "evt_1", &t, &header, BODY, T));
        assert!(!check(b"a-third-key", "evt_1", &t, &header, BODY, T));
        // Either order, other schemes and garbage around them.
        let mixed = format!("v1a,AAAA {} v1,!!! v1, x {}", parts[1], parts[0]);
        assert!(check(new, "evt_1", &t, &mixed, BODY, T));
        assert!(check(old, "evt_1", &t, &mixed, BODY, T));
    }

    #[test]
    fn malformed_signature_headers_are_refused() {
        let key = b"key-one";
        let good = signature(key, "evt_1", T, BODY);
        let tag = good.strip_prefix("v1,").unwrap();
        let t = T.to_string();
        for bad in [
            String::new(),
            "v1,".into(),
            tag.into(),
            format!("v1a,{tag}"),
            format!("V1,{tag}"),
            format!("v1,{}", &tag[..20]),
            format!("v1,{}", hex::encode([0u8; 32])),
            good[..10].to_string(),
            // The old `t=…,v1=<hex>` form.
            format!("t={T},v1={}", hex::encode(STANDARD.decode(tag).unwrap())),
        ] {
            assert_eq!(
                verify(key, "evt_1", &t, &bad, BODY, T),
                Err(VerifyError::NoMatchingSignature),
                "{bad:?}"
            );
        }
    }
}
