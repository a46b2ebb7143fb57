//! `connector-host inspect` and `check`: a connector file read without running
//! it, and loaded the way `serve` loads it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use connector_sandbox::runtime::{Runtime, RuntimeLimits};
use connector_server::registry::{CompileCache, InspectReport, inspect::inspect, load_file};

/// `inspect FILE`: what a connector file is and may do, without running it.
pub fn inspect_file(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let info =
        inspect(&bytes).with_context(|| format!("{} is not a valid connector", file.display()))?;
    let report = InspectReport::new(&info);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

/// `check FILE`: loads the file the way `serve` does; non-zero exit on failure.
pub async fn check_file(file: &Path) -> anyhow::Result<ExitCode> {
    let runtime = Arc::new(Runtime::new(RuntimeLimits {
        pooling: false,
        ..RuntimeLimits::default()
    })?);
    match load_file(
        &runtime,
        &CompileCache::disabled(),
        file,
        &Default::default(),
    )
    .await
    {
        Ok(loaded) => {
            println!(
                "ok: {} ({} hooks, sha256 {})",
                loaded.connector(),
                loaded.info.hooks.len(),
                loaded.info.sha256
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{}: {error}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
