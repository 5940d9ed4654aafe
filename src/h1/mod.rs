//! HTTP/1.1 codecs: pure functions and state machines over byte slices,
//! `Read`/`BufRead` and `Write`. Nothing here opens a socket, spawns, locks or
//! touches a channel, so every rule tests on bytes alone (RFC 9112 map):
//!
//! | RFC 9112 | here |
//! |---|---|
//! | §3 request line, §7.2 Host | [`head::write_request_head`] |
//! | §4 status line, §5 fields | [`head::read_response_head`] |
//! | §6.1–6.3 message body length | [`framing`] |
//! | §7.1 chunked coding, §7.1.2 trailers | [`decode`], [`encode`] |
//! | §9.3 persistence (`Connection: close`, HTTP/1.0) | [`framing::persistence`] |

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod framing;
pub(crate) mod head;

/// A buffered byte source the response codecs read from.
///
/// `buffered` lets a decoder finish work that is already in memory (the
/// chunked terminator after the last data bytes) without ever blocking for
/// more input.
pub(crate) trait Source: std::io::BufRead {
    /// The bytes already buffered; never blocks, may be empty.
    ///
    /// Right after a successful `fill_buf`, these are the bytes it returned.
    fn buffered(&self) -> &[u8];

    /// Reads body bytes straight into `buf`, skipping the buffer, when the
    /// buffer is empty and `buf` is large enough to be worth it; `None` to
    /// go through the buffer as usual. Decoders bound `buf` to what the
    /// framing still allows, so nothing past the body is read.
    fn read_direct(&mut self, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        let _ = buf;
        None
    }
}

impl<R: std::io::Read> Source for std::io::BufReader<R> {
    fn buffered(&self) -> &[u8] {
        self.buffer()
    }
}

impl Source for &[u8] {
    fn buffered(&self) -> &[u8] {
        self
    }
}

/// `fill_buf`, retried while the source reports `Interrupted` (as std's own
/// `read_until` does); every other error is passed through unchanged.
fn fill<S: Source + ?Sized>(src: &mut S) -> std::io::Result<&[u8]> {
    loop {
        match src.fill_buf() {
            // Handing out `buffered()` instead of the slice `fill_buf` returned
            // keeps the borrow checker happy about the loop (the two are the
            // same bytes, see `Source`).
            Ok(_) => return Ok(src.buffered()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(any(test, feature = "_fuzz"))]
pub(crate) mod testing;
