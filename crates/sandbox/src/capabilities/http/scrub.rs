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
//! Basic `user:secret`); JSON-escaped — and replaces each occurrence with
//! [`REDACTED`]. One Aho–Corasick automaton serves every pattern of a request.

use aho_corasick::{AhoCorasick, MatchKind, packed};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What an echoed secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are matched only in full encodings, never as the
/// stable middle of a longer base64 text (too short a middle would match by
/// chance).
const MIN_ALIGNED_BYTES: usize = 6;

/// The patterns of one request's injected secrets.
pub struct Scrubber {
    /// Finds and replaces every pattern.
    automaton: AhoCorasick,
    /// A SIMD (Teddy) search for the same patterns, many times faster than the
    /// automaton when nothing matches, which is almost always: it answers
    /// "is any secret here" before the automaton is asked to replace.
    /// `None` where Teddy cannot serve (too many patterns, no SIMD).
    quick: Option<packed::Searcher>,
}

impl Scrubber {
    /// A scrubber for these injected values (the secrets themselves and the
    /// exact header values that carried them). `None` when there is nothing
    /// to look for.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Option<Scrubber> {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for secret in secrets.into_iter().filter(|secret| !secret.is_empty()) {
            encodings(secret, &mut patterns);
        }
        // Longest first: where two patterns match at one place, the SIMD
        // search (leftmost-first) then takes the longer, as the automaton
        // (leftmost-longest) does.
        patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        patterns.dedup();
        if patterns.is_empty() {
            return None;
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("a bounded set of literal patterns");
        let quick = packed::Config::new().builder().extend(&patterns).build();
        Some(Scrubber { automaton, quick })
    }

    /// Whether any pattern occurs in `haystack`.
    fn found_in(&self, haystack: &[u8]) -> bool {
        match &self.quick {
            Some(quick) => quick.find(haystack).is_some(),
            None => self.automaton.is_match(haystack),
        }
    }

    /// Where the patterns occur, leftmost first, without overlaps.
    fn matches(&self, haystack: &[u8]) -> Vec<(usize, usize)> {
        match &self.quick {
            Some(quick) => quick
                .find_iter(haystack)
                .map(|m| (m.start(), m.end()))
                .collect(),
            None => self
                .automaton
                .find_iter(haystack)
                .map(|m| (m.start(), m.end()))
                .collect(),
        }
    }

    /// `haystack` with every match replaced by [`REDACTED`].
    fn replaced(&self, haystack: &[u8], matches: &[(usize, usize)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(haystack.len());
        let mut at = 0;
        for &(start, end) in matches {
            out.extend_from_slice(&haystack[at..start]);
            out.extend_from_slice(REDACTED.as_bytes());
            at = end;
        }
        out.extend_from_slice(&haystack[at..]);
        out
    }

    /// Replaces every echoed secret in `bytes`; returns whether any was found.
    /// Leaves the buffer untouched (no copy) when nothing matches.
    pub fn scrub(&self, bytes: &mut Vec<u8>) -> bool {
        if !self.found_in(bytes) {
            return false;
        }
        let matches = self.matches(bytes);
        if matches
            .iter()
            .all(|(start, end)| end - start >= REDACTED.len())
        {
            replace_in_place(bytes, &matches);
        } else {
            *bytes = self.replaced(bytes, &matches);
        }
        true
    }

    /// The same for a text value (a header).
    pub fn scrub_text(&self, text: &mut String) -> bool {
        if !self.found_in(text.as_bytes()) {
            return false;
        }
        let matches = self.matches(text.as_bytes());
        let replaced = self.replaced(text.as_bytes(), &matches);
        // Matches are whole encodings of valid UTF-8 secrets or ASCII text, so
        // the result is UTF-8 unless a secret was cut mid-character: then
        // replace invalid bytes rather than fail.
        *text = String::from_utf8(replaced)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        true
    }
}

/// Replaces `matches` (sorted, disjoint, each at least as long as
/// [`REDACTED`]) in place: the text only shrinks, so it is compacted forward
/// without a second buffer.
fn replace_in_place(bytes: &mut Vec<u8>, matches: &[(usize, usize)]) {
    let mut write = 0;
    let mut read = 0;
    for &(start, end) in matches {
        bytes.copy_within(read..start, write);
        write += start - read;
        bytes[write..write + REDACTED.len()].copy_from_slice(REDACTED.as_bytes());
        write += REDACTED.len();
        read = end;
    }
    let tail = bytes.len() - read;
    bytes.copy_within(read.., write);
    bytes.truncate(write + tail);
}

/// Every encoding of `secret` a server could echo.
fn encodings(secret: &[u8], patterns: &mut Vec<Vec<u8>>) {
    patterns.push(secret.to_vec());
    for encoded in percent_encodings(secret) {
        patterns.push(encoded.into_bytes());
    }
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        patterns.push(engine.encode(secret).into_bytes());
    }
    if secret.len() >= MIN_ALIGNED_BYTES {
        for offset in 0..3 {
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                patterns.push(aligned_base64(secret, offset, engine).into_bytes());
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(secret) {
        let json = serde_json::to_string(text).expect("a string serialises");
        patterns.push(json.as_bytes()[1..json.len() - 1].to_vec());
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "ik-5d1f/secret value+42";

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
    fn short_and_long_echoes_are_replaced_alike() {
        // A short secret's match is shorter than the marker (a second buffer);
        // a long one's is not (compacted in place): both give the same text.
        for secret in ["abc", SECRET] {
            let scrubber = Scrubber::new([secret.as_bytes()]).unwrap();
            let mut bytes = format!("<{secret}>{secret}<end>").into_bytes();
            assert!(scrubber.scrub(&mut bytes));
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                format!("<{REDACTED}>{REDACTED}<end>"),
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
            format!("https://elsewhere.example/?key={REDACTED}&next=2")
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
