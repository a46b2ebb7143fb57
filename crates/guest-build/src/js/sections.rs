//! The custom sections a JavaScript component gets after componentize-js:
//! the manifest and the implemented hooks, under the names the Rust
//! `#[connector]` macro uses, so `check`, `inspect` and the registry read a
//! JavaScript connector exactly like a Rust one.

use connector_abi::Hook;
use connector_abi::hook::HOOKS_SECTION;
use connector_abi::manifest::MANIFEST_SECTION;
use wasm_encoder::{ComponentSection, CustomSection};

use super::JsBuildError;

/// Checks the hook names (WIT names such as `user-info`) against the one hook
/// list and returns the `connector-hooks` section's text (`a,b,c`).
pub fn hooks_text(hooks: &[String]) -> Result<String, JsBuildError> {
    if let Some(unknown) = hooks.iter().find(|name| Hook::from_name(name).is_none()) {
        let known: Vec<&str> = Hook::ALL.iter().map(|hook| hook.name()).collect();
        return Err(JsBuildError::Hooks(format!(
            "`{unknown}` is not a connector hook; the hooks are: {}",
            known.join(", ")
        )));
    }
    if !hooks.iter().any(|name| name == Hook::AuthType.name()) {
        return Err(JsBuildError::Hooks(
            "the connector does not implement `authType` (required)".into(),
        ));
    }
    Ok(hooks.join(","))
}

/// Appends the manifest and the hook list to `component` as top-level
/// custom sections.
pub fn append(component: &mut Vec<u8>, manifest: &[u8], hooks: &str) {
    for (name, data) in [
        (MANIFEST_SECTION, manifest),
        (HOOKS_SECTION, hooks.as_bytes()),
    ] {
        CustomSection {
            name: name.into(),
            data: data.into(),
        }
        .append_to_component(component);
    }
}

#[cfg(test)]
mod tests {
    use super::hooks_text;

    #[test]
    fn refuses_an_unknown_hook_and_a_missing_auth_type() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            hooks_text(&names(&["auth-type", "user-info"])).unwrap(),
            "auth-type,user-info"
        );
        let unknown = hooks_text(&names(&["auth-type", "get-user-info"])).unwrap_err();
        assert!(
            unknown
                .to_string()
                .contains("`get-user-info` is not a connector hook")
        );
        let missing = hooks_text(&names(&["user-info"])).unwrap_err();
        assert!(missing.to_string().contains("authType"));
    }
}
