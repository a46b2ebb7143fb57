//! The [`Connector`] trait and the glue from the raw bindings to it.

use crate::{
    ApiKeyPlacement, AuthType, ConnectionInfo, ConnectorError, KeyValue, OauthInfo, OauthInfoInput,
    RefreshOverride, TokenRequestOverride, TokenResponseInput, UserInfo, Validation,
};

fn not_supported(hook: &str) -> ConnectorError {
    ConnectorError::NotSupported(format!("this connector does not implement `{hook}`"))
}

/// The auth hooks of a connector. Only [`Connector::auth_type`] is required; every
/// other hook has a default that answers [`ConnectorError::NotSupported`], and the
/// `#[connector]` attribute records which hooks you wrote so the host never calls
/// the others.
///
/// Each call runs in a fresh instance: keep no state in statics between calls.
pub trait Connector {
    /// Which auth mode the connector uses (App Connect `getAuthType`). Must equal
    /// the manifest's `auth.type`; the host refuses to load the connector otherwise.
    fn auth_type() -> AuthType;

    /// Server-side OAuth values (App Connect `getOauthInfo`): client id, a
    /// *reference* to the client secret, token URL, redirect URI. Regional
    /// connectors usually derive URLs from `input.hostname`. Return a
    /// `fail_message` to stop the flow with a message for the user.
    fn oauth_info(input: OauthInfoInput) -> Result<OauthInfo, ConnectorError> {
        let _ = input;
        Err(not_supported("oauth-info"))
    }

    /// Declarative changes to the code-exchange request (App Connect
    /// `getOverridingOAuthOption`, Membrane `getTokenData`): extra body
    /// parameters, headers, where the client authenticates.
    fn overriding_oauth_option(info: OauthInfo) -> Result<TokenRequestOverride, ConnectorError> {
        let _ = info;
        Err(not_supported("overriding-oauth-option"))
    }

    /// Non-secret values to keep from the token response (Membrane
    /// `getCredentialsFromTokenResponse`); the token fields are removed before you
    /// see it. May call the CRM with [`http::Credential::AccessToken`](crate::http::Credential).
    fn credentials_from_token_response(
        input: TokenResponseInput,
    ) -> Result<Vec<KeyValue>, ConnectorError> {
        let _ = input;
        Err(not_supported("credentials-from-token-response"))
    }

    /// Who the connected user is (App Connect `getUserInfo`). Call the CRM through
    /// [`http`](crate::http) naming the credential to inject.
    fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let _ = connection;
        Err(not_supported("user-info"))
    }

    /// How the host places the API key on requests (App Connect `getBasicAuth`).
    fn basic_auth(connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        let _ = connection;
        Err(not_supported("basic-auth"))
    }

    /// Logout cleanup such as the CRM's revoke endpoint (App Connect
    /// `unAuthorize`). The host clears its copy of the credentials in any case.
    fn unauthorize(connection: ConnectionInfo) -> Result<Option<String>, ConnectorError> {
        let _ = connection;
        Err(not_supported("unauthorize"))
    }

    /// Overrides of the host's token refresh (App Connect
    /// `checkAndRefreshAccessToken`, Membrane `refreshCredentials`).
    fn refresh(connection: ConnectionInfo) -> Result<RefreshOverride, ConnectorError> {
        let _ = connection;
        Err(not_supported("refresh"))
    }

    /// Whether the connection still works (App Connect `authValidation`).
    fn auth_validation(connection: ConnectionInfo) -> Result<Validation, ConnectorError> {
        let _ = connection;
        Err(not_supported("auth-validation"))
    }

    /// Reload the user's identity (App Connect `refreshUserInfo`).
    fn refresh_user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let _ = connection;
        Err(not_supported("refresh-user-info"))
    }

    /// A cheap call proving the connection works (Membrane `test`).
    fn test_connection(connection: ConnectionInfo) -> Result<Option<String>, ConnectorError> {
        let _ = connection;
        Err(not_supported("test-connection"))
    }
}

/// Implements the raw bindings' `Guest` trait for a [`Connector`] by forwarding
/// every hook. Used by [`__export_connector!`](crate::__export_connector).
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_hooks {
    ($ty:ident) => {
        impl $crate::bindings::exports::connector::auth::hooks::Guest for $ty {
            fn auth_type() -> $crate::AuthType {
                <$ty as $crate::Connector>::auth_type()
            }
            fn oauth_info(
                i: $crate::OauthInfoInput,
            ) -> Result<$crate::OauthInfo, $crate::ConnectorError> {
                <$ty as $crate::Connector>::oauth_info(i)
            }
            fn overriding_oauth_option(
                i: $crate::OauthInfo,
            ) -> Result<$crate::TokenRequestOverride, $crate::ConnectorError> {
                <$ty as $crate::Connector>::overriding_oauth_option(i)
            }
            fn credentials_from_token_response(
                i: $crate::TokenResponseInput,
            ) -> Result<Vec<$crate::KeyValue>, $crate::ConnectorError> {
                <$ty as $crate::Connector>::credentials_from_token_response(i)
            }
            fn user_info(
                c: $crate::ConnectionInfo,
            ) -> Result<$crate::UserInfo, $crate::ConnectorError> {
                <$ty as $crate::Connector>::user_info(c)
            }
            fn basic_auth(
                c: $crate::ConnectionInfo,
            ) -> Result<$crate::ApiKeyPlacement, $crate::ConnectorError> {
                <$ty as $crate::Connector>::basic_auth(c)
            }
            fn unauthorize(
                c: $crate::ConnectionInfo,
            ) -> Result<Option<String>, $crate::ConnectorError> {
                <$ty as $crate::Connector>::unauthorize(c)
            }
            fn refresh(
                c: $crate::ConnectionInfo,
            ) -> Result<$crate::RefreshOverride, $crate::ConnectorError> {
                <$ty as $crate::Connector>::refresh(c)
            }
            fn auth_validation(
                c: $crate::ConnectionInfo,
            ) -> Result<$crate::Validation, $crate::ConnectorError> {
                <$ty as $crate::Connector>::auth_validation(c)
            }
            fn refresh_user_info(
                c: $crate::ConnectionInfo,
            ) -> Result<$crate::UserInfo, $crate::ConnectorError> {
                <$ty as $crate::Connector>::refresh_user_info(c)
            }
            fn test_connection(
                c: $crate::ConnectionInfo,
            ) -> Result<Option<String>, $crate::ConnectorError> {
                <$ty as $crate::Connector>::test_connection(c)
            }
        }
    };
}
