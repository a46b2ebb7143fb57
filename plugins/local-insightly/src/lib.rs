//! Test-only: the `apikey-insightly` example connector, unchanged, built with a manifest
//! that allows the local test provider (`http://127.0.0.1:*`) so the connection
//! flows can be tested end to end without the internet.

#[path = "../../apikey-insightly/src/lib.rs"]
mod insightly;
