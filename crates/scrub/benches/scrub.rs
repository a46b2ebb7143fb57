//! `cargo bench -p connector-scrub`: what removing echoed secrets from a
//! response costs, next to a plain copy of the same body measured in the same
//! run. Prints `name: value unit`.
//!
//! - `copy_1mib_p50`: cloning a 1 MiB JSON-like body (the baseline);
//! - `scrub_1mib_clean_p50`: scanning it for the encodings of three injected
//!   secrets (an API key, a Basic pair, a bearer token) when none is there —
//!   the common case;
//! - `scrub_1mib_echoing_p50`: scrubbing the same body with the secrets echoed
//!   in 64 places (scan, exact search around the hits, masking in place);
//! - `scan_floor_1mib_p50`: `memchr` for one absent byte over the same body,
//!   the floor of any scan that reads every byte;
//! - `scrub_clean_over_copy`, `scrub_echoing_over_copy`: the ratios (target ≤ 2);
//! - `scrub_patterns`: how many distinct patterns the three secrets make
//!   (patterns of 12 bytes or more are found by sampling one 4-byte string
//!   every `shortest - 3` bytes, then searched exactly around the hits).
//!
//! Every figure is taken on a body already in the caches, as a response just
//! read is, and the figures take turns in short passes so that a load coming
//! and going on the machine weighs on all of them alike.

use std::time::{Duration, Instant};

use connector_scrub::Scrubber;

/// The median of `samples`, in microseconds.
fn p50_us(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

const SIZE: usize = 1 << 20;
/// Passes of every figure, taking turns.
const PASSES: usize = 8;
/// Samples of one figure per pass.
const ROUNDS_PER_PASS: usize = 50;

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

/// Samples of each of `runs`, in short passes that take turns, so a load
/// that comes and goes during the run weighs on every figure alike, while each
/// figure is taken on inputs its own pass keeps in the caches (a response just
/// read is in the caches). A run times what it returns: the part after its
/// untimed preparation.
fn in_turns<const N: usize>(runs: &mut [&mut dyn FnMut() -> Duration; N]) -> [Vec<Duration>; N] {
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    for _ in 0..PASSES {
        for (run, samples) in runs.iter_mut().zip(samples.iter_mut()) {
            run(); // brings this pass's inputs into the caches
            samples.extend((0..ROUNDS_PER_PASS).map(|_| run()));
        }
    }
    samples
}

/// How long `work` takes.
fn timed(work: impl FnOnce()) -> Duration {
    let started = Instant::now();
    work();
    started.elapsed()
}

fn main() {
    let api_key = "key-77c1-very-secret";
    let pair = format!("{api_key}:acme");
    let token = "tok-3f9a0c2e9d1b44f7a8e5";
    let scrubber =
        Scrubber::new([api_key.as_bytes(), pair.as_bytes(), token.as_bytes()]).expect("patterns");

    let clean = body(&[]);
    let echoing = body(&[api_key, token, "a2V5LTc3YzEtdmVyeS1zZWNyZXQ6YWNtZQ=="]);
    // A clean body is only read (the scrubber changes nothing): time the scan.
    let mut unchanged = clean.clone();
    let [mut copy, mut scrub_clean, mut scrub_echoing, mut floor] = in_turns(&mut [
        &mut || timed(|| drop(std::hint::black_box(clean.clone()))),
        &mut || timed(|| assert!(!scrubber.scrub(std::hint::black_box(&mut unchanged)))),
        // An echoing body is masked in place: each scrub gets a fresh copy
        // (the host scrubs the body it owns), made before the clock starts.
        &mut || {
            let mut body = echoing.clone();
            let took = timed(|| assert!(scrubber.scrub(&mut body)));
            drop(std::hint::black_box(body));
            took
        },
        &mut || {
            timed(|| {
                std::hint::black_box(memchr::memchr(0x01, &clean));
            })
        },
    ]);
    let copy_p50 = p50_us(&mut copy);
    let clean_p50 = p50_us(&mut scrub_clean);
    let echoing_p50 = p50_us(&mut scrub_echoing);
    println!("scrub_patterns: {} count", scrubber.pattern_count());
    println!("copy_1mib_p50: {copy_p50:.1} us");
    println!("scan_floor_1mib_p50: {:.1} us", p50_us(&mut floor));
    println!("scrub_1mib_clean_p50: {clean_p50:.1} us");
    println!("scrub_1mib_echoing_p50: {echoing_p50:.1} us");
    println!("scrub_clean_over_copy: {:.2} x", clean_p50 / copy_p50);
    println!("scrub_echoing_over_copy: {:.2} x", echoing_p50 / copy_p50);
}
