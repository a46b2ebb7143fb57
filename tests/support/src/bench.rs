//! What the benchmarks share: percentiles of latency samples.

use std::time::Duration;

/// The `p` quantile (0.0 to 1.0, nearest rank) of `samples`, in
/// microseconds; sorts `samples`.
pub fn percentile_us(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1e6
}

/// The median of `samples`, in microseconds; sorts `samples`.
pub fn p50_us(samples: &mut [Duration]) -> f64 {
    percentile_us(samples, 0.5)
}
