//! # connector-abi
//!
//! The contract between a connector component and everything that reads or runs
//! it, written once: the SDK's `#[connector]` macro, the host's sandbox and
//! registry, and `connector-host inspect` all use this crate.
//!
//! - [`hook`]: the hooks of the `connector:auth` world (names, WIT version, the
//!   custom section that lists the hooks a component implements);
//! - [`manifest`]: the manifest a connector carries in its `connector-manifest`
//!   custom section, and its validation.
//!
//! With the `openapi` feature, the manifest types also describe themselves as
//! OpenAPI schemas (the host's API serves them).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
pub mod hook;
pub mod manifest;

pub use hook::Hook;

#[cfg(test)]
mod wit_contract_tests;
