//! Node and npm for a JavaScript build: found on `PATH`, new enough, and the
//! SDK's pinned dependencies installed with `npm ci` when they are absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::JsBuildError;

/// The oldest Node.js major the build supports (componentize-js needs 18).
pub const MIN_NODE_MAJOR: u32 = 18;

/// Checks that `node` runs and is at least [`MIN_NODE_MAJOR`]; returns its
/// version (`v20.11.0`).
pub fn check_node() -> Result<String, JsBuildError> {
    let output = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| JsBuildError::NodeMissing(e.to_string()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() {
        return Err(JsBuildError::NodeMissing(format!(
            "`node --version` exited with {}",
            output.status
        )));
    }
    match node_major(&version) {
        Some(major) if major >= MIN_NODE_MAJOR => Ok(version),
        _ => Err(JsBuildError::NodeTooOld(version)),
    }
}

/// `v20.11.0` → 20.
pub fn node_major(version: &str) -> Option<u32> {
    version
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Runs `npm ci` in `sdk_dir` when its `node_modules` lacks what the lockfile
/// pins (a fresh clone), so the build works with node and npm alone.
pub fn ensure_dependencies(sdk_dir: &Path) -> Result<(), JsBuildError> {
    if installed(sdk_dir) {
        return Ok(());
    }
    if !sdk_dir.join("package-lock.json").is_file() {
        return Err(JsBuildError::Sdk(format!(
            "{} has no package-lock.json: it is not the connector-host JavaScript SDK",
            sdk_dir.display()
        )));
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(sdk_dir)
        .status()
        .map_err(|e| JsBuildError::NpmMissing(e.to_string()))?;
    if !status.success() {
        return Err(JsBuildError::NpmCi {
            dir: sdk_dir.to_path_buf(),
            status: status.to_string(),
        });
    }
    Ok(())
}

/// Whether `npm ci` has run: the build's own tools and the generated types.
fn installed(sdk_dir: &Path) -> bool {
    [
        "node_modules/@bytecodealliance/componentize-js/package.json",
        "node_modules/esbuild/package.json",
        "node_modules/typescript/package.json",
        "generated/interfaces/connector-auth-hooks.d.ts",
    ]
    .iter()
    .all(|file| sdk_dir.join(file).is_file())
}

/// Where the JavaScript SDK (`@connector-host/sdk`) is, for a connector
/// folder: `CONNECTOR_HOST_SDK_JS`, else the connector's own
/// `node_modules/@connector-host/sdk`, else an `sdk-js/` beside an ancestor
/// (a checkout of this repository), else `fallback`.
pub fn find_sdk(connector_dir: &Path, fallback: Option<&Path>) -> Result<PathBuf, JsBuildError> {
    let is_sdk = |dir: &Path| dir.join("bin").join("build.mjs").is_file();
    if let Some(dir) = std::env::var_os("CONNECTOR_HOST_SDK_JS") {
        let dir = PathBuf::from(dir);
        return if is_sdk(&dir) {
            Ok(dir)
        } else {
            Err(JsBuildError::Sdk(format!(
                "CONNECTOR_HOST_SDK_JS={} is not the JavaScript SDK (no bin/build.mjs)",
                dir.display()
            )))
        };
    }
    let installed = connector_dir.join("node_modules/@connector-host/sdk");
    let beside_ancestor = connector_dir
        .ancestors()
        .map(|dir| dir.join("sdk-js"))
        .find(|dir| is_sdk(dir));
    [
        Some(installed),
        beside_ancestor,
        fallback.map(Path::to_path_buf),
    ]
    .into_iter()
    .flatten()
    .find(|dir| is_sdk(dir))
    .ok_or_else(|| {
        JsBuildError::Sdk(format!(
            "cannot find the JavaScript SDK for {}: run `npm install @connector-host/sdk` there, \
                 or set CONNECTOR_HOST_SDK_JS to the sdk-js folder of a connector-host checkout",
            connector_dir.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::node_major;

    #[test]
    fn reads_the_major_version_of_node() {
        assert_eq!(node_major("v20.20.2\n"), Some(20));
        assert_eq!(node_major("v16.0.0"), Some(16));
        assert_eq!(node_major("20.1"), None);
        assert_eq!(node_major(""), None);
    }
}
