//! connector-host outside its checkout: the SDK as packaged crates, and the
//! binary as installed by `cargo install`.
//!
//! - `a_connector_builds_from_the_packaged_sdk`: `cargo package` the SDK crates
//!   (`connector-abi`, `connector-sdk-macros`, `connector-sdk`), scaffold a
//!   connector with `new` in a folder outside the repository (depending on
//!   `connector-sdk` by version, as authors do), point it at the packaged
//!   crates with `[patch.crates-io]`, build it for `wasm32-wasip2`, and `check` it.
//! - `the_installed_binary_serves_the_demo_from_anywhere`: `cargo install` the
//!   binary into a temporary root, run `serve --dev` from a folder outside the
//!   checkout, and complete the README's API-key login.

use std::path::{Path, PathBuf};
use std::process::Command;

use connector_test_support::process::run_ok;

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // This test runs under `cargo test`: the outer build's settings are not ours.
    for name in ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS"] {
        command.env_remove(name);
    }
    command
}

/// Unpacks a `.crate` file (a gzipped tar) into `into`; returns its folder.
fn unpack(krate: &Path, into: &Path) -> PathBuf {
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(krate)
            .arg("-C")
            .arg(into),
    );
    let stem = krate.file_stem().unwrap().to_str().unwrap();
    into.join(stem)
}

#[test]
fn a_connector_builds_from_the_packaged_sdk() {
    let work = tempfile::tempdir().unwrap();
    let package_dir = work.path().join("package-target");
    let version = env!("CARGO_PKG_VERSION");
    run_ok(
        cargo()
            .current_dir(root())
            .args(["package", "--no-verify", "--allow-dirty"])
            .args([
                "-p",
                "connector-abi",
                "-p",
                "connector-sdk-macros",
                "-p",
                "connector-sdk",
            ])
            .arg("--target-dir")
            .arg(&package_dir),
    );
    let unpacked = work.path().join("crates");
    std::fs::create_dir_all(&unpacked).unwrap();
    let mut patch = String::from("\n[patch.crates-io]\n");
    for name in ["connector-abi", "connector-sdk-macros", "connector-sdk"] {
        let krate = package_dir
            .join("package")
            .join(format!("{name}-{version}.crate"));
        let dir = unpack(&krate, &unpacked);
        patch.push_str(&format!(
            "{name} = {{ path = {:?} }}\n",
            dir.display().to_string()
        ));
    }
    assert!(
        unpacked
            .join(format!("connector-sdk-{version}/wit/hooks.wit"))
            .is_file(),
        "the packaged SDK carries its WIT contract"
    );

    // An author's crate, outside the repository, depending on the SDK by version.
    let authors = work.path().join("author");
    std::fs::create_dir_all(&authors).unwrap();
    run_ok(
        Command::new(BIN)
            .args(["new", "packaged-crm", "--auth", "api-key", "--dir"])
            .arg(&authors),
    );
    let krate = authors.join("packaged-crm");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("connector-sdk = \"{version}\"")),
        "the scaffold depends on the SDK by version:\n{manifest}"
    );
    std::fs::write(krate.join("Cargo.toml"), manifest + &patch).unwrap();

    run_ok(
        cargo()
            .current_dir(&krate)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .arg("--target-dir")
            .arg(root().join("target").join("scaffold-tests")),
    );
    let wasm = root().join("target/scaffold-tests/wasm32-wasip2/release/packaged_crm.wasm");
    let report = run_ok(Command::new(BIN).arg("check").arg(&wasm));
    assert!(
        report.contains("packaged-crm"),
        "check names the connector: {report}"
    );
}

#[tokio::test]
async fn the_installed_binary_serves_the_demo_from_anywhere() {
    let work = tempfile::tempdir().unwrap();
    let install_root = work.path().join("install");
    // The dev profile and the workspace's lockfile and target folder: the
    // dependencies are already built by this test run.
    run_ok(
        cargo()
            .current_dir(work.path())
            .args(["install", "--locked", "--debug", "--path"])
            .arg(root().join("crates/cli"))
            .arg("--root")
            .arg(&install_root)
            .arg("--target-dir")
            .arg(root().join("target")),
    );
    let installed = install_root.join("bin").join("connector-host");
    assert!(installed.is_file(), "cargo install put the binary in bin/");

    let outside = work.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    let server = connector_test_support::dev_demo::start(&installed, &outside);
    let connection = server.api_key_login().await;
    assert_eq!(connection["userName"], "Ada Lovelace");
    assert!(
        outside
            .join(".connector-host/examples/local-insightly.wasm")
            .is_file(),
        "the installed binary wrote its embedded examples into the working folder"
    );
}
