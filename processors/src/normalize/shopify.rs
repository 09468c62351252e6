//! shopify mapper (being written).

use conveyor_schemas::records::RawOrder;

use super::{Draft, Rejection};

pub fn parse(_raw: &RawOrder) -> Result<Draft, Rejection> {
    Err(Rejection::new("shopify mapper not built yet"))
}
