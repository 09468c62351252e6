//! What the fuzz targets share: a catalog that resolves every example SKU,
//! and the calls under test.

use std::sync::OnceLock;

use conveyor_processors::catalog::Catalog;
use conveyor_processors::normalize;

fn catalog() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| {
        let skus = conveyor_connectors::catalog_load::parse(include_bytes!("../../examples/catalog.csv"), 1)
            .unwrap_or_default();
        Catalog::from_skus(skus)
    })
}

/// One payload through a channel's mapper and the canonical checks.
pub fn normalize(channel: &str, payload: &[u8]) {
    if let Some(mut raw) = normalize::example_raw(channel, 0) {
        raw.payload = payload.to_vec();
        if let Ok(n) = normalize::normalize(&raw, catalog()) {
            // A mapped order must also encode (amounts in range).
            let mut out = Vec::new();
            let _ = conveyor_schemas::wire::AvroBinary::write(&n.order, &mut out);
            let _ = normalize::processor::decide(&raw, n, None);
        }
    }
}

/// One file through the CSV importer.
pub fn csv_import(file: &[u8]) {
    static M: OnceLock<conveyor_connectors::csv_import::Mapping> = OnceLock::new();
    let m = M.get_or_init(|| {
        toml::from_str(include_str!("../../examples/tcgplayer.mapping.toml")).expect("example mapping")
    });
    let _ = conveyor_connectors::csv_import::prepare(file, "fuzz.csv", "fuzz", m, 0, true);
}

