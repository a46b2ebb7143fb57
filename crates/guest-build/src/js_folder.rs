//! Every JavaScript/TypeScript connector package of a folder (e.g.
//! `tests/guests-js/`), built from a build script into `out_dir`, skipping
//! the componentize step when nothing the build reads has changed.

use std::path::{Path, PathBuf};

use crate::Guest;
use crate::js;

/// Builds each package directly under `folder` (see [`js::is_js_package`])
/// with the SDK at `sdk_dir` into `out_dir/<prefix><name>.wasm` (`-` as `_`),
/// and returns them sorted by artifact name. A package is rebuilt only when
/// the folder, the SDK's sources and lockfile or the WIT changed since its
/// last build. Panics with the build's message on failure: this runs in a
/// build script.
pub fn build_js_folder(folder: &Path, sdk_dir: &Path, out_dir: &Path, prefix: &str) -> Vec<Guest> {
    let inputs = [
        folder.to_path_buf(),
        sdk_dir.join("src"),
        sdk_dir.join("bin"),
        sdk_dir.join("package-lock.json"),
        sdk_dir.join("../crates/sdk/wit"),
    ];
    for input in &inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    let fingerprint = js::fingerprint(&inputs);
    let mut guests: Vec<Guest> = packages(folder)
        .into_iter()
        .map(|(name, dir)| Guest {
            artifact: format!("{prefix}{}", name.replace('-', "_")),
            path: out_dir.join(format!("{prefix}{}.wasm", name.replace('-', "_"))),
            crate_dir: dir,
        })
        .collect();
    guests.sort_by(|a, b| a.artifact.cmp(&b.artifact));
    let stale: Vec<&Guest> = guests
        .iter()
        .filter(|guest| !is_fresh(guest, out_dir, &fingerprint))
        .collect();
    build_in_parallel(&stale, sdk_dir, out_dir, &fingerprint);
    guests
}

/// Where the fingerprint of a guest's last build is kept.
fn stamp_of(guest: &Guest, out_dir: &Path) -> PathBuf {
    out_dir.join(format!("{}.fingerprint", guest.artifact))
}

/// Whether the guest was built from exactly these inputs.
fn is_fresh(guest: &Guest, out_dir: &Path, fingerprint: &str) -> bool {
    guest.path.is_file()
        && std::fs::read_to_string(stamp_of(guest, out_dir)).is_ok_and(|old| old == fingerprint)
}

/// Componentizes `guests`, [`PARALLEL_BUILDS`] at a time (a build is one
/// mostly single-threaded node process of about 20 s); panics with the first
/// failure.
fn build_in_parallel(guests: &[&Guest], sdk_dir: &Path, out_dir: &Path, fingerprint: &str) {
    if guests.is_empty() {
        return;
    }
    // Once, before the builds: they would otherwise race to run `npm ci`.
    if let Err(error) = js::check_node().and_then(|_| js::ensure_dependencies(sdk_dir)) {
        panic!("building the JavaScript connectors: {error}");
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, PARALLEL_BUILDS);
    let queue = std::sync::Mutex::new(guests.iter());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    // The lock is released at the end of this statement.
                    let Some(guest) = queue.lock().expect("queue lock").next() else {
                        break;
                    };
                    match js::build_package(&guest.crate_dir, sdk_dir, &guest.path) {
                        Ok(_) => std::fs::write(stamp_of(guest, out_dir), fingerprint)
                            .expect("write the build fingerprint"),
                        Err(error) => failures.lock().expect("failures lock").push(format!(
                            "building the JavaScript connector {}: {error}",
                            guest.crate_dir.display()
                        )),
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("failures lock");
    if let Some(first) = failures.first() {
        panic!("{first}");
    }
}

/// How many JavaScript builds run at once.
const PARALLEL_BUILDS: usize = 4;

/// The packages one level below `folder`, by folder name.
fn packages(folder: &Path) -> Vec<(String, PathBuf)> {
    let entries =
        std::fs::read_dir(folder).unwrap_or_else(|e| panic!("read {}: {e}", folder.display()));
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|dir| dir.is_dir() && js::is_js_package(dir))
        .filter_map(|dir| Some((dir.file_name()?.to_str()?.to_string(), dir)))
        .collect()
}
