//! Scrubbing a response body that is streamed rather than buffered (the
//! pass-through proxy): [`Scrubber`] works on whole buffers, so each chunk is
//! scrubbed together with the bytes around it, and the last
//! [`StreamScrubber::holdback`] bytes are kept back until more arrive.
//!
//! The held-back tail, and as much again of what was already sent before
//! it, are longer than the longest encoding plus the two base64 characters a
//! match is widened over on each side. So an occurrence that touches a byte
//! about to be sent lies wholly within the buffer scrubbed, with its context,
//! and one that straddles two chunks is found whole the next time (the kept
//! bytes are kept unscrubbed; only the part not yet sent is sent). Masking
//! keeps lengths, so the bytes sent equal the bytes received, masked exactly
//! as the whole body would be.

use bytes::{Bytes, BytesMut};
use connector_scrub::Scrubber;

/// Bytes held back beyond the longest encoding of a secret: the widening of
/// base64 matches (two characters each side) and padding.
const CONTEXT: usize = 8;

/// The longest encoding the scrubber searches for of a `len`-byte secret,
/// bounded from above: JSON escapes a control byte as `\u00XX` (6 bytes),
/// percent-encoding uses 3 bytes per byte, base64 4 per 3 plus padding.
fn longest_encoding(len: usize) -> usize {
    6 * len + 4
}

/// A streaming scrubber over one response body.
pub(crate) struct StreamScrubber {
    scrubber: Scrubber,
    holdback: usize,
    /// Unscrubbed bytes: up to `holdback` already sent (context), then the
    /// ones not sent yet.
    pending: BytesMut,
    /// How many leading bytes of `pending` were already sent.
    sent: usize,
    /// Whether any occurrence was masked.
    found: bool,
}

impl StreamScrubber {
    /// Scrubs for `scrubber`'s patterns, built from secrets at most
    /// `longest_secret` bytes long.
    pub(crate) fn new(scrubber: Scrubber, longest_secret: usize) -> Self {
        Self {
            scrubber,
            holdback: longest_encoding(longest_secret) + CONTEXT,
            pending: BytesMut::new(),
            sent: 0,
            found: false,
        }
    }

    /// Bytes kept back at the end of what was received.
    #[cfg(test)]
    pub(crate) fn holdback(&self) -> usize {
        self.holdback
    }

    /// Whether any echoed secret was masked so far.
    pub(crate) fn found(&self) -> bool {
        self.found
    }

    /// Takes `chunk`; returns what may be sent now (maybe empty).
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        if self.pending.len() - self.sent <= self.holdback {
            return Bytes::new();
        }
        let ready = self.pending.len() - self.holdback;
        let mut scrubbed = self.pending.to_vec();
        self.found |= self.scrubber.scrub(&mut scrubbed);
        let out = Bytes::copy_from_slice(&scrubbed[self.sent..ready]);
        // Keep `holdback` bytes of what is now sent, as context.
        let drop = ready.saturating_sub(self.holdback);
        let _ = self.pending.split_to(drop);
        self.sent = ready - drop;
        out
    }

    /// The end of the body: the rest, scrubbed.
    pub(crate) fn finish(&mut self) -> Bytes {
        let mut rest = std::mem::take(&mut self.pending).to_vec();
        self.found |= self.scrubber.scrub(&mut rest);
        let out = Bytes::copy_from_slice(&rest[self.sent.min(rest.len())..]);
        self.sent = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn scrubber(secret: &str) -> Scrubber {
        Scrubber::new([secret.as_bytes()]).expect("a pattern")
    }

    fn streamed(secret: &str, body: &[u8], cut: &[usize]) -> (Vec<u8>, bool) {
        let mut stream = StreamScrubber::new(scrubber(secret), secret.len());
        let mut out = Vec::new();
        let mut from = 0;
        for &at in cut.iter().chain([&body.len()]) {
            out.extend_from_slice(&stream.push(&body[from..at]));
            from = at;
        }
        out.extend_from_slice(&stream.finish());
        (out, stream.found())
    }

    #[test]
    fn a_streamed_body_is_scrubbed_as_the_whole_body_is_wherever_it_is_cut() {
        let secret = "tok-3f9a1c\"7b";
        let json = serde_json::to_string(secret).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("user:{secret}"));
        let body = format!(
            "{}{secret} and {json} and tok-3f9a1c%227b and Basic {b64} {}",
            "x".repeat(150),
            "y".repeat(150)
        )
        .into_bytes();
        let mut whole = body.clone();
        let found = scrubber(secret).scrub(&mut whole);
        assert!(found);
        for at in 0..=body.len() {
            assert_eq!(
                streamed(secret, &body, &[at]),
                (whole.clone(), true),
                "cut at {at}"
            );
        }
        let many: Vec<usize> = (1..body.len()).step_by(7).collect();
        assert_eq!(streamed(secret, &body, &many), (whole.clone(), true));
        let bytewise: Vec<usize> = (1..body.len()).collect();
        assert_eq!(streamed(secret, &body, &bytewise), (whole, true));
    }

    #[test]
    fn a_clean_body_passes_unchanged_and_only_the_holdback_waits() {
        let secret = "a-long-enough-secret";
        let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = StreamScrubber::new(scrubber(secret), secret.len());
        let first = stream.push(&body[..4096]);
        assert_eq!(first.len(), 4096 - stream.holdback());
        let (out, found) = streamed(secret, &body, &[4096, 8000]);
        assert_eq!((out, found), (body, false));
    }
}
