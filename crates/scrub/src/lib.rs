//! Removes the secrets the host injected into a request from its response,
//! before the guest sees it: an allowed server that echoes what it received
//! (a header-reflecting endpoint, an error body quoting the URL, a `Location`
//! or `Link` carrying the query) must not hand a connector the API key, token
//! or host secret the host attached for it.
//!
//! The host knows exactly which secret bytes went into the request, so it
//! searches the response for every encoding a server could plausibly echo them
//! in — raw; percent-encoded with `%20` or `+` for a space, in upper or lower
//! case hex; base64 (standard and URL-safe, padded or not, and at each of the
//! three alignments a secret can take inside a longer base64 text such as a
//! Basic `user:secret`); JSON-escaped — and overwrites each occurrence in
//! place with [`REDACTED`], filled out to the occurrence's length with
//! [`FILL`] (only `FILL` when the occurrence is shorter than the marker).
//!
//! Masking in place keeps every length and offset of the response: the body
//! is never moved or reallocated, so scrubbing an echoing response costs the
//! scan plus a few short writes, not a second copy. The guest learns the
//! length of the echoed encoding (which follows from the secret's length,
//! rarely a secret in itself) and nothing of its bytes.
//!
//! - [`encodings`]: the patterns of one secret;
//! - [`sampler`]: a prefilter that reads one 4-byte string every few bytes and
//!   points the exact search at the windows that may hold a pattern;
//! - this module: [`Scrubber`], the exact search (one Aho–Corasick automaton,
//!   every overlapping occurrence) and the replacement.

mod encodings;
mod sampler;

use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind, packed};

use encodings::{Pattern, encodings};
use sampler::Sampler;

/// What an echoed secret is overwritten with (its first bytes, when it is at
/// least this long).
pub const REDACTED: &str = "[redacted]";

/// What fills the rest of an overwritten occurrence.
pub const FILL: u8 = b'*';

/// The patterns of one request's injected secrets.
pub struct Scrubber {
    /// Finds every occurrence of every pattern, overlapping ones included.
    automaton: AhoCorasick,
    /// By pattern id: whether it is a base64 text, whose match is widened
    /// over the neighbouring base64 characters that still carry bits of the
    /// secret (a partial first or last character, `=` padding).
    base64: Vec<bool>,
    /// Where to search, when every pattern is long enough to sample for.
    sampler: Option<Sampler>,
    /// Otherwise, a SIMD (Teddy) search answering "is any pattern here"
    /// before the automaton is asked where. `None` where Teddy cannot serve.
    quick: Option<packed::Searcher>,
}

impl Scrubber {
    /// A scrubber for these injected values (the secrets themselves and the
    /// exact header values that carried them). `None` when there is nothing
    /// to look for.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Option<Scrubber> {
        let mut patterns: Vec<Pattern> = Vec::new();
        for secret in secrets.into_iter().filter(|secret| !secret.is_empty()) {
            encodings(secret, &mut patterns);
        }
        patterns.sort_by(|a, b| a.bytes.cmp(&b.bytes));
        patterns.dedup_by(|later, kept| {
            let same = later.bytes == kept.bytes;
            kept.base64 |= same && later.base64;
            same
        });
        if patterns.is_empty() {
            return None;
        }
        let bytes: Vec<&[u8]> = patterns.iter().map(|p| p.bytes.as_slice()).collect();
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .prefilter(false)
            .build(&bytes)
            .expect("a bounded set of literal patterns");
        let sampler = Sampler::new(bytes.iter().copied());
        let quick = match sampler {
            Some(_) => None,
            None => packed::Config::new().builder().extend(&bytes).build(),
        };
        Some(Scrubber {
            automaton,
            base64: patterns.iter().map(|p| p.base64).collect(),
            sampler,
            quick,
        })
    }

    /// How many distinct patterns this scrubber searches for.
    pub fn pattern_count(&self) -> usize {
        self.base64.len()
    }

    /// The parts of `haystack` the exact search must read.
    fn windows(&self, haystack: &[u8]) -> Vec<Range<usize>> {
        let whole = || std::iter::once(0..haystack.len()).collect();
        match (&self.sampler, &self.quick) {
            (Some(sampler), _) => sampler.windows(haystack),
            (None, Some(quick)) if quick.find(haystack).is_some() => whole(),
            (None, Some(_)) => Vec::new(),
            (None, None) if self.automaton.is_match(haystack) => whole(),
            (None, None) => Vec::new(),
        }
    }

    /// Every range to redact, sorted and disjoint: each occurrence of each
    /// pattern (overlapping ones merged), base64 ones widened.
    fn matches(&self, haystack: &[u8]) -> Vec<(usize, usize)> {
        let mut found: Vec<(usize, usize)> = Vec::new();
        for window in self.windows(haystack) {
            for m in self
                .automaton
                .find_overlapping_iter(&haystack[window.clone()])
            {
                let (start, end) = (window.start + m.start(), window.start + m.end());
                found.push(match self.base64[m.pattern().as_usize()] {
                    true => widened(haystack, start, end),
                    false => (start, end),
                });
            }
        }
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (start, end) in found {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    /// Masks every echoed secret in `bytes` in place (lengths unchanged);
    /// returns whether any was found. Writes nothing when nothing matches.
    pub fn scrub(&self, bytes: &mut [u8]) -> bool {
        let matches = self.matches(bytes);
        for &(start, end) in &matches {
            mask(&mut bytes[start..end]);
        }
        !matches.is_empty()
    }

    /// The same for a text value (a header).
    pub fn scrub_text(&self, text: &mut String) -> bool {
        let matches = self.matches(text.as_bytes());
        if matches.is_empty() {
            return false;
        }
        let mut bytes = std::mem::take(text).into_bytes();
        for &(start, end) in &matches {
            mask(&mut bytes[start..end]);
        }
        // Matches are whole encodings of valid UTF-8 secrets or ASCII text, so
        // the result is UTF-8 unless a secret was cut mid-character: then
        // replace invalid bytes rather than fail.
        *text = String::from_utf8(bytes)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        true
    }
}

/// Overwrites one occurrence: [`REDACTED`], then [`FILL`] to its end (only
/// `FILL` when it is shorter than the marker).
fn mask(occurrence: &mut [u8]) {
    let marker = REDACTED.as_bytes();
    match occurrence.len() >= marker.len() {
        true => {
            occurrence[..marker.len()].copy_from_slice(marker);
            occurrence[marker.len()..].fill(FILL);
        }
        false => occurrence.fill(FILL),
    }
}

/// `start..end` (a base64 text of a secret) grown over up to two base64
/// characters on each side and the `=` padding after it: the characters at the
/// edges of an encoded secret also carry some of its bits.
fn widened(haystack: &[u8], start: usize, end: usize) -> (usize, usize) {
    let base64_char = |b: u8| b.is_ascii_alphanumeric() || b"+/-_".contains(&b);
    let mut start = start;
    for _ in 0..2 {
        match start.checked_sub(1) {
            Some(before) if base64_char(haystack[before]) => start = before,
            _ => break,
        }
    }
    let mut end = end;
    for _ in 0..2 {
        match haystack.get(end) {
            Some(&b) if base64_char(b) => end += 1,
            _ => break,
        }
    }
    while end < haystack.len() && haystack[end] == b'=' {
        end += 1;
    }
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    const SECRET: &str = "ik-5d1f/secret value+42";

    /// What an occurrence of `len` bytes becomes.
    fn masked(len: usize) -> String {
        let mut text = vec![b'?'; len];
        mask(&mut text);
        String::from_utf8(text).unwrap()
    }

    fn scrubbed(input: &str) -> (String, bool) {
        let scrubber = Scrubber::new([SECRET.as_bytes()]).unwrap();
        let mut bytes = input.as_bytes().to_vec();
        let found = scrubber.scrub(&mut bytes);
        (String::from_utf8(bytes).unwrap(), found)
    }

    #[test]
    fn every_encoding_is_removed() {
        let basic = STANDARD.encode(format!("user:{SECRET}"));
        let echoes = [
            SECRET.to_string(),
            "ik-5d1f%2Fsecret%20value%2B42".to_string(),
            "ik-5d1f%2fsecret%20value%2b42".to_string(),
            "ik-5d1f%2Fsecret+value%2B42".to_string(),
            STANDARD.encode(SECRET),
            URL_SAFE_NO_PAD.encode(SECRET),
            format!("Basic {basic}"),
            serde_json::to_string(SECRET).unwrap(),
        ];
        for echo in echoes {
            let (out, found) = scrubbed(&format!("{{\"echo\": \"{echo}\"}}"));
            assert!(found, "{echo} was not found");
            assert!(!out.contains(SECRET), "{out}");
            assert!(out.contains(REDACTED), "{out}");
            for engine in [&STANDARD, &URL_SAFE] {
                assert!(!out.contains(&engine.encode(SECRET)[..8]), "{out}");
            }
        }
    }

    #[test]
    fn base64_of_a_secret_inside_a_longer_text_is_found_at_every_alignment() {
        for prefix in ["", "a", "ab", "abc", "user:", "u:"] {
            let encoded = STANDARD.encode(format!("{prefix}{SECRET}!"));
            let (out, found) = scrubbed(&encoded);
            assert!(found, "prefix {prefix:?}: {encoded}");
            assert!(out.contains(REDACTED));
        }
    }

    #[test]
    fn a_whole_base64_encoding_goes_with_its_last_character_and_padding() {
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(SECRET);
            let (out, found) = scrubbed(&format!("[{encoded}] next"));
            assert!(found, "{encoded}");
            assert_eq!(
                out,
                format!("[{}] next", masked(encoded.len())),
                "{encoded}"
            );
        }
        // Inside a longer base64 text (a Basic `user:secret`), the edge
        // characters that mix the secret's bits with its neighbours' go too:
        // everything after the `user:` part is masked, padding included.
        let basic = STANDARD.encode(format!("user:{SECRET}"));
        let (out, _) = scrubbed(&format!("Basic {basic}"));
        let kept = out.find(REDACTED).expect("masked");
        assert!(kept <= "Basic ".len() + 8, "{out}");
        assert_eq!(out[kept..], masked(out.len() - kept), "{out}");
    }

    #[test]
    fn overlapping_echoes_of_two_secrets_are_both_removed() {
        let (first, second) = ("abcdefghijklmnopqr", "klmnopqrstuvwxyz0123");
        let scrubber = Scrubber::new([first.as_bytes(), second.as_bytes()]).unwrap();
        let mut bytes = b"<abcdefghijklmnopqrstuvwxyz0123>".to_vec();
        assert!(scrubber.scrub(&mut bytes));
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            format!("<{}>", masked(first.len() + second.len() - 8))
        );
    }

    #[test]
    fn echoes_are_masked_in_place_and_keep_their_length() {
        // A short secret's occurrence is shorter than the marker: only fill.
        assert_eq!(masked(3), "***");
        assert_eq!(masked(12), format!("{REDACTED}**"));
        for secret in ["abc", SECRET] {
            let scrubber = Scrubber::new([secret.as_bytes()]).unwrap();
            let mut bytes = format!("<{secret}>{secret}<end>").into_bytes();
            assert!(scrubber.scrub(&mut bytes));
            let mask = masked(secret.len());
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                format!("<{mask}>{mask}<end>"),
                "{secret}"
            );
        }
    }

    #[test]
    fn header_values_are_scrubbed_too() {
        let scrubber = Scrubber::new([SECRET.as_bytes()]).unwrap();
        let mut header = format!("https://elsewhere.example/?key={SECRET}&next=2");
        assert!(scrubber.scrub_text(&mut header));
        assert_eq!(
            header,
            format!(
                "https://elsewhere.example/?key={}&next=2",
                masked(SECRET.len())
            )
        );
    }

    #[test]
    fn a_response_without_the_secret_is_left_as_it_is() {
        let (out, found) = scrubbed("{\"id\": 42, \"name\": \"Ada\"}");
        assert!(!found);
        assert_eq!(out, "{\"id\": 42, \"name\": \"Ada\"}");
        assert!(Scrubber::new([&b""[..]]).is_none(), "nothing to look for");
    }
}
