//! # connector-authoring
//!
//! What a connector author runs on their own machine:
//!
//! - [`authoring`]: `new`, `build`, `dev`, `oauth2` and `call`;
//! - [`dev_provider`]: the local OAuth 2.0 / API-key provider the demo and the
//!   tests log in against.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
pub mod authoring;
pub mod dev_provider;
