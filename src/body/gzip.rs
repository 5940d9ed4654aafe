//! Transparent gzip (Go's `gzipReader`): a response the transport asked to
//! be gzipped is decoded on the fly. The decoder reads the connection body
//! to its end, so the connection is handed back as for any other body.
//!
//! API.md's rules: a gzip error is sticky (every later read fails the same
//! way); an empty body (zero bytes) is an empty body, not a corrupt stream;
//! a stream cut short is `UnexpectedEof` of kind `BodyRead`, corrupt data
//! `InvalidData`.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;

use super::{BodyEnd, BodySource};
use crate::{Error, ErrorKind};

/// Decodes a gzip body read from a connection.
pub(crate) struct GzipBody {
    /// Multi-member, as Go's reader: it stops only at the body's end.
    decoder: MultiGzDecoder<Counted>,
    /// The first error; every later read returns it again.
    failed: Option<Error>,
    /// The body was empty: every read returns `Ok(0)`.
    empty: bool,
}

/// The body's source with a count of the encoded bytes it gave the
/// decoder, so an empty body can be told from a truncated stream.
struct Counted {
    source: Box<dyn BodySource>,
    n: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.source.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

impl GzipBody {
    /// Decodes `source`, which holds its connection until the gzip stream's
    /// clean end (see [`BodySource::hold`]).
    pub(crate) fn new(source: Box<dyn BodySource>) -> GzipBody {
        GzipBody {
            decoder: MultiGzDecoder::new(Counted { source, n: 0 }),
            failed: None,
            empty: false,
        }
    }

    pub(crate) fn source(&self) -> &dyn BodySource {
        &*self.decoder.get_ref().source
    }

    pub(crate) fn source_mut(&mut self) -> &mut dyn BodySource {
        &mut *self.decoder.get_mut().source
    }

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.duplicate().into());
        }
        if self.empty {
            return Ok(0);
        }
        let e = match self.decoder.read(buf) {
            Ok(0) if !buf.is_empty() => {
                // The gzip stream ended cleanly: now the connection may go.
                self.source_mut().end(BodyEnd::Clean);
                return Ok(0);
            }
            Ok(n) => return Ok(n),
            Err(e) => e,
        };
        let err = if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            // From the connection: already worded, and the connection
            // already closed.
            Error::from_io(e, ErrorKind::BodyRead, "read body")
        } else if e.kind() == io::ErrorKind::UnexpectedEof && self.decoder.get_ref().n == 0 {
            // Zero bytes are no gzip stream at all: an empty body.
            self.empty = true;
            self.source_mut().end(BodyEnd::Clean);
            return Ok(0);
        } else {
            let (what, io_kind) = if e.kind() == io::ErrorKind::UnexpectedEof {
                ("gzip body cut short", io::ErrorKind::UnexpectedEof)
            } else {
                ("corrupt gzip body", io::ErrorKind::InvalidData)
            };
            let err = Error::new(ErrorKind::BodyRead, what)
                .with_io_kind(io_kind)
                .with_source(e);
            // The connection is held until the stream's clean end (see
            // `BodySource::hold`): it closes now, and is never reused.
            self.source_mut().end(BodyEnd::Refused(&err));
            err
        };
        self.failed = Some(err.duplicate());
        Err(err.into())
    }
}
