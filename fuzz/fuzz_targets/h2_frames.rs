//! `nethttp::fuzz::h2_frames`: see its doc for the invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nethttp::fuzz::h2_frames(data));
