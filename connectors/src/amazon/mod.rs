//! amazon connector (being written).
