//! Measuring a bounded run of flows: the rate, latency percentiles, errors,
//! and the CPU time the host and the provider processes spent on it, read
//! from `/proc/<pid>/stat`; the host's resident memory from
//! `/proc/<pid>/status`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use connector_test_support::bench::percentile_us;

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // The clock tick is 100 Hz on Linux (`sysconf(_SC_CLK_TCK)`).
    (ticks(11) + ticks(12)) / 100.0
}

/// A `/proc/<pid>/status` figure (`VmRSS`, `VmHWM`) in MiB.
pub fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// Resets a process's peak resident memory (`VmHWM`) to its current one.
pub fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// What one bounded run measured.
pub struct Run {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: usize,
    pub host_cpu_ms_per_flow: f64,
    pub provider_cpu_ms_per_flow: f64,
}

/// The processes whose CPU a run reads.
#[derive(Clone, Copy)]
pub struct Pids {
    pub host: u32,
    pub provider: u32,
}

/// Runs `total` flows, `concurrency` at a time; `flow(i)` says whether flow
/// `i` succeeded.
pub async fn run<F, Fut>(total: usize, concurrency: usize, pids: Pids, flow: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let flow = Arc::new(flow);
    let next = Arc::new(AtomicUsize::new(0));
    let (host_before, provider_before) = (cpu_seconds(pids.host), cpu_seconds(pids.provider));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (flow, next) = (flow.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0);
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                if !flow(i).await {
                    errors += 1;
                }
                latencies.push(t.elapsed());
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::<Duration>::new(), 0);
    for worker in workers {
        let (l, e) = worker.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let host = cpu_seconds(pids.host) - host_before;
    let provider = cpu_seconds(pids.provider) - provider_before;
    Run {
        per_second: total as f64 / elapsed,
        p50_ms: percentile_us(&mut latencies, 0.5) / 1e3,
        p99_ms: percentile_us(&mut latencies, 0.99) / 1e3,
        errors,
        host_cpu_ms_per_flow: host / total as f64 * 1e3,
        provider_cpu_ms_per_flow: provider / total as f64 * 1e3,
    }
}

/// Prints a run's lines, `{name}_c{concurrency}_…`; `target_ms` is the
/// issue's target for the host CPU per flow, when it has one.
pub fn print(name: &str, concurrency: usize, run: &Run, target_ms: Option<f64>) {
    let prefix = format!("{name}_c{concurrency}");
    println!("{prefix}_per_second: {:.0} flows/s", run.per_second);
    println!("{prefix}_p50: {:.2} ms", run.p50_ms);
    println!("{prefix}_p99: {:.2} ms", run.p99_ms);
    println!("{prefix}_errors: {} count", run.errors);
    let target = target_ms
        .map(|t| format!(" (target <= {t})"))
        .unwrap_or_default();
    println!(
        "{prefix}_host_cpu_per_flow: {:.3} ms{target}",
        run.host_cpu_ms_per_flow
    );
    println!(
        "{prefix}_provider_cpu_per_flow: {:.3} ms",
        run.provider_cpu_ms_per_flow
    );
}
