//! Builds guest connectors.
//!
//! - [`build_workspace`]: a cargo workspace of Rust guests for
//!   `wasm32-wasip2` from a build script, the way wasmtime's
//!   `test-programs/artifacts` builds its test guests: into a folder under
//!   `OUT_DIR`, once per change of their sources;
//! - [`js`]: a JavaScript/TypeScript connector package, with componentize-js,
//!   and [`build_js_folder`] for every package of a folder (once per change of
//!   its sources).
//!
//! Used by `crates/cli/build.rs` (the example connectors `serve --dev`
//! embeds), `tests/support/build.rs` (every guest the tests load) and
//! `connector-host build` (through `connector-authoring`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod js;
mod js_folder;

pub use js_folder::build_js_folder;

/// One component a guest build produced.
#[derive(Debug, Clone)]
pub struct Guest {
    /// The crate's name with `-` as `_`: the file stem of its component.
    pub artifact: String,
    /// The built component.
    pub path: PathBuf,
    /// The guest crate's folder.
    pub crate_dir: PathBuf,
}

/// Builds every member of the guest workspace at `workspace` (its folder, with
/// a `Cargo.toml`) in release mode for `wasm32-wasip2`, into `target_dir`, and
/// returns the components, sorted by name. Panics with a hint on failure: this
/// runs in a build script.
pub fn build_workspace(workspace: &Path, target_dir: &Path) -> Vec<Guest> {
    println!("cargo:rerun-if-changed={}", workspace.display());
    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--workspace",
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        // The outer build's flags and wrappers are for the host target.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "building the guest connectors in {} failed ({status}). If the error above says \
             the `wasm32-wasip2` target is missing, run `rustup target add wasm32-wasip2`.",
            workspace.display()
        ),
        Err(error) => panic!("cannot run `{cargo}` to build the guest connectors: {error}"),
    }
    let release = target_dir.join("wasm32-wasip2").join("release");
    let mut guests: Vec<Guest> = members(workspace)
        .into_iter()
        .map(|(name, crate_dir)| {
            let artifact = name.replace('-', "_");
            let path = release.join(format!("{artifact}.wasm"));
            assert!(path.is_file(), "the guest build made no {}", path.display());
            Guest {
                artifact,
                path,
                crate_dir,
            }
        })
        .collect();
    guests.sort_by(|a, b| a.artifact.cmp(&b.artifact));
    guests
}

/// The package names of the workspace's members: every folder below it (one
/// level) whose `Cargo.toml` has a
/// `[package]` name.
fn members(workspace: &Path) -> Vec<(String, PathBuf)> {
    let mut names = Vec::new();
    let mut visit = |dir: &Path| {
        let manifest = dir.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            return;
        };
        if let Some(name) = package_name(&text) {
            names.push((name, dir.to_path_buf()));
        }
    };
    for entry in std::fs::read_dir(workspace).expect("read the guest workspace") {
        let path = entry.expect("read the guest workspace").path();
        if path.is_dir() && !path.ends_with("target") {
            visit(&path);
        }
    }
    names
}

/// The `name = "…"` of a manifest's `[package]` table.
fn package_name(manifest: &str) -> Option<String> {
    let package = manifest.split("[package]").nth(1)?;
    let section = package.split("\n[").next()?;
    section.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "name").then(|| value.trim().trim_matches('"').to_string())
    })
}

/// Adds the `wasm32-wasip2` standard library with rustup when the active
/// toolchain lacks it. rustup installs the targets of `rust-toolchain.toml`
/// only when it installs the toolchain itself, so a machine that already had
/// the pinned toolchain (without this target) would otherwise fail here.
pub fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let Some(sysroot) = sysroot else { return };
    if sysroot.join("lib/rustlib/wasm32-wasip2").is_dir() {
        return;
    }
    println!(
        "cargo:warning=the wasm32-wasip2 target is missing from {}: running `rustup target add wasm32-wasip2`",
        sysroot.display()
    );
    match Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
    {
        Ok(status) if status.success() => {}
        // The guest build then fails with rustc's own message and our hint.
        Ok(status) => println!("cargo:warning=`rustup target add wasm32-wasip2` failed ({status})"),
        Err(error) => println!("cargo:warning=cannot run rustup: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::package_name;

    #[test]
    fn reads_the_package_name_and_not_a_dependency_name() {
        let manifest = "[package]\nname = \"local-regional\"\nversion = \"0.1.0\"\n\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("local-regional"));
        assert_eq!(package_name("[workspace]\nmembers = []\n"), None);
    }
}
