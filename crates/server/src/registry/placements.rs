//! Where each credential a connector can name may go, read from its manifest
//! alone: the `credentials` part of `inspect` and of `/v1/connectors/{id}`.
//! A reviewer reads here what the host will enforce (the API key's placement
//! is the manifest's `auth.apiKey.placement`; the host refuses a `basic-auth`
//! answer that differs, and a query string needs the operator's opt-in).

use serde::Serialize;

use connector_abi::manifest::{ApiKeyPlacementDecl, AuthKind, Manifest};

/// One credential and where the host may put it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialPlacement {
    /// The credential as the audit names it: `access-token`, `api-key`,
    /// `client-credentials`, `secret-field:<const>`, `host-secret:<name>`.
    pub credential: String,
    /// Where it goes, in words.
    pub placement: String,
}

fn entry(credential: impl Into<String>, placement: impl Into<String>) -> CredentialPlacement {
    CredentialPlacement {
        credential: credential.into(),
        placement: placement.into(),
    }
}

/// Every credential `manifest` lets the connector name, with its placement.
pub fn credential_placements(manifest: &Manifest) -> Vec<CredentialPlacement> {
    let mut out = Vec::new();
    match manifest.auth.kind {
        AuthKind::OAuth => {
            out.push(entry(
                "access-token",
                "header `Authorization: Bearer {accessToken}`, on requests to allowed hosts \
                 that name it",
            ));
            out.push(entry(
                "client-credentials",
                "header `Authorization: Basic base64({clientId}:{clientSecret})`, on requests \
                 to allowed hosts that name it",
            ));
        }
        AuthKind::ApiKey => {
            if let Some(block) = &manifest.auth.api_key {
                out.push(entry("api-key", block.placement.describe()));
                let template = match &block.placement {
                    ApiKeyPlacementDecl::Basic(template) => template.as_str(),
                    _ => "",
                };
                for field in block.page.secret_fields() {
                    let mut places = Vec::new();
                    if template.contains(&format!("{{{}}}", field.key)) {
                        places.push("inside the API key's Basic header".to_string());
                    }
                    places.push(format!(
                        "a request header the connector names \
                         (`credential::host-secret` with `secret: \"field:{}\"`)",
                        field.key
                    ));
                    out.push(entry(
                        format!("secret-field:{}", field.key),
                        places.join("; or "),
                    ));
                }
            }
        }
    }
    for name in &manifest.secrets {
        out.push(entry(
            format!("host-secret:{name}"),
            "the OAuth client secret the host sends to the token and revocation endpoints \
             (operator purpose `client-secret`, the default); a request header the connector \
             names only where the operator also grants purpose `request-header`",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(auth: serde_json::Value, secrets: &[&str]) -> Manifest {
        let json = serde_json::json!({
            "id": "c", "version": "1.0.0", "secrets": secrets, "auth": auth,
        });
        Manifest::from_json(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn an_api_key_connector_shows_its_declared_placement_and_secret_fields() {
        let m = manifest(
            serde_json::json!({"type": "apiKey", "apiKey": {
                "placement": {"basic": "{apiKey}:{apiSecret}"},
                "page": {"title": "T", "content": [
                    {"const": "apiKey", "title": "Key", "type": "string"},
                    {"const": "apiSecret", "title": "S", "type": "string", "secret": true},
                ]},
            }}),
            &["partner"],
        );
        let placements = credential_placements(&m);
        let names: Vec<&str> = placements.iter().map(|p| p.credential.as_str()).collect();
        assert_eq!(
            names,
            ["api-key", "secret-field:apiSecret", "host-secret:partner"]
        );
        assert_eq!(
            placements[0].placement,
            "header `Authorization: Basic base64({apiKey}:{apiSecret})`"
        );
        assert!(
            placements[1]
                .placement
                .starts_with("inside the API key's Basic header")
        );
        assert!(placements[2].placement.contains("request-header"));
    }

    #[test]
    fn a_query_placement_says_it_needs_the_operator() {
        let m = manifest(
            serde_json::json!({"type": "apiKey", "apiKey": {
                "placement": {"query": "api_key"},
                "page": {"title": "T", "content": [
                    {"const": "apiKey", "title": "Key", "type": "string"},
                ]},
            }}),
            &[],
        );
        let placements = credential_placements(&m);
        assert_eq!(placements.len(), 1);
        assert!(
            placements[0].placement.contains("allow_query_credential"),
            "{placements:?}"
        );
    }
}
