//! `connector-host oauth2 CONNECTOR`: a local OAuth login for a test account,
//! modelled on Unito's `integration-cli oauth2` (seed 004).
//!
//! - First run (or `--reauth`): a callback server on
//!   `http://127.0.0.1:{OAUTH2_PORT}/callback` (default port 9002), the
//!   authorize URL printed for the author to open, the code exchanged by the
//!   host's ordinary OAuth flow, the tokens stored **encrypted** in the state
//!   folder (`.connector-host/test-accounts.db`, under the development key
//!   `.connector-host/dev-master-keys`).
//! - Next runs: the stored refresh token is used to get a new access token
//!   ([`Flows::refresh_tokens`](connector_server::flows::Flows::refresh_tokens)).
//!
//! The redirect URI is the local callback, not the one the connector's
//! `oauth-info` returns: register it with the provider's test application.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use tokio::sync::{Mutex, mpsc};

use super::local::{LocalHost, read_manifest};
use super::{AuthoringError, ConnectorSource, LocalOptions, TEST_ACCOUNT, TEST_USER};
use connector_sandbox::capabilities::http::TracingOnlyAuditSink;
use connector_server::flows::refresh::RefreshError;
use connector_server::flows::{OAuthCallback, OAuthStart};
use connector_server::store::{Connection, ConnectionStatus};

/// The environment variable with the callback port.
pub const PORT_ENV: &str = "OAUTH2_PORT";
/// The default callback port (Unito's).
pub const DEFAULT_PORT: u16 = 9002;

/// What to do.
#[derive(Debug, Clone)]
pub struct OAuth2Options {
    /// Shared settings (connector config, target and state folders).
    pub local: LocalOptions,
    /// The callback port.
    pub port: u16,
    /// Log in again even when a refresh token is stored.
    pub reauth: bool,
    /// How long to wait for the provider's redirect.
    pub timeout: Duration,
}

/// What happened.
#[derive(Debug)]
pub enum OAuth2Outcome {
    /// A new login; the tokens are stored.
    LoggedIn(Connection),
    /// The stored refresh token was used.
    Refreshed {
        /// The connection after the refresh.
        connection: Connection,
        /// The provider rotated the refresh token.
        rotated: bool,
    },
}

/// Runs the command; progress and the authorize URL go to `say` (one line per
/// call; the binary prints them on stdout).
pub async fn run(
    source: &Path,
    options: &OAuth2Options,
    say: &(dyn Fn(&str) + Send + Sync),
) -> Result<OAuth2Outcome, AuthoringError> {
    let source = ConnectorSource::resolve(source)?;
    let wasm = source.wasm(options.local.target_dir.as_deref(), false)?;
    let manifest = read_manifest(&wasm)?;
    if manifest.auth.oauth.is_none() {
        return Err(AuthoringError::Usage(format!(
            "connector `{}` uses {} auth: `oauth2` is for OAuth connectors (try `connector-host call` or `dev`)",
            manifest.id, manifest.auth.kind
        )));
    }
    let state_dir = options
        .local
        .state_dir
        .clone()
        .unwrap_or_else(|| source.state_dir());
    let host = LocalHost::start(
        &manifest,
        &state_dir,
        &options.local,
        None,
        Arc::new(TracingOnlyAuditSink),
        "oauth2-plugins",
    )
    .await?;
    let connector = host.install(&wasm).await?;
    let id = connector.info.manifest.id.clone();
    say(&format!(
        "connector {} — test account `{TEST_ACCOUNT}/{TEST_USER}`, tokens in {} (encrypted, test use only)",
        connector.connector(),
        host.database_file.display()
    ));

    let existing = host
        .connections
        .list(TEST_ACCOUNT, TEST_USER)
        .await
        .map_err(|e| AuthoringError::Other(e.to_string()))?
        .into_iter()
        .rev()
        .find(|c| c.connector_id == id && c.status != ConnectionStatus::Revoked);
    if !options.reauth
        && let Some(connection) = &existing
    {
        if connection.has_refresh_token {
            say("refreshing the access token with the stored refresh token…");
            return match host.flows.refresh_tokens(connection.at()).await {
                Ok(refreshed) => {
                    say(&format!(
                        "refreshed: connection {} ({}), new access token stored, refresh token {}{}",
                        refreshed.connection.id,
                        refreshed.connection.user_name.as_deref().unwrap_or("?"),
                        if refreshed.refresh_token_rotated {
                            "rotated"
                        } else {
                            "kept"
                        },
                        expiry(&refreshed.connection),
                    ));
                    Ok(OAuth2Outcome::Refreshed {
                        rotated: refreshed.refresh_token_rotated,
                        connection: refreshed.connection,
                    })
                }
                Err(RefreshError::InvalidGrant(detail)) => Err(AuthoringError::Flow(format!(
                    "the provider refused the stored refresh token (invalid_grant{detail}): run again with --reauth"
                ))),
                Err(other) => Err(AuthoringError::Flow(other.to_string())),
            };
        }
        say("the stored test account has no refresh token: logging in again");
    }

    // A new login through the local callback.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)))
        .await
        .map_err(|e| {
            AuthoringError::io(
                format!(
                    "cannot listen on 127.0.0.1:{} for the OAuth callback (set {PORT_ENV} to another port)",
                    options.port
                ),
                e,
            )
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| AuthoringError::io("callback address", e))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let started = host
        .flows
        .oauth_start_with_local_redirect(
            &id,
            OAuthStart {
                account_id: TEST_ACCOUNT.into(),
                user_id: TEST_USER.into(),
                ..OAuthStart::default()
            },
            &redirect_uri,
        )
        .await?;
    say(&format!(
        "callback: {redirect_uri} (register it with the provider's test application)"
    ));
    say("open this URL in a browser and log in:");
    say(&started.authorize_url);

    let (done_tx, mut done_rx) = mpsc::channel::<Result<Connection, String>>(1);
    let shared = Arc::new(CallbackState {
        flows: host.flows.clone(),
        done: Mutex::new(Some(done_tx)),
    });
    let app = Router::new()
        .route("/callback", get(callback))
        .with_state(shared);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let result = tokio::time::timeout(options.timeout, done_rx.recv()).await;
    server.abort();
    let connection = match result {
        Ok(Some(Ok(connection))) => connection,
        Ok(Some(Err(message))) => return Err(AuthoringError::Flow(message)),
        Ok(None) => return Err(AuthoringError::Other("the callback server stopped".into())),
        Err(_) => {
            return Err(AuthoringError::Flow(format!(
                "no login within {}s: nothing was stored",
                options.timeout.as_secs()
            )));
        }
    };
    say(&format!(
        "logged in: connection {} as {} ({}), access token{} stored{}",
        connection.id,
        connection.user_name.as_deref().unwrap_or("?"),
        connection.platform_user_id.as_deref().unwrap_or("?"),
        if connection.has_refresh_token {
            " and refresh token"
        } else {
            " (no refresh token)"
        },
        expiry(&connection),
    ));
    Ok(OAuth2Outcome::LoggedIn(connection))
}

fn expiry(connection: &Connection) -> String {
    connection
        .expires_at
        .map(|at| {
            format!(
                ", expires in {}s",
                at - connector_server::store::unix_seconds()
            )
        })
        .unwrap_or_default()
}

struct CallbackState {
    flows: connector_server::flows::Flows,
    done: Mutex<Option<mpsc::Sender<Result<Connection, String>>>>,
}

/// `GET /callback`: completes the login once; later requests get a note.
async fn callback(
    State(state): State<Arc<CallbackState>>,
    Query(query): Query<OAuthCallback>,
) -> Html<String> {
    let Some(done) = state.done.lock().await.take() else {
        return Html("<p>This login is already complete; you can close this tab.</p>".into());
    };
    let outcome = state.flows.oauth_callback(query).await;
    let page = match &outcome {
        Ok(connected) => format!(
            "<h1>Logged in</h1><p>{} is connected. You can close this tab.</p>",
            html_escape(
                connected
                    .connection
                    .user_name
                    .as_deref()
                    .unwrap_or("The test account")
            )
        ),
        Err(error) => format!(
            "<h1>Login failed</h1><p>{}</p>",
            html_escape(&error.to_string())
        ),
    };
    let _ = done
        .send(outcome.map(|c| c.connection).map_err(|e| e.to_string()))
        .await;
    Html(page)
}

/// Escapes text for HTML.
pub(crate) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
