//! tiktok simulator (being written).
