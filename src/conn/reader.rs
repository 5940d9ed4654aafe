//! The reader thread, `nethttp-r<id>` (Go's `persistConn.readLoop`).
//!
//! It owns the buffered read half whenever no response body has it. Each
//! turn of its loop: peek for the next byte (the idle wait), take the
//! request that expects it, read the response head (after any 1xx), then
//! either release the connection at once (no body) or lend the read half
//! to the response body and wait for it to come back (EOF) or not (early
//! close, cancel, deadline). With no cancel or deadline to watch, a body
//! that arrived whole with its head is copied out instead and the reader
//! peeks on at once; a longer one is lent, and the reader waits for it on the
//! socket rather than on the channel. Either way the body's end wakes nobody:
//! the next response (or the server's FIN) wakes the reader.
//!
//! A `101 Switching Protocols` ends the loop: the read half goes to the
//! 101's body for good ([`switch`]), and the reader waits only to hear
//! whether the caller upgraded (it exits, closing nothing) or dropped the
//! response (the connection closed; it exits).
//!
//! With a `read_timeout`, the read half's head and body reads stall that
//! long at most ([`BufReadHalf::set_stall`]); the wait for a response's
//! first byte is the caller's to time (it knows when the request was
//! written): the reader stamps each request it takes (`first_byte`).

use std::{
    io,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, Sender, TryRecvError, never, select};
use http::{Method, StatusCode};

use super::{
    PersistConn,
    msg::{Answer, BodyDone, ConnError, Failure, ReadRequest, Reply, ResponseParts},
};
use super::{
    body::{ConnBody, Held},
    reuse::{self, Facts},
    switch::Switching,
};
use crate::h1::{
    decode::Decoder,
    framing::{self, BodyFraming},
    head::{self, HeadError, HeaderSlots, ResponseHead},
};
use crate::{
    CancelToken, Error, ErrorKind, ResponseBody,
    close_reason::CloseReason,
    config::Config,
    phase::{Interrupt, Phase},
    pool::IdleCheck,
    stream::{self, BufReadHalf},
    trace::ClientTrace,
};

/// More interim responses than this before the final one is a protocol
/// error (Go's `max1xxResponses`).
const MAX_1XX: usize = 5;

/// What the idle wait saw.
enum Peek {
    /// Bytes arrived.
    Data,
    /// The server closed its side.
    Eof,
    Err(io::Error),
}

/// The reader thread's state: its ends of the connection's channels, and
/// the body-done channel its bodies answer on.
struct Reader {
    conn: PersistConn,
    reqch: Receiver<ReadRequest>,
    reply: Sender<Reply>,
    /// How each response body ends: one body at a time, one message each
    /// (the connection's `body_done` is the sending end); and
    /// [`BodyDone::Closed`] once the connection closed.
    done_rx: Receiver<BodyDone>,
    /// The head parser's slots, kept from one response to the next.
    slots: HeaderSlots,
}

/// Where the read half is between responses. (While a body reads with it,
/// it is lent: the reader waits inside [`Reader::respond`] for it to come
/// back, and does not loop.)
enum Between {
    /// With the reader, the last response done with.
    Idle(BufReadHalf),
    /// With the reader, but a copy of the last response's body is still
    /// out: its caller may hold it, and with it the connection (in use
    /// until the body ends). Whatever the next peek sees comes after it.
    CopiedOut(BufReadHalf),
}

// Not inlined into the thread's start closure: one frame of its own.
#[inline(never)]
pub(super) fn run(
    conn: PersistConn,
    rd: BufReadHalf,
    reqch: Receiver<ReadRequest>,
    reply: Sender<Reply>,
    done_rx: Receiver<BodyDone>,
) {
    let mut reader = Reader {
        conn,
        reqch,
        reply,
        done_rx,
        slots: HeaderSlots::new(),
    };
    let mut between = Between::Idle(rd);
    while let Some(next) = reader.turn(between) {
        between = next;
    }
}

impl Reader {
    /// One turn: the idle wait, then the response to the request it
    /// answers. `None` once the connection closed.
    fn turn(&mut self, between: Between) -> Option<Between> {
        let conn = &self.conn;
        let (mut rd, copied_out) = match between {
            Between::Idle(rd) => (rd, false),
            Between::CopiedOut(rd) => (rd, true),
        };
        let peek = peek(conn, &mut rd, conn.config().idle_conn_timeout)?;
        // If the response we answered last is still out, its hand-back
        // must not pool the connection: this came before it.
        conn.note_peer(matches!(peek, Peek::Data));
        // Whatever the peek saw comes after that body: let it end first. Its
        // drop before the end closed the connection.
        if copied_out && !matches!(self.done_rx.recv(), Ok(BodyDone::End(_))) {
            return None;
        }
        if conn.is_closed() {
            return None;
        }
        let Ok(rr) = self.reqch.try_recv() else {
            // Nothing was asked of the server: done.
            match unasked(peek) {
                (why, Some(err)) => conn.close_on(why, err),
                (why, None) => conn.close(why),
            }
            return None;
        };
        if conn.config().read_timeout.is_some() {
            // The caller's read-timeout timer for this response's first
            // byte stands down; the head reads time themselves.
            conn.inner
                .first_byte
                .store(rr.seq + 1, std::sync::atomic::Ordering::SeqCst);
        }
        // Two calls kept apart, so neither's locals sit on the stack under
        // the other: each connection thread's touched stack is resident for
        // as long as the connection lives.
        let head = response_head(&mut rd, &rr, conn.config(), peek, &mut self.slots);
        self.respond(rd, rr, head)
    }
}

/// The final response head for `rr` (after any 1xx) and its body framing.
#[inline(never)]
fn response_head(
    rd: &mut BufReadHalf,
    rr: &ReadRequest,
    cfg: &Config,
    peek: Peek,
    slots: &mut HeaderSlots,
) -> Result<(ResponseHead, BodyFraming), ConnError> {
    if !matches!(peek, Peek::Data) {
        return Err(no_response(peek));
    }
    if let Some(t) = &rr.trace {
        t.got_first_response_byte();
    }
    let head = read_final_head(rd, rr, cfg, slots)?;
    with_framing(head, &rr.method)
}

/// Why the server said nothing when nothing was asked of it (Go's
/// `readLoopPeekFailLocked`): it closed an idle connection, or spoke out
/// of turn (a 408, say).
#[cold]
#[inline(never)]
fn unasked(peek: Peek) -> (CloseReason, Option<Error>) {
    match peek {
        Peek::Data => (CloseReason::UnsolicitedBytes, None),
        Peek::Eof => (CloseReason::PeerClosed, None),
        Peek::Err(e) => {
            let err =
                Error::new(stream::error_kind(&e), "idle connection read failed").with_source(e);
            (CloseReason::Failed, Some(err))
        }
    }
}

/// Why a request got no response: the peek for its first byte saw EOF or
/// an error.
#[cold]
#[inline(never)]
fn no_response(peek: Peek) -> ConnError {
    let err = match peek {
        Peek::Err(e) => Error::new(stream::error_kind(&e), "read response").with_source(e),
        Peek::Data | Peek::Eof => Error::new(
            ErrorKind::Io,
            "server closed the connection before sending a response",
        ),
    };
    ConnError {
        err,
        class: Failure::BeforeResponse,
    }
}

impl Reader {
    /// Answers `rr` with its response (or its failure), then gets the read
    /// half back: at once for a response without a body or with a copied
    /// one, after the body's end for a lent one. `None` once the connection
    /// closed.
    #[inline(never)]
    fn respond(
        &self,
        mut rd: BufReadHalf,
        rr: ReadRequest,
        head: Result<(ResponseHead, BodyFraming), ConnError>,
    ) -> Option<Between> {
        let (conn, cfg, reply) = (&self.conn, self.conn.config(), &self.reply);
        let done_rx = &self.done_rx;
        let seq = rr.seq;
        let (head, framing) = match head {
            Ok(hf) => hf,
            Err(ce) => {
                // Answer first, then close: the caller prefers the answer.
                let why = ce.err.duplicate();
                let reason = if why.kind() == ErrorKind::Timeout {
                    CloseReason::ReadTimeout
                } else {
                    CloseReason::Failed
                };
                let answer = Answer::Response(Err(ce));
                let _ = reply.try_send(Reply { seq, answer });
                conn.close_on(reason, why);
                return None;
            }
        };
        if head.status == StatusCode::SWITCHING_PROTOCOLS {
            return switch(conn, reply, done_rx, seq, head, rd);
        }
        let trace = rr.trace.clone();
        let content_length = content_length(&rr.method, &head, framing);
        // May this connection carry another request, as far as the head says?
        let facts = Facts::at_head(
            !cfg.disable_keep_alives,
            rr.close,
            head.version,
            &head.headers,
            framing,
            head.status,
        );
        let verdict = reuse::may_reuse(&facts);

        if matches!(framing, BodyFraming::None | BodyFraming::Length(0)) {
            // No body: a reusable connection goes back before the caller sees
            // the response, as in Go. The caller puts it back on receipt
            // (`release`): not we, before the reply, or the next request's
            // caller could wait on the reply channel beside this one's. One
            // that cannot be reused closes only after the caller has its answer.
            let parts = ResponseParts {
                head,
                content_length,
                body: ResponseBody::empty(),
                release: verdict.is_ok().then_some(facts),
            };
            if verdict.is_ok() {
                conn.mark_answered();
            }
            let answer = Answer::Response(Ok(parts));
            let _ = reply.try_send(Reply { seq, answer });
            if let Err(why) = verdict {
                conn.close(why);
                return None;
            }
            return Some(Between::Idle(rd));
        }

        // The whole body came with the head (a small response): hand the caller
        // a copy and keep the read half, so the next peek is a plain read and
        // the body's end wakes nobody. Not with a cancel or deadline to watch:
        // a copied body cannot be interrupted.
        let buffered = crate::h1::Source::buffered(&rd).len() as u64;
        let copy = framing == BodyFraming::Length(buffered)
            && rr.cancel.is_none()
            && rr.deadline.is_none();
        let (held, next) = if copy {
            let bytes = rd.take_buffered();
            conn.mark_answered();
            (Held::Copied { bytes, pos: 0 }, Some(rd))
        } else {
            (Held::Lent(rd), None)
        };
        let body = ConnBody::new(
            held,
            Decoder::new(framing),
            conn.clone(),
            conn.inner.body_done.clone(),
            facts,
            trace,
        );
        send_response(
            reply,
            seq,
            head,
            content_length,
            ResponseBody::from_source(body),
        );
        if let Some(rd) = next {
            return Some(Between::CopiedOut(rd));
        }
        let back = if rr.cancel.is_none() && rr.deadline.is_none() {
            wait_on_socket(conn, done_rx)
        } else {
            wait_for_body(conn, done_rx, rr.cancel, rr.deadline)
        };
        back.map(Between::Idle)
    }
}

/// A `101 Switching Protocols`: the read half goes to the response's body
/// for good (with any bytes read past the head), and the reader waits only
/// for how it ends: upgraded ([`BodyDone::Upgraded`]: the caller owns the
/// socket now; the writer hands its half over too) or dropped (the
/// connection closed: [`BodyDone::Closed`]). No cancel token, deadline or
/// socket to watch: they do not bound an upgrade, and the socket is the
/// caller's. Either way the reader exits: the connection is never reused.
#[inline(never)]
fn switch(
    conn: &PersistConn,
    reply: &Sender<Reply>,
    done_rx: &Receiver<BodyDone>,
    seq: u64,
    head: ResponseHead,
    rd: BufReadHalf,
) -> Option<Between> {
    let body = Switching::new(conn.clone(), rd);
    send_response(reply, seq, head, Some(0), ResponseBody::from_source(body));
    // Every message ends the wait: `Upgraded` from the hand-over, `Closed`
    // from `close` (the response dropped, or the caller gave up before
    // taking it). The channel's sender lives in the connection.
    let _ = super::recv_now(done_rx);
    None
}

/// Hands the caller its response. If the caller already left (it closes
/// the connection before it goes), the body drops right here, or with the
/// reply channel once both threads have exited: early close. Out of line, like the waits below: each
/// connection thread's deepest stack stays resident for as long as the
/// connection lives, so large values get frames of their own instead of
/// piling up in one.
#[inline(never)]
fn send_response(
    reply: &Sender<Reply>,
    seq: u64,
    head: ResponseHead,
    content_length: Option<u64>,
    body: ResponseBody,
) {
    let answer = Answer::Response(Ok(ResponseParts {
        head,
        content_length,
        body,
        release: None,
    }));
    let _ = reply.try_send(Reply { seq, answer });
}

/// Waits for the body to give the read half back (Go's `waitForBodyRead`)
/// while watching the request's cancel signal and deadline: when one fires,
/// shutting the socket down wakes the caller's blocked read. `None` when
/// the body ended early or the connection closed.
#[inline(never)]
fn wait_for_body(
    conn: &PersistConn,
    done_rx: &Receiver<BodyDone>,
    cancel: Option<CancelToken>,
    deadline: Option<Instant>,
) -> Option<BufReadHalf> {
    let not_set = never();
    let cancel = cancel.as_ref().map_or(&not_set, CancelToken::receiver);
    let deadline = deadline.map_or_else(never, crossbeam_channel::at);
    let (why, interrupt) = select! {
        recv(done_rx) -> done => match done {
            Ok(BodyDone::End(Some(back))) => return Some(back),
            // The body closed the connection before it let go; make sure.
            _ => {
                conn.close(CloseReason::BodyDropped);
                return None;
            }
        },
        recv(cancel) -> _ => (CloseReason::Canceled, Interrupt::Canceled),
        recv(deadline) -> _ => (CloseReason::DeadlineExceeded, Interrupt::Deadline),
    };
    // The body may have finished just as the signal fired.
    if let Ok(BodyDone::End(Some(back))) = done_rx.try_recv() {
        return Some(back);
    }
    conn.close_on(why, interrupt.error(Phase::ReadingBody));
    None
}

/// [`wait_for_body`] with nothing to watch but the body: the reader parks
/// on the socket instead of on the channel, so the body hands the read half
/// back with a send that wakes nobody (the body-done signal off the
/// critical path). The reader wakes when bytes, EOF or an error reach the
/// socket, which after a body's end is the next response or the server
/// closing the idle connection, and only then takes the half back: waiting
/// for it if the bytes were the body's own. TLS waits on the channel (bytes
/// on its socket may be records without plaintext).
#[inline(never)]
fn wait_on_socket(conn: &PersistConn, done_rx: &Receiver<BodyDone>) -> Option<BufReadHalf> {
    loop {
        match done_rx.try_recv() {
            Ok(BodyDone::End(Some(back))) => return Some(back),
            Ok(_) | Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {}
        }
        match conn.inner.closer.wait_readable() {
            // The idle wait's timeout stays set on the socket: look again,
            // and if the half is back the idle peek takes over the timing.
            Some(Err(e)) if stream::is_timeout(&e) => {
                if conn.is_closed() {
                    return None;
                }
            }
            _ => match done_rx.recv() {
                Ok(BodyDone::End(Some(back))) => return Some(back),
                _ => break,
            },
        }
    }
    // The body closed the connection before it let go; make sure.
    conn.close(CloseReason::BodyDropped);
    None
}

/// How long a quiet connection keeps its read buffer's page: after this
/// long with nothing to read, the reader gives the page back to the OS
/// ([`BufReadHalf::release`]) and the next response fills a fresh one.
/// Connections in a request loop never pay for that; a pool of idle ones
/// costs no buffer memory. The socket's read timeout stays at most this
/// while the page is held (head and body reads retry on it: a stalled
/// response costs one wake-up per second).
const KEEP_PAGE: Duration = Duration::from_secs(1);

/// The idle wait: blocks until the next byte, EOF or an error. The idle
/// timeout is this read's timeout; when it fires on a connection that is
/// still idle, the connection closes (Go's `closeConnIfStillIdle`). While
/// the read buffer holds a page, the wait is [`KEEP_PAGE`] at most, and a
/// quiet connection then gives the page back before it waits on.
/// Returns `None` when the connection closed meanwhile.
fn peek(conn: &PersistConn, rd: &mut BufReadHalf, idle_timeout: Option<Duration>) -> Option<Peek> {
    let idle_timeout = idle_timeout.filter(|d| !d.is_zero());
    let mut timeout = idle_timeout;
    loop {
        let wait = if rd.holds_page() {
            Some(timeout.map_or(KEEP_PAGE, |t| t.min(KEEP_PAGE)))
        } else {
            timeout
        };
        if let Err(e) = rd.set_timeout(wait) {
            return Some(Peek::Err(e));
        }
        match rd.peek() {
            Ok([]) => return Some(Peek::Eof),
            Ok(_) => return Some(Peek::Data),
            Err(e) if stream::is_timeout(&e) => {
                if conn.is_closed() {
                    return None;
                }
                rd.release();
                let Some(limit) = idle_timeout else {
                    continue;
                };
                match conn.idle_check(limit) {
                    IdleCheck::Expired => {
                        conn.close_idle(CloseReason::IdleTimeout);
                        return None;
                    }
                    IdleCheck::Remaining(d) => timeout = Some(d.max(Duration::from_millis(1))),
                    IdleCheck::NotIdle => timeout = idle_timeout,
                }
            }
            Err(e) => return Some(Peek::Err(e)),
        }
    }
}

/// Reads heads until a final one, passing interim 1xx responses to the
/// trace and `100 Continue` to the writer.
fn read_final_head(
    rd: &mut BufReadHalf,
    rr: &ReadRequest,
    cfg: &Config,
    slots: &mut HeaderSlots,
) -> Result<ResponseHead, ConnError> {
    let trace: Option<&dyn ClientTrace> = rr.trace.as_deref();
    let mut continue_tx = rr.continue_tx.clone();
    let mut interim = 0;
    loop {
        let head = head::read_response_head(rd, cfg.max_response_header_bytes, slots)
            .map_err(|e| head_error(e, cfg.max_response_header_bytes))?;
        let code = head.status.as_u16();
        if let Some(tx) = &continue_tx {
            if code == 100 {
                if let Some(t) = trace {
                    t.got_100_continue();
                }
                let _ = tx.try_send(true);
                continue_tx = None;
            } else if code >= 200 || code == 101 {
                // A final answer, or a switch to another protocol: the
                // body is not sent.
                let _ = tx.try_send(false);
                continue_tx = None;
            }
        }
        // 101 ends the exchange like a final response (Go issue 26161).
        if (100..200).contains(&code) && code != 101 {
            interim += 1;
            if interim > MAX_1XX {
                return Err(ConnError {
                    err: Error::new(ErrorKind::Protocol, "too many 1xx informational responses"),
                    class: Failure::Other,
                });
            }
            if let Some(t) = trace {
                t.got_1xx_response(head.status, &head.headers);
            }
            continue;
        }
        return Ok(head);
    }
}

#[cold]
#[inline(never)]
fn head_error(e: HeadError, max: usize) -> ConnError {
    let err = match e {
        HeadError::EmptyEof => Error::new(
            ErrorKind::Io,
            "server closed the connection before sending a response",
        ),
        HeadError::Truncated => Error::new(
            ErrorKind::Io,
            "server closed the connection in the middle of the response head",
        ),
        HeadError::TooLarge => Error::new(
            ErrorKind::HeaderTooLarge,
            format!("server response head exceeded {max} bytes"),
        ),
        HeadError::Malformed(m) => return malformed(&m),
        HeadError::Io(e) => match stream::stalled(&e) {
            Some(after) => super::read_timeout_error(Phase::AwaitingHeaders, after),
            None => Error::new(ErrorKind::Io, "read response head").with_source(e),
        },
    };
    ConnError {
        err,
        class: Failure::Other,
    }
}

fn with_framing(
    head: ResponseHead,
    method: &Method,
) -> Result<(ResponseHead, BodyFraming), ConnError> {
    match framing::response_framing(method, head.status, &head.headers) {
        Ok(f) => Ok((head, f)),
        Err(m) => Err(malformed(&m)),
    }
}

/// A response that breaks the protocol (a bad head or framing).
#[cold]
#[inline(never)]
fn malformed(what: &str) -> ConnError {
    ConnError {
        err: Error::new(ErrorKind::Protocol, format!("malformed response: {what}")),
        class: Failure::Other,
    }
}

/// `Response::content_length` as Go computes it: the header's value for
/// HEAD, zero for 1xx/204/304, the framing's length otherwise.
fn content_length(method: &Method, head: &ResponseHead, framing: BodyFraming) -> Option<u64> {
    if method == Method::HEAD {
        return framing::content_length(&head.headers).ok();
    }
    match framing {
        BodyFraming::Length(n) => Some(n),
        BodyFraming::None => Some(0),
        BodyFraming::Chunked | BodyFraming::CloseDelimited => None,
    }
}
