//! Every JavaScript/TypeScript connector package of a folder (e.g.
//! `tests/guests-js/`), built from a build script into `out_dir`, skipping
//! the componentize step when nothing the build reads has changed.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
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
    let fingerprint = fingerprint(&inputs);
    let mut guests: Vec<Guest> = packages(folder)
        .into_iter()
        .map(|(name, dir)| {
            let artifact = format!("{prefix}{}", name.replace('-', "_"));
            let path = out_dir.join(format!("{artifact}.wasm"));
            let stamp = out_dir.join(format!("{artifact}.fingerprint"));
            let fresh = path.is_file()
                && std::fs::read_to_string(&stamp).is_ok_and(|old| old == fingerprint);
            if !fresh {
                if let Err(error) = js::build_package(&dir, sdk_dir, &path) {
                    panic!(
                        "building the JavaScript connector {}: {error}",
                        dir.display()
                    );
                }
                std::fs::write(&stamp, &fingerprint).expect("write the build fingerprint");
            }
            Guest {
                artifact,
                path,
                crate_dir: dir,
            }
        })
        .collect();
    guests.sort_by(|a, b| a.artifact.cmp(&b.artifact));
    guests
}

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

/// A hash of the names and contents of every file under `inputs` (outside
/// `node_modules`), in a stable order.
fn fingerprint(inputs: &[PathBuf]) -> String {
    let mut files = Vec::new();
    for input in inputs {
        collect_files(input, &mut files);
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.hash(&mut hasher);
        std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_file() {
        files.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "node_modules") {
            continue;
        }
        collect_files(&path, files);
    }
}
