//! normalize's tiktok mapper on arbitrary payload bytes: it may refuse them,
//! it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conveyor_fuzz_common::normalize("tiktok", data);
});
