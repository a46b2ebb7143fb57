//! `cargo bench -p connector-scrub`: what removing echoed secrets from a
//! response costs, next to a plain copy of the same body measured in the same
//! run. Prints `name: value unit`.
//!
//! - `copy_1mib_p50`: cloning a 1 MiB JSON-like body (the baseline);
//! - `scrub_1mib_clean_p50`: scanning it for the encodings of three injected
//!   secrets (an API key, a Basic pair, a bearer token) when none is there —
//!   the common case;
//! - `scrub_1mib_echoing_p50`: the same body with the secrets echoed in 64 places;
//! - `scan_floor_1mib_p50`: `memchr` for one absent byte over the same body,
//!   the floor of any scan (one pattern, one byte);
//! - `scrub_clean_over_copy`, `scrub_echoing_over_copy`: the ratios (target ≤ 2);
//! - `scrub_patterns`: how many distinct patterns the three secrets make
//!   (patterns of 12 bytes or more are found by sampling one 4-byte string
//!   every `shortest - 3` bytes, then searched exactly around the hits).

use std::time::{Duration, Instant};

use connector_scrub::Scrubber;

/// The median of `samples`, in microseconds.
fn p50_us(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

const SIZE: usize = 1 << 20;
const ROUNDS: usize = 200;

fn body(echoes: &[&str]) -> Vec<u8> {
    let record =
        br#"{"id":1234567,"name":"Ada Lovelace","email":"ada@example.com","tags":["crm","lead"]},"#;
    let mut body = Vec::with_capacity(SIZE + 4096);
    let mut n = 0;
    while body.len() < SIZE {
        body.extend_from_slice(record);
        if !echoes.is_empty() && n % (SIZE / record.len() / 64).max(1) == 0 {
            body.extend_from_slice(echoes[n % echoes.len()].as_bytes());
        }
        n += 1;
    }
    body.truncate(SIZE);
    body
}

fn time(rounds: usize, mut run: impl FnMut()) -> Vec<Duration> {
    (0..rounds)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect()
}

fn main() {
    let api_key = "key-77c1-very-secret";
    let pair = format!("{api_key}:acme");
    let token = "tok-3f9a0c2e9d1b44f7a8e5";
    let scrubber =
        Scrubber::new([api_key.as_bytes(), pair.as_bytes(), token.as_bytes()]).expect("patterns");

    let clean = body(&[]);
    let echoing = body(&[api_key, token, "a2V5LTc3YzEtdmVyeS1zZWNyZXQ6YWNtZQ=="]);
    // Warm up the allocator and caches.
    for _ in 0..20 {
        std::hint::black_box(clean.clone());
        let mut copy = clean.clone();
        std::hint::black_box(scrubber.scrub(&mut copy));
    }
    let mut copy = time(ROUNDS, || {
        std::hint::black_box(clean.clone());
    });
    // A clean body is only read (the scrubber changes nothing): time the
    // scan alone, on a body already in the caches as a response just read is.
    let mut unchanged = clean.clone();
    let mut scrub_clean = time(ROUNDS, || {
        assert!(!scrubber.scrub(std::hint::black_box(&mut unchanged)));
    });
    // An echoing body is rewritten: each scrub works on its own copy (the
    // host scrubs the body it owns); subtract the copy so the figure is the
    // scan and the replacement alone.
    let mut scrub_echoing = time(ROUNDS, || {
        let mut body = echoing.clone();
        assert!(scrubber.scrub(&mut body));
        std::hint::black_box(body);
    });
    let mut floor = time(ROUNDS, || {
        std::hint::black_box(memchr::memchr(0x01, &clean));
    });
    let copy_p50 = p50_us(&mut copy);
    let clean_p50 = p50_us(&mut scrub_clean);
    let echoing_p50 = (p50_us(&mut scrub_echoing) - copy_p50).max(0.0);
    println!("scrub_patterns: {} count", scrubber.pattern_count());
    println!("copy_1mib_p50: {copy_p50:.1} us");
    println!("scan_floor_1mib_p50: {:.1} us", p50_us(&mut floor));
    println!("scrub_1mib_clean_p50: {clean_p50:.1} us");
    println!("scrub_1mib_echoing_p50: {echoing_p50:.1} us");
    println!("scrub_clean_over_copy: {:.2} x", clean_p50 / copy_p50);
    println!("scrub_echoing_over_copy: {:.2} x", echoing_p50 / copy_p50);
}
