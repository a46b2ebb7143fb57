//! `auth.apiKey.placement`: where the host may put a connection's API key,
//! declared in the manifest so a reviewer sees it without running the
//! connector. The connector's `basic-auth` answer, when it implements that
//! hook, must be exactly this declaration; the host refuses any other.

use serde::{Deserialize, Serialize};

use super::ManifestError;

/// Headers the host controls (framing and hop-by-hop): never a place for a
/// credential, and dropped from a guest's request.
pub const HOST_CONTROLLED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Longest header or query-parameter name a placement may use.
pub const MAX_PLACEMENT_NAME_BYTES: usize = 64;
/// Longest Basic template a placement may use.
pub const MAX_BASIC_TEMPLATE_BYTES: usize = 256;

/// Where the API key goes on requests that name the `api-key` credential.
///
/// In JSON: `"bearer"`, `{"basic": "{apiKey}:"}`, `{"header": "x-api-key"}`
/// or `{"query": "api_key"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ApiKeyPlacementDecl {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// HTTP Basic from a template of `{apiKey}` and form fields, e.g.
    /// `{apiKey}:` or `{apiKey}:{apiSecret}`.
    Basic(String),
    /// The key alone in the named header.
    Header(String),
    /// The key in the named query parameter. Servers log URLs and echo them
    /// (`Location`, `Link`, error pages), so the operator must opt in per
    /// connector (`[connectors.<id>] allow_query_credential = true`).
    Query(String),
}

impl ApiKeyPlacementDecl {
    /// One line for a reviewer: `Authorization: Bearer <apiKey>`, ….
    pub fn describe(&self) -> String {
        match self {
            ApiKeyPlacementDecl::Bearer => "header `Authorization: Bearer {apiKey}`".into(),
            ApiKeyPlacementDecl::Basic(template) => {
                format!("header `Authorization: Basic base64({template})`")
            }
            ApiKeyPlacementDecl::Header(name) => format!("header `{name}: {{apiKey}}`"),
            ApiKeyPlacementDecl::Query(name) => format!(
                "query parameter `{name}={{apiKey}}` (only where the operator opts in: \
                 [connectors.<id>] allow_query_credential = true)"
            ),
        }
    }

    /// Checks the declaration against the form's field keys (`{field}` in a
    /// Basic template must name one).
    pub(super) fn validate(&self, path: &str, form_fields: &[&str]) -> Result<(), ManifestError> {
        match self {
            ApiKeyPlacementDecl::Bearer => Ok(()),
            ApiKeyPlacementDecl::Basic(template) => {
                basic_template(&format!("{path}.basic"), template, form_fields)
            }
            ApiKeyPlacementDecl::Header(name) => header_name(&format!("{path}.header"), name),
            ApiKeyPlacementDecl::Query(name) => query_name(&format!("{path}.query"), name),
        }
    }
}

fn basic_template(path: &str, template: &str, form_fields: &[&str]) -> Result<(), ManifestError> {
    if template.len() > MAX_BASIC_TEMPLATE_BYTES {
        return Err(ManifestError::new(
            path,
            format!("longer than {MAX_BASIC_TEMPLATE_BYTES} bytes"),
        ));
    }
    if !template.contains(&format!("{{{}}}", super::API_KEY_FIELD)) {
        return Err(ManifestError::new(
            path,
            format!(
                "`{template}` does not place the key: it must contain `{{{}}}`",
                super::API_KEY_FIELD
            ),
        ));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(ManifestError::new(path, "a `{` is never closed"));
        };
        let field = &after[..close];
        if !form_fields.contains(&field) {
            return Err(ManifestError::new(
                path,
                format!("`{{{field}}}` is not a field of `auth.apiKey.page.content`"),
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

fn header_name(path: &str, name: &str) -> Result<(), ManifestError> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || name.len() > MAX_PLACEMENT_NAME_BYTES || !name.chars().all(token) {
        return Err(ManifestError::new(
            path,
            format!(
                "`{name}` is not a header name (1 to {MAX_PLACEMENT_NAME_BYTES} token characters)"
            ),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if HOST_CONTROLLED_HEADERS.contains(&lower.as_str())
        || ["authorization", "proxy-authorization", "cookie"].contains(&lower.as_str())
    {
        return Err(ManifestError::new(
            path,
            format!(
                "`{name}` is not a place for the key (use `bearer` or `basic` for `authorization`; \
                 framing and hop-by-hop headers are the host's)"
            ),
        ));
    }
    Ok(())
}

fn query_name(path: &str, name: &str) -> Result<(), ManifestError> {
    let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if name.is_empty() || name.len() > MAX_PLACEMENT_NAME_BYTES || !name.chars().all(unreserved) {
        return Err(ManifestError::new(
            path,
            format!(
                "`{name}` is not a query parameter name (1 to {MAX_PLACEMENT_NAME_BYTES} of \
                 letters, digits, `-._~`)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Result<ApiKeyPlacementDecl, ManifestError> {
        let placement: ApiKeyPlacementDecl = serde_json::from_str(json).unwrap();
        placement.validate(
            "auth.apiKey.placement",
            &["apiKey", "apiSecret", "tenantId"],
        )?;
        Ok(placement)
    }

    #[test]
    fn every_form_parses_and_describes_itself() {
        assert_eq!(check(r#""bearer""#).unwrap(), ApiKeyPlacementDecl::Bearer);
        let basic = check(r#"{"basic": "{apiKey}:{apiSecret}"}"#).unwrap();
        assert_eq!(
            basic.describe(),
            "header `Authorization: Basic base64({apiKey}:{apiSecret})`"
        );
        assert_eq!(
            check(r#"{"header": "X-Api-Key"}"#).unwrap().describe(),
            "header `X-Api-Key: {apiKey}`"
        );
        assert!(
            check(r#"{"query": "api_key"}"#)
                .unwrap()
                .describe()
                .contains("allow_query_credential")
        );
    }

    #[test]
    fn bad_declarations_name_the_field_and_the_problem() {
        for (json, path, says) in [
            (
                r#"{"basic": ":{apiSecret}"}"#,
                "placement.basic",
                "must contain `{apiKey}`",
            ),
            (
                r#"{"basic": "{apiKey}:{nope}"}"#,
                "placement.basic",
                "`{nope}` is not a field",
            ),
            (
                r#"{"basic": "{apiKey}:{open"}"#,
                "placement.basic",
                "never closed",
            ),
            (
                r#"{"header": "x key"}"#,
                "placement.header",
                "not a header name",
            ),
            (
                r#"{"header": "Host"}"#,
                "placement.header",
                "not a place for the key",
            ),
            (
                r#"{"header": "authorization"}"#,
                "placement.header",
                "use `bearer`",
            ),
            (
                r#"{"query": "a&b"}"#,
                "placement.query",
                "not a query parameter name",
            ),
            (
                r#"{"query": ""}"#,
                "placement.query",
                "not a query parameter name",
            ),
        ] {
            let error = check(json).unwrap_err();
            assert!(error.path.ends_with(path), "{json}: {error}");
            assert!(error.message.contains(says), "{json}: {error}");
        }
    }
}
