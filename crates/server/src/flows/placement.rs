//! Where the host puts a connection's API key: always where the manifest's
//! `auth.apiKey.placement` says. A connector that implements `basic-auth`
//! (App Connect `getBasicAuth`) must answer exactly that declaration, or its
//! logins are refused. The answer is a property of the connector's code, so
//! it is asked once per loaded version (by sha256) and remembered; a refusal
//! is not remembered (the next call asks again).

use std::collections::HashMap;
use std::sync::Mutex;

use connector_abi::hook::Hook;
use connector_abi::manifest::{ApiKeyPlacementDecl, Manifest};
use connector_sandbox::capabilities::http::ApiKeyPlacement;
use connector_sandbox::runtime::CallContext;
use connector_sandbox::wit::hooks::{self, ConnectionInfo};

use super::FlowError;
use crate::registry::LoadedConnector;

/// The most connector versions remembered; when full, all are forgotten.
const MAX_VERSIONS: usize = 4096;

/// The checked placements of the connector versions seen, by sha256.
#[derive(Default)]
pub(crate) struct Placements {
    checked: Mutex<HashMap<String, ApiKeyPlacement>>,
}

impl Placements {
    /// Where `connector` puts an API key: see [`checked_placement`]. Its
    /// `basic-auth` hook is asked (with `ctx` and `info`) only the first time
    /// this version is used.
    pub(crate) async fn api_key_placement(
        &self,
        connector: &LoadedConnector,
        ctx: &CallContext,
        info: ConnectionInfo,
    ) -> Result<ApiKeyPlacement, FlowError> {
        if !connector.prepared.implements(Hook::BasicAuth) {
            return checked_placement(&connector.info.manifest, None).map_err(FlowError::Connector);
        }
        let sha256 = &connector.info.sha256;
        if let Some(placement) = self.checked.lock().expect("not poisoned").get(sha256) {
            return Ok(placement.clone());
        }
        let answer = connector.prepared.basic_auth(ctx, info).await.result?;
        let placement = checked_placement(&connector.info.manifest, Some(answer))
            .map_err(FlowError::Connector)?;
        let mut checked = self.checked.lock().expect("not poisoned");
        if checked.len() >= MAX_VERSIONS {
            checked.clear();
        }
        checked.insert(sha256.clone(), placement.clone());
        Ok(placement)
    }
}

/// Where the host puts an API key: the manifest's `auth.apiKey.placement`.
/// A connector that implements `basic-auth` (App Connect `getBasicAuth`) must
/// answer exactly that declaration; any other answer is refused, so what a
/// reviewer read in the manifest is what runs. The error says both.
pub fn checked_placement(
    manifest: &Manifest,
    answer: Option<hooks::ApiKeyPlacement>,
) -> Result<ApiKeyPlacement, String> {
    let declared = manifest
        .auth
        .api_key
        .as_ref()
        .map(|block| &block.placement)
        .ok_or_else(|| format!("connector `{}` has no API-key form", manifest.id))?;
    if let Some(answer) = answer.map(declared_form)
        && &answer != declared
    {
        return Err(format!(
            "connector `{}` answered `basic-auth` with {}, but its manifest declares \
             `auth.apiKey.placement` {}: refused (the key goes only where the manifest says)",
            manifest.id,
            bounded_description(&answer),
            declared.describe()
        ));
    }
    Ok(sandbox_form(declared))
}

/// A `basic-auth` answer in the manifest's terms.
fn declared_form(placement: hooks::ApiKeyPlacement) -> ApiKeyPlacementDecl {
    match placement {
        hooks::ApiKeyPlacement::Basic(template) => ApiKeyPlacementDecl::Basic(template),
        hooks::ApiKeyPlacement::Bearer => ApiKeyPlacementDecl::Bearer,
        hooks::ApiKeyPlacement::Header(name) => ApiKeyPlacementDecl::Header(name),
        hooks::ApiKeyPlacement::Query(name) => ApiKeyPlacementDecl::Query(name),
    }
}

/// The sandbox's placement for a declaration.
fn sandbox_form(declared: &ApiKeyPlacementDecl) -> ApiKeyPlacement {
    match declared {
        ApiKeyPlacementDecl::Basic(template) => ApiKeyPlacement::Basic(template.clone()),
        ApiKeyPlacementDecl::Bearer => ApiKeyPlacement::Bearer,
        ApiKeyPlacementDecl::Header(name) => ApiKeyPlacement::Header(name.clone()),
        ApiKeyPlacementDecl::Query(name) => ApiKeyPlacement::Query(name.clone()),
    }
}

/// A guest's answer described for an error message, cut to a bounded length.
fn bounded_description(answer: &ApiKeyPlacementDecl) -> String {
    const MAX: usize = 160;
    let mut text = answer.describe();
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}
