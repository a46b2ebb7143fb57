//! The reviewer-facing description of a connector, shared by
//! `connector-host inspect` and the `/v1/connectors/{id}` route.

use serde::Serialize;

use super::inspect::ComponentInfo;
use super::placements::{CredentialPlacement, credential_placements};
use connector_abi::hook::Hook;
use connector_abi::manifest::{AuthKind, OAuthBlock};

/// Everything a reviewer needs to know about a connector, read statically.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InspectReport {
    /// Manifest id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// sha256 of the file.
    pub sha256: String,
    /// `connector:auth@…` version targeted.
    pub wit_version: String,
    /// `oauth` or `apiKey`.
    pub auth_type: AuthKind,
    /// Hooks implemented.
    pub hooks: Vec<Hook>,
    /// Hooks not implemented (the host never calls them).
    pub hooks_not_implemented: Vec<Hook>,
    /// Origins the connector may call.
    pub allowed_hosts: Vec<String>,
    /// Host secrets it refers to by name.
    pub secrets: Vec<String>,
    /// Where each credential it can name may go (from the manifest; the host
    /// enforces it).
    pub credentials: Vec<CredentialPlacement>,
    /// Interfaces it imports.
    pub imports: Vec<String>,
    /// Refresh margin.
    pub refresh_margin_seconds: u64,
    /// Revocation endpoint, if any.
    pub revocation_endpoint: Option<String>,
    /// The auth page: OAuth button data or the API-key form.
    pub auth_page: AuthPage,
}

/// What a client renders to log in.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AuthPage {
    /// OAuth: the manifest's client-visible values (boxed: far larger than
    /// the form).
    #[serde(rename = "oauth")]
    OAuth(Box<OAuthBlock>),
    /// API key: the form.
    #[serde(rename = "apiKey")]
    ApiKey(connector_abi::manifest::ApiKeyPage),
}

impl InspectReport {
    /// Builds the report from a statically inspected component.
    pub fn new(info: &ComponentInfo) -> Self {
        let manifest = &info.manifest;
        let auth_page = match (&manifest.auth.oauth, &manifest.auth.api_key) {
            (Some(oauth), _) => AuthPage::OAuth(Box::new(oauth.clone())),
            (None, Some(api_key)) => AuthPage::ApiKey(api_key.page.clone()),
            (None, None) => unreachable!("a validated manifest has the block of its auth type"),
        };
        Self {
            id: manifest.id.clone(),
            name: manifest.display_name().to_string(),
            version: manifest.version.clone(),
            sha256: info.sha256.clone(),
            wit_version: format!("{}@{}", connector_abi::hook::WIT_PACKAGE, info.wit_version),
            auth_type: manifest.auth.kind,
            hooks: info.hooks.iter().copied().collect(),
            hooks_not_implemented: Hook::ALL
                .iter()
                .copied()
                .filter(|h| !info.hooks.contains(h))
                .collect(),
            allowed_hosts: manifest.allowed_hosts.clone(),
            secrets: manifest.secrets.clone(),
            credentials: credential_placements(manifest),
            imports: info.imports.clone(),
            refresh_margin_seconds: manifest.refresh_margin_seconds,
            revocation_endpoint: manifest.revocation_endpoint.clone(),
            auth_page,
        }
    }

    /// Human-readable rendering for the terminal.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let list = |items: &[String]| {
            if items.is_empty() {
                "(none)".to_string()
            } else {
                items.join(", ")
            }
        };
        let hooks = |items: &[Hook]| {
            if items.is_empty() {
                "(none)".to_string()
            } else {
                items
                    .iter()
                    .map(|h| h.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let _ = writeln!(out, "connector      {} ({})", self.id, self.name);
        let _ = writeln!(out, "version        {}", self.version);
        let _ = writeln!(out, "sha256         {}", self.sha256);
        let _ = writeln!(out, "wit            {}", self.wit_version);
        let _ = writeln!(out, "auth type      {}", self.auth_type);
        let _ = writeln!(out, "hooks          {}", hooks(&self.hooks));
        let _ = writeln!(
            out,
            "not called     {} (not implemented)",
            hooks(&self.hooks_not_implemented)
        );
        let _ = writeln!(out, "allowed hosts  {}", list(&self.allowed_hosts));
        let _ = writeln!(out, "secrets        {}", list(&self.secrets));
        for placement in &self.credentials {
            let _ = writeln!(
                out,
                "credential     {}: {}",
                placement.credential, placement.placement
            );
        }
        let _ = writeln!(out, "imports        {}", list(&self.imports));
        let _ = writeln!(out, "refresh margin {}s", self.refresh_margin_seconds);
        if let Some(endpoint) = &self.revocation_endpoint {
            let _ = writeln!(out, "revocation     {endpoint}");
        }
        match &self.auth_page {
            AuthPage::OAuth(oauth) => {
                let _ = writeln!(out, "auth page      OAuth");
                if oauth.auth_url.is_empty() && oauth.discovery_url.is_some() {
                    let _ = writeln!(out, "  authUrl      (from discovery)");
                } else {
                    let _ = writeln!(out, "  authUrl      {}", oauth.auth_url);
                }
                if let Some(url) = &oauth.discovery_url {
                    let _ = writeln!(out, "  discoveryUrl {url}");
                }
                let _ = writeln!(out, "  clientId     {}", oauth.client_id);
                let _ = writeln!(out, "  redirectUri  {}", oauth.redirect_uri);
                if let Some(scope) = &oauth.scope {
                    let _ = writeln!(out, "  scope        {scope}");
                }
                if let Some(issuer) = &oauth.issuer {
                    let _ = writeln!(out, "  issuer       {issuer}");
                }
                if let Some(state) = &oauth.custom_state {
                    let _ = writeln!(out, "  customState  {state}");
                }
                let _ = writeln!(
                    out,
                    "  options      clientAuthLocation={} skipPkce={} noRefreshToken={}",
                    format!(
                        "{:?}",
                        oauth
                            .client_auth_location
                            .unwrap_or(crate::flows::DEFAULT_CLIENT_AUTH)
                    )
                    .to_lowercase(),
                    oauth.skip_pkce,
                    oauth.no_refresh_token
                );
                for (key, value) in &oauth.extra {
                    let _ = writeln!(out, "  extra        {key}={value}");
                }
            }
            AuthPage::ApiKey(page) => {
                let _ = writeln!(out, "auth page      API key form \"{}\"", page.title);
                if let Some(warning) = &page.warning {
                    let _ = writeln!(out, "  warning      {warning}");
                }
                for field in &page.content {
                    let mut flags = Vec::new();
                    if field.required {
                        flags.push("required".to_string());
                    }
                    if field.managed {
                        flags.push(match field.managed_scope {
                            Some(scope) => {
                                format!("managed({})", format!("{scope:?}").to_lowercase())
                            }
                            None => "managed".to_string(),
                        });
                    }
                    if field.hidden {
                        flags.push("hidden".into());
                    }
                    if field.is_secret() {
                        flags.push("secret".into());
                    }
                    if field.ui_schema.is_some() {
                        flags.push("uiSchema".into());
                    }
                    let _ = writeln!(
                        out,
                        "  field        {} \"{}\" {:?} {}",
                        field.key,
                        field.title,
                        field.field_type,
                        flags.join(" ")
                    );
                }
            }
        }
        out
    }
}
