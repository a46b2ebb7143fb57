//! Ed25519 signatures over connector components.
//!
//! A signature is detached: `connector-host sign FILE.wasm` writes
//! `FILE.wasm.sig`, a small JSON object ([`ComponentSignature`]) with the
//! signer's public key and the signature, both base64. What is signed is the
//! component's sha256 under a fixed prefix ([`signed_message`]), so the
//! signature binds exactly those bytes and nothing else can be replayed as
//! one. A host that requires signatures (`[publishing] require_signatures`)
//! accepts a component only when its signature verifies *and* its public key
//! is one of the operator's `trusted_keys`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The only algorithm a signature file may name.
pub const ALGORITHM: &str = "ed25519";
/// The suffix of a detached signature file next to its component.
pub const SIGNATURE_SUFFIX: &str = ".sig";
/// What is prepended to the component's sha256 (hex) before signing.
const DOMAIN: &[u8] = b"connector-host component v1\n";

/// A detached signature (`FILE.wasm.sig`, and the `signature` of a publish
/// request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentSignature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The signer's 32-byte public key, base64.
    pub public_key: String,
    /// The 64-byte signature of the component's digest, base64.
    pub signature: String,
}

/// Why a signature is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Signatures are required and there is none.
    #[error(
        "this host requires signed components ([publishing] require_signatures) and none was given: sign it with `connector-host sign`"
    )]
    Missing,
    /// The signature file is not the expected JSON.
    #[error("the signature is not a connector-host signature: {0}")]
    Malformed(String),
    /// A field cannot be decoded.
    #[error("signature.{field}: {reason}")]
    Field {
        /// `algorithm`, `publicKey` or `signature`.
        field: &'static str,
        /// What was expected.
        reason: String,
    },
    /// The signature does not verify against its public key and these bytes.
    #[error(
        "the signature does not match this component (sha256 {sha256}): it was made for other bytes or with another key"
    )]
    Invalid {
        /// The component's digest.
        sha256: String,
    },
    /// It verifies, but the key is not trusted by this host.
    #[error(
        "the component is signed by an untrusted key ({public_key}): add it to [publishing] trusted_keys to accept it"
    )]
    Untrusted {
        /// The signer's public key, base64.
        public_key: String,
    },
}

/// The bytes an Ed25519 key signs for a component with this sha256 (hex).
pub fn signed_message(sha256_hex: &str) -> Vec<u8> {
    [DOMAIN, sha256_hex.as_bytes()].concat()
}

/// A new signing key from the operating system's random source.
pub fn generate_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

/// The base64 of a public key, as `trusted_keys` and signature files hold it.
pub fn public_key_base64(key: &VerifyingKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// Decodes a base64 32-byte signing key (the seed `generate_key` makes).
pub fn signing_key_from_base64(text: &str) -> Result<SigningKey, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("expected 32 bytes, found {}", b.len()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs the component whose sha256 (hex) is `sha256_hex`.
pub fn sign(key: &SigningKey, sha256_hex: &str) -> ComponentSignature {
    ComponentSignature {
        algorithm: ALGORITHM.into(),
        public_key: public_key_base64(&key.verifying_key()),
        signature: STANDARD.encode(key.sign(&signed_message(sha256_hex)).to_bytes()),
    }
}

/// Decodes a base64 public key.
pub fn verifying_key_from_base64(text: &str) -> Result<VerifyingKey, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("expected 32 bytes, found {}", b.len()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

impl ComponentSignature {
    /// Parses a signature file's text.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        serde_json::from_str(text).map_err(|e| SignatureError::Malformed(e.to_string()))
    }

    /// Checks that this signature was made over the component with this
    /// sha256 (hex) by the key it names; returns that key.
    pub fn verify(&self, sha256_hex: &str) -> Result<VerifyingKey, SignatureError> {
        if self.algorithm != ALGORITHM {
            return Err(SignatureError::Field {
                field: "algorithm",
                reason: format!("expected `{ALGORITHM}`, found `{}`", self.algorithm),
            });
        }
        let key = verifying_key_from_base64(&self.public_key).map_err(|reason| {
            SignatureError::Field {
                field: "publicKey",
                reason,
            }
        })?;
        let bytes = STANDARD
            .decode(self.signature.trim())
            .map_err(|e| SignatureError::Field {
                field: "signature",
                reason: format!("not base64: {e}"),
            })?;
        let signature = Signature::from_slice(&bytes).map_err(|_| SignatureError::Field {
            field: "signature",
            reason: format!("expected 64 bytes, found {}", bytes.len()),
        })?;
        // `verify_strict` refuses the weak keys and malleable signatures
        // plain `verify` would accept.
        key.verify_strict(&signed_message(sha256_hex), &signature)
            .map_err(|_| SignatureError::Invalid {
                sha256: sha256_hex.to_string(),
            })?;
        Ok(key)
    }
}

/// The operator's trusted public keys, by name.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl TrustedKeys {
    /// Decodes `name = "base64 public key"` pairs, naming a bad entry.
    pub fn from_config(keys: &BTreeMap<String, String>) -> Result<Self, String> {
        let keys = keys
            .iter()
            .map(|(name, key)| {
                verifying_key_from_base64(key)
                    .map(|key| (name.clone(), key))
                    .map_err(|e| format!("publishing.trusted_keys.{name}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// The name of the trusted key that made `signature` over the
    /// component with this sha256, or why there is none. `None` signature:
    /// [`SignatureError::Missing`].
    pub fn signer(
        &self,
        signature: Option<&ComponentSignature>,
        sha256_hex: &str,
    ) -> Result<String, SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing)?;
        let key = signature.verify(sha256_hex)?;
        self.keys
            .iter()
            .find(|(_, trusted)| **trusted == key)
            .map(|(name, _)| name.clone())
            .ok_or_else(|| SignatureError::Untrusted {
                public_key: public_key_base64(&key),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn trusting(key: &SigningKey) -> TrustedKeys {
        TrustedKeys::from_config(&BTreeMap::from([(
            "release".to_string(),
            public_key_base64(&key.verifying_key()),
        )]))
        .unwrap()
    }

    #[test]
    fn a_trusted_signature_names_its_key_and_nothing_else_passes() {
        let key = generate_key();
        let trusted = trusting(&key);
        let signature = sign(&key, DIGEST);
        assert_eq!(trusted.signer(Some(&signature), DIGEST).unwrap(), "release");

        // Other bytes, another key, a forged key field, no signature.
        let other_digest = DIGEST.replace('9', "8");
        assert!(matches!(
            trusted.signer(Some(&signature), &other_digest),
            Err(SignatureError::Invalid { .. })
        ));
        let stranger = sign(&generate_key(), DIGEST);
        assert!(matches!(
            trusted.signer(Some(&stranger), DIGEST),
            Err(SignatureError::Untrusted { .. })
        ));
        let claimed = ComponentSignature {
            public_key: signature.public_key.clone(),
            ..stranger
        };
        assert!(matches!(
            trusted.signer(Some(&claimed), DIGEST),
            Err(SignatureError::Invalid { .. })
        ));
        assert_eq!(trusted.signer(None, DIGEST), Err(SignatureError::Missing));
    }

    #[test]
    fn malformed_signatures_name_the_field() {
        let good = sign(&generate_key(), DIGEST);
        let cases = [
            (
                ComponentSignature {
                    algorithm: "rsa".into(),
                    ..good.clone()
                },
                "algorithm",
            ),
            (
                ComponentSignature {
                    public_key: "AAAA".into(),
                    ..good.clone()
                },
                "publicKey",
            ),
            (
                ComponentSignature {
                    signature: "%%%".into(),
                    ..good.clone()
                },
                "signature",
            ),
        ];
        for (signature, field) in cases {
            let error = signature.verify(DIGEST).unwrap_err();
            assert!(
                error.to_string().starts_with(&format!("signature.{field}")),
                "{error}"
            );
        }
        assert!(matches!(
            ComponentSignature::parse("{\"algorithm\":\"ed25519\"}"),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn a_bad_trusted_key_names_its_entry() {
        let error = TrustedKeys::from_config(&BTreeMap::from([(
            "ops".to_string(),
            "not a key".to_string(),
        )]))
        .unwrap_err();
        assert!(error.starts_with("publishing.trusted_keys.ops:"), "{error}");
    }
}
