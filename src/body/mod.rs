//! The caller's view of a response body, and the request [`Body`].
//!
//! A [`ResponseBody`] reads from a [`BodySource`]: the connection's side of
//! the body, which owns the end-of-body protocol (an HTTP/1 connection's is
//! `conn`'s `ConnBody`: read to its end, the connection goes back to the
//! pool; dropped before, it closes and both of its threads exit; no
//! `close()` to forget). This module adds what is the same whatever the
//! source: transparent decoding (gzip, deflate, br, zstd, each behind its
//! feature), the size limit, and `Read`.

#[cfg(any(
    feature = "gzip",
    feature = "deflate",
    feature = "brotli",
    feature = "zstd"
))]
mod decode;
pub(crate) mod request;
#[cfg(test)]
mod tests;

use std::{
    fmt,
    io::{self, Read},
};

use http::HeaderMap;

/// The `Accept-Encoding` a request sends when the transport may decode
/// the response: the encodings this build decodes, in the order gzip,
/// deflate, br, zstd; `None` in a build that decodes none.
pub(crate) const ACCEPT_ENCODING: Option<&str> = accept_encoding([
    cfg!(feature = "gzip"),
    cfg!(feature = "deflate"),
    cfg!(feature = "brotli"),
    cfg!(feature = "zstd"),
]);

/// The `Accept-Encoding` value for the decoders `enabled`: gzip, deflate,
/// br and zstd, in that order.
const fn accept_encoding(enabled: [bool; 4]) -> Option<&'static str> {
    // Indexed by the bits of `enabled`: gzip 1, deflate 2, br 4, zstd 8.
    const LISTS: [&str; 16] = [
        "",
        "gzip",
        "deflate",
        "gzip, deflate",
        "br",
        "gzip, br",
        "deflate, br",
        "gzip, deflate, br",
        "zstd",
        "gzip, zstd",
        "deflate, zstd",
        "gzip, deflate, zstd",
        "br, zstd",
        "gzip, br, zstd",
        "deflate, br, zstd",
        "gzip, deflate, br, zstd",
    ];
    let [gzip, deflate, br, zstd] = enabled;
    let i = gzip as usize | (deflate as usize) << 1 | (br as usize) << 2 | (zstd as usize) << 3;
    if i == 0 { None } else { Some(LISTS[i]) }
}

/// A content coding (RFC 9110 §8.4.1) this build decodes: one variant per
/// enabled feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    #[cfg(feature = "gzip")]
    Gzip,
    /// The zlib format (RFC 9110 §8.4.1.2); raw deflate is accepted too.
    #[cfg(feature = "deflate")]
    Deflate,
    #[cfg(feature = "brotli")]
    Brotli,
    #[cfg(feature = "zstd")]
    Zstd,
}

impl Encoding {
    /// Every encoding this build decodes, in `Accept-Encoding` order.
    const ENABLED: &[Encoding] = &[
        #[cfg(feature = "gzip")]
        Encoding::Gzip,
        #[cfg(feature = "deflate")]
        Encoding::Deflate,
        #[cfg(feature = "brotli")]
        Encoding::Brotli,
        #[cfg(feature = "zstd")]
        Encoding::Zstd,
    ];

    /// The encoding a `Content-Encoding` value names, when it names exactly
    /// one that this build decodes (ASCII case ignored, whitespace around
    /// it too; `x-gzip` is gzip, RFC 9110 §8.4.1.3). A list ("gzip, br":
    /// stacked encodings) or an unknown coding is `None`.
    pub(crate) fn parse(value: &[u8]) -> Option<Encoding> {
        let value = value.trim_ascii();
        Encoding::ENABLED.iter().copied().find(|e| {
            value.eq_ignore_ascii_case(e.token().as_bytes())
                || (e.token() == "gzip" && value.eq_ignore_ascii_case(b"x-gzip"))
        })
    }

    /// The coding's name in `Accept-Encoding` and `Content-Encoding`.
    pub(crate) fn token(self) -> &'static str {
        match self {
            #[cfg(feature = "gzip")]
            Encoding::Gzip => "gzip",
            #[cfg(feature = "deflate")]
            Encoding::Deflate => "deflate",
            #[cfg(feature = "brotli")]
            Encoding::Brotli => "br",
            #[cfg(feature = "zstd")]
            Encoding::Zstd => "zstd",
        }
    }
}

use crate::{Error, ErrorKind};
pub use request::Body;

/// Where a response body's bytes come from, and the connection behind
/// them: today an HTTP/1 connection's read half (`conn::body::ConnBody`);
/// an HTTP/2 stream's buffer is meant to be another. The source hands its connection back at the body's
/// end and closes it when dropped before; the layers here (a decoder, the
/// size limit) only tell it when they are done, through [`end`](Self::end).
pub(crate) trait BodySource: Read + Send + fmt::Debug {
    /// The trailers, once the body has been read to its end.
    fn trailers(&self) -> Option<&HeaderMap>;

    /// Whether reading the body to its end can deliver more than `max`
    /// bytes.
    fn may_exceed(&self, max: u64) -> bool;

    /// A layer above may still refuse bytes it was given (a compressed
    /// stream that turns out corrupt, a body past its limit): from now on the end
    /// of the framing does not hand the connection back; [`end`](Self::end)
    /// does.
    fn hold(&mut self);

    /// The layer above is done: at its clean end ([`BodyEnd::Clean`]) a
    /// held connection goes back (once the framing has ended too); when
    /// it refused the body ([`BodyEnd::Refused`]) the connection closes,
    /// unless it already went back, and later reads fail with that error.
    fn end(&mut self, end: BodyEnd<'_>);

    /// A `101 Switching Protocols` response's source gives up its
    /// connection for `Response::upgrade` (once; `conn` knows the type
    /// inside). Every other source has none.
    fn take_upgrade(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        None
    }
}

/// What the layer above a [`BodySource`] says at its end.
#[derive(Debug)]
pub(crate) enum BodyEnd<'a> {
    Clean,
    Refused(&'a Error),
}

/// A response body: implements [`Read`].
///
/// Read it to the end and its connection goes back to the pool; drop it
/// before the end and the connection closes (its two threads exit).
///
/// Read errors are `io::Error`s whose inner error (`get_ref()`, downcast)
/// is the [`nethttp::Error`](crate::Error): a truncated body is
/// `UnexpectedEof` with kind [`BodyRead`](ErrorKind::BodyRead), a malformed
/// chunk `InvalidData`, an expired deadline `TimedOut` ([`Timeout`](ErrorKind::Timeout)),
/// a cancel `Other` ([`Canceled`](ErrorKind::Canceled)).
pub struct ResponseBody {
    inner: Inner,
    /// Set by [`Response::limit`](crate::Response::limit).
    limit: Option<Limit>,
}

/// A bound on the (decoded) bytes a body may deliver.
#[derive(Debug, Clone, Copy)]
struct Limit {
    max: u64,
    /// Bytes delivered since the limit was set.
    seen: u64,
    /// A read went past `max`: every later read fails again.
    exceeded: bool,
}

enum Inner {
    Empty,
    Plain(Box<dyn BodySource>),
    #[cfg(any(
        feature = "gzip",
        feature = "deflate",
        feature = "brotli",
        feature = "zstd"
    ))]
    Decoded(Box<decode::DecodedBody>),
}

impl ResponseBody {
    pub(crate) fn empty() -> ResponseBody {
        ResponseBody {
            inner: Inner::Empty,
            limit: None,
        }
    }

    /// True for a response that has no body at all.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self.inner, Inner::Empty)
    }

    pub(crate) fn from_source(source: Box<dyn BodySource>) -> ResponseBody {
        ResponseBody {
            inner: Inner::Plain(source),
            limit: None,
        }
    }

    /// Decodes this body as `encoding` from now on (the transport asked
    /// for it and the server sent it). An empty body stays empty.
    #[cfg(any(
        feature = "gzip",
        feature = "deflate",
        feature = "brotli",
        feature = "zstd"
    ))]
    pub(crate) fn decode(self, encoding: Encoding) -> ResponseBody {
        match self.inner {
            Inner::Plain(mut source) => {
                source.hold();
                ResponseBody {
                    inner: Inner::Decoded(Box::new(decode::DecodedBody::new(source, encoding))),
                    limit: self.limit,
                }
            }
            inner => ResponseBody { inner, ..self },
        }
    }

    /// No decoder in this build: there is no `Encoding` to decode.
    #[cfg(not(any(
        feature = "gzip",
        feature = "deflate",
        feature = "brotli",
        feature = "zstd"
    )))]
    pub(crate) fn decode(self, encoding: Encoding) -> ResponseBody {
        match encoding {}
    }

    /// The chunked trailers, once the body has been read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.source()?.trailers()
    }

    /// The connection behind a `101` response, for `Response::upgrade`
    /// (see [`BodySource::take_upgrade`]).
    pub(crate) fn take_upgrade(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        self.source_mut()?.take_upgrade()
    }

    fn source(&self) -> Option<&dyn BodySource> {
        match &self.inner {
            Inner::Empty => None,
            Inner::Plain(s) => Some(&**s),
            #[cfg(any(
                feature = "gzip",
                feature = "deflate",
                feature = "brotli",
                feature = "zstd"
            ))]
            Inner::Decoded(d) => Some(d.source()),
        }
    }

    fn source_mut(&mut self) -> Option<&mut dyn BodySource> {
        match &mut self.inner {
            Inner::Empty => None,
            Inner::Plain(s) => Some(&mut **s),
            #[cfg(any(
                feature = "gzip",
                feature = "deflate",
                feature = "brotli",
                feature = "zstd"
            ))]
            Inner::Decoded(d) => Some(d.source_mut()),
        }
    }

    /// Fails any read past `max` more (decoded) bytes with
    /// [`ErrorKind::BodyTooLarge`] and closes the connection. Unless the
    /// body's `Content-Length` already keeps it within `max`, the
    /// connection then goes back to the pool only when a read returns
    /// `Ok(0)`: a body one byte too long must not be reused.
    pub(crate) fn limit(&mut self, max: u64) {
        self.limit = Some(Limit {
            max,
            seen: 0,
            exceeded: false,
        });
        if let Inner::Plain(source) = &mut self.inner {
            if source.may_exceed(max) {
                source.hold();
            }
        }
    }

    /// The limited read: up to the limit as usual; at the limit, a read of
    /// one byte tells "more" (the error) from "the end" (`Ok(0)`).
    fn read_limited(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(Limit {
            max,
            seen,
            exceeded,
        }) = self.limit
        else {
            return self.read_inner(buf);
        };
        if exceeded {
            return Err(too_large(max).into());
        }
        let left = max - seen;
        let cap = match usize::try_from(left) {
            Ok(0) => buf.len().min(1),
            Ok(left) => buf.len().min(left),
            Err(_) => buf.len(),
        };
        let n = self.read_inner(&mut buf[..cap])?;
        if n as u64 > left {
            let err = too_large(max);
            if let Some(source) = self.source_mut() {
                source.end(BodyEnd::Refused(&err));
            }
            if let Some(l) = &mut self.limit {
                l.exceeded = true;
            }
            return Err(err.into());
        }
        if let Some(l) = &mut self.limit {
            l.seen += n as u64;
        }
        if n == 0 && cap > 0 {
            // The end, within the limit: the connection may go now.
            if let Some(source) = self.source_mut() {
                source.end(BodyEnd::Clean);
            }
        }
        Ok(n)
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Empty => Ok(0),
            Inner::Plain(s) => s.read(buf),
            #[cfg(any(
                feature = "gzip",
                feature = "deflate",
                feature = "brotli",
                feature = "zstd"
            ))]
            Inner::Decoded(d) => d.read(buf),
        }
    }
}

impl Read for ResponseBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_limited(buf)
    }
}

fn too_large(max: u64) -> Error {
    Error::new(
        ErrorKind::BodyTooLarge,
        format!("response body exceeds the limit of {max} bytes"),
    )
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source() {
            None => f.write_str("ResponseBody(empty)"),
            Some(source) => source.fmt(f),
        }
    }
}
