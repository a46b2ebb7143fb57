//! `connector:auth/config`: read-only, non-secret values the operator set for a
//! connector in the host config (`[connectors.<id>.config]`).
//!
//! The context is [`ConfigCapability`] (in the store's data), the view is
//! [`ConfigView`] (what the import reads through), and [`add_to_linker`] links
//! the interface with a function from the store's data to the view.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use crate::generated::connector::auth::config::{self as wit, Host};

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

    /// The view the `config` import reads through.
    pub fn view(&self) -> ConfigView<'_> {
        ConfigView { context: self }
    }
}

/// The `config` import's view of a call's [`ConfigCapability`].
pub struct ConfigView<'a> {
    context: &'a ConfigCapability,
}

impl Host for ConfigView<'_> {
    fn get(&mut self, key: String) -> Option<String> {
        self.context.values.get(&key).cloned()
    }

    fn get_all(&mut self) -> Vec<(String, String)> {
        self.context
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Links `connector:auth/config`; `view` finds the capability in the store's data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> ConfigView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasConfig>(linker, view)
}

struct HasConfig;

impl HasData for HasConfig {
    type Data<'a> = ConfigView<'a>;
}
