//! `connector:auth/config`: read-only, non-secret values the operator set for a
//! connector in the host config (`[connectors.<id>.config]`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::runtime::CallState;
use crate::runtime::generated::connector::auth::config::Host;

/// The configuration one connector sees.
#[derive(Debug, Clone, Default)]
pub struct ConfigCapability {
    values: Arc<BTreeMap<String, String>>,
}

impl ConfigCapability {
    /// Wraps the operator's values for one connector.
    pub fn new(values: Arc<BTreeMap<String, String>>) -> Self {
        Self { values }
    }
}

impl Host for CallState {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.values.get(&key).cloned()
    }

    fn get_all(&mut self) -> Vec<(String, String)> {
        self.config
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
