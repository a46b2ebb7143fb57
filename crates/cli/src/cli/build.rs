//! `connector-host build DIR`: builds a connector folder into a `.wasm`
//! component — a Rust crate with cargo (`wasm32-wasip2`), a JavaScript or
//! TypeScript package with componentize-js — then reads the result the way
//! `inspect` does, so a component that `check` would refuse fails here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use connector_authoring::authoring::{ConnectorCrate, Progress, build_crate};
use connector_server::registry::inspect::inspect;

/// The arguments of `build`.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// The connector folder: a crate with `Cargo.toml`, or a package with
    /// `package.json` (or `index.ts`), with `connector.json` next to it.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where the build writes (the crate's `target/`, the package's `dist/`
    /// by default).
    #[arg(long)]
    target_dir: Option<PathBuf>,
}

/// Builds, checks the component's manifest and hooks, prints its path.
pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let krate = ConnectorCrate::open(&args.dir)?;
    let progress = Progress::start(format!("building {}", krate.package));
    let wasm = match build_crate(&krate, args.target_dir.as_deref(), &progress) {
        Ok(wasm) => wasm,
        Err(error) => {
            progress.abandon();
            return Err(error.into());
        }
    };
    progress.finish(format!("built {}", wasm.display()));
    let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let info =
        inspect(&bytes).with_context(|| format!("{} is not a valid connector", wasm.display()))?;
    let hooks: Vec<&str> = info.hooks.iter().map(|hook| hook.name()).collect();
    println!(
        "{} ({}@{}, {} KiB, hooks: {})",
        wasm.display(),
        info.manifest.id,
        info.manifest.version,
        bytes.len() / 1024,
        hooks.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
