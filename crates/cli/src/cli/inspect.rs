//! `connector-host inspect` and `check`: a connector file read without running
//! it, and loaded the way `serve` loads it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use connector_sandbox::runtime::{Runtime, RuntimeLimits};
use connector_server::registry::signature::ComponentSignature;
use connector_server::registry::{CompileCache, InspectReport, inspect::inspect, load_file};

/// `inspect FILE`: what a connector file is and may do, without running it,
/// with the signer of its detached signature (`FILE.wasm.sig` or
/// `--signature`) when there is one.
pub fn inspect_file(file: &Path, signature: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let info =
        inspect(&bytes).with_context(|| format!("{} is not a valid connector", file.display()))?;
    let report = InspectReport::new(&info);
    let signer = super::publish::signature_for(file, signature)?
        .map(|signature| signer_of(&signature, &info.sha256));
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["signature"] = serde_json::to_value(&signer)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", report.to_text());
        let line = match &signer {
            None => "(unsigned)".to_string(),
            Some(s) if s.valid => format!("ed25519 {} (valid for this sha256)", s.public_key),
            Some(s) => format!(
                "ed25519 {} (INVALID: {})",
                s.public_key,
                s.error.as_deref().unwrap_or("")
            ),
        };
        println!("signer         {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Who signed a component, and whether the signature holds.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Signer {
    /// The signer's public key (base64), as the signature names it.
    public_key: String,
    /// Whether the signature verifies for these bytes.
    valid: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn signer_of(signature: &ComponentSignature, sha256: &str) -> Signer {
    let verified = signature.verify(sha256);
    Signer {
        public_key: signature.public_key.clone(),
        valid: verified.is_ok(),
        error: verified.err().map(|e| e.to_string()),
    }
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
