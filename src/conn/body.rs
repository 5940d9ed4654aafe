//! The connection's side of a response body (Go's `bodyEOFSignal`, whose
//! two callbacks are the hand-back and the early close): [`ConnBody`]
//! reads the body off the read half the reader thread lent it (or off a
//! copy), and runs the end-of-body protocol in one place, [`ConnBody::end`]:
//!
//! - the framing's end hands the connection back: the read half to the
//!   reader thread, the connection to the pool, before the read that
//!   delivered the last byte returns (unless a layer above holds it);
//! - a layer above (gzip, a size limit) that reached its own clean end
//!   releases a held connection;
//! - a failed read, a layer above that refused what it read, and a drop
//!   before the end close the connection: both of its threads exit.
//!
//! The public `ResponseBody` sees this only as a [`BodySource`].

use std::{
    fmt,
    io::{self, Read},
    sync::Arc,
};

use crossbeam_channel::Sender;
use http::HeaderMap;

use super::{
    PersistConn,
    msg::BodyDone,
    reuse::{self, Facts},
};
use crate::{
    Error, ErrorKind,
    body::{BodyEnd, BodySource},
    close_reason::CloseReason,
    h1::decode::{DecodeError, Decoder},
    stream::{BufReadHalf, Peer},
    trace::ClientTrace,
};

/// A body read from a connection: holds the connection (in use) until its
/// end.
pub(crate) struct ConnBody {
    /// Where the bytes come from; `None` once the connection was handed
    /// back or closed.
    held: Option<Held>,
    decoder: Decoder,
    conn: PersistConn,
    /// Tells the reader thread how the body ended (the connection's
    /// body-done channel); taken when that message is sent, once.
    done_tx: Option<Sender<BodyDone>>,
    /// What decides reuse, as the head left it; the end adds its part.
    facts: Facts,
    trace: Option<Arc<dyn ClientTrace>>,
    trailers: Option<HeaderMap>,
    /// A read failed or the body was refused: later reads fail the same way.
    failed: Option<Error>,
    /// A decoder (gzip) or a size limit sits above this body and may still
    /// find fault with bytes it has delivered: the framing's end does not
    /// hand the connection back; the layer above's clean end does
    /// ([`BodyEnd::Clean`]). A connection whose response failed any check
    /// is never reused.
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

/// How a body ended, for [`ConnBody::end`].
enum How {
    /// The framing's end was read.
    Framed,
    /// The layer above reached its own clean end.
    Released,
    /// A read failed or the layer above refused the body (`Failed`), or
    /// the body was dropped before its end (`BodyDropped`); later reads
    /// fail with the error.
    Abandoned(CloseReason, Error),
}

impl ConnBody {
    pub(super) fn new(
        held: Held,
        decoder: Decoder,
        conn: PersistConn,
        done_tx: Sender<BodyDone>,
        facts: Facts,
        trace: Option<Arc<dyn ClientTrace>>,
    ) -> Box<ConnBody> {
        Box::new(ConnBody {
            held: Some(held),
            decoder,
            conn,
            done_tx: Some(done_tx),
            facts,
            trace,
            trailers: None,
            failed: None,
            hold: false,
        })
    }

    /// The end-of-body protocol, the one place the body lets go of its
    /// connection.
    fn end(&mut self, how: How) {
        match how {
            How::Framed if self.hold => {}
            How::Framed | How::Released => {
                if self.decoder.is_done() && self.failed.is_none() {
                    self.hand_back();
                }
            }
            How::Abandoned(reason, err) => {
                if self.held.take().is_some() {
                    self.conn.close_on(reason, err.duplicate());
                    if let Some(done) = self.done_tx.take() {
                        let _ = done.try_send(BodyDone::Abandoned);
                    }
                }
                self.failed = Some(err);
            }
        }
    }

    /// The body ended cleanly: read half back to the reader thread, then
    /// the connection back to the pool (or closed), before the last bytes
    /// are returned to the caller.
    fn hand_back(&mut self) {
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
        let mut facts = self.facts;
        if let Some(rd) = rd.as_mut() {
            facts.after = match rd.peer_now() {
                Peer::Quiet => Ok(()),
                Peer::Spoke => Err(CloseReason::UnsolicitedBytes),
                Peer::Closed => Err(CloseReason::PeerClosed),
            };
        }
        // The exchange's own rules close it here; what the server did since
        // is for the release to judge (and report to the trace).
        let exchange = reuse::may_reuse(&Facts {
            after: Ok(()),
            ..facts
        });
        match exchange {
            Ok(()) => {
                // One message per body into a channel of one: never blocks,
                // and wakes the reader only when it waits on the channel. If
                // the reader thread is gone (cancel raced EOF) the connection
                // is closed already.
                let _ = done.try_send(BodyDone::End(rd));
                self.conn.release(facts, true, self.trace.as_deref());
            }
            Err(why) => {
                // Close first, so the reason is ours; then let the reader go.
                drop(rd);
                self.conn.close(why);
                let _ = done.try_send(BodyDone::Abandoned);
            }
        }
    }

    /// A read failed: the connection is never reused.
    fn fail(&mut self, err: Error) -> io::Error {
        self.end(How::Abandoned(CloseReason::Failed, err.duplicate()));
        err.into()
    }
}

impl Read for ConnBody {
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
                    if let Some(err) = self.conn.interrupted() {
                        return Err(self.fail(err));
                    }
                    if let Some(t) = self.decoder.take_trailers() {
                        self.trailers = Some(t);
                    }
                    self.end(How::Framed);
                }
                Ok(n)
            }
            Err(e) => {
                let err = self.conn.interrupted().unwrap_or_else(|| decode_error(e));
                Err(self.fail(err))
            }
        }
    }
}

impl BodySource for ConnBody {
    fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// Only a `Content-Length` says the body cannot exceed `max`.
    fn may_exceed(&self, max: u64) -> bool {
        self.decoder.length().is_none_or(|n| n > max)
    }

    fn hold(&mut self) {
        self.hold = true;
    }

    fn end(&mut self, end: BodyEnd<'_>) {
        match end {
            BodyEnd::Clean => ConnBody::end(self, How::Released),
            BodyEnd::Refused(err) => {
                ConnBody::end(self, How::Abandoned(CloseReason::Failed, err.duplicate()));
            }
        }
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

/// Go's `earlyCloseFn`, run by `Drop`: a body dropped before its end
/// closes its connection.
impl Drop for ConnBody {
    fn drop(&mut self) {
        let err = Error::new(ErrorKind::Io, "response body dropped before EOF");
        self.end(How::Abandoned(CloseReason::BodyDropped, err));
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
