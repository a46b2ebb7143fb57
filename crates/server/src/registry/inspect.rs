//! Reading a component without running it: its WIT world, manifest, hooks,
//! imports and hash. This is what `connector-host inspect` prints and the first
//! step of loading.

use std::collections::BTreeSet;

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmparser::{Encoding, Parser, Payload};

use connector_abi::hook::{HOOKS_EXPORT, HOOKS_SECTION, Hook, WIT_PACKAGE, WIT_VERSION};
use connector_abi::manifest::{AuthKind, MANIFEST_SECTION, Manifest, ManifestError};

/// What a connector file is, read statically.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentInfo {
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// The `connector:auth` version the component targets.
    pub wit_version: String,
    /// The validated manifest.
    pub manifest: Manifest,
    /// Hooks the component implements (from its `connector-hooks` section).
    pub hooks: BTreeSet<Hook>,
    /// Everything the component imports (interfaces of the host it needs).
    pub imports: Vec<String>,
}

/// Why a file is not a loadable connector.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Not a WebAssembly component at all.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// It targets another world or another version of ours.
    #[error("{0}")]
    WrongWorld(String),
    /// No manifest section.
    #[error(
        "no `{MANIFEST_SECTION}` custom section: build the connector with connector-sdk's #[connector] and a connector.json next to Cargo.toml"
    )]
    MissingManifest,
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The hook list is missing or names unknown hooks.
    #[error("{0}")]
    Hooks(String),
}

/// Reads a component's identity and policy. Runs no code.
pub fn inspect(bytes: &[u8]) -> Result<ComponentInfo, InspectError> {
    let sha256 = sha256_hex(bytes);
    let mut depth = 0usize;
    let mut top_level_kind = None;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut manifest_bytes = None;
    let mut hooks_bytes = None;

    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| InspectError::NotAComponent(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => {
                depth += 1;
                if depth == 1 {
                    top_level_kind = Some(encoding);
                    if encoding == Encoding::Module {
                        return Err(InspectError::NotAComponent(
                            "this is a core wasm module; build the connector for the `wasm32-wasip2` target".into(),
                        ));
                    }
                }
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| InspectError::NotAComponent(e.to_string()))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| InspectError::NotAComponent(e.to_string()))?;
                    exports.push(export.name.name.to_string());
                }
            }
            Payload::CustomSection(section)
                if section.name() == MANIFEST_SECTION
                    && manifest_bytes.replace(section.data().to_vec()).is_some() =>
            {
                return Err(InspectError::Hooks(format!(
                    "more than one `{MANIFEST_SECTION}` section"
                )));
            }
            Payload::CustomSection(section)
                if section.name() == HOOKS_SECTION
                    && hooks_bytes.replace(section.data().to_vec()).is_some() =>
            {
                return Err(InspectError::Hooks(format!(
                    "more than one `{HOOKS_SECTION}` section"
                )));
            }
            _ => {}
        }
    }
    if top_level_kind.is_none() {
        return Err(InspectError::NotAComponent("empty file".into()));
    }

    let wit_version = check_world(&exports)?;
    check_imports(&imports)?;
    let manifest = Manifest::from_json(&manifest_bytes.ok_or(InspectError::MissingManifest)?)?;
    let hooks = parse_hooks(hooks_bytes.as_deref())?;
    check_required_hooks(&manifest, &hooks)?;
    Ok(ComponentInfo {
        sha256,
        wit_version,
        manifest,
        hooks,
        imports,
    })
}

/// Interfaces a connector may import: ours, and the WASI subset linked in
/// `runtime::wasi` (what Rust's std needs). Anything else (sockets, wasi:http…)
/// is refused before any code is compiled.
pub const ALLOWED_IMPORT_PREFIXES: &[&str] = &[
    "connector:auth/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
];

fn check_imports(imports: &[String]) -> Result<(), InspectError> {
    let refused: Vec<&str> = imports
        .iter()
        .filter(|i| !ALLOWED_IMPORT_PREFIXES.iter().any(|p| i.starts_with(p)))
        .map(String::as_str)
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(InspectError::WrongWorld(format!(
        "the component imports {}, which this host does not provide: connectors get no sockets and no wasi:http; reach the network through connector:auth/http",
        refused.join(", ")
    )))
}

/// Finds our hooks export and checks its version.
fn check_world(exports: &[String]) -> Result<String, InspectError> {
    if exports.iter().any(|e| e == HOOKS_EXPORT) {
        return Ok(WIT_VERSION.to_string());
    }
    let prefix = format!("{WIT_PACKAGE}/hooks@");
    if let Some(other) = exports.iter().find_map(|e| e.strip_prefix(&prefix)) {
        return Err(InspectError::WrongWorld(format!(
            "WIT version mismatch: the component targets {WIT_PACKAGE}@{other}, this host speaks {WIT_PACKAGE}@{WIT_VERSION}; rebuild it against connector-sdk for {WIT_VERSION}"
        )));
    }
    let found = if exports.is_empty() {
        "nothing".to_string()
    } else {
        exports.join(", ")
    };
    Err(InspectError::WrongWorld(format!(
        "missing export `{HOOKS_EXPORT}`: this is not a connector component (it exports {found})"
    )))
}

fn parse_hooks(bytes: Option<&[u8]>) -> Result<BTreeSet<Hook>, InspectError> {
    let bytes = bytes.ok_or_else(|| {
        InspectError::Hooks(format!(
            "no `{HOOKS_SECTION}` custom section: put #[connector] on your `impl Connector` block"
        ))
    })?;
    let text = std::str::from_utf8(bytes)
        .map_err(|_| InspectError::Hooks(format!("`{HOOKS_SECTION}` is not UTF-8")))?;
    text.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| {
            Hook::from_name(name).ok_or_else(|| {
                InspectError::Hooks(format!("`{HOOKS_SECTION}` names an unknown hook `{name}`"))
            })
        })
        .collect()
}

/// The hooks each auth mode needs (App Connect's required interfaces, less
/// `basic-auth`: the manifest's `auth.apiKey.placement` answers it).
pub fn required_hooks(kind: AuthKind) -> &'static [Hook] {
    match kind {
        AuthKind::OAuth => &[Hook::AuthType, Hook::OauthInfo, Hook::UserInfo],
        AuthKind::ApiKey => &[Hook::AuthType, Hook::UserInfo],
    }
}

fn check_required_hooks(manifest: &Manifest, hooks: &BTreeSet<Hook>) -> Result<(), InspectError> {
    let missing: Vec<&str> = required_hooks(manifest.auth.kind)
        .iter()
        .filter(|hook| !hooks.contains(hook))
        .map(|hook| hook.name())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(InspectError::Hooks(format!(
            "the manifest's auth.type is `{}` but the component does not implement {}",
            manifest.auth.kind,
            missing.join(", ")
        )))
    }
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_outside_the_linked_subset_are_refused_by_name() {
        let ok = [
            "connector:auth/http@0.1.0".to_string(),
            "wasi:cli/stderr@0.2.6".to_string(),
        ];
        assert!(check_imports(&ok).is_ok());
        let bad = [
            "wasi:io/poll@0.2.6".to_string(),
            "wasi:sockets/tcp@0.2.6".to_string(),
        ];
        let error = check_imports(&bad).unwrap_err().to_string();
        assert!(
            error.contains("wasi:sockets/tcp@0.2.6") && !error.contains("wasi:io"),
            "{error}"
        );
    }

    #[test]
    fn each_auth_type_needs_its_hooks() {
        let manifest = Manifest::from_json(
            br#"{"id":"x","version":"1.0.0","auth":{"type":"oauth","oauth":{
                "authUrl":"https://a.example/authorize","clientId":"c","redirectUri":"https://a.example/cb"}}}"#,
        )
        .unwrap();
        let hooks: BTreeSet<Hook> = [Hook::AuthType, Hook::UserInfo].into();
        let error = check_required_hooks(&manifest, &hooks)
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not implement oauth-info"), "{error}");
        let hooks: BTreeSet<Hook> = [Hook::AuthType, Hook::UserInfo, Hook::OauthInfo].into();
        assert!(check_required_hooks(&manifest, &hooks).is_ok());
    }

    #[test]
    fn hook_lists_name_unknown_hooks() {
        assert_eq!(parse_hooks(Some(b"auth-type,user-info")).unwrap().len(), 2);
        let error = parse_hooks(Some(b"auth-type,steal-tokens"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown hook `steal-tokens`"), "{error}");
        assert!(parse_hooks(None).is_err());
    }

    #[test]
    fn garbage_and_core_modules_are_not_components() {
        assert!(matches!(
            inspect(b"nope"),
            Err(InspectError::NotAComponent(_))
        ));
        let core = inspect(b"\0asm\x01\0\0\0").unwrap_err().to_string();
        assert!(core.contains("wasm32-wasip2"), "{core}");
    }
}
