//! `connector-host call CONNECTOR HOOK --input JSON`: one hook call, with its
//! result, the guest's log lines and every outbound request it made.
//!
//! Credentials: the stored test account of `connector-host oauth2` (its
//! access token, decrypted for this call) when there is one, and the API key
//! in `CONNECTOR_API_KEY` when set (placed as the connector's `basic-auth`
//! hook says). The input is JSON in the camelCase shape of the HTTP API, e.g.
//! `{"hostname": "eu.example.com", "additionalInfo": {"tenant": "t1"}}`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::local::{LocalHost, read_manifest};
use super::{AuthoringError, ConnectorSource, LocalOptions, TEST_ACCOUNT, TEST_USER};
use connector_abi::hook::Hook;
use connector_sandbox::capabilities::LogLine;
use connector_sandbox::capabilities::http::{
    ApiKeyCredential, AuditEvent, CallCredentials, MemoryAuditSink,
};
use connector_sandbox::runtime::{CallContext, CallError, Outcome};
use connector_sandbox::wit::AuthType;
use connector_sandbox::wit::hooks::{self, ClientAuthLocation, ClientSecretRef};

/// The environment variable with an API key for `call`.
pub const API_KEY_ENV: &str = "CONNECTOR_API_KEY";

/// What a call did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallResult {
    /// `id@version`.
    pub connector: String,
    /// The hook's WIT name.
    pub hook: String,
    /// The hook's value (JSON), when it succeeded.
    pub result: Option<Value>,
    /// `{kind, message}` when it failed.
    pub error: Option<Value>,
    /// The guest's log lines (and captured stdout/stderr).
    pub logs: Vec<LogLine>,
    /// Outbound requests, sent or refused, with the host's own (token
    /// exchange, revocation) — never a credential value.
    pub outbound: Vec<AuditEvent>,
    /// Which stored credentials the call had (`access-token`, `api-key`).
    pub credentials: Vec<String>,
}

impl CallResult {
    /// Human-readable text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{} {}\n", self.connector, self.hook);
        if let Some(result) = &self.result {
            out += &format!(
                "result: {}\n",
                serde_json::to_string_pretty(result).unwrap_or_default()
            );
        }
        if let Some(error) = &self.error {
            out += &format!("error: {} ({})\n", error["message"], error["kind"]);
        }
        out += &format!(
            "credentials: {}\n",
            if self.credentials.is_empty() {
                "none".to_string()
            } else {
                self.credentials.join(", ")
            }
        );
        out += &format!("logs ({}):\n", self.logs.len());
        for line in &self.logs {
            out += &format!("  {:?} {}\n", line.level, line.message);
        }
        out += &format!("outbound requests ({}):\n", self.outbound.len());
        for event in &self.outbound {
            out += &format!("  {}\n", describe_request(event));
        }
        out
    }
}

/// One line for an outbound request: method, URL without query, outcome.
pub fn describe_request(e: &AuditEvent) -> String {
    format!(
        "{} {}://{}:{}{} → {}{}{}",
        e.method,
        e.scheme.as_deref().unwrap_or("-"),
        e.host.as_deref().unwrap_or("-"),
        e.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
        e.path.as_deref().unwrap_or(""),
        match e.status {
            Some(status) => status.to_string(),
            None => format!("{:?}", e.outcome).to_lowercase(),
        },
        e.credential
            .as_deref()
            .map(|c| format!(" [{c}]"))
            .unwrap_or_default(),
        e.reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
    )
}

/// `connection-info` input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConnectionInput {
    hostname: Option<String>,
    platform_user_id: Option<String>,
    #[serde(default)]
    additional_info: BTreeMap<String, String>,
}

/// `oauth-info-input`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OauthInfoJson {
    token_url: Option<String>,
    hostname: Option<String>,
    account_id: Option<String>,
    proxy_id: Option<String>,
    proxy_config: Option<Value>,
    user_email: Option<String>,
    #[serde(default)]
    is_from_mcp: bool,
}

/// `oauth-values` (input of `overriding-oauth-option`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OauthValuesJson {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    access_token_uri: String,
    redirect_uri: String,
    authorization_uri: Option<String>,
    scopes: Option<Vec<String>>,
    hostname: Option<String>,
}

/// `token-response-input`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenResponseJson {
    #[serde(default)]
    token_response: serde_json::Map<String, Value>,
    hostname: Option<String>,
    #[serde(default)]
    callback_query: BTreeMap<String, String>,
}

fn parse<T: for<'de> Deserialize<'de>>(input: &Value, hook: Hook) -> Result<T, AuthoringError> {
    serde_json::from_value(input.clone())
        .map_err(|e| AuthoringError::Usage(format!("--input for `{hook}`: {e}")))
}

fn connection_info(input: &Value, hook: Hook) -> Result<hooks::ConnectionInfo, AuthoringError> {
    let c: ConnectionInput = parse(input, hook)?;
    Ok(hooks::ConnectionInfo {
        hostname: c.hostname,
        platform_user_id: c.platform_user_id,
        additional_info: c.additional_info.into_iter().collect(),
    })
}

fn pairs(list: &[(String, String)]) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn location(l: Option<ClientAuthLocation>) -> Value {
    match l {
        Some(ClientAuthLocation::Header) => json!("header"),
        Some(ClientAuthLocation::Body) => json!("body"),
        Some(ClientAuthLocation::Both) => json!("both"),
        None => Value::Null,
    }
}

fn identity(u: hooks::UserIdentity) -> Value {
    json!({
        "platformUserId": u.platform_user_id, "name": u.name,
        "timezoneName": u.timezone_name, "timezoneOffset": u.timezone_offset,
        "additionalInfo": pairs(&u.additional_info), "message": u.message,
    })
}

fn oauth_values(v: hooks::OauthValues) -> Value {
    let secret = match v.client_secret {
        ClientSecretRef::HostSecret(name) => json!({ "hostSecret": name }),
        ClientSecretRef::Managed => json!("managed"),
        ClientSecretRef::None => Value::Null,
    };
    json!({
        "clientId": v.client_id, "clientSecret": secret, "accessTokenUri": v.access_token_uri,
        "redirectUri": v.redirect_uri, "authorizationUri": v.authorization_uri,
        "scopes": v.scopes, "hostname": v.hostname, "failMessage": v.fail_message,
    })
}

fn finish<R>(
    outcome: Outcome<R>,
    to_json: impl FnOnce(R) -> Value,
) -> (Result<Value, CallError>, Vec<LogLine>) {
    (outcome.result.map(to_json), outcome.report.logs)
}

/// Calls `hook` of the connector at `source` with `input`.
pub async fn call(
    source: &Path,
    hook_name: &str,
    input: &Value,
    options: &LocalOptions,
    quiet: bool,
) -> Result<CallResult, AuthoringError> {
    let hook = Hook::from_name(hook_name).ok_or_else(|| {
        AuthoringError::Usage(format!(
            "unknown hook `{hook_name}`; hooks: {}",
            Hook::ALL
                .iter()
                .map(|h| h.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let source = ConnectorSource::resolve(source)?;
    let wasm = source.wasm(options.target_dir.as_deref(), quiet)?;
    let manifest = read_manifest(&wasm)?;
    let state_dir = options
        .state_dir
        .clone()
        .unwrap_or_else(|| source.state_dir());
    let audit = Arc::new(MemoryAuditSink::default());
    let host = LocalHost::start(
        &manifest,
        &state_dir,
        options,
        None,
        audit.clone(),
        "call-plugins",
    )
    .await?;
    let connector = host.install(&wasm).await?;
    let prepared = &connector.prepared;

    // Credentials: the stored test account, and CONNECTOR_API_KEY.
    let mut credentials = CallCredentials::default();
    let mut names = Vec::new();
    // The secret form fields of the stored test connection (from a login on
    // the dev page): `{apiSecret}` templates and `field:` references.
    let mut secret_fields = Default::default();
    let stored = host
        .connections
        .list(TEST_ACCOUNT, TEST_USER)
        .await
        .map_err(|e| AuthoringError::Other(e.to_string()))?
        .into_iter()
        .rev()
        .find(|c| c.connector_id == manifest.id);
    if let Some(connection) = &stored {
        let secrets = host
            .connections
            .secrets(connection)
            .await
            .map_err(|e| AuthoringError::Other(e.to_string()))?;
        if secrets.access_token.is_some() {
            names.push("access-token (test account)".to_string());
        }
        credentials.access_token = secrets.access_token;
        secret_fields = host
            .connections
            .secret_fields(connection)
            .await
            .map_err(|e| AuthoringError::Other(e.to_string()))?;
    }
    if let Ok(key) = std::env::var(API_KEY_ENV) {
        let answer = if prepared.implements(Hook::BasicAuth) {
            let info = connection_info(input, Hook::BasicAuth).unwrap_or(hooks::ConnectionInfo {
                hostname: None,
                platform_user_id: None,
                additional_info: vec![],
            });
            let answer = prepared
                .basic_auth(&CallContext::default(), info)
                .await
                .result
                .map_err(|error| {
                    AuthoringError::Flow(format!(
                        "the basic-auth hook failed, so the API key cannot be placed: {error}"
                    ))
                })?;
            Some(answer)
        } else {
            None
        };
        // As `serve` places it: the manifest's declaration, which a
        // `basic-auth` answer must equal.
        let placement = connector_server::flows::checked_placement(&manifest, answer)
            .map_err(AuthoringError::Flow)?;
        let fields = parse::<ConnectionInput>(input, hook)
            .map(|c| c.additional_info)
            .unwrap_or_default();
        credentials.api_key = Some(ApiKeyCredential {
            key: SecretString::from(key),
            placement,
            fields,
            secret_fields,
        });
        names.push(format!("api-key ({API_KEY_ENV})"));
    }
    // The basic-auth call above is not part of what the user asked for.
    let before = audit.events().len();
    let ctx = CallContext {
        account_id: Some(TEST_ACCOUNT.into()),
        user_id: Some(TEST_USER.into()),
        credentials: Arc::new(credentials),
        deny_outbound: false,
    };
    let (result, logs) = match hook {
        Hook::AuthType => finish(prepared.auth_type(&ctx).await, |t| match t {
            AuthType::Oauth => json!("oauth"),
            AuthType::ApiKey => json!("apiKey"),
        }),
        Hook::OauthInfo => {
            let i: OauthInfoJson = parse(input, hook)?;
            let input = hooks::OauthInfoInput {
                token_url: i.token_url,
                hostname: i.hostname,
                account_id: i.account_id.or(Some(TEST_ACCOUNT.into())),
                proxy_id: i.proxy_id,
                proxy_config: i.proxy_config.map(|v| v.to_string()),
                user_email: i.user_email,
                is_from_mcp: i.is_from_mcp,
                managed: None,
            };
            finish(prepared.oauth_info(&ctx, input).await, oauth_values)
        }
        Hook::OverridingOauthOption => {
            let v: OauthValuesJson = parse(input, hook)?;
            let input = hooks::OauthValues {
                client_id: v.client_id,
                client_secret: match v.client_secret {
                    Some(name) => ClientSecretRef::HostSecret(name),
                    None => ClientSecretRef::None,
                },
                access_token_uri: v.access_token_uri,
                redirect_uri: v.redirect_uri,
                authorization_uri: v.authorization_uri,
                scopes: v.scopes,
                hostname: v.hostname,
                fail_message: None,
            };
            finish(prepared.overriding_oauth_option(&ctx, input).await, |o| {
                json!({
                    "tokenUrl": o.token_url, "extraBodyParams": pairs(&o.extra_body_params),
                    "extraHeaders": pairs(&o.extra_headers),
                    "clientAuthLocation": location(o.client_auth_location),
                })
            })
        }
        Hook::CredentialsFromTokenResponse => {
            let t: TokenResponseJson = parse(input, hook)?;
            let mut fields = t.token_response;
            for secret in ["access_token", "refresh_token", "id_token"] {
                fields.remove(secret);
            }
            let input = hooks::TokenResponseInput {
                token_response: hooks::TokenResponseView {
                    token_type: fields
                        .get("token_type")
                        .and_then(Value::as_str)
                        .map(Into::into),
                    scope: fields.get("scope").and_then(Value::as_str).map(Into::into),
                    expires_in: fields.get("expires_in").and_then(Value::as_u64),
                    fields_json: Value::Object(fields).to_string(),
                },
                hostname: t.hostname,
                callback_query: t.callback_query.into_iter().collect(),
            };
            finish(
                prepared.credentials_from_token_response(&ctx, input).await,
                |kept| pairs(&kept),
            )
        }
        Hook::UserInfo => finish(
            prepared
                .user_info(&ctx, connection_info(input, hook)?)
                .await,
            identity,
        ),
        Hook::RefreshUserInfo => finish(
            prepared
                .refresh_user_info(&ctx, connection_info(input, hook)?)
                .await,
            identity,
        ),
        Hook::BasicAuth => finish(
            prepared
                .basic_auth(&ctx, connection_info(input, hook)?)
                .await,
            |p| match p {
                hooks::ApiKeyPlacement::Basic(t) => json!({ "basic": t }),
                hooks::ApiKeyPlacement::Bearer => json!("bearer"),
                hooks::ApiKeyPlacement::Header(h) => json!({ "header": h }),
                hooks::ApiKeyPlacement::Query(q) => json!({ "query": q }),
            },
        ),
        Hook::Unauthorize => finish(
            prepared
                .unauthorize(&ctx, connection_info(input, hook)?)
                .await,
            |m| json!(m),
        ),
        Hook::TestConnection => finish(
            prepared
                .test_connection(&ctx, connection_info(input, hook)?)
                .await,
            |m| json!(m),
        ),
        Hook::Refresh => finish(
            prepared.refresh(&ctx, connection_info(input, hook)?).await,
            |r| {
                json!({
                    "tokenUrl": r.token_url, "extraParams": pairs(&r.extra_params),
                    "clientAuthLocation": location(r.client_auth_location),
                    "accessTokenPath": r.access_token_path,
                    "refreshTokenPath": r.refresh_token_path,
                    "expiresInPath": r.expires_in_path,
                })
            },
        ),
        Hook::AuthValidation => finish(
            prepared
                .auth_validation(&ctx, connection_info(input, hook)?)
                .await,
            |v| json!({ "successful": v.successful, "status": v.status, "failReason": v.fail_reason }),
        ),
    };
    let (result, error) = match result {
        Ok(value) => (Some(value), None),
        Err(error) => (
            None,
            Some(json!({ "kind": error.kind(), "message": error.to_string() })),
        ),
    };
    Ok(CallResult {
        connector: connector.connector().to_string(),
        hook: hook.name().to_string(),
        result,
        error,
        logs,
        outbound: audit.events().into_iter().skip(before).collect(),
        credentials: names,
    })
}
