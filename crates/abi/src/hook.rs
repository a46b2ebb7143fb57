//! The hooks of the `connector:auth` world, by name.

use serde::Serialize;

/// The WIT package this host speaks.
pub const WIT_PACKAGE: &str = "connector:auth";
/// Its version: a component must target exactly this one.
pub const WIT_VERSION: &str = "0.1.0";
/// The interface a connector exports.
pub const HOOKS_EXPORT: &str = "connector:auth/hooks@0.1.0";
/// The custom section listing the hooks a component implements.
pub const HOOKS_SECTION: &str = "connector-hooks";

/// `"user-info"` as `"user_info"`, at compile time.
macro_rules! rust_name {
    ($name:literal) => {{
        const BYTES: [u8; $name.len()] = {
            let mut bytes = [0u8; $name.len()];
            let source = $name.as_bytes();
            let mut i = 0;
            while i < source.len() {
                bytes[i] = if source[i] == b'-' { b'_' } else { source[i] };
                i += 1;
            }
            bytes
        };
        match std::str::from_utf8(&BYTES) {
            Ok(name) => name,
            Err(_) => panic!("hook names are ASCII"),
        }
    }};
}

macro_rules! hooks {
    ($($variant:ident => $name:literal,)*) => {
        /// One hook a connector may export.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "kebab-case")]
        pub enum Hook { $(#[doc = concat!("`", $name, "`")] $variant,)* }

        impl Hook {
            /// Every hook, in WIT order.
            pub const ALL: &[Hook] = &[$(Hook::$variant,)*];

            /// The WIT name, e.g. `user-info`.
            pub fn name(self) -> &'static str {
                match self { $(Hook::$variant => $name,)* }
            }

            /// The Rust method name of the SDK's `Connector` trait, e.g. `user_info`.
            pub fn rust_name(self) -> &'static str {
                match self { $(Hook::$variant => rust_name!($name),)* }
            }

            /// Looks a hook up by its WIT name.
            pub fn from_name(name: &str) -> Option<Hook> {
                match name { $($name => Some(Hook::$variant),)* _ => None }
            }
        }
    };
}

hooks! {
    AuthType => "auth-type",
    OauthInfo => "oauth-info",
    OverridingOauthOption => "overriding-oauth-option",
    CredentialsFromTokenResponse => "credentials-from-token-response",
    UserInfo => "user-info",
    BasicAuth => "basic-auth",
    Unauthorize => "unauthorize",
    Refresh => "refresh",
    AuthValidation => "auth-validation",
    RefreshUserInfo => "refresh-user-info",
    TestConnection => "test-connection",
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
