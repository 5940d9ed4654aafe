//! Transparent decoding (Go's `gzipReader`, for every encoding this build
//! has): a response the transport asked to be compressed is decoded on the
//! fly. The decoder reads the connection body to its end, so the
//! connection is handed back as for any other body.
//!
//! One [`DecodedBody`] for every encoding; a [`Codec`] per encoding only
//! turns encoded bytes into decoded ones. The rules (API.md's, gzip's
//! first) are kept here, the same for all:
//!
//! - an error is sticky: every later read fails the same way;
//! - an empty body (zero bytes) is an empty body, not a corrupt stream;
//! - a stream cut short is `UnexpectedEof` of kind `BodyRead`, corrupt data
//!   `InvalidData`, and bytes after the end of the encoded stream are
//!   corrupt data too;
//! - the connection is held until the encoded stream and the framing have
//!   both ended cleanly; a corrupt stream closes it, never reused.
//!
//! The size limit (`Response::limit`) sits above and counts decoded bytes,
//! so a decompression bomb is bounded; each codec keeps its own memory
//! bounded too (a 32 KiB window for deflate, brotli's standard window of
//! at most 16 MiB, zstd frames of at most an 8 MiB window).

#[cfg(feature = "brotli")]
mod brotli;
#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "deflate")]
pub(super) mod inflate;
#[cfg(feature = "zstd")]
pub(super) mod zstd;

use std::io::{self, BufRead, BufReader, Read};

use super::{BodyEnd, BodySource, Encoding};
use crate::{Error, ErrorKind};

/// How many encoded bytes a decoder takes from its connection body at a
/// time (flate2's read decoders use the same).
const INPUT_BUFFER: usize = 32 * 1024;

/// What a codec reads: the body's source, buffered.
pub(super) type Input = BufReader<Counted>;

/// One encoding's decoder over its [`Input`].
pub(super) trait Codec: Send {
    /// Decodes into `buf` (not empty). `Ok(0)` at the encoded stream's
    /// end, which may come before the input's (bytes left over are
    /// [`DecodedBody`]'s to judge). An error of kind `UnexpectedEof` means
    /// the stream was cut short, any other kind a corrupt stream; an input
    /// error may come back as it is, or wrapped in any kind (the input
    /// keeps it, see [`Counted`]).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    fn input(&self) -> &Input;

    fn input_mut(&mut self) -> &mut Input;
}

/// The body's source with what a decoder's errors are judged by: how many
/// encoded bytes it gave (so an empty body can be told from a truncated
/// stream), whether it ended, and its own error.
pub(super) struct Counted {
    source: Box<dyn BodySource>,
    n: u64,
    /// The source returned `Ok(0)`: the body's framing ended.
    eof: bool,
    /// The source's read error (from the connection, already worded, the
    /// connection already closed), kept because a codec may wrap it.
    failed: Option<Error>,
}

impl Counted {
    /// The source has ended (returned `Ok(0)`).
    #[cfg(feature = "zstd")]
    pub(super) fn eof(&self) -> bool {
        self.eof
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.source.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.n += n as u64;
                Ok(n)
            }
            Err(e) => {
                let err = Error::from_io(e, ErrorKind::BodyRead, "read body");
                self.failed = Some(err.duplicate());
                Err(err.into())
            }
        }
    }
}

/// Decodes a response body read from a connection.
pub(crate) struct DecodedBody {
    codec: Box<dyn Codec>,
    encoding: Encoding,
    /// The first error; every later read returns it again.
    failed: Option<Error>,
    /// The body ended cleanly (or was empty): every read returns `Ok(0)`.
    done: bool,
}

impl DecodedBody {
    /// Decodes `source` as `encoding`; `source` holds its connection until
    /// the encoded stream's clean end (see [`BodySource::hold`]).
    pub(crate) fn new(source: Box<dyn BodySource>, encoding: Encoding) -> DecodedBody {
        let input = BufReader::with_capacity(
            INPUT_BUFFER,
            Counted {
                source,
                n: 0,
                eof: false,
                failed: None,
            },
        );
        let codec: Box<dyn Codec> = match encoding {
            #[cfg(feature = "gzip")]
            Encoding::Gzip => Box::new(gzip::Gzip::new(input)),
            #[cfg(feature = "deflate")]
            Encoding::Deflate => Box::new(inflate::Inflate::new(input)),
            #[cfg(feature = "brotli")]
            Encoding::Brotli => Box::new(brotli::Brotli::new(input)),
            #[cfg(feature = "zstd")]
            Encoding::Zstd => Box::new(zstd::Zstd::new(input)),
        };
        DecodedBody {
            codec,
            encoding,
            failed: None,
            done: false,
        }
    }

    pub(crate) fn source(&self) -> &dyn BodySource {
        &*self.codec.input().get_ref().source
    }

    pub(crate) fn source_mut(&mut self) -> &mut dyn BodySource {
        &mut *self.codec.input_mut().get_mut().source
    }

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.duplicate().into());
        }
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        match self.codec.read(buf) {
            Ok(0) => self.finish(),
            Ok(n) => Ok(n),
            Err(e) => self.fail(e),
        }
    }

    /// The encoded stream ended: the body must end with it.
    fn finish(&mut self) -> io::Result<usize> {
        let more = match self.codec.input_mut().fill_buf() {
            Ok(rest) => !rest.is_empty(),
            Err(e) => return self.fail(e),
        };
        if more {
            let cause = format!("data after the end of the {} stream", self.encoding.token());
            return Err(self.refuse(io::ErrorKind::InvalidData, cause).into());
        }
        // The stream and the framing ended cleanly: now the connection may
        // go.
        self.done = true;
        self.source_mut().end(BodyEnd::Clean);
        Ok(0)
    }

    fn fail(&mut self, e: io::Error) -> io::Result<usize> {
        let counted = self.codec.input_mut().get_mut();
        let err = if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            // From the connection: already worded, and the connection
            // already closed.
            Error::from_io(e, ErrorKind::BodyRead, "read body")
        } else if let Some(err) = counted.failed.take() {
            // The same, wrapped by the codec.
            err
        } else if counted.n == 0 && counted.eof {
            // Zero bytes are no encoded stream at all: an empty body.
            self.done = true;
            self.source_mut().end(BodyEnd::Clean);
            return Ok(0);
        } else {
            let io_kind = if e.kind() == io::ErrorKind::UnexpectedEof {
                io::ErrorKind::UnexpectedEof
            } else {
                io::ErrorKind::InvalidData
            };
            return Err(self.refuse(io_kind, e).into());
        };
        self.failed = Some(err.duplicate());
        Err(err.into())
    }

    /// The encoded stream is cut short (`UnexpectedEof`) or corrupt (any
    /// other kind): the body fails for good (later reads return the same
    /// error), and its connection closes.
    fn refuse(
        &mut self,
        io_kind: io::ErrorKind,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        let name = encoding_name(self.encoding);
        let what = if io_kind == io::ErrorKind::UnexpectedEof {
            format!("{name} body cut short")
        } else {
            format!("corrupt {name} body")
        };
        let err = Error::new(ErrorKind::BodyRead, what)
            .with_io_kind(io_kind)
            .with_source(cause);
        // The connection is held until the stream's clean end (see
        // `BodySource::hold`): it closes now, and is never reused.
        self.source_mut().end(BodyEnd::Refused(&err));
        self.failed = Some(err.duplicate());
        err
    }
}

/// The encoding's name in error messages ("corrupt brotli body").
fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        #[cfg(feature = "gzip")]
        Encoding::Gzip => "gzip",
        #[cfg(feature = "deflate")]
        Encoding::Deflate => "deflate",
        #[cfg(feature = "brotli")]
        Encoding::Brotli => "brotli",
        #[cfg(feature = "zstd")]
        Encoding::Zstd => "zstd",
    }
}

/// Reads into `buf` until it is full or the input ends; how many bytes.
#[cfg(feature = "zstd")]
fn read_full(input: &mut Input, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests;
