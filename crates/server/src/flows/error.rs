//! Errors of the connection flows, each with a stable code and (for bad
//! input) the field it is about; the HTTP layers choose the status
//! (`api::flow_status`). Messages never contain secrets.

use connector_sandbox::runtime::{CallError, describe};
use connector_sandbox::wit::ConnectorError;

use crate::store::{ConnectionStoreError, ManagedStoreError};

/// Why a flow did not complete. Nothing is saved when a flow fails.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// No such connector is loaded.
    #[error("no connector `{0}` is loaded")]
    UnknownConnector(String),
    /// No such connection in this account.
    #[error("no connection `{0}` in this account")]
    UnknownConnection(String),
    /// The connector does not use this auth type.
    #[error("connector `{connector}` uses {actual} auth, not {requested}")]
    WrongAuthType {
        /// Which connector.
        connector: String,
        /// Its auth type.
        actual: String,
        /// What the request asked for.
        requested: &'static str,
    },
    /// A submitted field is missing, unknown or of the wrong type.
    #[error("field `{field}`: {message}")]
    Field {
        /// Which field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The provider does not accept the user's credentials.
    #[error("the provider rejected the credentials: {0}")]
    InvalidCredentials(String),
    /// The provider failed.
    #[error("provider error: {0}")]
    Provider(String),
    /// The connector failed (trap, timeout, hook error other than the above).
    #[error("{0}")]
    Connector(String),
    /// The connector needs a hook it does not implement.
    #[error("{0}")]
    NotImplemented(String),
    /// The connection is not usable (logged out or needing re-auth).
    #[error("{0}")]
    NotUsable(String),
    /// The OAuth state is missing, unknown, replayed or expired, or the
    /// issuer does not match.
    #[error("{0}")]
    State(String),
    /// The connector (`failMessage`) or the provider stopped the login.
    #[error("{0}")]
    OAuthFailed(String),
    /// The token endpoint refused the code exchange.
    #[error("token exchange failed: {0}")]
    TokenExchange(String),
    /// The connector or account does not use the admin-managed credentials
    /// asked for.
    #[error("{0}")]
    NotManaged(String),
    /// The connector uses admin-managed OAuth and the account has not set it up.
    #[error("{0}")]
    ManagedCredentialsMissing(String),
    /// Required admin-managed form fields have no value (App Connect's
    /// `missingRequiredFieldConsts` warning).
    #[error("an admin has not set the required managed field(s) {}; ask an admin, or log in with `manual: true` and the full form", .0.join(", "))]
    ManagedFieldsMissing(Vec<String>),
    /// A login with admin-managed values failed; the next attempt may use the
    /// full manual form (`manual: true`).
    #[error(
        "the login with the admin-managed values failed ({0}); you may retry with `manual: true` and the full form"
    )]
    ManagedLoginFailed(Box<FlowError>),
    /// The caller waited its bound (`[refresh] max_wait_ms`) for a token
    /// refresh someone else holds; retryable.
    #[error("{message}")]
    RefreshBusy {
        /// What happened.
        message: String,
        /// When to retry.
        retry_after_secs: u64,
    },
    /// Storage failed.
    #[error("storage error")]
    Storage(#[from] ConnectionStoreError),
    /// Storage of managed credentials failed.
    #[error("storage error")]
    ManagedStorage(#[from] ManagedStoreError),
}

impl FlowError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            FlowError::UnknownConnector(_) => "unknown_connector",
            FlowError::UnknownConnection(_) => "unknown_connection",
            FlowError::WrongAuthType { .. } => "wrong_auth_type",
            FlowError::Field { .. } => "invalid_field",
            FlowError::InvalidCredentials(_) => "invalid_credentials",
            FlowError::Provider(_) => "provider_error",
            FlowError::Connector(_) => "connector_error",
            FlowError::NotImplemented(_) => "not_implemented",
            FlowError::NotUsable(_) => "connection_not_usable",
            FlowError::State(_) => "invalid_state",
            FlowError::OAuthFailed(_) => "oauth_failed",
            FlowError::TokenExchange(_) => "token_exchange_failed",
            FlowError::NotManaged(_) => "not_admin_managed",
            FlowError::ManagedCredentialsMissing(_) => "managed_credentials_missing",
            FlowError::ManagedFieldsMissing(_) => "managed_fields_missing",
            FlowError::ManagedLoginFailed(_) => "managed_login_failed",
            FlowError::RefreshBusy { .. } => "refresh_busy",
            FlowError::Storage(_) | FlowError::ManagedStorage(_) => "storage_error",
        }
    }

    /// The field a bad-input error is about.
    pub fn field(&self) -> Option<&str> {
        match self {
            FlowError::Field { field, .. } => Some(field),
            FlowError::ManagedLoginFailed(cause) => cause.field(),
            _ => None,
        }
    }

    /// The required managed fields without a value, for the
    /// `missingRequiredFieldConsts` warning.
    pub fn missing_required_field_consts(&self) -> Option<&[String]> {
        match self {
            FlowError::ManagedFieldsMissing(missing) => Some(missing),
            _ => None,
        }
    }

    pub(crate) fn field_error(field: impl Into<String>, message: impl Into<String>) -> Self {
        FlowError::Field {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<CallError> for FlowError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Guest { error, .. } => match error {
                ConnectorError::ReauthRequired(m) => FlowError::InvalidCredentials(m),
                ConnectorError::Provider(p) if matches!(p.status, Some(401 | 403)) => {
                    FlowError::InvalidCredentials(p.message)
                }
                ConnectorError::BadInput(m) => FlowError::Field {
                    field: "(connector)".into(),
                    message: m,
                },
                other => FlowError::Provider(describe(&other)),
            },
            CallError::NotImplemented { .. } => FlowError::NotImplemented(error.to_string()),
            other => FlowError::Connector(other.to_string()),
        }
    }
}
