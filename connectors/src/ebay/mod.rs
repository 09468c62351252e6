//! ebay connector (being written).
