//! # connector-server
//!
//! The connector-host server: everything between the HTTP API and the sandbox.
//!
//! - [`registry`]: reading, checking, loading and hot-reloading connector files;
//! - [`store`]: the database (SQLite or PostgreSQL), migrations and encryption at rest;
//! - [`flows`]: the auth flows (API-key and OAuth logins, logout, validation,
//!   refresh, proxy and credentials, admin-managed credentials);
//! - [`events`]: signed webhooks about connection events;
//! - [`access`]: API keys, roles and account scopes;
//! - [`api`]: the HTTP API (axum), its DTOs, status codes and OpenAPI document;
//! - [`console`]: the web console (connect pages, connect sessions, templates);
//! - [`config`]: the host configuration file; [`keys`]: master keys;
//! - [`builder`]: wires all of the above into a host (`serve` and the tests use it).

#![warn(missing_docs)]
pub mod access;
pub mod api;
pub mod builder;
pub mod config;
pub mod console;
pub mod events;
pub mod flows;
pub mod keys;
pub mod registry;
pub mod store;
pub mod telemetry;
