#![no_main]
//! cargo-fuzz target: see `checks::schema_validate`.

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::schema_validate(data));
