//! Test-only: version 2.0.0 of `test-versioned`; the code is versioned-v1's.

include!("../../versioned-v1/src/lib.rs");
