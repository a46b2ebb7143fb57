//! Subcommands of the `connector-host` command line that are too long for
//! `lib.rs`.

pub mod api_keys;
