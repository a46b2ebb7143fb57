//! Builds the example connectors of `plugins/` for `wasm32-wasip2` and embeds
//! them in the binary, so `serve --dev` serves them from any directory, with
//! no checkout and no build-machine path.
//!
//! Set `CONNECTOR_HOST_SKIP_EXAMPLES=1` to build a binary without them
//! (`serve --dev` then says so).

use std::path::PathBuf;

/// Connectors `serve --dev` serves, as (crate artifact, connector id): the two
/// examples, and their `local-*` variants (same code, manifests allowing the
/// local dev provider) for the offline login demo.
const EXAMPLES: &[(&str, &str)] = &[
    ("oauth_regional", "regional-crm"),
    ("apikey_insightly", "insightly"),
    ("local_regional", "local-regional"),
    ("local_insightly", "local-insightly"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let root = manifest_dir.join("../..");
    println!("cargo:rerun-if-env-changed=CONNECTOR_HOST_SKIP_EXAMPLES");
    for watched in ["crates/sdk", "crates/sdk-macros", "crates/abi"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let mut generated = String::from(
        "/// The example connectors embedded at build time, as (connector id, component bytes).\n\
         pub const EXAMPLES: &[(&str, &[u8])] = &[\n",
    );
    if std::env::var_os("CONNECTOR_HOST_SKIP_EXAMPLES").is_none() {
        let guests =
            connector_guest_build::build_workspace(&root.join("plugins"), &out_dir.join("guests"));
        for (artifact, id) in EXAMPLES {
            let guest = guests
                .iter()
                .find(|guest| guest.artifact == *artifact)
                .unwrap_or_else(|| panic!("plugins/ has no `{artifact}` crate"));
            generated.push_str(&format!(
                "    ({id:?}, include_bytes!({:?})),\n",
                guest.path.display().to_string()
            ));
        }
    }
    generated.push_str("];\n");
    std::fs::write(out_dir.join("examples.rs"), generated).unwrap();
}
