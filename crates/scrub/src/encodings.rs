//! The encodings of a secret a server could echo, as search patterns.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Secrets shorter than this are matched only in full encodings, never as the
/// stable middle of a longer base64 text (too short a middle would match by
/// chance).
pub(crate) const MIN_ALIGNED_BYTES: usize = 6;

/// One search pattern: an encoding of an injected secret.
pub(crate) struct Pattern {
    /// The bytes searched for.
    pub(crate) bytes: Vec<u8>,
    /// A base64 text (its match is widened, see `widened`).
    pub(crate) base64: bool,
}

/// Every encoding of `secret` a server could echo.
///
/// Base64 is searched as the characters that encode the secret alone at
/// each of the three alignments (standard and URL-safe): a full encoding
/// starts with the first of them, so it is found too and the match widened
/// over its last character and padding. Fewer patterns keep the SIMD search on
/// its fastest (32-byte) path. Secrets shorter than [`MIN_ALIGNED_BYTES`] are
/// searched as full encodings only.
pub(crate) fn encodings(secret: &[u8], patterns: &mut Vec<Pattern>) {
    let mut text = |bytes: Vec<u8>| {
        patterns.push(Pattern {
            bytes,
            base64: false,
        })
    };
    text(secret.to_vec());
    for encoded in percent_encodings(secret) {
        text(encoded.into_bytes());
    }
    if let Ok(utf8) = std::str::from_utf8(secret) {
        let json = serde_json::to_string(utf8).expect("a string serialises");
        text(json.as_bytes()[1..json.len() - 1].to_vec());
    }
    let mut base64 = |encoded: String| {
        if !encoded.is_empty() {
            patterns.push(Pattern {
                bytes: encoded.into_bytes(),
                base64: true,
            })
        }
    };
    if secret.len() >= MIN_ALIGNED_BYTES {
        for offset in 0..3 {
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                base64(aligned_base64(secret, offset, engine));
            }
        }
    } else {
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            base64(engine.encode(secret));
        }
    }
}

/// Percent-encodings: every byte outside the unreserved set as `%XX` (upper
/// and lower hex), and the form encoding with `+` for a space (both cases).
fn percent_encodings(secret: &[u8]) -> Vec<String> {
    let strict: String = secret
        .iter()
        .map(|&byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    let form: String = url::form_urlencoded::byte_serialize(secret).collect();
    let mut all = Vec::new();
    for encoded in [strict, form] {
        all.push(lower_hex(&encoded));
        all.push(encoded);
    }
    all
}

/// `%2F` as `%2f`, leaving the rest.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut chars = encoded.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

/// The base64 characters that encode `secret` alone when it starts `offset`
/// bytes into a 3-byte group of a longer text: encode it after `offset` filler
/// bytes and drop the characters the filler or the ragged end touch.
fn aligned_base64(secret: &[u8], offset: usize, engine: &impl base64::Engine) -> String {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(secret);
    let encoded = engine.encode(&padded);
    // Characters touched by the filler: each filler byte spoils the character
    // that holds its bits, plus one shared with the secret.
    let skip = match offset {
        0 => 0,
        1 => 2,
        _ => 3,
    };
    // A character is 6 bits: the last one wholly inside the secret ends at or
    // before its last bit (later ones depend on what follows in the text).
    let end = (8 * padded.len()) / 6;
    encoded.get(skip..end).unwrap_or_default().to_string()
}
