//! Subcommands of the `connector-host` binary that are too long for
//! `main.rs`. (The library has no CLI code; these modules belong to the binary.)

pub mod api_keys;
