//! The API keeps the contract its OpenAPI document states, under fuzzing:
//! schemathesis (`--checks all`: no 5xx, no undocumented status, every
//! response matching its schema, schema-valid requests accepted and invalid
//! ones refused) runs against `/openapi.json` of a test host with a seeded
//! login, once with each role's key. Its settings:
//! `tests/contract/schemathesis.toml`.
//!
//! schemathesis is a Python program: `.ci/run` installs it and names it in
//! `CONNECTOR_HOST_SCHEMATHESIS`; elsewhere the test uses `schemathesis` from
//! `PATH`. Without either it fails under `CI=true` and is skipped with a
//! message otherwise (a fresh machine has no Python packages).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use connector_server::access::Role;
use connector_server::config::ApiLimits;
use connector_test_support::harness::{API_KEY, Host, Options};
use serde_json::json;

/// The variable naming the schemathesis executable.
const SCHEMATHESIS_ENV: &str = "CONNECTOR_HOST_SCHEMATHESIS";
/// One role's run may take this long; it is stopped after.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// The schemathesis executable, if there is one.
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(SCHEMATHESIS_ENV) {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("schemathesis"))
            .find(|candidate| candidate.is_file())
    });
    if on_path.is_none() && std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "schemathesis not found: set {SCHEMATHESIS_ENV} or put it on PATH (.ci/run installs it)"
        );
    }
    on_path
}

/// Runs schemathesis against `host` with `key`; its output when it fails.
async fn fuzz(schemathesis: &Path, host: &Host, key: &str, connection: &str) -> Result<(), String> {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("contract/schemathesis.toml");
    // schemathesis keeps a cache in its working directory: not the checkout.
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(schemathesis);
    command
        .current_dir(scratch.path())
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/openapi.json", host.base)])
        .args(["--checks", "all", "--seed", "1", "--no-color"])
        .env("CH_BASE_URL", &host.base)
        .env("CH_API_KEY", key)
        .env("CH_CONNECTION_ID", connection)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .map_err(|_| format!("schemathesis ran longer than {RUN_LIMIT:?}"))?
        .map_err(|e| format!("cannot run {}: {e}", schemathesis.display()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_keeps_its_documented_contract_for_every_role() {
    let Some(schemathesis) = schemathesis() else {
        eprintln!(
            "schemathesis not installed: the API contract was not fuzzed (see {SCHEMATHESIS_ENV})"
        );
        return;
    };
    // One key sends every generated request: no per-key rate limit here.
    let host = Host::with(Options {
        api: ApiLimits {
            requests_per_second_per_key: 1_000_000,
            burst_per_key: 1_000_000,
            ..ApiLimits::default()
        },
        ..Options::default()
    })
    .await;
    let (status, connection) = host
        .post(
            "/v1/connectors/local-insightly/api-key/login",
            json!({"accountId": "acct-1", "userId": "user-1",
                "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}}),
        )
        .await;
    assert_eq!(status, 200, "{connection}");
    let connection = connection["id"].as_str().unwrap().to_string();
    // The service key last: its run logs the seeded connection out.
    let roles = [
        ("operator", host.key(Role::Operator, &[]).await),
        (
            "account-admin",
            host.key(Role::AccountAdmin, &["acct-1"]).await,
        ),
        ("service", host.key(Role::Service, &["acct-1"]).await),
    ];
    for (role, key) in &roles {
        if let Err(report) = fuzz(&schemathesis, &host, key, &connection).await {
            panic!("the API broke its contract for the {role} key:\n{report}");
        }
    }
}
