//! The normalize stream processor (being written).
