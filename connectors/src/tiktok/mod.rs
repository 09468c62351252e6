//! tiktok connector (being written).
