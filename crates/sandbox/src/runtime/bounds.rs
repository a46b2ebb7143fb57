//! Caps on every value a guest returns from a hook. A connector must not be
//! able to grow the database, the logs or an API response without bound (a
//! 100 MiB user name was once accepted, stored and returned): a hook result
//! over a cap is refused with [`CallError::OutputTooLarge`](super::CallError),
//! which names the field, its size and the cap, and nothing of it is kept.

use crate::capabilities::http::truncate_marked;
use crate::generated::ConnectorError;
use crate::generated::hooks::{
    ApiKeyPlacement, ClientSecretRef, OauthValues, RefreshOverride, TokenRequestOverride,
    UserIdentity, Validation,
};

/// Ids (`platform-user-id`), secret names.
pub const MAX_ID_BYTES: usize = 256;
/// Names, messages, reasons, time zones, host names, client ids, JSON paths.
pub const MAX_TEXT_BYTES: usize = 2048;
/// URLs (token, authorize, redirect URIs).
pub const MAX_URL_BYTES: usize = 4096;
/// Entries of a key-value list (additional info, extra parameters, headers,
/// token-response fields) and of a scope list.
pub const MAX_ENTRIES: usize = 64;
/// A key of a key-value list.
pub const MAX_KEY_BYTES: usize = 128;
/// A value of a key-value list, a scope.
pub const MAX_VALUE_BYTES: usize = 4096;

/// Cuts the texts of a connector's typed error to [`MAX_TEXT_BYTES`] (message)
/// and [`MAX_ID_BYTES`] (provider error code), marked with `…`: they reach API
/// answers, logs, `connections.last_refresh_error` and webhook details, so
/// an error is bounded like a result (kept, as the error still says what
/// failed).
pub fn bound_error(error: &mut ConnectorError) {
    match error {
        ConnectorError::ReauthRequired(message)
        | ConnectorError::BadInput(message)
        | ConnectorError::NotSupported(message)
        | ConnectorError::Internal(message) => truncate_marked(message, MAX_TEXT_BYTES),
        ConnectorError::Provider(provider) => {
            truncate_marked(&mut provider.message, MAX_TEXT_BYTES);
            if let Some(code) = &mut provider.code {
                truncate_marked(code, MAX_ID_BYTES);
            }
        }
    }
}

/// A field over its cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversize {
    /// Which field, e.g. `name` or `additional-info[3].value`.
    pub field: String,
    /// Its size (bytes, or entries for a list).
    pub size: usize,
    /// The cap.
    pub limit: usize,
}

/// A hook result whose sizes can be checked against the caps.
pub trait BoundedOutput {
    /// The first field over its cap, if any.
    fn oversize(&self) -> Option<Oversize>;
}

fn text(field: &str, value: &str, limit: usize) -> Option<Oversize> {
    (value.len() > limit).then(|| Oversize {
        field: field.to_string(),
        size: value.len(),
        limit,
    })
}

fn optional(field: &str, value: &Option<String>, limit: usize) -> Option<Oversize> {
    value.as_deref().and_then(|value| text(field, value, limit))
}

fn pairs(field: &str, list: &[(String, String)]) -> Option<Oversize> {
    if list.len() > MAX_ENTRIES {
        return Some(Oversize {
            field: field.to_string(),
            size: list.len(),
            limit: MAX_ENTRIES,
        });
    }
    list.iter().enumerate().find_map(|(i, (key, value))| {
        text(&format!("{field}[{i}].key"), key, MAX_KEY_BYTES)
            .or_else(|| text(&format!("{field}[{i}].value"), value, MAX_VALUE_BYTES))
    })
}

impl BoundedOutput for UserIdentity {
    fn oversize(&self) -> Option<Oversize> {
        text("platform-user-id", &self.platform_user_id, MAX_ID_BYTES)
            .or_else(|| text("name", &self.name, MAX_TEXT_BYTES))
            .or_else(|| optional("timezone-name", &self.timezone_name, MAX_TEXT_BYTES))
            .or_else(|| optional("timezone-offset", &self.timezone_offset, MAX_TEXT_BYTES))
            .or_else(|| pairs("additional-info", &self.additional_info))
            .or_else(|| optional("message", &self.message, MAX_TEXT_BYTES))
    }
}

impl BoundedOutput for OauthValues {
    fn oversize(&self) -> Option<Oversize> {
        let secret = match &self.client_secret {
            ClientSecretRef::HostSecret(name) => text("client-secret", name, MAX_ID_BYTES),
            ClientSecretRef::Managed | ClientSecretRef::None => None,
        };
        let scopes = self.scopes.as_deref().unwrap_or_default();
        let scope_count = (scopes.len() > MAX_ENTRIES).then(|| Oversize {
            field: "scopes".into(),
            size: scopes.len(),
            limit: MAX_ENTRIES,
        });
        text("client-id", &self.client_id, MAX_TEXT_BYTES)
            .or(secret)
            .or_else(|| text("access-token-uri", &self.access_token_uri, MAX_URL_BYTES))
            .or_else(|| text("redirect-uri", &self.redirect_uri, MAX_URL_BYTES))
            .or_else(|| optional("authorization-uri", &self.authorization_uri, MAX_URL_BYTES))
            .or(scope_count)
            .or_else(|| {
                scopes
                    .iter()
                    .enumerate()
                    .find_map(|(i, scope)| text(&format!("scopes[{i}]"), scope, MAX_VALUE_BYTES))
            })
            .or_else(|| optional("hostname", &self.hostname, MAX_TEXT_BYTES))
            .or_else(|| optional("fail-message", &self.fail_message, MAX_TEXT_BYTES))
    }
}

impl BoundedOutput for TokenRequestOverride {
    fn oversize(&self) -> Option<Oversize> {
        optional("token-url", &self.token_url, MAX_URL_BYTES)
            .or_else(|| pairs("extra-body-params", &self.extra_body_params))
            .or_else(|| pairs("extra-headers", &self.extra_headers))
    }
}

impl BoundedOutput for RefreshOverride {
    fn oversize(&self) -> Option<Oversize> {
        optional("token-url", &self.token_url, MAX_URL_BYTES)
            .or_else(|| pairs("extra-params", &self.extra_params))
            .or_else(|| optional("access-token-path", &self.access_token_path, MAX_TEXT_BYTES))
            .or_else(|| {
                optional(
                    "refresh-token-path",
                    &self.refresh_token_path,
                    MAX_TEXT_BYTES,
                )
            })
            .or_else(|| optional("expires-in-path", &self.expires_in_path, MAX_TEXT_BYTES))
    }
}

impl BoundedOutput for ApiKeyPlacement {
    fn oversize(&self) -> Option<Oversize> {
        match self {
            ApiKeyPlacement::Basic(template) => text("basic", template, MAX_TEXT_BYTES),
            ApiKeyPlacement::Header(name) => text("header", name, MAX_KEY_BYTES),
            ApiKeyPlacement::Query(name) => text("query", name, MAX_KEY_BYTES),
            ApiKeyPlacement::Bearer => None,
        }
    }
}

impl BoundedOutput for Validation {
    fn oversize(&self) -> Option<Oversize> {
        optional("fail-reason", &self.fail_reason, MAX_TEXT_BYTES)
    }
}

/// `credentials-from-token-response`: fields to keep with the connection.
impl BoundedOutput for Vec<(String, String)> {
    fn oversize(&self) -> Option<Oversize> {
        pairs("fields", self)
    }
}

/// `unauthorize` and `test-connection` messages.
impl BoundedOutput for Option<String> {
    fn oversize(&self) -> Option<Oversize> {
        optional("message", self, MAX_TEXT_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> UserIdentity {
        UserIdentity {
            platform_user_id: "42".into(),
            name: "Ada".into(),
            timezone_name: None,
            timezone_offset: None,
            additional_info: vec![("apiUrl".into(), "https://x".into())],
            message: None,
        }
    }

    #[test]
    fn every_oversized_field_is_named() {
        assert_eq!(identity().oversize(), None);
        let mut huge_name = identity();
        huge_name.name = "a".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(huge_name.oversize().unwrap().field, "name");
        let mut many = identity();
        many.additional_info = vec![("k".into(), "v".into()); MAX_ENTRIES + 1];
        assert_eq!(
            many.oversize(),
            Some(Oversize {
                field: "additional-info".into(),
                size: MAX_ENTRIES + 1,
                limit: MAX_ENTRIES
            })
        );
        let mut long_value = identity();
        long_value.additional_info[0].1 = "v".repeat(MAX_VALUE_BYTES + 1);
        assert_eq!(
            long_value.oversize().unwrap().field,
            "additional-info[0].value"
        );
    }
}
