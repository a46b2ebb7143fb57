//! Encryption at rest: AES-256-GCM in a versioned envelope
//! `v2.<key id>.<base64url(nonce ‖ ciphertext)>`, with associated data that binds
//! each ciphertext to its row (tenant, user, connector, record id, purpose): a
//! ciphertext copied to another row, another user or another purpose, or a row
//! moved to another user, does not decrypt.
//!
//! `v1` envelopes (written before the user was bound) lack the user in their
//! associated data. They still decrypt where no user is involved (account-level
//! secrets); a user's secret in a `v1` envelope is refused until
//! [`Keyring::decrypt_unbound`] re-encrypts it (the startup upgrade and key
//! rotation do).
//!
//! The keyring also authenticates rows that are not secret but must not be
//! forged by someone who can write the database ([`Keyring::mac`]).
//!
//! Master keys form a keyring: the first key encrypts, every key decrypts, so
//! old key ids keep working after a rotation. Keys come from the environment
//! or a file, never from the database; `Debug` never prints them.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The envelope written today: associated data with the user.
const VERSION: &str = "v2";
/// The envelope written before the user was bound.
const UNBOUND_VERSION: &str = "v1";

/// What a ciphertext is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    /// The account (tenant).
    pub tenant: &'a str,
    /// The platform user the secret belongs to; empty for account-level
    /// secrets (an OAuth app's client secret, admin-managed fields).
    pub user: &'a str,
    /// The connector id.
    pub connector: &'a str,
    /// The row's id.
    pub record: &'a str,
    /// What the value is (`access_token`, `api_key`, …).
    pub purpose: &'a str,
}

impl Aad<'_> {
    /// Length-prefixed fields, so that no two different tuples encode alike.
    fn bytes(&self, version: &str) -> Vec<u8> {
        let fields: &[&str] = if version == UNBOUND_VERSION {
            &[self.tenant, self.connector, self.record, self.purpose]
        } else {
            &[
                self.tenant,
                self.user,
                self.connector,
                self.record,
                self.purpose,
            ]
        };
        let mut out = version.as_bytes().to_vec();
        for field in fields {
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
    /// Authentication failed: wrong row, wrong user, wrong purpose, or
    /// tampered data.
    #[error("ciphertext does not authenticate for this record")]
    Authentication,
    /// A user's secret in an envelope written before ciphertexts were bound
    /// to their user: it could have been moved from another user's row.
    #[error(
        "ciphertext is not bound to its user (written before v2; the startup upgrade re-encrypts it)"
    )]
    UnboundToUser,
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
        self.seal(VERSION, plaintext, aad)
    }

    fn seal(&self, version: &str, plaintext: &[u8], aad: Aad<'_>) -> String {
        let key = &self.keys[&self.current];
        let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad.bytes(version);
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
            "{version}.{}.{}",
            self.current,
            URL_SAFE_NO_PAD.encode(body)
        )
    }

    /// Decrypts an envelope written for `aad`. A `v1` envelope is accepted
    /// only for an account-level secret (`aad.user` empty), whose associated
    /// data the user never was part of.
    pub fn decrypt(&self, envelope: &str, aad: Aad<'_>) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (version, _, _) = parse(envelope)?;
        if version == UNBOUND_VERSION && !aad.user.is_empty() {
            return Err(CryptoError::UnboundToUser);
        }
        self.open(envelope, aad)
    }

    /// Decrypts an envelope written for `aad`, a `v1` one also for a user's
    /// secret: only for re-encrypting it bound to its user.
    pub fn decrypt_unbound(
        &self,
        envelope: &str,
        aad: Aad<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open(envelope, aad)
    }

    fn open(&self, envelope: &str, aad: Aad<'_>) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (version, key_id, body) = parse(envelope)?;
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| CryptoError::UnknownKeyId(key_id.to_string()))?;
        if body.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("32-byte key");
        let aad = aad.bytes(version);
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

    /// True when `envelope` is not under the current key, or is a `v1` one (a
    /// rotation target).
    pub fn needs_rotation(&self, envelope: &str) -> bool {
        parse(envelope)
            .map(|(version, id, _)| version != VERSION || id != self.current)
            .unwrap_or(false)
    }

    /// True when `envelope` was written before the user was bound.
    pub fn is_unbound(envelope: &str) -> bool {
        envelope.starts_with("v1.")
    }

    /// Test support: a `v1` envelope, as hosts wrote before the user was bound.
    #[cfg(any(test, feature = "test-support"))]
    pub fn encrypt_unbound_for_tests(&self, plaintext: &[u8], aad: Aad<'_>) -> String {
        self.seal(UNBOUND_VERSION, plaintext, aad)
    }

    /// A message authentication code over `fields` for `purpose`, under the
    /// current key: `m1.<key id>.<base64url(HMAC-SHA256)>`. The HMAC key is
    /// derived from the master key and the purpose, so it lives outside the
    /// database like the master key.
    pub fn mac(&self, purpose: &str, fields: &[&str]) -> String {
        let tag = self.mac_bytes(&self.current, purpose, fields);
        format!("m1.{}.{}", self.current, URL_SAFE_NO_PAD.encode(tag))
    }

    /// True when `tag` is [`Keyring::mac`] of `fields` for `purpose` under a key
    /// of this keyring (compared in constant time).
    pub fn verify_mac(&self, purpose: &str, fields: &[&str], tag: &str) -> bool {
        let mut parts = tag.splitn(3, '.');
        let (Some("m1"), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(expected) = URL_SAFE_NO_PAD.decode(body) else {
            return false;
        };
        if !self.keys.contains_key(key_id) {
            return false;
        }
        let mut mac = self.hmac(key_id, purpose);
        mac.update(&mac_message(fields));
        mac.verify_slice(&expected).is_ok()
    }

    fn mac_bytes(&self, key_id: &str, purpose: &str, fields: &[&str]) -> Vec<u8> {
        let mut mac = self.hmac(key_id, purpose);
        mac.update(&mac_message(fields));
        mac.finalize().into_bytes().to_vec()
    }

    /// HMAC-SHA256 keyed with `HMAC(master key, "connector-host mac v1 " ‖ purpose)`.
    fn hmac(&self, key_id: &str, purpose: &str) -> Hmac<Sha256> {
        let master = &self.keys[key_id];
        let mut derive =
            <Hmac<Sha256> as Mac>::new_from_slice(&master[..]).expect("HMAC takes any key length");
        derive.update(b"connector-host mac v1 ");
        derive.update(purpose.as_bytes());
        let derived: Zeroizing<[u8; 32]> = Zeroizing::new(derive.finalize().into_bytes().into());
        <Hmac<Sha256> as Mac>::new_from_slice(&derived[..]).expect("HMAC takes any key length")
    }
}

/// Length-prefixed fields, so that no two different tuples encode alike.
fn mac_message(fields: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// The envelope's version (`v1` or `v2`), key id and body.
fn parse(envelope: &str) -> Result<(&str, &str, Vec<u8>), CryptoError> {
    let mut parts = envelope.splitn(3, '.');
    let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(CryptoError::Malformed);
    };
    if version != VERSION && version != UNBOUND_VERSION {
        return Err(CryptoError::Malformed);
    }
    let body = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CryptoError::Malformed)?;
    Ok((version, key_id, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad<'a>(record: &'a str, purpose: &'a str) -> Aad<'a> {
        Aad {
            tenant: "acct-1",
            user: "user-1",
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
        assert!(envelope.starts_with("v2.k1."));
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
        // The same row moved to another user of the account does not decrypt.
        let other_user = Aad {
            user: "user-2",
            ..aad("conn-1", "api_key")
        };
        assert_eq!(
            keys.decrypt(&envelope, other_user),
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
        assert!(rotated.encrypt(b"x", aad("r", "p")).starts_with("v2.new."));
        assert_eq!(
            keyring(&[&new]).decrypt(&before, aad("r", "p")),
            Err(CryptoError::UnknownKeyId("old".into()))
        );
    }

    #[test]
    fn malformed_envelopes_and_specs_are_rejected_without_echoing_keys() {
        let keys = keyring(&[&Keyring::generate_entry("k1")]);
        for bad in ["", "v1", "v3.k1.AAAA", "v2.k1.!!!", "v2.k1.AAAA"] {
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

    #[test]
    fn an_unbound_envelope_opens_only_for_account_secrets_or_the_upgrade() {
        let keys = keyring(&[&Keyring::generate_entry("k1")]);
        let users = keys.encrypt_unbound_for_tests(b"token", aad("conn-1", "access_token"));
        assert!(Keyring::is_unbound(&users) && keys.needs_rotation(&users));
        assert_eq!(
            keys.decrypt(&users, aad("conn-1", "access_token")),
            Err(CryptoError::UnboundToUser)
        );
        let plain = keys
            .decrypt_unbound(&users, aad("conn-1", "access_token"))
            .unwrap();
        assert_eq!(&plain[..], b"token");
        let account = Aad {
            user: "",
            ..aad("app", "client_secret")
        };
        let envelope = keys.encrypt_unbound_for_tests(b"secret", account);
        assert_eq!(&keys.decrypt(&envelope, account).unwrap()[..], b"secret");
    }

    #[test]
    fn a_mac_verifies_only_its_fields_purpose_and_keyring() {
        let entry = Keyring::generate_entry("k1");
        let keys = keyring(&[&entry]);
        let tag = keys.mac("outbox", &["id-1", "connection.created", "{}"]);
        assert!(tag.starts_with("m1.k1."));
        assert!(keys.verify_mac("outbox", &["id-1", "connection.created", "{}"], &tag));
        assert!(!keys.verify_mac("outbox", &["id-1", "connection.created", "{ }"], &tag));
        assert!(!keys.verify_mac("outbox", &["id-1connection.created", "", "{}"], &tag));
        assert!(!keys.verify_mac("other", &["id-1", "connection.created", "{}"], &tag));
        let stranger = keyring(&[&Keyring::generate_entry("k1")]);
        assert!(!stranger.verify_mac("outbox", &["id-1", "connection.created", "{}"], &tag));
        for bad in ["", "m1.k1", "m1.k2.AAAA", "m2.k1.AAAA", "m1.k1.!!"] {
            assert!(!keys.verify_mac("outbox", &["x"], bad), "{bad}");
        }
        // After a rotation the old key still verifies.
        let rotated = keyring(&[&Keyring::generate_entry("k2"), &entry]);
        assert!(rotated.verify_mac("outbox", &["id-1", "connection.created", "{}"], &tag));
    }
}
