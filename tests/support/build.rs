//! Builds every guest the tests load, into `OUT_DIR`: the test-only guests of
//! `tests/guests/` and the examples of `plugins/` (Rust), the test-only guests
//! of `tests/guests-js/` (artifacts `js_<name>`) and the examples of
//! `plugins-ts/` (artifacts `ts_<name>`), the JavaScript ones with the SDK of
//! `sdk-js/` (its pinned dependencies installed with `npm ci` when absent),
//! each componentized once and again only when its sources change. Writes
//! `guests.rs`, one path constant per component, and fails the build when a
//! test-only guest is named by no test or benchmark (a guest nobody loads is
//! a guest nobody checks).

use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let tests_dir = manifest_dir.join("..");
    let root = tests_dir.join("..");
    for watched in ["crates/sdk", "crates/sdk-macros", "crates/abi"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = out_dir.join("guests");
    let test_guests =
        connector_guest_build::build_workspace(&tests_dir.join("guests"), &target_dir);
    let examples = connector_guest_build::build_workspace(&root.join("plugins"), &target_dir);
    let sdk_js = root.join("sdk-js");
    let js_dir = out_dir.join("js-guests");
    let js_test_guests = connector_guest_build::build_js_folder(
        &tests_dir.join("guests-js"),
        &sdk_js,
        &js_dir,
        "js_",
    );
    let ts_examples =
        connector_guest_build::build_js_folder(&root.join("plugins-ts"), &sdk_js, &js_dir, "ts_");

    let sources = test_sources(&[tests_dir.join("tests"), tests_dir.join("benches")]);
    let unnamed: Vec<&str> = test_guests
        .iter()
        .chain(&js_test_guests)
        .filter(|guest| !named_by_a_test(guest, &sources))
        .map(|guest| guest.artifact.as_str())
        .collect();
    assert!(
        unnamed.is_empty(),
        "test guests that no test in tests/tests or tests/benches names, by artifact \
         (\"artifact_name\") or by connector id: {}",
        unnamed.join(", ")
    );

    let mut generated = String::new();
    generated.push_str(&format!(
        "/// Where the guest components are (`<artifact>.wasm`).\npub const GUESTS_DIR: &str = {:?};\n",
        target_dir.join("wasm32-wasip2").join("release").display().to_string()
    ));
    generated.push_str("/// Every guest component, as (artifact name, path).\npub const ALL: &[(&str, &str)] = &[\n");
    let every = test_guests.iter().chain(&examples);
    for guest in every.chain(&js_test_guests).chain(&ts_examples) {
        generated.push_str(&format!(
            "    ({:?}, {:?}),\n",
            guest.artifact,
            guest.path.display().to_string()
        ));
    }
    generated.push_str("];\n");
    std::fs::write(out_dir.join("guests.rs"), generated).unwrap();
}

/// Whether the tests name this guest: its artifact as a string literal (to
/// load the file), or its connector id (to call it through a loaded folder).
fn named_by_a_test(guest: &connector_guest_build::Guest, sources: &str) -> bool {
    if sources.contains(&format!("\"{}\"", guest.artifact)) {
        return true;
    }
    let manifest = std::fs::read(guest.crate_dir.join("connector.json")).unwrap_or_default();
    let id = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|manifest| manifest["id"].as_str().map(str::to_string));
    id.is_some_and(|id| sources.contains(&id))
}

/// The text of every `.rs` file in these folders, concatenated.
fn test_sources(dirs: &[PathBuf]) -> String {
    let mut text = String::new();
    for dir in dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
        read_rs_files(dir, &mut text);
    }
    text
}

fn read_rs_files(dir: &Path, text: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            read_rs_files(&path, text);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}
