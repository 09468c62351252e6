//! ebay simulator (being written).
