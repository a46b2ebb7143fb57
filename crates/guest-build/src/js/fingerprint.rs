//! What a JavaScript build reads, hashed: a build whose inputs did not change
//! since the last one is skipped (a componentize-js run takes ~20 s).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// Folders never read by a build: dependencies, build outputs, hidden ones.
const SKIPPED: &[&str] = &["node_modules", "dist", "target"];

/// What the build of the package `dir` with the SDK at `sdk_dir` reads: the
/// package, the SDK's sources, build scripts and lockfile, and the WIT.
pub fn build_inputs(dir: &Path, sdk_dir: &Path) -> Vec<PathBuf> {
    vec![
        dir.to_path_buf(),
        sdk_dir.join("src"),
        sdk_dir.join("bin"),
        sdk_dir.join("package-lock.json"),
        sdk_dir.join("../crates/sdk/wit"),
    ]
}

/// A hash of the names and contents of every file under `inputs` (outside
/// `node_modules`, `dist`, `target` and hidden folders), in a stable order.
pub fn fingerprint(inputs: &[PathBuf]) -> String {
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
        let skipped = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') || (path.is_dir() && SKIPPED.contains(&n)));
        if !skipped {
            collect_files(&path, files);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_and_dependencies_do_not_change_the_fingerprint() {
        let dir = std::env::temp_dir().join(format!("js-fingerprint-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dist")).unwrap();
        std::fs::create_dir_all(dir.join("node_modules")).unwrap();
        std::fs::write(dir.join("index.js"), "export default 1;").unwrap();
        let before = fingerprint(std::slice::from_ref(&dir));
        std::fs::write(dir.join("dist/out.wasm"), "built").unwrap();
        std::fs::write(dir.join("node_modules/x.js"), "dep").unwrap();
        assert_eq!(fingerprint(std::slice::from_ref(&dir)), before);
        std::fs::write(dir.join("index.js"), "export default 2;").unwrap();
        assert_ne!(fingerprint(std::slice::from_ref(&dir)), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
