//! Test-only: an OAuth connector whose manifest sets `refreshMarginSeconds` to
//! `u64::MAX`. Once accepted, such a margin overflowed the refresher's time
//! arithmetic and, being the largest of all connectors', stopped background
//! refresh for everyone; now loading refuses it, naming the field.

use connector_sdk::prelude::*;

struct HugeMargin;

#[connector]
impl Connector for HugeMargin {
    fn auth_type() -> AuthType {
        AuthType::Oauth
    }
}
