//! Encryption at rest: AES-256-GCM in a versioned envelope
//! `v1.<key id>.<base64url(nonce ‖ ciphertext)>`, with associated data that binds
//! each ciphertext to its row (tenant, connector, record id, purpose): a
//! ciphertext copied to another row, or to another purpose, does not decrypt.
//!
//! Master keys form a keyring: the first key encrypts, every key decrypts, so
//! old key ids keep working after a rotation. Keys come from the environment
//! or a file, never from the database; `Debug` never prints them.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use zeroize::Zeroizing;

const VERSION: &str = "v1";

/// What a ciphertext is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    /// The account (tenant).
    pub tenant: &'a str,
    /// The connector id.
    pub connector: &'a str,
    /// The row's id.
    pub record: &'a str,
    /// What the value is (`access_token`, `api_key`, …).
    pub purpose: &'a str,
}

impl Aad<'_> {
    /// Length-prefixed fields, so that no two different tuples encode alike.
    fn bytes(&self) -> Vec<u8> {
        let mut out = VERSION.as_bytes().to_vec();
        for field in [self.tenant, self.connector, self.record, self.purpose] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }
}

/// Why a value could not be decrypted. Never contains key or plaintext bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The envelope names a key this host does not have.
    #[error("unknown encryption key id `{0}`")]
    UnknownKeyId(String),
    /// Not an envelope this host understands.
    #[error("malformed ciphertext envelope")]
    Malformed,
    /// Authentication failed: wrong row, wrong purpose, or tampered data.
    #[error("ciphertext does not authenticate for this record")]
    Authentication,
    /// The keyring specification is invalid.
    #[error("invalid master key specification: {0}")]
    InvalidKeySpec(String),
}

/// The master keys, by id; the first one encrypts.
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// Parses `id:base64key[,id:base64key…]`; the first key is current. Key
    /// ids are `[A-Za-z0-9_-]{1,32}`; keys are 32 bytes.
    pub fn from_spec(spec: &str) -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        let mut current = None;
        for (i, entry) in spec
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (id, key) = entry.split_once(':').ok_or_else(|| {
                CryptoError::InvalidKeySpec(format!("entry {i} is not `id:base64key`"))
            })?;
            let valid_id = !id.is_empty()
                && id.len() <= 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_id {
                return Err(CryptoError::InvalidKeySpec(format!(
                    "entry {i}: `{id}` is not a key id"
                )));
            }
            let bytes =
                Zeroizing::new(STANDARD.decode(key.trim()).map_err(|_| {
                    CryptoError::InvalidKeySpec(format!("key `{id}` is not base64"))
                })?);
            let key: [u8; 32] = bytes[..]
                .try_into()
                .map_err(|_| CryptoError::InvalidKeySpec(format!("key `{id}` is not 32 bytes")))?;
            if keys.insert(id.to_string(), Zeroizing::new(key)).is_some() {
                return Err(CryptoError::InvalidKeySpec(format!(
                    "key id `{id}` is listed twice"
                )));
            }
            current.get_or_insert_with(|| id.to_string());
        }
        let current = current.ok_or_else(|| CryptoError::InvalidKeySpec("no key".into()))?;
        Ok(Self { current, keys })
    }

    /// A new random key as a spec entry `id:base64key`.
    pub fn generate_entry(id: &str) -> String {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut key[..]);
        format!("{id}:{}", STANDARD.encode(&key[..]))
    }

    /// The id of the key that encrypts.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Encrypts `plaintext` under the current key, bound to `aad`.
    pub fn encrypt(&self, plaintext: &[u8], aad: Aad<'_>) -> String {
        let key = &self.keys[&self.current];
        let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad.bytes();
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer");
        let mut body = nonce.to_vec();
        body.extend_from_slice(&ciphertext);
        format!(
            "{VERSION}.{}.{}",
            self.current,
            URL_SAFE_NO_PAD.encode(body)
        )
    }

    /// Decrypts an envelope written for `aad`.
    pub fn decrypt(&self, envelope: &str, aad: Aad<'_>) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (key_id, body) = parse(envelope)?;
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| CryptoError::UnknownKeyId(key_id.to_string()))?;
        if body.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("32-byte key");
        let aad = aad.bytes();
        cipher
            .decrypt(
                Nonce::from_slice(&body[..12]),
                Payload {
                    msg: &body[12..],
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Authentication)
    }

    /// True when `envelope` is not under the current key (a rotation target).
    pub fn needs_rotation(&self, envelope: &str) -> bool {
        parse(envelope)
            .map(|(id, _)| id != self.current)
            .unwrap_or(false)
    }
}

fn parse(envelope: &str) -> Result<(&str, Vec<u8>), CryptoError> {
    let mut parts = envelope.splitn(3, '.');
    let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(CryptoError::Malformed);
    };
    let body = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CryptoError::Malformed)?;
    Ok((key_id, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad<'a>(record: &'a str, purpose: &'a str) -> Aad<'a> {
        Aad {
            tenant: "acct-1",
            connector: "insightly",
            record,
            purpose,
        }
    }

    fn keyring(entries: &[&str]) -> Keyring {
        Keyring::from_spec(&entries.join(",")).unwrap()
    }

    #[test]
    fn round_trips_and_binds_to_the_row_and_purpose() {
        let keys = keyring(&[&Keyring::generate_entry("k1")]);
        let envelope = keys.encrypt(b"api-key-123", aad("conn-1", "api_key"));
        assert!(envelope.starts_with("v1.k1."));
        assert!(!envelope.contains("api-key-123"));
        assert_eq!(
            &keys.decrypt(&envelope, aad("conn-1", "api_key")).unwrap()[..],
            b"api-key-123"
        );
        assert_eq!(
            keys.decrypt(&envelope, aad("conn-2", "api_key")),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            keys.decrypt(&envelope, aad("conn-1", "access_token")),
            Err(CryptoError::Authentication)
        );
        let other_tenant = Aad {
            tenant: "acct-2",
            ..aad("conn-1", "api_key")
        };
        assert_eq!(
            keys.decrypt(&envelope, other_tenant),
            Err(CryptoError::Authentication)
        );
        // Two encryptions of the same value differ (random nonces).
        assert_ne!(
            envelope,
            keys.encrypt(b"api-key-123", aad("conn-1", "api_key"))
        );
    }

    #[test]
    fn old_key_ids_keep_decrypting_and_unknown_ones_fail() {
        let old = Keyring::generate_entry("old");
        let new = Keyring::generate_entry("new");
        let before = keyring(&[&old]).encrypt(b"secret", aad("r", "p"));
        let rotated = keyring(&[&new, &old]);
        assert_eq!(
            &rotated.decrypt(&before, aad("r", "p")).unwrap()[..],
            b"secret"
        );
        assert!(rotated.needs_rotation(&before));
        assert!(rotated.encrypt(b"x", aad("r", "p")).starts_with("v1.new."));
        assert_eq!(
            keyring(&[&new]).decrypt(&before, aad("r", "p")),
            Err(CryptoError::UnknownKeyId("old".into()))
        );
    }

    #[test]
    fn malformed_envelopes_and_specs_are_rejected_without_echoing_keys() {
        let keys = keyring(&[&Keyring::generate_entry("k1")]);
        for bad in ["", "v1", "v2.k1.AAAA", "v1.k1.!!!", "v1.k1.AAAA"] {
            assert!(keys.decrypt(bad, aad("r", "p")).is_err(), "{bad}");
        }
        let mut tampered = keys.encrypt(b"secret", aad("r", "p"));
        tampered.push('A');
        assert!(keys.decrypt(&tampered, aad("r", "p")).is_err());
        assert!(Keyring::from_spec("").is_err());
        assert!(Keyring::from_spec("k1:short").is_err());
        let error = Keyring::from_spec("bad id!:AAAA").unwrap_err().to_string();
        assert!(error.contains("is not a key id"));
        let debug = format!("{keys:?}");
        assert!(debug.contains("k1") && !debug.contains("key:"));
    }
}
