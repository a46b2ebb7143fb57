//! Read-only, non-secret configuration the operator set for this connector in the
//! host config (`[connectors.<id>.config]`). Secrets are never available here:
//! name them as a [`Credential`](crate::http::Credential) instead.

use crate::KeyValue;
use crate::bindings::connector::auth::config as raw;

/// The value of `key`, if the operator set it.
pub fn get(key: &str) -> Option<String> {
    raw::get(key)
}

/// Every configured key and value, sorted by key.
pub fn all() -> Vec<KeyValue> {
    raw::get_all()
}
