//! The JSON bodies of the HTTP API and their OpenAPI schemas. The flows work
//! on plain types (`crate::flows`); these are their wire form, converted at
//! the route. Field order, `serde` names and doc comments are the wire format
//! and the schema: changing one changes what clients see.

mod connection;
mod login;
mod managed;

pub use connection::{LogoutResult, ProxyRequest, ProxyResponse, RawCredentials, ValidationResult};
pub use login::{
    ApiKeyLogin, AuthPageView, ClientCredentialsLogin, OAuthConnected, OAuthStart, OAuthStarted,
};
pub use managed::{
    ManagedFieldView, ManagedFields, ManagedFieldsUpdate, ManagedOAuthAppView, ManagedOAuthInput,
    ManagedOAuthSaved, ManagedOAuthView,
};
