//! HTTP/2 codecs: pure functions and state machines over byte slices, like
//! `h1`. Nothing here opens a socket, spawns, locks or touches a channel, so
//! every rule tests on bytes alone (RFC 9113 and RFC 7541 map):
//!
//! | RFC | here |
//! |---|---|
//! | RFC 9113 §3.4 preface, §4 frame layout, §6 frame definitions | [`frame`] |
//! | RFC 9113 §6.10 CONTINUATION, §4.3 field blocks | [`frame::BlockAssembler`] |
//! | RFC 9113 §7 error codes | [`frame::ErrorCode`] |
//! | RFC 9113 §6.5 SETTINGS | [`settings`] |
//! | RFC 9113 §5.2, §6.9 flow control | [`flow`] |
//! | RFC 9113 §8.1–§8.3 messages as fields | [`head`] |
//! | RFC 7541 HPACK | [`hpack`] |
//!
//! The connection that drives them (two threads, many streams) is
//! `h2conn`.

pub(crate) mod flow;
pub(crate) mod frame;
pub(crate) mod head;
pub(crate) mod hpack;
pub(crate) mod settings;
