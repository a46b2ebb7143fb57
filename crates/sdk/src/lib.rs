//! # connector-sdk
//!
//! Write a connector-host auth connector in Rust. Implement [`Connector`] on a unit
//! struct, put the `#[connector]` attribute on that `impl` block, write a
//! `connector.json` manifest next to your `Cargo.toml`, and build with
//! `cargo build --release --target wasm32-wasip2`. The resulting `.wasm` is the whole
//! connector: code, manifest and the list of hooks it implements.
//!
//! ```text
//! use connector_sdk::prelude::*;
//!
//! struct MyCrm;
//!
//! #[connector]
//! impl Connector for MyCrm {
//!     fn auth_type() -> AuthType {
//!         AuthType::ApiKey
//!     }
//!
//!     fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
//!         let response = http::Request::get("https://api.example.com/me")
//!             .credential(http::Credential::ApiKey)
//!             .send()?;
//!         let id = response.text();
//!         Ok(UserInfo { platform_user_id: id, name: "Ada".into(), timezone_name: None,
//!             timezone_offset: None, additional_info: vec![], message: None })
//!     }
//! }
//! ```
//!
//! Every call runs in a fresh sandbox: there is no state between calls, no
//! filesystem, no environment, no sockets. The connector reaches the network only
//! through [`http`], to the origins its manifest allows, and never holds a secret:
//! it names a [`http::Credential`] and the host injects the value.
#![deny(missing_docs)]

extern crate self as connector_sdk;

pub mod config;
mod connector;
pub mod http;
pub mod log;

pub use connector::Connector;
pub use connector_sdk_macros::connector;

pub use bindings::connector::auth::types::{AuthType, ConnectorError, KeyValue, ProviderError};
pub use bindings::exports::connector::auth::hooks::{
    ApiKeyPlacement, ClientAuthLocation, ClientSecretRef, ConnectionInfo, ManagedOauthApp,
    OauthInfoInput, OauthValues as OauthInfo, RefreshOverride, TokenRequestOverride,
    TokenResponseInput, TokenResponseView, UserIdentity as UserInfo, Validation,
};

/// Everything a connector usually needs, in one `use`.
pub mod prelude {
    pub use crate::{
        ApiKeyPlacement, AuthType, ClientAuthLocation, ClientSecretRef, ConnectionInfo, Connector,
        ConnectorError, KeyValue, ManagedOauthApp, OauthInfo, OauthInfoInput, ProviderError,
        RefreshOverride, TokenRequestOverride, TokenResponseInput, TokenResponseView, UserInfo,
        Validation, config, connector, http, log,
    };
}

/// The raw wit-bindgen output. Not part of the API: use the re-exports above.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    pub use wit_bindgen;

    wit_bindgen::generate!({
        path: "wit",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_bindings",
        default_bindings_module: "::connector_sdk::bindings",
        runtime_path: "::connector_sdk::bindings::wit_bindgen::rt",
    });
}

/// Exports a type implementing [`Connector`]; emitted by `#[connector]`.
///
/// Embeds `connector.json` (next to the connector's `Cargo.toml`) as the
/// `connector-manifest` custom section and the list of implemented hooks as the
/// `connector-hooks` custom section, so that the host and `connector-host inspect`
/// can read both without running any code.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_connector {
    ($ty:ident, $hooks:literal) => {
        const _: () = {
            const __MANIFEST: &[u8] =
                include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/connector.json"));
            #[used]
            #[unsafe(link_section = "connector-manifest")]
            static __CONNECTOR_MANIFEST: [u8; __MANIFEST.len()] = {
                let mut out = [0u8; __MANIFEST.len()];
                let mut i = 0;
                while i < __MANIFEST.len() {
                    out[i] = __MANIFEST[i];
                    i += 1;
                }
                out
            };
            #[used]
            #[unsafe(link_section = "connector-hooks")]
            static __CONNECTOR_HOOKS: [u8; $hooks.len()] = *$hooks;

            $crate::__forward_hooks!($ty);
        };
        $crate::bindings::__export_bindings!($ty with_types_in $crate::bindings);
    };
}
