//! `connector-host new NAME --auth oauth|api-key`: a connector crate from a
//! template — `Cargo.toml` (path dependency on this checkout's `sdk-guest`,
//! its own `[workspace]`), `connector.json`, `src/lib.rs` with unit tests, a
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

/// This checkout's SDK, found when the host was compiled.
pub fn sdk_path() -> PathBuf {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    host.parent()
        .map(|root| root.join("sdk-guest"))
        .unwrap_or_else(|| host.join("../sdk-guest"))
}

const CARGO_TOML: &str = include_str!("templates/Cargo.toml.tmpl");
const README: &str = include_str!("templates/README.md.tmpl");
const GITIGNORE: &str = include_str!("templates/gitignore.tmpl");
const TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");
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

/// Creates the crate `name` (also its connector id) in `parent/name` and
/// returns its folder. Refuses to touch an existing folder.
pub fn scaffold(parent: &Path, name: &str, auth: AuthTemplate) -> Result<PathBuf, AuthoringError> {
    validate_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(AuthoringError::Usage(format!(
            "{} already exists: choose another name or remove it",
            dir.display()
        )));
    }
    let sdk = sdk_path();
    let sdk = sdk.canonicalize().unwrap_or(sdk);
    let repo = sdk.parent().map(Path::to_path_buf).unwrap_or_default();
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
    let sdk_text = sdk.display().to_string();
    let repo_text = repo.display().to_string();
    let values: Vec<(&str, &str)> = vec![
        ("id", name),
        ("crate", name),
        ("title", &title),
        ("type", &type_name),
        ("sdk_path", &sdk_text),
        ("repo_path", &repo_text),
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
            let krate = scaffold(dir.path(), name, auth).unwrap();
            for file in ["Cargo.toml", "connector.json", "src/lib.rs", "README.md"] {
                let text = std::fs::read_to_string(krate.join(file)).unwrap();
                assert!(!text.contains("{{"), "{file} has an unfilled placeholder");
            }
            let manifest = std::fs::read(krate.join("connector.json")).unwrap();
            let manifest = crate::manifest::Manifest::from_json(&manifest).unwrap();
            assert_eq!(manifest.id, name);
            let cargo: toml::Table =
                toml::from_str(&std::fs::read_to_string(krate.join("Cargo.toml")).unwrap())
                    .unwrap();
            assert!(cargo.contains_key("workspace"));
            let sdk = cargo["dependencies"]["connector-sdk"]["path"]
                .as_str()
                .unwrap();
            assert!(Path::new(sdk).join("Cargo.toml").is_file(), "{sdk}");
            assert!(scaffold(dir.path(), name, auth).is_err(), "existing folder");
        }
    }
}
