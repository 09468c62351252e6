//! ebay mapper (being written).

use conveyor_schemas::records::RawOrder;

use super::{Draft, Rejection};

pub fn parse(_raw: &RawOrder) -> Result<Draft, Rejection> {
    Err(Rejection::new("ebay mapper not built yet"))
}
