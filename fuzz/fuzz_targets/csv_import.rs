//! The CSV importer on arbitrary file bytes (with the TCGplayer mapping):
//! bad rows are reported, it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conveyor_fuzz_common::csv_import(data);
});
