//! Whole exchanges: the fuzz input is a server's response, served byte for
//! byte over loopback; `blackbox::exchange` checks the invariants (no
//! panic, no hang, no reuse of a connection whose response failed, counts
//! back to zero). The seeded version runs in `cargo test`
//! (`tests/blackbox.rs`) with the same harness.
#![no_main]

#[path = "../../tests/support/blackbox.rs"]
mod blackbox;

use std::sync::OnceLock;

fn transport() -> &'static nethttp::Transport {
    static T: OnceLock<nethttp::Transport> = OnceLock::new();
    T.get_or_init(nethttp::Transport::new)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    blackbox::exchange(transport(), data);
});
