//! A sampling prefilter: finds the few short windows of a response where an
//! injected secret could be, so the exact search runs on those windows only.
//!
//! Every pattern is at least `min_len` bytes long. Take the 4-byte strings
//! (4-grams) of every pattern into a small bit set. An occurrence of a pattern
//! covers at least `min_len - 3` consecutive start positions of 4-grams, so
//! looking at the 4-gram at every `stride = min_len - 3`-th position of the
//! response is enough: one of them lies inside the occurrence, and its 4-gram
//! is one of the pattern's, so its bit is set. Positions whose bit is not set
//! cannot be inside any occurrence. On a response that echoes nothing, this
//! reads one 4-gram per stride (every 17th byte for a 20-byte secret) and
//! finds (almost) no candidate: cheaper than any search that reads every byte.

use std::ops::Range;

/// Bytes per sampled string.
const GRAM: usize = 4;
/// Slots in the set: 2^15 one-byte marks, 32 KiB, fits the L1 cache. A byte
/// per slot (rather than a bit) saves the shift and mask of every test.
const SLOTS: usize = 1 << 15;
/// Patterns shorter than this make the stride too short to pay off: the
/// scrubber then searches every byte instead.
pub(crate) const MIN_SAMPLED_LEN: usize = 12;

/// The 4-grams of every pattern, and where to look for them.
pub(crate) struct Sampler {
    /// One mark (1 or 0) per hashed 4-gram of any pattern (a fixed size, so
    /// indexing it with a 15-bit slot needs no bounds check).
    marks: Box<[u8; SLOTS]>,
    /// Distance between sampled positions: the shortest pattern's length less 3.
    stride: usize,
    /// The longest pattern's length (how far around a hit to search).
    max_len: usize,
}

/// Fibonacci hashing: the high 15 bits of the product.
fn slot(gram: &[u8; GRAM]) -> usize {
    (u32::from_le_bytes(*gram).wrapping_mul(0x9E37_79B1) >> 17) as usize
}

impl Sampler {
    /// A sampler for `patterns`, or `None` when the shortest is below
    /// [`MIN_SAMPLED_LEN`].
    pub(crate) fn new<'a>(patterns: impl IntoIterator<Item = &'a [u8]> + Clone) -> Option<Self> {
        let min_len = patterns.clone().into_iter().map(<[u8]>::len).min()?;
        let max_len = patterns.clone().into_iter().map(<[u8]>::len).max()?;
        if min_len < MIN_SAMPLED_LEN {
            return None;
        }
        let mut marks = Box::new([0u8; SLOTS]);
        for pattern in patterns {
            for gram in pattern.windows(GRAM) {
                let slot = slot(gram.try_into().expect("4 bytes"));
                marks[slot] = 1;
            }
        }
        Some(Sampler {
            marks,
            stride: min_len - GRAM + 1,
            max_len,
        })
    }

    /// The windows of `haystack` that may hold an occurrence, in order and
    /// disjoint; every occurrence of every pattern lies wholly inside one.
    pub(crate) fn windows(&self, haystack: &[u8]) -> Vec<Range<usize>> {
        let mut windows: Vec<Range<usize>> = Vec::new();
        let mut from = 0;
        while let Some(at) = self.next_hit(haystack, from) {
            // An occurrence holding this 4-gram starts at most `max_len - 4`
            // before it and ends at most `max_len` after.
            let start = at.saturating_sub(self.max_len - GRAM);
            let end = (at + self.max_len).min(haystack.len());
            match windows.last_mut() {
                Some(last) if start <= last.end => last.end = end,
                _ => windows.push(start..end),
            }
            from = at + self.stride;
        }
        windows
    }

    /// 1 when the 4-gram at `at` is one of a pattern's, else 0.
    #[inline(always)]
    fn bit(&self, haystack: &[u8], at: usize) -> u8 {
        let slot = slot(haystack[at..at + GRAM].try_into().expect("4 bytes"));
        self.marks[slot]
    }

    /// The first sampled position from `from` on (`from`, `from + stride`,
    /// …) whose 4-gram is a pattern's. Four positions per step, so the
    /// processor works on them at once.
    fn next_hit(&self, haystack: &[u8], from: usize) -> Option<usize> {
        let last = haystack.len().checked_sub(GRAM)?;
        let stride = self.stride;
        let block = 4 * stride;
        let mut at = from;
        // Whole blocks of four strides: each block's four 4-grams start at
        // 0, stride, 2·stride and 3·stride, all inside the block (stride ≥ 4).
        if let Some(rest) = haystack.get(from..) {
            for chunk in rest.chunks_exact(block) {
                let gram = |k: usize| -> [u8; GRAM] {
                    let start = k * stride;
                    chunk[start..start + GRAM].try_into().expect("4 bytes")
                };
                let any = self.bit_of(&gram(0))
                    | self.bit_of(&gram(1))
                    | self.bit_of(&gram(2))
                    | self.bit_of(&gram(3));
                if any != 0 {
                    break;
                }
                at += block;
            }
        }
        while at <= last {
            if self.bit(haystack, at) != 0 {
                return Some(at);
            }
            at += stride;
        }
        None
    }

    /// 1 when `gram` is one of a pattern's, else 0.
    #[inline(always)]
    fn bit_of(&self, gram: &[u8; GRAM]) -> u8 {
        let slot = slot(gram);
        self.marks[slot]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_at_every_offset_lies_in_a_window() {
        let patterns: [&[u8]; 2] = [b"a-secret-of-twenty-b", b"another-one-longer-than-that"];
        let sampler = Sampler::new(patterns).unwrap();
        assert_eq!(sampler.stride, 17);
        for pattern in patterns {
            // Past several blocks of four strides, and at every position
            // within one, so both the block scan and the tail are exercised.
            for offset in 0..400 {
                let mut haystack = vec![b'.'; 500];
                haystack[offset..offset + pattern.len()].copy_from_slice(pattern);
                let windows = sampler.windows(&haystack);
                assert!(
                    windows
                        .iter()
                        .any(|w| w.start <= offset && offset + pattern.len() <= w.end),
                    "offset {offset}: {windows:?}"
                );
            }
        }
    }

    #[test]
    fn a_clean_text_has_no_window_and_short_patterns_are_not_sampled() {
        let sampler = Sampler::new([&b"a-secret-of-twenty-b"[..]]).unwrap();
        let clean =
            br#"{"id":1234567,"name":"Ada Lovelace","email":"ada@example.com"},"#.repeat(100);
        assert!(sampler.windows(&clean).is_empty());
        assert!(Sampler::new([&b"short-secret"[..11]]).is_none());
    }
}
