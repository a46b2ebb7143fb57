//! Building a JavaScript or TypeScript connector package into a component:
//! the SDK's `bin/build.mjs` (type-check, bundle, componentize-js with every
//! WASI feature disabled), then the manifest and the implemented hooks
//! written in as the custom sections the Rust `#[connector]` macro writes.
//!
//! A JavaScript connector is a folder with a `package.json` (or an
//! `index.ts`/`src/index.ts`) and a `connector.json`, and no `Cargo.toml`.

mod fingerprint;
mod sections;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use fingerprint::{build_inputs, fingerprint};
pub use toolchain::{MIN_NODE_MAJOR, check_node, ensure_dependencies, find_sdk, node_major};

/// Why a JavaScript build failed. Each message names the fix when there is one.
#[derive(Debug, thiserror::Error)]
pub enum JsBuildError {
    /// `node` is not on `PATH`.
    #[error(
        "cannot run `node` ({0}): install Node.js {MIN_NODE_MAJOR} or newer (https://nodejs.org, or `apt-get install nodejs npm`) to build JavaScript/TypeScript connectors"
    )]
    NodeMissing(String),
    /// `node` is older than [`MIN_NODE_MAJOR`].
    #[error(
        "Node.js {0} is too old: JavaScript/TypeScript connectors need Node.js {MIN_NODE_MAJOR} or newer (https://nodejs.org)"
    )]
    NodeTooOld(String),
    /// `npm` is not on `PATH` (needed once, for `npm ci`).
    #[error(
        "cannot run `npm` ({0}): install npm (it comes with Node.js; on Debian `apt-get install npm`), or run `npm ci` in the sdk-js folder yourself"
    )]
    NpmMissing(String),
    /// `npm ci` failed.
    #[error("`npm ci` in {dir} failed ({status}): see npm's output above")]
    NpmCi {
        /// The SDK folder.
        dir: PathBuf,
        /// Its exit status.
        status: String,
    },
    /// The SDK cannot be found or is not usable.
    #[error("{0}")]
    Sdk(String),
    /// Not a JavaScript connector package.
    #[error("{0}")]
    NotAPackage(String),
    /// The implemented hooks are not valid.
    #[error("{0}")]
    Hooks(String),
    /// Type errors, bundling or componentize-js failed.
    #[error("building {dir} failed: {summary}")]
    Failed {
        /// The connector folder.
        dir: PathBuf,
        /// The build's last error line.
        summary: String,
    },
    /// Reading or writing a file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Whether `dir` is a JavaScript/TypeScript connector package: a
/// `package.json` or an `index.ts`/`index.js` (at the top or under `src/`),
/// and no `Cargo.toml`.
pub fn is_js_package(dir: &Path) -> bool {
    !dir.join("Cargo.toml").is_file()
        && [
            "package.json",
            "index.ts",
            "index.js",
            "src/index.ts",
            "src/index.js",
        ]
        .iter()
        .any(|file| dir.join(file).is_file())
}

/// What a JavaScript build produced.
#[derive(Debug, Clone)]
pub struct JsComponent {
    /// The component, with its manifest and hook list.
    pub path: PathBuf,
    /// The implemented hooks, by WIT name.
    pub hooks: Vec<String>,
}

/// Builds the connector package `dir` with the SDK at `sdk_dir` into `out`.
/// Checks node, installs the SDK's pinned dependencies when absent, runs the
/// build (its messages go to this process's stderr) and writes the sections.
pub fn build_package(dir: &Path, sdk_dir: &Path, out: &Path) -> Result<JsComponent, JsBuildError> {
    let manifest_path = dir.join("connector.json");
    let manifest = std::fs::read(&manifest_path).map_err(|e| {
        JsBuildError::NotAPackage(format!(
            "{} has no connector.json next to the code ({e}): the manifest goes there, as for a Rust crate",
            dir.display()
        ))
    })?;
    check_node()?;
    ensure_dependencies(sdk_dir)?;
    let hooks = componentize(dir, sdk_dir, out)?;
    let hooks_text = sections::hooks_text(&hooks)?;
    let io = |context: String| move |source| JsBuildError::Io { context, source };
    let mut component = std::fs::read(out).map_err(io(format!("read {}", out.display())))?;
    sections::append(&mut component, &manifest, &hooks_text);
    std::fs::write(out, component).map_err(io(format!("write {}", out.display())))?;
    Ok(JsComponent {
        path: out.to_path_buf(),
        hooks,
    })
}

/// Like [`build_package`], but returns the last build (and `false`) when
/// nothing it reads changed since then ([`build_inputs`]; the fingerprint
/// and the hooks are kept in `OUT` with the extension `fingerprint`).
pub fn build_package_if_changed(
    dir: &Path,
    sdk_dir: &Path,
    out: &Path,
) -> Result<(JsComponent, bool), JsBuildError> {
    let stamp = out.with_extension("fingerprint");
    let fingerprint = fingerprint(&build_inputs(dir, sdk_dir));
    let last = std::fs::read_to_string(&stamp).unwrap_or_default();
    if let Some((last_fingerprint, hooks)) = last.split_once('\n')
        && last_fingerprint == fingerprint
        && out.is_file()
    {
        let hooks = hooks
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
        return Ok((
            JsComponent {
                path: out.to_path_buf(),
                hooks,
            },
            false,
        ));
    }
    let built = build_package(dir, sdk_dir, out)?;
    let _ = std::fs::write(&stamp, format!("{fingerprint}\n{}", built.hooks.join(",")));
    Ok((built, true))
}

/// Runs `node bin/build.mjs DIR OUT`; returns the hooks it reports.
fn componentize(dir: &Path, sdk_dir: &Path, out: &Path) -> Result<Vec<String>, JsBuildError> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|source| JsBuildError::Io {
            context: format!("create {}", parent.display()),
            source,
        })?;
    }
    let output = Command::new("node")
        .arg(sdk_dir.join("bin").join("build.mjs"))
        .arg(dir)
        .arg(out)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| JsBuildError::NodeMissing(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(JsBuildError::Failed {
            dir: dir.to_path_buf(),
            summary: format!(
                "the JavaScript build exited with {} (its errors are above)",
                output.status
            ),
        });
    }
    let report = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(report).map_err(|e| JsBuildError::Failed {
            dir: dir.to_path_buf(),
            summary: format!("the build's report is not JSON ({e}): {report}"),
        })?;
    Ok(report["hooks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|hook| hook.as_str().map(str::to_string))
        .collect())
}
