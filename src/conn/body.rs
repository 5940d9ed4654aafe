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
//! The public `ResponseBody` sees this only as a [`BodySource`]. The body
//! reaches its connection through [`Link`] and reads a [`Half`], so the
//! protocol tests on fakes (the tests at the end of this file).

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
    h1::{
        Source,
        decode::{DecodeError, Decoder},
    },
    phase::Phase,
    stream::{self, BufReadHalf, Peer},
    trace::ClientTrace,
};

/// What a body needs of its connection: Go's `bodyEOFSignal` callbacks
/// (the hand-back, the early close) and the cancel check.
pub(super) trait Link: Send {
    fn id(&self) -> u64;
    /// The body ended cleanly: offer the connection back (it closes if
    /// `facts` or the pool refuse).
    fn release(&self, facts: Facts, trace: Option<&dyn ClientTrace>);
    /// Close it for `why`, keeping `err` if there is one.
    fn close(&self, why: CloseReason, err: Option<Error>);
    /// The error of a cancel or deadline that closed it, if one did.
    fn interrupted(&self) -> Option<Error>;
}

impl Link for PersistConn {
    fn id(&self) -> u64 {
        PersistConn::id(self)
    }

    fn release(&self, facts: Facts, trace: Option<&dyn ClientTrace>) {
        PersistConn::release(self, facts, true, trace);
    }

    fn close(&self, why: CloseReason, err: Option<Error>) {
        match err {
            Some(err) => self.close_on(why, err),
            None => PersistConn::close(self, why),
        }
    }

    fn interrupted(&self) -> Option<Error> {
        PersistConn::interrupted(self)
    }
}

/// The read half a body is lent: buffered bytes, and a look past them.
pub(super) trait Half: Source + Send {
    /// What the server has sent past the bytes read, without waiting.
    fn peer_now(&mut self) -> Peer;
}

impl Half for BufReadHalf {
    fn peer_now(&mut self) -> Peer {
        BufReadHalf::peer_now(self)
    }
}

/// A body read from a connection: holds the connection (in use) until its
/// end.
pub(crate) struct ConnBody<L: Link = PersistConn, R: Half = BufReadHalf> {
    /// Where the bytes come from; `None` once the connection was handed
    /// back or closed.
    held: Option<Held<R>>,
    decoder: Decoder,
    conn: L,
    /// Tells the reader thread how the body ended (the connection's
    /// body-done channel); taken when that message is sent, once.
    done_tx: Option<Sender<BodyDone<R>>>,
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
pub(crate) enum Held<R = BufReadHalf> {
    /// The connection's read half, lent by the reader thread until the end.
    Lent(R),
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

impl<L: Link, R: Half> ConnBody<L, R> {
    pub(super) fn new(
        held: Held<R>,
        decoder: Decoder,
        conn: L,
        done_tx: Sender<BodyDone<R>>,
        facts: Facts,
        trace: Option<Arc<dyn ClientTrace>>,
    ) -> Box<ConnBody<L, R>> {
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
                    self.conn.close(reason, Some(err.duplicate()));
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
            facts.after = Some(match rd.peer_now() {
                Peer::Quiet => Ok(()),
                Peer::Spoke => Err(CloseReason::UnsolicitedBytes),
                Peer::Closed => Err(CloseReason::PeerClosed),
            });
        }
        // The exchange's own rules close it here; what the server did since
        // is for the release to judge (and report to the trace).
        let exchange = reuse::may_reuse(&Facts {
            after: None,
            ..facts
        });
        match exchange {
            Ok(()) => {
                // One message per body into a channel of one: never blocks,
                // and wakes the reader only when it waits on the channel. If
                // the reader thread is gone (cancel raced EOF) the connection
                // is closed already.
                let _ = done.try_send(BodyDone::End(rd));
                self.conn.release(facts, self.trace.as_deref());
            }
            Err(why) => {
                // Close first, so the reason is ours; then let the reader go.
                drop(rd);
                self.conn.close(why, None);
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

impl<L: Link, R: Half> Read for ConnBody<L, R> {
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
                if let Some(err) = self.conn.interrupted() {
                    return Err(self.fail(err));
                }
                // A read that stalled for the transport's `read_timeout`.
                if let DecodeError::Io(io) = &e {
                    if let Some(after) = stream::stalled(io) {
                        let err = super::read_timeout_error(Phase::ReadingBody, after);
                        self.end(How::Abandoned(CloseReason::ReadTimeout, err.duplicate()));
                        return Err(err.into());
                    }
                }
                Err(self.fail(decode_error(e)))
            }
        }
    }
}

impl<L: Link, R: Half> BodySource for ConnBody<L, R> {
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

impl<L: Link, R: Half> fmt::Debug for ConnBody<L, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("conn", &self.conn.id())
            .field("done", &self.held.is_none())
            .finish()
    }
}

/// Go's `earlyCloseFn`, run by `Drop`: a body dropped before its end
/// closes its connection.
impl<L: Link, R: Half> Drop for ConnBody<L, R> {
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

#[cfg(test)]
mod tests {
    //! The end-of-body protocol over a fake connection and an in-memory read
    //! half: what the body tells its connection, and when.

    use std::{
        io::BufRead,
        sync::{Arc, Mutex},
    };

    use http::StatusCode;

    use super::*;
    use crate::h1::framing::BodyFraming;

    /// Records what the body told its connection.
    #[derive(Clone, Default)]
    struct Fake {
        told: Arc<Mutex<Vec<String>>>,
        interrupted: Arc<Mutex<Option<Error>>>,
    }

    impl Fake {
        fn told(&self) -> Vec<String> {
            self.told.lock().unwrap().clone()
        }
    }

    impl Link for Fake {
        fn id(&self) -> u64 {
            7
        }
        fn release(&self, facts: Facts, _: Option<&dyn ClientTrace>) {
            let verdict = reuse::may_reuse(&facts);
            self.told
                .lock()
                .unwrap()
                .push(format!("release {verdict:?}"));
        }
        fn close(&self, why: CloseReason, err: Option<Error>) {
            let err = err
                .map(|e| format!(" ({:?})", e.kind()))
                .unwrap_or_default();
            self.told
                .lock()
                .unwrap()
                .push(format!("close {why:?}{err}"));
        }
        fn interrupted(&self) -> Option<Error> {
            self.interrupted
                .lock()
                .unwrap()
                .as_ref()
                .map(Error::duplicate)
        }
    }

    /// An in-memory read half: `data` to read, then what the server did.
    struct Mem {
        data: Vec<u8>,
        pos: usize,
        after: Peer,
    }

    impl io::Read for Mem {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.fill_buf()?.len().min(buf.len());
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.consume(n);
            Ok(n)
        }
    }

    impl BufRead for Mem {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            Ok(&self.data[self.pos..])
        }
        fn consume(&mut self, n: usize) {
            self.pos += n;
        }
    }

    impl Source for Mem {
        fn buffered(&self) -> &[u8] {
            &self.data[self.pos..]
        }
    }

    impl Half for Mem {
        fn peer_now(&mut self) -> Peer {
            if self.pos < self.data.len() {
                Peer::Spoke
            } else {
                self.after
            }
        }
    }

    fn facts(framing: BodyFraming) -> Facts {
        Facts {
            keep_alives: true,
            request_close: false,
            response: Ok(()),
            framing,
            status: StatusCode::OK,
            written: true,
            after: None,
        }
    }

    /// A body over `wire` (lent), framed as `facts` say, with its fake
    /// connection and the reader's end of the body-done channel.
    fn lent(
        wire: &str,
        after: Peer,
        facts: Facts,
    ) -> (
        Box<ConnBody<Fake, Mem>>,
        Fake,
        crossbeam_channel::Receiver<BodyDone<Mem>>,
    ) {
        let fake = Fake::default();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let half = Mem {
            data: wire.as_bytes().to_vec(),
            pos: 0,
            after,
        };
        let body = ConnBody::new(
            Held::Lent(half),
            Decoder::new(facts.framing),
            fake.clone(),
            tx,
            facts,
            None,
        );
        (body, fake, rx)
    }

    /// What the reader got back through the body-done channel.
    fn back(rx: &crossbeam_channel::Receiver<BodyDone<Mem>>) -> String {
        match rx.try_recv() {
            Ok(BodyDone::End(Some(half))) => format!("half back at {}", half.pos),
            Ok(BodyDone::End(None)) => "end, nothing lent".to_owned(),
            Ok(BodyDone::Abandoned) => "abandoned".to_owned(),
            Ok(BodyDone::Upgraded) => "upgraded".to_owned(),
            Ok(BodyDone::Closed) => "closed".to_owned(),
            Err(_) => "nothing".to_owned(),
        }
    }

    #[test]
    fn the_last_byte_hands_the_connection_back_before_the_read_returns() {
        let (mut body, fake, rx) = lent("hello", Peer::Quiet, facts(BodyFraming::Length(5)));
        let mut buf = [0; 3];
        assert_eq!(body.read(&mut buf).unwrap(), 3);
        assert!(fake.told().is_empty(), "not yet");
        assert_eq!(back(&rx), "nothing");
        assert_eq!(body.read(&mut buf).unwrap(), 2);
        // Before that read returned: the half went back, then the connection.
        assert_eq!(fake.told(), ["release Ok(())"]);
        assert_eq!(back(&rx), "half back at 5");
        assert_eq!(body.read(&mut buf).unwrap(), 0);
        drop(body);
        assert_eq!(
            fake.told(),
            ["release Ok(())"],
            "a finished body's drop tells nothing"
        );
    }

    #[test]
    fn a_body_dropped_before_its_end_closes_the_connection() {
        let (mut body, fake, rx) = lent("hello", Peer::Quiet, facts(BodyFraming::Length(5)));
        assert_eq!(body.read(&mut [0; 2]).unwrap(), 2);
        drop(body);
        assert_eq!(fake.told(), ["close BodyDropped (Io)"]);
        assert_eq!(back(&rx), "abandoned");
    }

    #[test]
    fn a_truncated_body_fails_every_read_and_closes() {
        let (mut body, fake, rx) = lent("hel", Peer::Closed, facts(BodyFraming::Length(5)));
        let mut all = Vec::new();
        let err = body.read_to_end(&mut all).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(fake.told(), ["close Failed (BodyRead)"]);
        assert_eq!(back(&rx), "abandoned");
        let again = body.read(&mut [0; 1]).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::UnexpectedEof, "sticky");
    }

    #[test]
    fn what_the_server_did_past_the_body_goes_with_the_release() {
        for (wire, after, verdict) in [
            ("hello", Peer::Closed, "release Err(PeerClosed)"),
            (
                "helloHTTP/1.1",
                Peer::Quiet,
                "release Err(UnsolicitedBytes)",
            ),
        ] {
            let f = facts(BodyFraming::Length(5));
            let (mut body, fake, _rx) = lent(wire, after, f);
            assert_eq!(body.read(&mut [0; 5]).unwrap(), 5);
            assert_eq!(fake.told(), [verdict], "{wire:?}");
        }
    }

    #[test]
    fn a_response_that_forbids_reuse_closes_at_its_end() {
        let f = Facts {
            response: Err(CloseReason::ConnectionClose),
            ..facts(BodyFraming::Length(2))
        };
        let (mut body, fake, rx) = lent("ok", Peer::Quiet, f);
        assert_eq!(body.read(&mut [0; 8]).unwrap(), 2);
        assert_eq!(fake.told(), ["close ConnectionClose"]);
        assert_eq!(back(&rx), "abandoned");
    }

    #[test]
    fn a_held_body_waits_for_the_layer_above() {
        // Clean end above: then the connection goes back.
        let (mut body, fake, rx) = lent("ok", Peer::Quiet, facts(BodyFraming::Length(2)));
        BodySource::hold(&mut *body);
        assert_eq!(body.read(&mut [0; 8]).unwrap(), 2);
        assert!(fake.told().is_empty(), "held");
        assert_eq!(body.read(&mut [0; 8]).unwrap(), 0);
        assert!(fake.told().is_empty(), "still held at Ok(0)");
        BodySource::end(&mut *body, BodyEnd::Clean);
        assert_eq!(fake.told(), ["release Ok(())"]);
        assert_eq!(back(&rx), "half back at 2");

        // Refused above: it closes, and reads fail with that error.
        let (mut body, fake, rx) = lent("ok", Peer::Quiet, facts(BodyFraming::Length(2)));
        BodySource::hold(&mut *body);
        assert_eq!(body.read(&mut [0; 8]).unwrap(), 2);
        let refusal = Error::new(ErrorKind::BodyTooLarge, "too big");
        BodySource::end(&mut *body, BodyEnd::Refused(&refusal));
        assert_eq!(fake.told(), ["close Failed (BodyTooLarge)"]);
        assert_eq!(back(&rx), "abandoned");
        let err = body.read(&mut [0; 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_copied_body_lends_nothing_back() {
        let fake = Fake::default();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut body: Box<ConnBody<Fake, Mem>> = ConnBody::new(
            Held::Copied {
                bytes: b"hi".to_vec(),
                pos: 0,
            },
            Decoder::new(BodyFraming::Length(2)),
            fake.clone(),
            tx,
            facts(BodyFraming::Length(2)),
            None,
        );
        assert_eq!(body.read(&mut [0; 8]).unwrap(), 2);
        assert_eq!(back(&rx), "end, nothing lent");
        assert_eq!(fake.told(), ["release Ok(())"]);
    }

    #[test]
    fn a_cancel_that_ended_a_close_delimited_body_is_its_error() {
        let framing = BodyFraming::CloseDelimited;
        let (mut body, fake, rx) = lent("partial", Peer::Closed, facts(framing));
        *fake.interrupted.lock().unwrap() =
            Some(Error::new(ErrorKind::Canceled, "request canceled"));
        let err = body.read_to_end(&mut Vec::new()).unwrap_err();
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .unwrap();
        assert_eq!(inner.kind(), ErrorKind::Canceled);
        assert_eq!(fake.told(), ["close Failed (Canceled)"]);
        assert_eq!(back(&rx), "abandoned");
    }
}
