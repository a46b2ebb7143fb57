//! Building a connector crate into a `.wasm` component: `cargo build --release
//! --target wasm32-wasip2`, with a progress display, the compiler's messages
//! passed through, and clear errors when cargo or the target is missing. A
//! JavaScript/TypeScript package folder is built by [`super::js`] instead.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Progress;

/// The target connectors are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `cargo` is not on `PATH`.
    #[error(
        "cannot run `cargo` ({0}): install Rust with rustup (https://rustup.rs), then run `rustup target add wasm32-wasip2`"
    )]
    CargoMissing(String),
    /// The toolchain has no `wasm32-wasip2` standard library.
    #[error(
        "the Rust toolchain used for {crate_dir} has no `wasm32-wasip2` target: run `rustup target add wasm32-wasip2{toolchain}`"
    )]
    TargetMissing {
        /// The crate.
        crate_dir: String,
        /// ` --toolchain <name>` when a specific toolchain is active.
        toolchain: String,
    },
    /// Not a connector crate.
    #[error("{0}")]
    NotACrate(String),
    /// Building a JavaScript/TypeScript package failed (node or npm missing
    /// or too old, type errors, componentize-js).
    #[error(transparent)]
    Js(#[from] connector_guest_build::js::JsBuildError),
    /// Compile errors (printed above as cargo reported them).
    #[error("the build of {package} failed: {summary}")]
    Failed {
        /// The package.
        package: String,
        /// The first error line, or the exit status.
        summary: String,
    },
}

/// The language of a connector folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A Rust crate (`Cargo.toml`), built with cargo.
    Rust,
    /// A JavaScript/TypeScript package, built with componentize-js.
    JavaScript,
}

/// A connector crate (or JavaScript/TypeScript package) on disk.
#[derive(Debug, Clone)]
pub struct ConnectorCrate {
    /// The folder with `Cargo.toml` (or `package.json`).
    pub dir: PathBuf,
    /// The package name.
    pub package: String,
    /// Rust or JavaScript.
    pub language: Language,
}

impl ConnectorCrate {
    /// Reads `dir/Cargo.toml`, or a JavaScript/TypeScript package (see
    /// [`connector_guest_build::js::is_js_package`]); either must also have a
    /// `connector.json`.
    pub fn open(dir: &Path) -> Result<Self, BuildError> {
        if connector_guest_build::js::is_js_package(dir) {
            return super::js::open_package(dir);
        }
        let manifest = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).map_err(|e| {
            BuildError::NotACrate(format!(
                "{} is not a connector crate: cannot read {}: {e}",
                dir.display(),
                manifest.display()
            ))
        })?;
        let value: toml::Table = toml::from_str(&text).map_err(|e| {
            BuildError::NotACrate(format!("{}: invalid TOML: {e}", manifest.display()))
        })?;
        let package = value
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| {
                BuildError::NotACrate(format!("{}: no [package] name", manifest.display()))
            })?
            .to_string();
        if !dir.join("connector.json").is_file() {
            return Err(BuildError::NotACrate(format!(
                "{} has no connector.json next to Cargo.toml (the #[connector] attribute embeds it)",
                dir.display()
            )));
        }
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        Ok(Self {
            dir,
            package,
            language: Language::Rust,
        })
    }

    /// The file the build writes under `target_dir`.
    pub fn wasm_path(&self, target_dir: &Path) -> PathBuf {
        let file = format!("{}.wasm", self.package.replace('-', "_"));
        match self.language {
            Language::Rust => target_dir.join(TARGET).join("release").join(file),
            Language::JavaScript => target_dir.join(file),
        }
    }

    /// The default target folder: the crate's own `target/` (`dist/` for a
    /// JavaScript package).
    pub fn default_target_dir(&self) -> PathBuf {
        match self.language {
            Language::Rust => self.dir.join("target"),
            Language::JavaScript => self.dir.join("dist"),
        }
    }
}

/// A `cargo` command for the crate, without the outer cargo's settings (when
/// run from a build script, a test or `cargo run`).
fn cargo(dir: &Path) -> Command {
    let mut command = Command::new("cargo");
    command
        .current_dir(dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTC");
    command
}

/// Checks that cargo runs and the toolchain the crate uses has the target.
fn check_toolchain(krate: &ConnectorCrate) -> Result<(), BuildError> {
    let output = cargo(&krate.dir)
        .args(["--version"])
        .output()
        .map_err(|e| BuildError::CargoMissing(e.to_string()))?;
    if !output.status.success() {
        return Err(BuildError::CargoMissing(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    // `rustc --print sysroot` of the toolchain cargo uses in that folder
    // (rust-toolchain.toml, RUSTUP_TOOLCHAIN, the default).
    let mut rustc = Command::new("rustc");
    rustc.current_dir(&krate.dir).args(["--print", "sysroot"]);
    if let Ok(output) = rustc.output()
        && output.status.success()
    {
        let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if !sysroot.join("lib").join("rustlib").join(TARGET).is_dir() {
            let toolchain = std::env::var("RUSTUP_TOOLCHAIN")
                .ok()
                .or_else(|| {
                    sysroot
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .map(|t| format!(" --toolchain {t}"))
                .unwrap_or_default();
            return Err(BuildError::TargetMissing {
                crate_dir: krate.dir.display().to_string(),
                toolchain,
            });
        }
    }
    Ok(())
}

/// Builds `krate` in release mode for `wasm32-wasip2` into `target_dir` (the
/// crate's `target/` when `None`) and returns the `.wasm` file. Compiler
/// messages are shown through `progress`.
pub fn build_crate(
    krate: &ConnectorCrate,
    target_dir: Option<&Path>,
    progress: &Progress,
) -> Result<PathBuf, BuildError> {
    if krate.language == Language::JavaScript {
        return super::js::build_package(krate, target_dir, progress);
    }
    check_toolchain(krate)?;
    let target_dir = target_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| krate.default_target_dir());
    progress.step(format!("building {} for {TARGET}", krate.package));
    let mut child = cargo(&krate.dir)
        .args(["build", "--release", "--target", TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(krate.dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BuildError::CargoMissing(e.to_string()))?;

    // stdout: JSON messages (artifacts); stderr: cargo's status lines and the
    // rendered diagnostics.
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let artifacts = std::thread::spawn(move || {
        let mut wasm = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if message["reason"] == "compiler-artifact" {
                for file in message["filenames"].as_array().into_iter().flatten() {
                    if let Some(file) = file.as_str()
                        && file.ends_with(".wasm")
                    {
                        wasm = Some(PathBuf::from(file));
                    }
                }
            }
        }
        wasm
    });
    let mut first_error = None;
    let mut target_missing = false;
    for line in lines_rx {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("Compiling ") {
            progress.step(format!("compiling {rest}"));
            continue;
        }
        if trimmed.starts_with("Blocking waiting") {
            progress.step("waiting for another build to release the target folder");
            continue;
        }
        if [
            "Finished ",
            "Downloaded ",
            "Downloading ",
            "Updating ",
            "Locking ",
            "Adding ",
        ]
        .iter()
        .any(|p| trimmed.starts_with(p))
        {
            continue;
        }
        if line.contains("target may not be installed")
            || line.contains("can't find crate for `core`")
        {
            target_missing = true;
        }
        if first_error.is_none() && trimmed.starts_with("error") {
            first_error = Some(trimmed.to_string());
        }
        progress.line(&line);
    }
    let _ = reader.join();
    let status = child
        .wait()
        .map_err(|e| BuildError::CargoMissing(e.to_string()))?;
    let wasm = artifacts.join().ok().flatten();
    if target_missing {
        return Err(BuildError::TargetMissing {
            crate_dir: krate.dir.display().to_string(),
            toolchain: String::new(),
        });
    }
    if !status.success() {
        return Err(BuildError::Failed {
            package: krate.package.clone(),
            summary: first_error.unwrap_or_else(|| format!("cargo exited with {status}")),
        });
    }
    let wasm = wasm.unwrap_or_else(|| krate.wasm_path(&target_dir));
    if !wasm.is_file() {
        return Err(BuildError::Failed {
            package: krate.package.clone(),
            summary: format!(
                "no {} was produced: is the crate a `cdylib` (`[lib] crate-type = [\"cdylib\"]`)?",
                wasm.display()
            ),
        });
    }
    Ok(wasm)
}
