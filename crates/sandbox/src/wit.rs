//! The WIT types of the `connector:auth` world that code outside the sandbox
//! names: hook inputs and results, the typed connector error, and the `http`
//! capability's request types (for the host's own audited requests).
//!
//! The bindings themselves (`crate::generated`, the host's one `bindgen!`)
//! are private; everything public is re-exported here, by name.

pub use crate::generated::connector::auth::types::{
    AuthType, ConnectorError, KeyValue, ProviderError,
};

/// The `hooks` interface: what hooks take and return.
pub mod hooks {
    pub use crate::generated::exports::connector::auth::hooks::{
        ApiKeyPlacement, ClientAuthLocation, ClientSecretRef, ConnectionInfo, ManagedOauthApp,
        OauthInfoInput, OauthValues, RefreshOverride, TokenRequestOverride, TokenResponseInput,
        TokenResponseView, UserIdentity, Validation,
    };
}

/// The `http` capability's types.
pub mod http {
    pub use crate::generated::connector::auth::http::{
        Credential, HttpError, Method, Request, Response, SecretHeader,
    };
}

/// The generated pre-instance of the world, for the benchmark that compares
/// the host's hook call with a naive wasmtime baseline. Not for hosting
/// connectors: use [`crate::runtime::Runtime`].
#[doc(hidden)]
pub use crate::generated::ConnectorPre;
