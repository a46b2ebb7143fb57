//! The sustained run: flows at a fixed concurrency until a count (or a time
//! limit), with the rate over the first and the last tenth of them, to show
//! whether the rate holds as the tables grow.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The concurrency of the sustained run.
pub const SUSTAINED_CONCURRENCY: usize = 16;
/// The longest a sustained run may take; it stops there with what it did.
pub const SUSTAINED_LIMIT: Duration = Duration::from_secs(30 * 60);

/// The rate at the start and at the end of a long run.
pub struct Sustained {
    pub flows: usize,
    pub errors: usize,
    pub first_tenth_per_second: f64,
    pub last_tenth_per_second: f64,
}

impl Sustained {
    pub fn print(&self, name: &str) {
        println!("{name}_flows: {} count", self.flows);
        println!("{name}_errors: {} count", self.errors);
        println!(
            "{name}_first_tenth: {:.0} flows/s",
            self.first_tenth_per_second
        );
        println!(
            "{name}_last_tenth: {:.0} flows/s",
            self.last_tenth_per_second
        );
        println!(
            "{name}_last_over_first: {:.2} ratio (target >= 0.9)",
            self.last_tenth_per_second / self.first_tenth_per_second
        );
    }
}

/// Runs `total` flows at [`SUSTAINED_CONCURRENCY`] (fewer if
/// [`SUSTAINED_LIMIT`] passes first) and measures the rate over the first and
/// the last tenth of the successful ones, by their completion times.
pub async fn sustained<F, Fut>(total: usize, flow: F) -> Sustained
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let flow = Arc::new(flow);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..SUSTAINED_CONCURRENCY {
        let (flow, next) = (flow.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let (mut done, mut errors) = (Vec::new(), 0);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= total || started.elapsed() >= SUSTAINED_LIMIT {
                    break;
                }
                if flow(i).await {
                    done.push(started.elapsed());
                } else {
                    errors += 1;
                }
            }
            (done, errors)
        }));
    }
    let (mut done, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (d, e) = worker.await.unwrap();
        done.extend(d);
        errors += e;
    }
    done.sort();
    let tenth = (done.len() / 10).max(1);
    let rate = |from: Duration, to: Duration| tenth as f64 / (to - from).as_secs_f64().max(1e-9);
    let (first, last) = match done.len() {
        0 | 1 => (0.0, 0.0),
        n => (
            rate(Duration::ZERO, done[tenth - 1]),
            rate(done[n - 1 - tenth.min(n - 1)], done[n - 1]),
        ),
    };
    Sustained {
        flows: done.len(),
        errors,
        first_tenth_per_second: first,
        last_tenth_per_second: last,
    }
}
