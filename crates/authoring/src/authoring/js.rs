//! JavaScript/TypeScript connector packages for the author commands: opening
//! a folder (`package.json` or `index.ts`, and `connector.json`) and building
//! it with the JavaScript SDK (`sdk-js/`) through
//! [`connector_guest_build::js`]: componentize-js with every WASI feature
//! disabled, then the manifest and hook list as custom sections.

use std::path::{Path, PathBuf};

use connector_guest_build::js;

use super::Progress;
use super::build::{BuildError, ConnectorCrate, Language};

/// The `sdk-js/` of the checkout this binary was built from: where the SDK
/// is found when neither `CONNECTOR_HOST_SDK_JS` nor the package's own
/// `node_modules` nor an ancestor folder has one.
const CHECKOUT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk-js");

/// Opens a JavaScript/TypeScript connector package; it must have a
/// `connector.json`. Its name is `package.json`'s `name`, else the folder's.
pub(crate) fn open_package(dir: &Path) -> Result<ConnectorCrate, BuildError> {
    if !dir.join("connector.json").is_file() {
        return Err(BuildError::NotACrate(format!(
            "{} has no connector.json next to package.json (the build writes it into the component)",
            dir.display()
        )));
    }
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let from_package_json = std::fs::read(dir.join("package.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|package| package["name"].as_str().map(str::to_string));
    let package = from_package_json
        .map(|name| name.rsplit('/').next().unwrap_or(&name).to_string())
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "connector".into());
    Ok(ConnectorCrate {
        dir,
        package,
        language: Language::JavaScript,
    })
}

/// Builds the package into `target_dir` (its `dist/` when `None`) and
/// returns the component.
pub(crate) fn build_package(
    krate: &ConnectorCrate,
    target_dir: Option<&Path>,
    progress: &Progress,
) -> Result<PathBuf, BuildError> {
    let target_dir = target_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| krate.default_target_dir());
    let sdk = js::find_sdk(&krate.dir, Some(Path::new(CHECKOUT_SDK)))?;
    progress.step(format!(
        "building {} with componentize-js (type-check, bundle, componentize) unless unchanged",
        krate.package
    ));
    let out = krate.wasm_path(&target_dir);
    let (built, rebuilt) = js::build_package_if_changed(&krate.dir, &sdk, &out)?;
    if !rebuilt {
        progress.step(format!(
            "{} is unchanged since its last build",
            krate.package
        ));
    }
    progress.step(format!("hooks: {}", built.hooks.join(", ")));
    Ok(built.path)
}
