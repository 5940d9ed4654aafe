//! The caller's view of a response body (Go's `bodyEOFSignal`), and the
//! request [`Body`].
//!
//! A body read to its end hands the connection back: the read half returns
//! to the reader thread and the connection to the pool, before the read that
//! delivered the last byte returns. A body dropped before its end closes the
//! connection; both of its threads exit. No `close()` to forget.

#[cfg(feature = "gzip")]
mod gzip;
pub(crate) mod request;

use std::{
    fmt,
    io::{self, Read},
    sync::Arc,
};

use crossbeam_channel::Sender;
use http::HeaderMap;

use crate::{
    Error, ErrorKind,
    conn::{PersistConn, msg::BodyDone},
    h1::decode::{DecodeError, Decoder},
    stream::{BufReadHalf, Peer},
    trace::ClientTrace,
};
pub use request::Body;

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
    // Boxed, as in ConnBody: rare, and the body moves by value from the
    // reader thread to the caller.
    trailers: Option<Box<HeaderMap>>,
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
    Conn(Box<ConnBody>),
    #[cfg(feature = "gzip")]
    Gzip(Box<gzip::GzipBody>),
}

impl ResponseBody {
    pub(crate) fn empty() -> ResponseBody {
        ResponseBody {
            inner: Inner::Empty,
            trailers: None,
            limit: None,
        }
    }

    /// True for a response that has no body at all.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self.inner, Inner::Empty)
    }

    pub(crate) fn from_conn(body: Box<ConnBody>) -> ResponseBody {
        ResponseBody {
            inner: Inner::Conn(body),
            trailers: None,
            limit: None,
        }
    }

    /// Decodes this body as gzip from now on (the transport asked for gzip
    /// and the server sent it). An empty body stays empty.
    #[cfg(feature = "gzip")]
    pub(crate) fn into_gzip(self) -> ResponseBody {
        match self.inner {
            Inner::Conn(mut b) => ResponseBody {
                inner: Inner::Gzip(Box::new({
                    b.hold();
                    gzip::GzipBody::new(*b)
                })),
                trailers: None,
                limit: self.limit,
            },
            inner => ResponseBody { inner, ..self },
        }
    }

    /// The chunked trailers, once the body has been read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_deref()
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
        if let Inner::Conn(b) = &mut self.inner {
            if b.may_exceed(max) {
                b.hold();
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
            self.abandon(&err);
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
            self.release();
        }
        Ok(n)
    }

    /// Hands a held connection back at the body's clean end.
    fn release(&mut self) {
        match &mut self.inner {
            Inner::Empty => {}
            Inner::Conn(b) => b.release(),
            #[cfg(feature = "gzip")]
            Inner::Gzip(g) => g.conn_body_mut().release(),
        }
    }

    /// Closes the connection unless the body already handed it back.
    fn abandon(&mut self, err: &Error) {
        match &mut self.inner {
            Inner::Empty => {}
            Inner::Conn(b) => b.abandon_unless_ended(err),
            #[cfg(feature = "gzip")]
            Inner::Gzip(g) => g.conn_body_mut().abandon_unless_ended(err),
        }
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Empty => Ok(0),
            Inner::Conn(b) => {
                let n = b.read(buf)?;
                if b.trailers.is_some() {
                    self.trailers = b.trailers.take();
                }
                Ok(n)
            }
            #[cfg(feature = "gzip")]
            Inner::Gzip(g) => {
                let n = g.read(buf)?;
                let b = g.conn_body_mut();
                if b.trailers.is_some() {
                    self.trailers = b.trailers.take();
                }
                Ok(n)
            }
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
        match &self.inner {
            Inner::Empty => f.write_str("ResponseBody(empty)"),
            Inner::Conn(b) => b.fmt(f),
            #[cfg(feature = "gzip")]
            Inner::Gzip(g) => g.conn_body().fmt(f),
        }
    }
}

/// A body read from a connection: holds the connection (in use) until its
/// end.
pub(crate) struct ConnBody {
    /// Where the bytes come from; `None` once the body ended or was abandoned.
    held: Option<Held>,
    decoder: Decoder,
    conn: PersistConn,
    /// Tells the reader thread how the body ended (the connection's
    /// body-done channel); taken when that message is sent, once.
    done_tx: Option<Sender<BodyDone>>,
    /// The response allows reuse (framing and `Connection` headers).
    alive: bool,
    trace: Option<Arc<dyn ClientTrace>>,
    /// Boxed: few bodies have trailers, and every body moves by value.
    trailers: Option<Box<HeaderMap>>,
    /// A read failed: later reads fail the same way.
    failed: Option<Error>,
    /// A decoder (gzip) or a size limit sits above this body and may still
    /// find fault with bytes it has delivered: the framing's end does not
    /// hand the connection back; the layer above does, through
    /// [`release`](ConnBody::release), once it reaches its own clean end.
    /// A connection whose response failed any check is never reused.
    hold: bool,
}

/// Where a [`ConnBody`]'s bytes come from.
pub(crate) enum Held {
    /// The connection's read half, lent by the reader thread until the end.
    Lent(BufReadHalf),
    /// The whole body, which arrived with the head: copied out of the
    /// reader's buffer, so the reader kept its read half. `pos` bytes are
    /// read.
    Copied { bytes: Vec<u8>, pos: usize },
}

impl ConnBody {
    pub(crate) fn new(
        held: Held,
        decoder: Decoder,
        conn: PersistConn,
        done_tx: Sender<BodyDone>,
        alive: bool,
        trace: Option<Arc<dyn ClientTrace>>,
    ) -> Box<ConnBody> {
        Box::new(ConnBody {
            held: Some(held),
            decoder,
            conn,
            done_tx: Some(done_tx),
            alive,
            trace,
            trailers: None,
            failed: None,
            hold: false,
        })
    }

    /// From now on the connection waits for [`release`](Self::release)
    /// (see `hold`).
    pub(crate) fn hold(&mut self) {
        self.hold = true;
    }

    /// The layer above reached its clean end: if the body's framing has
    /// ended too, hand the connection back.
    pub(crate) fn release(&mut self) {
        if self.decoder.is_done() && self.failed.is_none() {
            self.hold = false;
            self.finish();
        }
    }

    /// Whether reading this body to its end can deliver more than `max`
    /// bytes: only a `Content-Length` says it cannot.
    pub(crate) fn may_exceed(&self, max: u64) -> bool {
        self.decoder.length().is_none_or(|n| n > max)
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.duplicate().into());
        }
        let read = match self.held.as_mut() {
            None => return Ok(0),
            Some(Held::Lent(rd)) => self.decoder.read(rd, buf),
            Some(Held::Copied { bytes, pos }) => {
                let mut rest = &bytes[*pos..];
                let read = self.decoder.read(&mut rest, buf);
                *pos = bytes.len() - rest.len();
                read
            }
        };
        match read {
            Ok(n) => {
                if self.decoder.is_done() {
                    // A close-delimited body ends at EOF, which a cancel or
                    // deadline also produces (by shutting the socket down).
                    if let Some(err) = self.interrupted() {
                        return Err(self.fail(err));
                    }
                    if let Some(t) = self.decoder.take_trailers() {
                        self.trailers = Some(Box::new(t));
                    }
                    if !self.hold {
                        self.finish();
                    }
                }
                Ok(n)
            }
            Err(e) => {
                let err = self.interrupted().unwrap_or_else(|| decode_error(e));
                Err(self.fail(err))
            }
        }
    }

    /// The body ended cleanly: read half back to the reader thread, then
    /// the connection back to the pool (or closed), before the last bytes
    /// are returned to the caller.
    fn finish(&mut self) {
        let (Some(held), Some(done)) = (self.held.take(), self.done_tx.take()) else {
            return;
        };
        let mut rd = match held {
            Held::Lent(rd) => Some(rd),
            Held::Copied { .. } => None,
        };
        // Bytes past the body's end were sent unasked (Go logs "Unsolicited
        // response received on idle HTTP channel" and closes): the reader,
        // which may be waiting on the socket, would never see them. A FIN
        // (or TLS close_notify) that came with the body means the next
        // request would be written onto a closed connection. A copied
        // body's reader looks on its own (see `PersistConn::peer_check`).
        let why = if !self.alive {
            Some("response does not allow reuse")
        } else {
            match rd.as_mut().map(BufReadHalf::peer_now) {
                None | Some(Peer::Quiet) => None,
                Some(Peer::Spoke) => Some("server sent more bytes than the response body"),
                Some(Peer::Closed) => Some("server closed the connection after the response"),
            }
        };
        match why {
            None => {
                // One message per body into a channel of one: never blocks,
                // and wakes the reader only when it waits on the channel. If
                // the reader thread is gone (cancel raced EOF) the connection
                // is closed already.
                let _ = done.try_send(BodyDone::End(rd));
                self.conn.release(true, true, self.trace.as_deref());
            }
            Some(why) => {
                // Close first, so the reason is ours; then let the reader go.
                drop(rd);
                self.conn.close(Error::new(ErrorKind::Io, why));
                let _ = done.try_send(BodyDone::Abandoned);
            }
        }
    }

    /// The error a cancel or deadline left on the connection, if any.
    fn interrupted(&self) -> Option<Error> {
        self.conn
            .close_reason()
            .filter(|e| matches!(e.kind(), ErrorKind::Canceled | ErrorKind::Timeout))
    }

    /// A read failed: the connection is never reused.
    fn fail(&mut self, err: Error) -> io::Error {
        self.abandon(err.duplicate());
        err.into()
    }

    /// [`abandon`](Self::abandon)s the body unless it already ended (its
    /// connection handed back): for a decoder that failed on bytes the
    /// body delivered.
    pub(crate) fn abandon_unless_ended(&mut self, err: &Error) {
        if self.held.is_some() {
            self.abandon(err.duplicate());
        }
    }

    /// Gives up on the rest of the body: the connection closes, later
    /// reads fail with `err`.
    fn abandon(&mut self, err: Error) {
        self.held = None;
        self.conn.close(err.duplicate());
        if let Some(done) = self.done_tx.take() {
            let _ = done.try_send(BodyDone::Abandoned);
        }
        self.failed = Some(err);
    }
}

impl Read for ConnBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        ConnBody::read(self, buf)
    }
}

impl fmt::Debug for ConnBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("conn", &self.conn.id())
            .field("done", &self.held.is_none())
            .finish()
    }
}

/// Go's `earlyCloseFn`, run by `Drop`: a body abandoned before its end
/// closes its connection.
impl Drop for ConnBody {
    fn drop(&mut self) {
        if let Some(done) = self.done_tx.take() {
            self.held = None;
            self.conn.close(Error::new(
                ErrorKind::Io,
                "response body dropped before EOF",
            ));
            let _ = done.try_send(BodyDone::Abandoned);
        }
    }
}

fn decode_error(e: DecodeError) -> Error {
    match e {
        DecodeError::Truncated(m) => Error::new(
            ErrorKind::BodyRead,
            format!("unexpected EOF reading body: {m}"),
        )
        .with_io_kind(io::ErrorKind::UnexpectedEof),
        DecodeError::Malformed(m) => {
            Error::new(ErrorKind::BodyRead, format!("malformed body: {m}"))
                .with_io_kind(io::ErrorKind::InvalidData)
        }
        DecodeError::Io(e) => Error::new(ErrorKind::BodyRead, "read body")
            .with_io_kind(e.kind())
            .with_source(e),
    }
}
