#![no_main]
//! cargo-fuzz target: see `checks::parse_body`.

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::parse_body(data));
