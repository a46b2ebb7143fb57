//! `connector-host new NAME --auth oauth|api-key --lang ts`: a TypeScript
//! connector package — `package.json`, `connector.json` (the same manifest
//! templates as the Rust crate), `src/index.ts`, a README and a
//! `.gitignore`. It builds with `connector-host build` and works against the
//! local test provider as generated.

use std::path::{Path, PathBuf};

use super::AuthoringError;
use super::scaffold::{AuthTemplate, fill_template, manifest_template, title_of, validate_name};

const PACKAGE_JSON: &str = include_str!("templates/ts/package.json.tmpl");
const README: &str = include_str!("templates/ts/README.md.tmpl");
const GITIGNORE: &str = include_str!("templates/ts/gitignore.tmpl");
const OAUTH_TS: &str = include_str!("templates/ts/oauth.ts");
const API_KEY_TS: &str = include_str!("templates/ts/api-key.ts");

/// Creates the TypeScript package `name` in `parent/name` and returns its
/// folder. Refuses to touch an existing folder.
pub fn scaffold_ts(
    parent: &Path,
    name: &str,
    auth: AuthTemplate,
) -> Result<PathBuf, AuthoringError> {
    validate_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(AuthoringError::Usage(format!(
            "{} already exists: choose another name or remove it",
            dir.display()
        )));
    }
    let (code, auth_label, auth_flag) = match auth {
        AuthTemplate::Oauth => (OAUTH_TS, "OAuth 2.0", "oauth"),
        AuthTemplate::ApiKey => (API_KEY_TS, "API-key", "api-key"),
    };
    let title = title_of(name);
    let wasm = format!("{}.wasm", name.replace('-', "_"));
    let values: Vec<(&str, &str)> = vec![
        ("id", name),
        ("title", &title),
        ("auth_label", auth_label),
        ("auth_flag", auth_flag),
        ("wasm", &wasm),
    ];
    let files = [
        (
            dir.join("package.json"),
            fill_template(PACKAGE_JSON, &values),
        ),
        (
            dir.join("connector.json"),
            fill_template(manifest_template(auth), &values),
        ),
        (
            dir.join("src").join("index.ts"),
            fill_template(code, &values),
        ),
        (dir.join("README.md"), fill_template(README, &values)),
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
    fn typescript_templates_are_filled_and_manifests_valid() {
        let dir = tempfile::tempdir().unwrap();
        for (name, auth) in [
            ("t-oauth", AuthTemplate::Oauth),
            ("t-key", AuthTemplate::ApiKey),
        ] {
            let package = scaffold_ts(dir.path(), name, auth).unwrap();
            for file in [
                "package.json",
                "connector.json",
                "src/index.ts",
                "README.md",
            ] {
                let text = std::fs::read_to_string(package.join(file)).unwrap();
                assert!(!text.contains("{{"), "{file} has an unfilled placeholder");
            }
            let manifest = std::fs::read(package.join("connector.json")).unwrap();
            let manifest = connector_abi::manifest::Manifest::from_json(&manifest).unwrap();
            assert_eq!(manifest.id, name);
            assert!(connector_guest_build::js::is_js_package(&package));
            assert!(
                scaffold_ts(dir.path(), name, auth).is_err(),
                "existing folder"
            );
        }
    }
}
