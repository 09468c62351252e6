//! tiktok mapper (being written).

use conveyor_schemas::records::RawOrder;

use super::{Draft, Rejection};

pub fn parse(_raw: &RawOrder) -> Result<Draft, Rejection> {
    Err(Rejection::new("tiktok mapper not built yet"))
}
