//! Routes of the connection flows. Request and response bodies are JSON;
//! errors are `{code, message, field?}` with a matching status. No route ever
//! returns a secret.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::query::ApiQuery;
use super::{ApiError, AppState, Caller};
use crate::access::{Denied, Principal, Role};
use axum::response::IntoResponse;

use super::dto::{
    ApiKeyLogin, AuthPageView, ClientCredentialsLogin, LogoutResult, OAuthConnected, OAuthStart,
    OAuthStarted, ProxyRequest, ProxyResponse, RawCredentials, ValidationResult,
};
use crate::flows::{FlowError, OAuthCallback};
use crate::store::{Connection, ConnectionRef};

/// `GET /v1/connectors/{id}/auth-page` (any key), and for service keys within
/// their accounts: `POST /v1/connectors/{id}/api-key/login`,
/// `POST /v1/connectors/{id}/oauth/start`, `GET /v1/oauth/callback`,
/// `POST /v1/connectors/{id}/oauth/client-credentials`,
/// `POST /v1/accounts/{account}/users/{user}/connections/{id}/{logout,validate,test,refresh,refresh-user-info}`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/connectors/{id}/auth-page", get(auth_page))
        .route("/v1/connectors/{id}/api-key/login", post(api_key_login))
        .route("/v1/connectors/{id}/oauth/start", post(oauth_start))
        .route("/v1/oauth/callback", get(oauth_callback))
        .route(
            "/v1/connectors/{id}/oauth/client-credentials",
            post(client_credentials_login),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/connections/{id}/logout",
            post(logout),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/connections/{id}/validate",
            post(validate),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/connections/{id}/test",
            post(test_connection),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/connections/{id}/refresh",
            post(force_refresh),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/connections/{id}/refresh-user-info",
            post(refresh_user_info),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/connections/{id}/proxy",
            post(proxy),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/connections/{id}/credentials",
            get(credentials),
        )
}

#[utoipa::path(post, path = "/v1/accounts/{account}/users/{user}/connections/{id}/proxy", tag = "flows", params(("account" = String, Path), ("user" = String, Path), ("id" = String, Path)), request_body = ProxyRequest, responses((status = 200, description = "The provider's answer (any status), with the credential injected by the host and the token refreshed first when due", body = ProxyResponse), (status = 400, description = "Bad request or URL refused by the connector's allowed origins (named)", body = ApiError), (status = 401, description = "The provider refused the refresh token: the user must log in again", body = ApiError), (status = 403, description = "Not a service key of this account", body = ApiError), (status = 404, description = "Unknown connection", body = ApiError), (status = 409, description = "The connection is logged out or needs re-auth", body = ApiError), (status = 502, description = "Provider unreachable, or the expired token's refresh failed", body = ApiError)))]
pub(super) async fn proxy(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(path): ConnectionPath,
    body: Result<Json<ProxyRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<axum::response::Response, ApiError> {
    // The key is checked, and its scope, before anything of the connection
    // is read or decrypted.
    let Caller(caller) = match Caller::from_headers(&headers, &state).await {
        Ok(caller) => caller,
        Err(response) => return Ok(response),
    };
    let at = scoped(&caller, &path, "proxy requests")?;
    let Json(request) = body.map_err(ApiError::bad_body)?;
    let request = request.try_into()?;
    let fetched = state
        .connections
        .get_with_secrets(at)
        .await
        .map_err(|e| ApiError::from(FlowError::Storage(e)))?;
    let response = state.flows.proxy_fetched(at, request, fetched).await?;
    Ok(Json(ProxyResponse::from(response)).into_response())
}

#[utoipa::path(get, path = "/v1/accounts/{account}/users/{user}/connections/{id}/credentials", tag = "flows", params(("account" = String, Path), ("user" = String, Path), ("id" = String, Path)), responses((status = 200, description = "The raw access token (refreshed first when due): `{tokenType, accessToken, expiresAt}`"), (status = 403, description = "Not a service key of this account trusted with raw tokens", body = ApiError), (status = 404, description = "Unknown connection", body = ApiError), (status = 409, description = "Logged out, needs re-auth, or expired", body = ApiError)))]
pub(super) async fn credentials(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(path): ConnectionPath,
) -> Result<axum::response::Response, ApiError> {
    let at = scoped(&caller, &path, "read raw credentials")?;
    if !caller.raw_tokens {
        return Err(Denied::RawTokens.into());
    }
    let raw = RawCredentials::from(state.flows.raw_credentials(at).await?);
    tracing::info!(key = %caller.key_id, connection = %at.id, "raw access token handed out");
    let mut response = Json(raw).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The path of one connection.
type ConnectionPath = Path<(String, String, String)>;

/// Checks the caller may run flows for `account`; returns the connection's reference.
fn scoped<'a>(
    caller: &Principal,
    (account, user, id): &'a (String, String, String),
    action: &'static str,
) -> Result<ConnectionRef<'a>, ApiError> {
    caller.require_account(Role::Service, account, action)?;
    Ok(ConnectionRef {
        account_id: account,
        user_id: user,
        id,
    })
}

/// Query of the auth page.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct AuthPageQuery {
    /// `manual`: the full form, admin-managed fields included.
    form: Option<String>,
}

/// Which form the auth page describes (the document's name for `form`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub(super) enum AuthForm {
    /// The user's form: without the fields an admin manages (the default).
    User,
    /// Every field, admin-managed ones included.
    Manual,
}

impl AuthForm {
    /// `form` of the query: absent means `user`; anything else names the field.
    fn parse(form: Option<&str>) -> Result<Self, ApiError> {
        match form {
            None | Some("user") => Ok(Self::User),
            Some("manual") => Ok(Self::Manual),
            Some(other) => Err(FlowError::field_error(
                "form",
                format!("`{other}` is not a form; use `user` (default) or `manual`"),
            )
            .into()),
        }
    }
}

#[utoipa::path(get, path = "/v1/connectors/{id}/auth-page", tag = "flows", params(("id" = String, Path), ("form" = Option<AuthForm>, Query, description = "`user` (default): the user's form; `manual`: every field, admin-managed ones included")), responses((status = 200, description = "What a client renders to log in", body = AuthPageView), (status = 400, description = "Unknown form", body = ApiError), (status = 404, description = "Unknown connector", body = ApiError)))]
pub(super) async fn auth_page(
    _: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<AuthPageQuery>,
) -> Result<Json<AuthPageView>, ApiError> {
    let manual = AuthForm::parse(query.form.as_deref())? == AuthForm::Manual;
    Ok(Json(state.flows.auth_page(&id, manual)?.into()))
}

#[utoipa::path(post, path = "/v1/connectors/{id}/api-key/login", tag = "flows", params(("id" = String, Path)), request_body = ApiKeyLogin, responses((status = 200, description = "The saved connection", body = Connection), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError), (status = 422, description = "`managed_fields_missing`: fields an admin manages are not set yet (their consts are listed)", body = ApiError)))]
pub(super) async fn api_key_login(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<ApiKeyLogin>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Connection>, ApiError> {
    let Json(login) = body.map_err(ApiError::bad_body)?;
    caller.require_account(Role::Service, &login.account_id, "log users in")?;
    Ok(Json(state.flows.api_key_login(&id, login.into()).await?))
}

#[utoipa::path(post, path = "/v1/accounts/{account}/users/{user}/connections/{id}/logout", tag = "flows", params(("account" = String, Path), ("user" = String, Path), ("id" = String, Path)), responses((status = 200, description = "Logged out; our copy of the credentials is cleared", body = LogoutResult), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError)))]
pub(super) async fn logout(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(path): ConnectionPath,
) -> Result<Json<LogoutResult>, ApiError> {
    Ok(Json(
        state
            .flows
            .logout(scoped(&caller, &path, "log users out")?)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/v1/accounts/{account}/users/{user}/connections/{id}/validate", tag = "flows", params(("account" = String, Path), ("user" = String, Path), ("id" = String, Path)), responses((status = 200, description = "Validation outcome", body = ValidationResult), (status = 409, description = "The connection is logged out", body = ApiError), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError)))]
pub(super) async fn validate(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(path): ConnectionPath,
) -> Result<Json<ValidationResult>, ApiError> {
    Ok(Json(
        state
            .flows
            .validate(scoped(&caller, &path, "validate connections")?)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/v1/accounts/{account}/users/{user}/connections/{id}/test", tag = "flows", params(("account" = String, Path), ("user" = String, Path), ("id" = String, Path)), responses((status = 200, description = "The connector's test passed", body = TestConnectionResult), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 409, description = "`connection_not_usable`: the connection is logged out", body = ApiError), (status = 501, description = "The connector does not implement `test-connection`", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError)))]
pub(super) async fn test_connection(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(path): ConnectionPath,
) -> Result<Json<TestConnectionResult>, ApiError> {
    let message = state
        .flows
        .test_connection(scoped(&caller, &path, "test connections")?)
        .await?;
    Ok(Json(TestConnectionResult {
        successful: true,
        message,
    }))
}

#[utoipa::path(post, path = "/v1/accounts/{account}/users/{user}/connections/{id}/refresh", tag = "flows", params(("account" = String, Path), ("user" = String, Path), ("id" = String, Path)), responses((status = 200, description = "The connection with its token refreshed now (its `refresh` state says when)", body = Connection), (status = 401, description = "The provider refused the refresh token: the user must log in again", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 409, description = "`connection_not_usable`: logged out, needs re-auth, an API-key connection, or no refresh token", body = ApiError), (status = 502, description = "The refresh failed (provider unreachable or 5xx); the old token is kept", body = ApiError)))]
pub(super) async fn force_refresh(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(path): ConnectionPath,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(
        state
            .flows
            .force_refresh(scoped(&caller, &path, "refresh tokens")?)
            .await?,
    ))
}

/// The outcome of `POST …/test`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct TestConnectionResult {
    /// Always true (a failed test is an error answer).
    successful: bool,
    /// The connector's message for the user, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[utoipa::path(post, path = "/v1/accounts/{account}/users/{user}/connections/{id}/refresh-user-info", tag = "flows", params(("account" = String, Path), ("user" = String, Path), ("id" = String, Path)), responses((status = 200, description = "The connection with the refreshed identity", body = Connection), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError), (status = 409, description = "`connection_not_usable`: the connection is logged out or needs re-auth", body = ApiError)))]
pub(super) async fn refresh_user_info(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(path): ConnectionPath,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(
        state
            .flows
            .refresh_user_info(scoped(&caller, &path, "refresh user info")?)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/connectors/{id}/oauth/start", tag = "flows", params(("id" = String, Path)), request_body = OAuthStart, responses((status = 200, description = "Where to send the user", body = OAuthStarted), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError), (status = 409, description = "`managed_credentials_missing`: the account admin has not set up the connector's OAuth application yet", body = ApiError)))]
pub(super) async fn oauth_start(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<OAuthStart>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<OAuthStarted>, ApiError> {
    let Json(start) = body.map_err(ApiError::bad_body)?;
    caller.require_account(Role::Service, &start.account_id, "start logins")?;
    Ok(Json(
        state.flows.oauth_start(&id, start.into()).await?.into(),
    ))
}

#[utoipa::path(get, path = "/v1/oauth/callback", tag = "flows", params(("code" = Option<String>, Query), ("state" = Option<String>, Query), ("iss" = Option<String>, Query), ("error" = Option<String>, Query), ("error_description" = Option<String>, Query)), responses((status = 200, description = "The saved connection", body = OAuthConnected), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError)))]
pub(super) async fn oauth_callback(
    Caller(caller): Caller,
    State(state): State<AppState>,
    ApiQuery(callback): ApiQuery<OAuthCallback>,
) -> Result<Json<OAuthConnected>, ApiError> {
    caller.require_role(&[Role::Service], "complete logins")?;
    // A state of an account outside the caller's scope is refused without
    // being consumed (its owner can still complete the login), and without
    // naming the account.
    if let Some(state_value) = callback.state.as_deref() {
        let account = state
            .flows
            .state_account(state_value)
            .await
            .map_err(ApiError::internal)?;
        if account.is_some_and(|a| !caller.accounts.contains(&a)) {
            return Err(Denied::ForeignLogin.into());
        }
    }
    Ok(Json(state.flows.oauth_callback(callback).await?.into()))
}

#[utoipa::path(post, path = "/v1/connectors/{id}/oauth/client-credentials", tag = "flows", params(("id" = String, Path)), request_body = ClientCredentialsLogin, responses((status = 200, description = "The saved connection: the host obtained its token with the client-credentials grant, no user redirect", body = Connection), (status = 400, description = "Bad input (the field is named); `wrong_auth_type` (not a client-credentials connector); `oauth_failed` (the connector's `failMessage`); `token_exchange_failed` (the token endpoint refused the grant, e.g. `invalid_client`)", body = ApiError), (status = 401, description = "`user-info` was refused the new token", body = ApiError), (status = 404, description = "Unknown connector", body = ApiError), (status = 409, description = "`managed_credentials_missing`: the account admin has not set up the connector's OAuth application yet", body = ApiError), (status = 502, description = "Provider or connector failure (token endpoint unreachable or refused by the outbound policy, a hook failed)", body = ApiError)))]
pub(super) async fn client_credentials_login(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<ClientCredentialsLogin>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Connection>, ApiError> {
    let Json(login) = body.map_err(ApiError::bad_body)?;
    caller.require_account(Role::Service, &login.account_id, "connect users")?;
    Ok(Json(
        state
            .flows
            .client_credentials_login(&id, login.into())
            .await?,
    ))
}
