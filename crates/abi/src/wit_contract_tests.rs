//! The hook list and the WIT version are written once in this crate: this test
//! holds them to the WIT package the SDK owns (`crates/sdk/wit`), so a hook
//! added to the WIT and not here (or a version bumped on one side) fails.

use std::path::Path;

use crate::hook::{HOOKS_EXPORT, Hook, WIT_PACKAGE, WIT_VERSION};

fn sdk_wit() -> (wit_parser::Resolve, wit_parser::PackageId) {
    let mut resolve = wit_parser::Resolve::default();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/wit");
    let (package, _) = resolve
        .push_dir(&dir)
        .expect("the SDK's WIT package parses");
    (resolve, package)
}

#[test]
fn the_hook_list_is_the_hooks_interface_in_wit_order() {
    let (resolve, package) = sdk_wit();
    let hooks = resolve.packages[package].interfaces["hooks"];
    let wit_names: Vec<&str> = resolve.interfaces[hooks]
        .functions
        .keys()
        .map(String::as_str)
        .collect();
    let listed: Vec<&str> = Hook::ALL.iter().map(|hook| hook.name()).collect();
    assert_eq!(listed, wit_names);
    for hook in Hook::ALL {
        assert_eq!(Hook::from_name(hook.name()), Some(*hook));
        assert_eq!(hook.rust_name(), hook.name().replace('-', "_"));
    }
}

#[test]
fn the_wit_package_and_version_are_the_sdks() {
    let (resolve, package) = sdk_wit();
    let name = &resolve.packages[package].name;
    assert_eq!(format!("{}:{}", name.namespace, name.name), WIT_PACKAGE);
    assert_eq!(
        name.version.as_ref().map(ToString::to_string).as_deref(),
        Some(WIT_VERSION)
    );
    assert_eq!(HOOKS_EXPORT, format!("{WIT_PACKAGE}/hooks@{WIT_VERSION}"));
}
