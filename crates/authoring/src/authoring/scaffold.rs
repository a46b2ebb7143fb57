//! `connector-host new NAME --auth oauth|api-key`: a connector crate from a
//! template — `Cargo.toml` (a dependency on `connector-sdk` by version, or by
//! path with `--sdk-path`; its own `[workspace]`), `connector.json`, `src/lib.rs` with unit tests, a
//! README, a `rust-toolchain.toml` with the `wasm32-wasip2` target and a
//! `.gitignore`. It builds with one command and works against the local test
//! provider as generated.

use std::path::{Path, PathBuf};

use super::AuthoringError;

/// Which template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthTemplate {
    /// OAuth 2.0 authorization code (App Connect `auth.type: oauth`).
    Oauth,
    /// API key (App Connect `auth.type: apiKey`).
    ApiKey,
}

/// The language of a new connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate (the default).
    #[default]
    Rust,
    /// A TypeScript package built with componentize-js (`sdk-js/`).
    Ts,
}

/// The `connector-sdk` version a new crate depends on: the version of this
/// host (the SDK and the host are released together).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where a new crate takes `connector-sdk` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// From the registry, by version: `connector-sdk = "0.1.0"`.
    Version(String),
    /// From a local folder (a checkout's `crates/sdk`, or an unpacked package).
    Path(PathBuf),
}

impl Default for SdkSource {
    fn default() -> Self {
        SdkSource::Version(SDK_VERSION.to_string())
    }
}

impl SdkSource {
    /// The dependency's right-hand side in `Cargo.toml`.
    fn dependency(&self) -> Result<String, AuthoringError> {
        match self {
            SdkSource::Version(version) => Ok(format!("{version:?}")),
            SdkSource::Path(path) => {
                if !path.join("Cargo.toml").is_file() {
                    return Err(AuthoringError::Usage(format!(
                        "--sdk-path {}: no Cargo.toml there (give the folder of the connector-sdk crate, e.g. crates/sdk of a checkout)",
                        path.display()
                    )));
                }
                let path = path.canonicalize().unwrap_or_else(|_| path.clone());
                Ok(format!("{{ path = {:?} }}", path.display().to_string()))
            }
        }
    }
}

const CARGO_TOML: &str = include_str!("templates/Cargo.toml.tmpl");
const README: &str = include_str!("templates/README.md.tmpl");
const GITIGNORE: &str = include_str!("templates/gitignore.tmpl");
/// The same as the repository's `rust-toolchain.toml` (a test checks it).
const TOOLCHAIN: &str = include_str!("templates/rust-toolchain.toml.tmpl");
const OAUTH_MANIFEST: &str = include_str!("templates/oauth/connector.json");
const OAUTH_LIB: &str = include_str!("templates/oauth/lib.rs");
const OAUTH_NOTES: &str = include_str!("templates/oauth/notes.md");
const API_KEY_MANIFEST: &str = include_str!("templates/api-key/connector.json");
const API_KEY_LIB: &str = include_str!("templates/api-key/lib.rs");
const API_KEY_NOTES: &str = include_str!("templates/api-key/notes.md");

/// Checks `name` is a usable connector id (the manifest rule: 1–63 of `a-z`,
/// `0-9`, `-`, not starting with `-`) and starts with a letter (it is also
/// the crate name).
pub fn validate_name(name: &str) -> Result<(), AuthoringError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(AuthoringError::Usage(format!(
            "`{name}` cannot be a connector id: use 1–63 characters of a-z, 0-9 and -, starting with a letter (e.g. acme-crm)"
        )))
    }
}

/// `acme-crm` → `AcmeCrm`.
fn type_name(id: &str) -> String {
    id.split('-')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `acme-crm` → `Acme Crm`.
fn title(id: &str) -> String {
    id.split('-')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (key, value)| {
            text.replace(&format!("{{{{{key}}}}}"), value)
        })
}

/// `{{key}}` → value, for every pair.
pub(crate) fn fill_template(template: &str, values: &[(&str, &str)]) -> String {
    fill(template, values)
}

/// `acme-crm` → `Acme Crm`.
pub(crate) fn title_of(id: &str) -> String {
    title(id)
}

/// The manifest template of `auth` (shared by every language).
pub(crate) fn manifest_template(auth: AuthTemplate) -> &'static str {
    match auth {
        AuthTemplate::Oauth => OAUTH_MANIFEST,
        AuthTemplate::ApiKey => API_KEY_MANIFEST,
    }
}

/// Creates the crate `name` (also its connector id) in `parent/name` and
/// returns its folder. Refuses to touch an existing folder.
pub fn scaffold(
    parent: &Path,
    name: &str,
    auth: AuthTemplate,
    sdk: &SdkSource,
) -> Result<PathBuf, AuthoringError> {
    validate_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(AuthoringError::Usage(format!(
            "{} already exists: choose another name or remove it",
            dir.display()
        )));
    }
    let sdk_dependency = sdk.dependency()?;
    let (manifest, lib, notes, auth_label, auth_flag) = match auth {
        AuthTemplate::Oauth => (OAUTH_MANIFEST, OAUTH_LIB, OAUTH_NOTES, "OAuth 2.0", "oauth"),
        AuthTemplate::ApiKey => (
            API_KEY_MANIFEST,
            API_KEY_LIB,
            API_KEY_NOTES,
            "API-key",
            "api-key",
        ),
    };
    let title = title(name);
    let type_name = type_name(name);
    let wasm = format!("{}.wasm", name.replace('-', "_"));
    let secret_env = super::secret_env_var(&format!("{name}-client-secret"))
        .trim_start_matches("CONNECTOR_SECRET_")
        .to_string();
    let values: Vec<(&str, &str)> = vec![
        ("id", name),
        ("crate", name),
        ("title", &title),
        ("type", &type_name),
        ("sdk_dependency", &sdk_dependency),
        ("sdk_version", SDK_VERSION),
        ("auth_label", auth_label),
        ("auth_flag", auth_flag),
        ("wasm", &wasm),
        ("secret_env", &secret_env),
    ];
    let notes = fill(notes, &values);
    let mut readme_values = values.clone();
    readme_values.push(("auth_notes", &notes));
    let files: Vec<(PathBuf, String)> = vec![
        (dir.join("Cargo.toml"), fill(CARGO_TOML, &values)),
        (dir.join("connector.json"), fill(manifest, &values)),
        (dir.join("src").join("lib.rs"), fill(lib, &values)),
        (dir.join("README.md"), fill(README, &readme_values)),
        (dir.join("rust-toolchain.toml"), TOOLCHAIN.to_string()),
        (dir.join(".gitignore"), GITIGNORE.to_string()),
    ];
    std::fs::create_dir_all(dir.join("src"))
        .map_err(|e| AuthoringError::io(format!("creating {}", dir.display()), e))?;
    for (path, content) in files {
        std::fs::write(&path, content)
            .map_err(|e| AuthoringError::io(format!("writing {}", path.display()), e))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_types_and_titles() {
        assert_eq!(type_name("acme-crm2"), "AcmeCrm2");
        assert_eq!(title("acme-crm"), "Acme Crm");
        assert!(validate_name("acme-crm").is_ok());
        for bad in ["", "Acme", "-x", "x-", "1x", "a_b", &"a".repeat(64)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_are_filled_and_manifests_valid() {
        let dir = tempfile::tempdir().unwrap();
        for (name, auth) in [
            ("t-oauth", AuthTemplate::Oauth),
            ("t-key", AuthTemplate::ApiKey),
        ] {
            let krate = scaffold(dir.path(), name, auth, &SdkSource::default()).unwrap();
            for file in ["Cargo.toml", "connector.json", "src/lib.rs", "README.md"] {
                let text = std::fs::read_to_string(krate.join(file)).unwrap();
                assert!(!text.contains("{{"), "{file} has an unfilled placeholder");
            }
            let manifest = std::fs::read(krate.join("connector.json")).unwrap();
            let manifest = connector_abi::manifest::Manifest::from_json(&manifest).unwrap();
            assert_eq!(manifest.id, name);
            let cargo: toml::Table =
                toml::from_str(&std::fs::read_to_string(krate.join("Cargo.toml")).unwrap())
                    .unwrap();
            assert!(cargo.contains_key("workspace"));
            assert_eq!(
                cargo["dependencies"]["connector-sdk"].as_str(),
                Some(SDK_VERSION)
            );
            assert!(
                scaffold(dir.path(), name, auth, &SdkSource::default()).is_err(),
                "existing folder"
            );
        }
    }

    #[test]
    fn a_local_sdk_path_is_written_as_a_path_dependency() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        let krate = scaffold(
            dir.path(),
            "t-local",
            AuthTemplate::ApiKey,
            &SdkSource::Path(sdk.clone()),
        )
        .unwrap();
        let cargo: toml::Table =
            toml::from_str(&std::fs::read_to_string(krate.join("Cargo.toml")).unwrap()).unwrap();
        let path = cargo["dependencies"]["connector-sdk"]["path"]
            .as_str()
            .unwrap();
        assert_eq!(Path::new(path), sdk.canonicalize().unwrap());

        let missing = SdkSource::Path(dir.path().join("nowhere"));
        let error = scaffold(dir.path(), "t-missing", AuthTemplate::ApiKey, &missing).unwrap_err();
        assert!(error.to_string().contains("--sdk-path"), "{error}");
    }

    #[test]
    fn the_toolchain_template_is_the_repository_toolchain() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rust-toolchain.toml");
        assert_eq!(TOOLCHAIN, std::fs::read_to_string(root).unwrap());
    }
}
