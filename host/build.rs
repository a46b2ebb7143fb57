//! Builds the guest connectors in `plugins/` (examples and test-only ones) for
//! `wasm32-wasip2`, once per change of their sources, so that `cargo run -- serve
//! --dev` serves the examples and the tests find every guest.
//!
//! Set `CONNECTOR_HOST_SKIP_GUESTS=1` to skip (e.g. when packaging the host alone).

use std::path::PathBuf;
use std::process::Command;

/// Connectors `serve --dev` serves: the two examples, and their `local-*`
/// variants (same code, manifests allowing the local test provider) for the
/// offline login demo.
const EXAMPLES: &[(&str, &str)] = &[
    ("oauth_regional", "regional-crm"),
    ("apikey_insightly", "insightly"),
    ("local_regional", "local-regional"),
    ("local_insightly", "local-insightly"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for watched in ["plugins", "sdk-guest", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CONNECTOR_HOST_SKIP_GUESTS");
    let target_dir = root.join("target").join("guests");
    let release = target_dir.join("wasm32-wasip2").join("release");
    let examples = target_dir.join("examples");
    println!(
        "cargo:rustc-env=CONNECTOR_HOST_GUESTS_DIR={}",
        release.display()
    );
    println!(
        "cargo:rustc-env=CONNECTOR_HOST_EXAMPLES_DIR={}",
        examples.display()
    );
    if std::env::var_os("CONNECTOR_HOST_SKIP_GUESTS").is_some() {
        return;
    }

    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("plugins").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
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
            "building the guest connectors in plugins/ failed ({status}). If the error above says \
             the `wasm32-wasip2` target is missing, run `rustup target add wasm32-wasip2` \
             (rust-toolchain.toml lists it, so rustup normally installs it by itself)."
        ),
        Err(error) => panic!("cannot run `{cargo}` to build the guest connectors: {error}"),
    }
    std::fs::create_dir_all(&examples).unwrap();
    for (artifact, id) in EXAMPLES {
        let from = release.join(format!("{artifact}.wasm"));
        let to = examples.join(format!("{id}.wasm"));
        let bytes =
            std::fs::read(&from).unwrap_or_else(|e| panic!("missing {}: {e}", from.display()));
        if std::fs::read(&to).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&to, bytes).unwrap();
        }
    }
}

/// Adds the `wasm32-wasip2` standard library with rustup when the active
/// toolchain lacks it. rustup installs the targets of `rust-toolchain.toml`
/// only when it installs the toolchain itself, so a machine that already had
/// the pinned toolchain (without this target) would otherwise fail here.
fn ensure_wasm_target() {
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
        // The guest build below then fails with rustc's own message and our hint.
        Ok(status) => println!("cargo:warning=`rustup target add wasm32-wasip2` failed ({status})"),
        Err(error) => println!("cargo:warning=cannot run rustup: {error}"),
    }
}
