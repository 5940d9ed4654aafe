//! The messages that cross a connection's channels (Go's `writeRequest`,
//! `requestAndChan`, `responseAndError`).

use std::{sync::Arc, time::Instant};

use crossbeam_channel::{Receiver, Sender};
use http::Method;

use super::reuse::Facts;
use crate::{
    CancelToken, Error, ResponseBody,
    body::request::Kind as BodyKind,
    h1::head::{RequestFraming, ResponseHead},
    stream::{BufReadHalf, WriteHalf},
    trace::ClientTrace,
};

/// Caller → writer thread, on `writech`: what the writer does next.
// The request is the hot path's message, moved once per request through
// a one-slot channel; boxing it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ToWriter {
    /// Put a request on the wire.
    Request(WriteRequest),
    /// The caller takes the connection over (`Response::upgrade` after a
    /// 101): send the write half here and exit, leaving the socket open.
    /// Queued behind any request still being written, so a request body
    /// in flight goes out whole first. The sender is a one-slot channel
    /// made for this, its receiver waited on by the upgrading caller; if
    /// the writer is gone, the message drops with `writech` and the
    /// caller sees the disconnection.
    HandOver(Sender<WriteHalf>),
}

/// Caller → writer thread: one request to put on the wire.
pub(crate) struct WriteRequest {
    /// The encoded request head.
    pub(crate) head: Vec<u8>,
    pub(crate) body: BodyKind,
    pub(crate) framing: RequestFraming,
    /// `Expect: 100-continue`: `true` = send the body, `false` = the server
    /// answered without `100 Continue`, do not. Sent by the reader; it
    /// disconnects when the reader exits.
    pub(crate) continue_rx: Option<Receiver<bool>>,
    /// The request's number on this connection, echoed in its [`Reply`].
    pub(crate) seq: u64,
    /// Report a write that went well as [`Answer::Written`] (the caller
    /// then starts its response header timer). Failures are always
    /// reported (Go's `wr.ch`); otherwise the caller is not woken for a
    /// write that went well: one wake-up per response, not two.
    pub(crate) report_success: bool,
    /// The request carries `Connection: close`: no request follows it on
    /// this connection.
    pub(crate) last: bool,
    pub(crate) trace: Option<Arc<dyn ClientTrace>>,
    /// The caller, which tried to write the request itself, has told the
    /// trace `wrote_headers` already: the writer does not again.
    pub(crate) headers_told: bool,
}

/// Caller → reader thread: where the response goes and how to read it.
pub(crate) struct ReadRequest {
    /// HEAD responses have no body.
    pub(crate) method: Method,
    /// The request asked for `Connection: close`.
    pub(crate) close: bool,
    /// The request's number on this connection; its response goes back as
    /// [`Answer::Response`] with it (Go's `resc`).
    pub(crate) seq: u64,
    /// Set when the request waits for `100 Continue`.
    pub(crate) continue_tx: Option<Sender<bool>>,
    /// Held (not just its receiver) for as long as the body may be read:
    /// see [`CancelToken::receiver`].
    pub(crate) cancel: Option<CancelToken>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) trace: Option<Arc<dyn ClientTrace>>,
}

/// Reader or writer thread → caller: what became of request `seq`.
///
/// Both threads answer into the connection's one reply channel, made with
/// the connection and used by one request at a time, so a request costs no
/// channel of its own and the caller waits with a plain `recv` on it alone.
/// The channel disconnects when both threads have exited: the connection
/// closed under the request (this is how the caller sees Go's `closech`).
///
/// `seq` tells a request's answers from a late one meant for the request
/// before it. Only one kind can come late on a connection that is reused:
/// a successful [`Answer::Written`] that lost the race to its response
/// (the server answered before the body was all sent). Every other answer
/// either reaches its caller or finds the connection closing (a caller
/// leaves without its response only after closing the connection).
pub(crate) struct Reply {
    pub(crate) seq: u64,
    pub(crate) answer: Answer,
}

/// What a [`Reply`] says.
// Each answer moves once through the connection's three-slot channel
// (160 bytes a slot); boxing the large variant would cost an allocation per
// request to save about 0.4 KiB per connection.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Answer {
    /// From the reader: the response head with its body, or why none came.
    Response(Result<ResponseParts, ConnError>),
    /// From the writer: the request could not be written, or (when the
    /// caller runs a response header timer) it was.
    Written(Result<(), WriteFailure>),
}

/// Why the writer could not send a request.
#[derive(Debug)]
pub(crate) struct WriteFailure {
    pub(crate) err: Error,
    /// The socket failed (the server may have answered early and closed),
    /// as opposed to the request body's own reader failing or lying about
    /// its length.
    pub(crate) on_socket: bool,
}

/// A response head with its body.
pub(crate) struct ResponseParts {
    pub(crate) head: ResponseHead,
    pub(crate) content_length: Option<u64>,
    pub(crate) body: ResponseBody,
    /// A response without a body on a reusable connection: the caller puts
    /// the connection back when it takes this, before it returns, if these
    /// facts still allow it then. (A body does that at its end.)
    pub(crate) release: Option<Facts>,
}

/// Why a round trip failed, classified for the retry rule.
#[derive(Debug)]
pub(crate) struct ConnError {
    pub(crate) err: Error,
    pub(crate) class: Failure,
}

/// How far a failed request got (Go's `nothingWrittenError`,
/// `transportReadFromServerError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Not one byte of the request reached the socket.
    NothingWritten,
    /// The request went out but the server closed (or failed) before the
    /// first byte of a response.
    BeforeResponse,
    /// Anything later, or unknown.
    Other,
    /// HTTP/2: the server said it did not process the request (a stream
    /// above GOAWAY's last stream id, `REFUSED_STREAM`), or its stream
    /// never opened: safe to retry on any connection, whatever the method.
    NotProcessed,
}

/// Body → reader thread, once per body: how it ended. The channel is the
/// connection's, one body at a time.
pub(crate) enum BodyDone<R = BufReadHalf> {
    /// Read to its end: here is the read half, if it was lent (`None` for a
    /// body copied out of the reader's buffer).
    End(Option<R>),
    /// Dropped or failed before its end; it closed the connection.
    Abandoned,
    /// A `101 Switching Protocols` response was upgraded: the caller owns
    /// the read half (and the socket) now; the reader exits without
    /// closing anything.
    Upgraded,
    /// Sent by `PersistConn::close`, not by a body: the connection closed,
    /// so the reader stops waiting for the body. A body may never end: a
    /// caller that gave up as its response arrived leaves that response in
    /// the reply channel, which keeps it until both threads have exited.
    Closed,
}
