//! The example connectors embedded in the binary at build time (see
//! `build.rs`), which `serve --dev` writes into a local folder and serves.

use std::path::Path;

use anyhow::Context;

include!(concat!(env!("OUT_DIR"), "/examples.rs"));

/// The folder, relative to the working directory, `serve --dev` serves the
/// examples from.
pub const DIR: &str = ".connector-host/examples";

/// Writes every embedded example to [`DIR`] as `<id>.wasm`, leaving a file that
/// already holds the same bytes untouched (so a running host does not reload it).
pub fn write() -> anyhow::Result<()> {
    if EXAMPLES.is_empty() {
        tracing::warn!(
            "this binary was built without the example connectors (CONNECTOR_HOST_SKIP_EXAMPLES); \
             `serve --dev` serves an empty folder"
        );
    }
    let dir = Path::new(DIR);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the examples folder {}", dir.display()))?;
    for (id, bytes) in EXAMPLES {
        let path = dir.join(format!("{id}.wasm"));
        if std::fs::read(&path).ok().as_deref() == Some(*bytes) {
            continue;
        }
        std::fs::write(&path, bytes)
            .with_context(|| format!("cannot write the example {}", path.display()))?;
    }
    Ok(())
}
