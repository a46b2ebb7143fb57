//! `connector-host dev [PATH]`: the author's iteration loop.
//!
//! Builds the crate for `wasm32-wasip2`, loads it into a local host (the
//! `check` rules apply), optionally starts the local test provider
//! (`--provider`), serves a small login page on loopback, then watches
//! `src/`, `connector.json`, `Cargo.toml` and `build.rs`: every change rebuilds the crate
//! and hot-reloads the new version. Every outbound request of the connector
//! (and the host's own token requests for it) is printed as it happens; the
//! guest's log lines go to the host log (stderr, target `connector`).
//!
//! The login page is this module's own router — `/`, `/status`, `/login`,
//! `/oauth/start`, `/oauth/callback` — calling the library's
//! [`Flows`](connector_server::flows::Flows) directly, never the `/v1` API.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use serde_json::Value;

use super::build::{ConnectorCrate, build_crate};
use super::call::describe_request;
use super::local::{LocalHost, read_manifest};
use super::oauth2::html_escape;
use super::{AuthoringError, LocalOptions, Progress, TEST_ACCOUNT, TEST_USER};
use crate::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_abi::manifest::{AuthKind, FieldType};
use connector_sandbox::capabilities::http::{AuditEvent, AuditSink};
use connector_server::flows::{ApiKeyLogin, OAuthCallback, OAuthStart};

/// The test provider's client secret and API key in `dev --provider`.
pub const DEV_CLIENT_SECRET: &str = "dev-client-secret";
/// The API key the test provider accepts in `dev --provider`.
pub const DEV_API_KEY: &str = "dev-api-key";
/// Where `--provider` tries to listen first (a free port if taken).
pub const PROVIDER_ADDR: &str = "127.0.0.1:9100";
/// Files next to `Cargo.toml` (or `package.json`) whose change triggers a
/// rebuild (plus `src/`).
const WATCHED_FILES: &[&str] = &[
    "connector.json",
    "Cargo.toml",
    "build.rs",
    "package.json",
    "index.ts",
    "index.js",
];

/// What `dev` does.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Shared settings (connector config, target and state folders).
    pub local: LocalOptions,
    /// The login page's address (loopback only; port 0 for a free one).
    pub listen: SocketAddr,
    /// Start the local test provider and point the connector at it.
    pub provider: bool,
}

/// Output lines, one per call.
pub type Say = Arc<dyn Fn(&str) + Send + Sync>;

/// Prints every outbound request as it happens.
struct PrintingAudit(Say);

impl AuditSink for PrintingAudit {
    fn record(&self, event: AuditEvent) {
        (self.0)(&format!("  outbound: {}", describe_request(&event)));
    }
}

/// What the page and `/status` show.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct DevStatus {
    id: String,
    version: Option<String>,
    sha256: Option<String>,
    /// Successful loads so far (1 after start-up).
    loads: u64,
    /// The last build or load error, cleared by a successful reload.
    error: Option<String>,
}

struct DevState {
    host: LocalHost,
    status: RwLock<DevStatus>,
    callback_url: String,
    provider: Option<String>,
    say: Say,
}

/// Runs the loop until `shutdown` completes.
pub async fn run(
    path: &Path,
    options: DevOptions,
    say: Say,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AuthoringError> {
    if !options.listen.ip().is_loopback() {
        return Err(AuthoringError::Usage(
            "the dev server listens on loopback addresses only (e.g. 127.0.0.1:8090)".into(),
        ));
    }
    let krate = ConnectorCrate::open(path)?;
    let state_dir = options
        .local
        .state_dir
        .clone()
        .unwrap_or_else(|| krate.dir.join(super::local::STATE_DIR));
    let target_dir = options.local.target_dir.clone();
    let wasm = build(&krate, target_dir.clone()).await?;
    say(&format!("built {}", wasm.display()));
    let manifest = read_manifest(&wasm)?;

    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| AuthoringError::io(format!("cannot listen on {}", options.listen), e))?;
    let address = listener
        .local_addr()
        .map_err(|e| AuthoringError::io("dev server address", e))?;
    let base = format!("http://{address}");
    let callback_url = format!("{base}/oauth/callback");

    let mut local = options.local.clone();
    let provider = if options.provider {
        let client_id = manifest
            .auth
            .oauth
            .as_ref()
            .map(|o| o.client_id.clone())
            .unwrap_or_else(|| format!("{}-client", manifest.id));
        let port = super::oauth2::DEFAULT_PORT;
        let config = DevProviderConfig {
            clients: vec![DevClient {
                client_id,
                client_secret: DEV_CLIENT_SECRET.into(),
                redirect_uris: vec![
                    callback_url.clone(),
                    format!("http://127.0.0.1:{port}/callback"),
                    format!("http://localhost:{port}/callback"),
                ],
            }],
            api_keys: vec![DEV_API_KEY.into()],
            ..DevProviderConfig::default()
        };
        let provider = match DevProvider::start_on(
            PROVIDER_ADDR.parse().expect("valid"),
            config.clone(),
        )
        .await
        {
            Ok(provider) => provider,
            Err(_) => DevProvider::start(config)
                .await
                .map_err(|e| AuthoringError::io("starting the test provider", e))?,
        };
        if !local.config.iter().any(|(k, _)| k == "base-url") {
            local.config.push(("base-url".into(), provider.base_url()));
        }
        say(&format!(
            "test provider: {} (API key `{DEV_API_KEY}`, OAuth client secret `{DEV_CLIENT_SECRET}`; config base-url={})",
            provider.base_url(),
            provider.base_url()
        ));
        Some(provider)
    } else {
        None
    };

    let host = LocalHost::start(
        &manifest,
        &state_dir,
        &local,
        provider.as_ref().map(|_| DEV_CLIENT_SECRET),
        Arc::new(PrintingAudit(say.clone())),
        "dev-plugins",
    )
    .await?;
    let state = Arc::new(DevState {
        host,
        status: RwLock::new(DevStatus {
            id: manifest.id.clone(),
            ..DevStatus::default()
        }),
        callback_url,
        provider: provider.as_ref().map(DevProvider::base_url),
        say: say.clone(),
    });
    state.load(&wasm).await;

    let app = Router::new()
        .route("/", get(page))
        .route("/status", get(status))
        .route("/login", post(api_key_login))
        .route("/oauth/start", get(oauth_start))
        .route("/oauth/callback", get(oauth_callback))
        .with_state(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    say(&format!("dev server: {base}/ (open it to try the login)"));

    // Watch the sources.
    // The crate folder itself (not recursively: editors that save by
    // renaming replace the watched file) and `src/`, filtered by name.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let src = krate.dir.join("src");
    let top = krate.dir.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            for path in event.paths {
                let relevant = path.starts_with(&src)
                    || (path.parent() == Some(top.as_path())
                        && path.file_name().is_some_and(|name| {
                            WATCHED_FILES.iter().any(|watched| name == *watched)
                        }));
                if relevant {
                    let _ = tx.send(path);
                }
            }
        }
    })
    .map_err(|e| AuthoringError::Other(format!("cannot watch the sources: {e}")))?;
    // A JavaScript package may keep its code at the top, without `src/`.
    let folders = [
        (krate.dir.join("src"), RecursiveMode::Recursive),
        (krate.dir.clone(), RecursiveMode::NonRecursive),
    ];
    for (path, mode) in folders.into_iter().filter(|(path, _)| path.is_dir()) {
        watcher
            .watch(&path, mode)
            .map_err(|e| AuthoringError::Other(format!("cannot watch {}: {e}", path.display())))?;
    }
    say(&format!(
        "watching {} for changes (Ctrl-C stops)",
        krate.dir.display()
    ));

    tokio::pin!(shutdown);
    loop {
        let changed = tokio::select! {
            _ = &mut shutdown => break,
            changed = rx.recv() => match changed {
                Some(path) => path,
                None => break,
            },
        };
        // Editors write several events per save: wait for a quiet moment.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {}
        let shown = changed
            .strip_prefix(&krate.dir)
            .unwrap_or(&changed)
            .display()
            .to_string();
        say(&format!("change in {shown}: rebuilding"));
        match build(&krate, target_dir.clone()).await {
            Ok(wasm) => state.load(&wasm).await,
            Err(error) => {
                // Status first: whoever reads the line may ask `/status`.
                state.status.write().expect("status lock").error = Some(error.to_string());
                say(&format!("build failed: {error}"));
            }
        }
    }
    server.abort();
    drop(watcher);
    drop(provider);
    Ok(())
}

async fn build(
    krate: &ConnectorCrate,
    target_dir: Option<PathBuf>,
) -> Result<PathBuf, AuthoringError> {
    let krate = krate.clone();
    tokio::task::spawn_blocking(move || {
        let progress = Progress::start(format!("building {}", krate.package));
        let result = build_crate(&krate, target_dir.as_deref(), &progress);
        match &result {
            Ok(wasm) => progress.finish(format!("built {}", wasm.display())),
            Err(_) => progress.abandon(),
        }
        result.map_err(AuthoringError::from)
    })
    .await
    .map_err(|e| AuthoringError::Other(format!("the build task failed: {e}")))?
}

impl DevState {
    /// Installs a build and records the outcome.
    async fn load(&self, wasm: &Path) {
        match self.host.install(wasm).await {
            Ok(loaded) => {
                let mut status = self.status.write().expect("status lock");
                status.id = loaded.info.manifest.id.clone();
                status.version = Some(loaded.info.manifest.version.clone());
                status.sha256 = Some(loaded.info.sha256.clone());
                status.loads += 1;
                status.error = None;
                let verb = if status.loads == 1 {
                    "serving"
                } else {
                    "reloaded"
                };
                (self.say)(&format!(
                    "{verb} {} (sha256 {})",
                    loaded.connector(),
                    &loaded.info.sha256[..12]
                ));
            }
            Err(error) => {
                self.status.write().expect("status lock").error = Some(error.to_string());
                (self.say)(&format!("load failed: {error}"));
            }
        }
    }

    fn connector_id(&self) -> String {
        self.status.read().expect("status lock").id.clone()
    }
}

async fn status(State(state): State<Arc<DevState>>) -> axum::Json<DevStatus> {
    axum::Json(state.status.read().expect("status lock").clone())
}

fn layout(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;max-width:42em;margin:2em auto}}\
         .err{{color:#b00}} label{{display:block;margin:.5em 0}}</style></head>\
         <body>{body}<p><a href=\"/\">back</a></p></body></html>",
        t = html_escape(title)
    ))
}

/// `GET /`: the connector, its status and its login.
async fn page(State(state): State<Arc<DevState>>) -> Html<String> {
    let status = state.status.read().expect("status lock").clone();
    let mut body = format!(
        "<h1>{} <small>{}</small></h1>",
        html_escape(&status.id),
        html_escape(status.version.as_deref().unwrap_or("(not loaded)"))
    );
    if let Some(error) = &status.error {
        body += &format!("<pre class=\"err\">{}</pre>", html_escape(error));
    }
    if let Some(provider) = &state.provider {
        body += &format!(
            "<p>Test provider: <code>{}</code> (API key <code>{DEV_API_KEY}</code>).</p>",
            html_escape(provider)
        );
    }
    match state.host.flows.auth_page(&status.id, false) {
        Ok(view) => match (view.auth_type, view.api_key) {
            (AuthKind::ApiKey, Some(page)) => {
                body += &format!("<h2>{}</h2>", html_escape(&page.title));
                if let Some(warning) = &page.warning {
                    body += &format!("<p>{}</p>", html_escape(warning));
                }
                body += "<form method=\"post\" action=\"/login\">";
                for field in &page.content {
                    let kind = if field.key == connector_abi::manifest::API_KEY_FIELD {
                        "password"
                    } else {
                        "text"
                    };
                    body += &format!(
                        "<label>{} <input name=\"{}\" type=\"{kind}\"{}></label>",
                        html_escape(&field.title),
                        html_escape(&field.key),
                        if field.required { " required" } else { "" }
                    );
                }
                body += "<button>Log in</button></form>";
            }
            _ => {
                body += &format!(
                    "<p><a href=\"/oauth/start\">Connect with OAuth</a> (redirect URI for this page: <code>{}</code>)</p>",
                    html_escape(&state.callback_url)
                );
            }
        },
        Err(error) => body += &format!("<p class=\"err\">{}</p>", html_escape(&error.to_string())),
    }
    body += "<p>Outbound requests are printed in the terminal running <code>connector-host dev</code>.</p>";
    layout("connector-host dev", &body)
}

fn connected(
    state: &DevState,
    result: Result<connector_server::store::Connection, connector_server::flows::FlowError>,
) -> Response {
    match result {
        Ok(c) => {
            (state.say)(&format!(
                "login ok: connection {} as {} ({})",
                c.id,
                c.user_name.as_deref().unwrap_or("?"),
                c.platform_user_id.as_deref().unwrap_or("?")
            ));
            let info: String = c
                .additional_info
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<li><code>{}</code> = {}</li>",
                        html_escape(k),
                        html_escape(v)
                    )
                })
                .collect();
            layout(
                "Logged in",
                &format!(
                    "<h1>Logged in</h1><p>Connection <code>{}</code>: <b>{}</b> (platform user id <code>{}</code>)</p><ul>{info}</ul>",
                    html_escape(&c.id),
                    html_escape(c.user_name.as_deref().unwrap_or("?")),
                    html_escape(c.platform_user_id.as_deref().unwrap_or("?")),
                ),
            )
            .into_response()
        }
        Err(error) => {
            (state.say)(&format!("login failed: {error}"));
            (
                connector_server::api::flow_status(&error),
                layout(
                    "Login failed",
                    &format!(
                        "<h1>Login failed</h1><p class=\"err\">{} (<code>{}</code>)</p>",
                        html_escape(&error.to_string()),
                        error.code()
                    ),
                ),
            )
                .into_response()
        }
    }
}

/// `POST /login`: the API-key form.
async fn api_key_login(
    State(state): State<Arc<DevState>>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let id = state.connector_id();
    let types: BTreeMap<String, FieldType> = state
        .host
        .registry
        .get(&id)
        .and_then(|c| c.info.manifest.auth.api_key.clone())
        .map(|block| {
            block
                .page
                .content
                .iter()
                .map(|f| (f.key.clone(), f.field_type))
                .collect()
        })
        .unwrap_or_default();
    let fields = form
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            let value = match types.get(&k) {
                Some(FieldType::Number | FieldType::Integer) => v
                    .parse::<serde_json::Number>()
                    .map(Value::Number)
                    .unwrap_or(Value::String(v)),
                Some(FieldType::Boolean) => Value::Bool(matches!(v.as_str(), "on" | "true")),
                _ => Value::String(v),
            };
            (k, value)
        })
        .collect();
    let result = state
        .host
        .flows
        .api_key_login(
            &id,
            ApiKeyLogin {
                account_id: TEST_ACCOUNT.into(),
                user_id: TEST_USER.into(),
                hostname: None,
                fields,
                manual: false,
            },
        )
        .await;
    connected(&state, result)
}

/// `GET /oauth/start`: to the provider, with this server's callback.
async fn oauth_start(State(state): State<Arc<DevState>>) -> Response {
    let start = OAuthStart {
        account_id: TEST_ACCOUNT.into(),
        user_id: TEST_USER.into(),
        ..OAuthStart::default()
    };
    match state
        .host
        .flows
        .oauth_start_with_local_redirect(&state.connector_id(), start, &state.callback_url)
        .await
    {
        Ok(started) => Redirect::to(&started.authorize_url).into_response(),
        Err(error) => connected(&state, Err(error)),
    }
}

/// `GET /oauth/callback`: the provider's redirect.
async fn oauth_callback(
    State(state): State<Arc<DevState>>,
    Query(query): Query<OAuthCallback>,
) -> Response {
    let result = state.host.flows.oauth_callback(query).await;
    connected(&state, result.map(|c| c.connection))
}
