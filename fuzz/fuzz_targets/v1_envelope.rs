#![no_main]
//! cargo-fuzz target: see `checks::v1_envelope`.

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::v1_envelope(data));
