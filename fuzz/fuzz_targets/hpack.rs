//! `nethttp::fuzz::hpack`: see its doc for the invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nethttp::fuzz::hpack(data));
