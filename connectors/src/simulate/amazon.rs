//! amazon simulator (being written).
