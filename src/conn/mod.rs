//! One pooled connection (Go's `persistConn`): its reader thread, its writer
//! thread, the channels between them and the caller, and `close`.
//!
//! ```text
//!            ┌── bodiless request: write_now (no wait) ───────────────────▶ socket
//!            ├──────── writech ────────▶ writer thread (nethttp-w<id>) ──▶ socket
//!  caller ───┤  ◀──── reply (failure) ───┘      │ wrote (reuse vote)
//!  round_trip│                                  ▼
//!            └──────── reqch ─────────▶ reader thread (nethttp-r<id>) ◀── socket
//!               ◀──── reply (head + body) ──────┘
//!  body: EOF ─▶ read half back to the reader (BodyDone), conn to the pool
//!        drop before EOF ─▶ close(): socket shut down, the request
//!                           channels' senders dropped (Go's closech),
//!                           both threads exit
//! ```
//!
//! Body bytes cross a channel only when a small body came whole with its
//! head (a copy travels in the reply); otherwise the reader lends its
//! buffered read half to the response body and waits for it to come back.
//!
//! # The request path's wake-ups
//!
//! A request without a body to stream costs the caller one wake-up (its
//! reply) and the reader one (the socket); the writer sleeps. A streamed
//! upload adds the writer's (the request). The rules that keep it there
//! were each measured (benches/compare, `profile.sh`):
//! - The caller writes a request with nothing to stream itself
//!   ([`PersistConn::write_now`]): one `send` that does not wait, under the
//!   write half's lock, which it only tries; what does not fit, or a
//!   request that finds the writer holding the half, goes to the writer.
//!   This took a hand-off off every such request (docs/BENCHMARKS.md,
//!   "Results on this machine, 2026-12-04").
//! - The caller waits on one reply channel that both threads answer into,
//!   yielding first ([`try_soon`], [`CALLER_YIELDS`]: the CPU stays busy
//!   for one server round trip), then with a plain `recv` (or one with a
//!   deadline), and a `select!` only for a cancel token: a woken `select!`
//!   unregisters from every channel it watched, including the one whose
//!   sender still holds that channel's lock while waking it, and on a busy
//!   CPU the two then ping-pong through futex calls (12 per request before).
//! - Closing is a disconnection, not a message: the writer's `writech`
//!   disconnects when `close` drops its only sender, the reader's socket is
//!   shut down, and the reply channel disconnects once both threads have
//!   exited.
//! - Nothing is allocated for the hand-offs: the reply channel is the
//!   connection's, made with it and answered into by number ([`msg::Reply`]).
//! - The body's end wakes nobody: a small body that arrived whole with its
//!   head is copied out, and the reader keeps the read half and peeks on;
//!   while a longer body holds the read half, the reader waits on the socket
//!   (plain TCP), not on the body-done channel. The reader looks at the
//!   body-done channel only once the socket has something for it.
//!
//! # Upgrades: the caller takes the socket (Go's `errCallerOwnsConn`)
//!
//! A `101 Switching Protocols` ends HTTP on the connection. The reader
//! lends its buffered read half to the 101's body ([`switch::Switching`])
//! for good and waits for the body-done channel only; the writer keeps its
//! write half and waits for requests as usual. Until the caller upgrades or
//! drops the response, the connection is in use with both threads.
//! [`PersistConn::hand_over`], on the caller's thread, then:
//!
//! 1. marks the connection closed for [`CloseReason::CallerOwnsConn`]
//!    (under the close-reason lock, so it wins or loses against any
//!    `close` as one step; after it, every `close` is a no-op that never
//!    touches the socket);
//! 2. takes the request senders, queues [`msg::ToWriter::HandOver`] on
//!    `writech` (behind any request body still going out) and drops them;
//! 3. says [`msg::BodyDone::Upgraded`] to the reader, which exits;
//! 4. waits for the writer's half, and for both threads to leave (the
//!    reply channel disconnects), then tells the pool the connection left
//!    (`Handle::closed`: its per-host slot goes to a waiter);
//! 5. hands the caller both halves and a closer, with every timeout
//!    cleared, the reader's buffered bytes first in line.
//!
//! Dropping the 101 response (or its body) instead closes the connection
//! as any early drop does. Either way both threads exit exactly once.

mod body;
pub(crate) mod msg;
mod reader;
pub(crate) mod reuse;
pub(crate) mod switch;
mod writer;

use std::{
    borrow::Cow,
    fmt,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, never, select};
use http::{HeaderMap, Method, header};
use parking_lot::Mutex;
use url::Url;

use crate::h1::{
    framing::{self, has_token},
    head::{RequestHead, write_request_head},
};
use crate::stream::{BufReadHalf, Closer, Peer, Stream, WriteHalf};
use crate::{
    Body, CancelToken, Error, ErrorKind,
    body::request::Kind as BodyKind,
    close_reason::CloseReason,
    config::Config,
    phase::{Interrupt, Phase},
    pool::{Handle, IdleCheck},
    route::ConnKey,
    threads::Threads,
    trace::ClientTrace,
};
use msg::{
    Answer, BodyDone, ConnError, Failure, ReadRequest, Reply, ResponseParts, ToWriter,
    WriteFailure, WriteRequest,
};
use reuse::Facts;

/// How long a finished response waits for the writer's verdict before the
/// connection may be reused (Go's `maxWriteWaitBeforeConnReuse`).
const MAX_WRITE_WAIT_BEFORE_REUSE: Duration = Duration::from_millis(50);

/// After a socket write error, how long the caller still waits for a
/// response that may already be on its way (a server that answers early
/// and then closes).
const WRITE_ERROR_GRACE: Duration = Duration::from_millis(100);

/// A handle on one connection. Clones share it; the pool, the caller and
/// both threads each hold one.
#[derive(Clone)]
pub(crate) struct PersistConn {
    inner: Arc<Shared>,
}

/// State shared by the handles of one connection.
struct Shared {
    id: u64,
    key: ConnKey,
    local_addr: SocketAddr,
    remote_addr: SocketAddr,
    cfg: Arc<Config>,
    /// Whoever pools the connection (the transport): how it goes back,
    /// leaves, and asks whether it is due.
    owner: Arc<dyn Handle<PersistConn>>,
    /// The only senders of `writech` and `reqch`; `close` takes and drops
    /// them. Locked by the caller for its two sends and by `close`.
    requests: Mutex<Option<Requests>>,
    /// Shuts the socket down from any thread.
    closer: Closer,
    /// The write half, held by whoever writes: the writer thread, for each
    /// request it writes (and each TLS poke), or a caller that writes its
    /// request's head itself ([`PersistConn::write_now`]), for one write
    /// that never waits. Only the writer thread waits for it; a caller
    /// tries it and leaves the request to the writer if it is taken. So
    /// one writer at a time takes TLS output and writes the socket, and
    /// nothing waits on a socket with this held but the writer thread.
    /// `None` once the writer thread has exited or handed the half over.
    write: Mutex<Option<WriteHalf>>,
    /// The reader's body-done channel (one body at a time): each body gets
    /// a clone to say how it ended, and `close` says
    /// [`BodyDone::Closed`] into it so the reader never waits for a body
    /// on a closed connection. Read only by the reader thread.
    body_done: Sender<BodyDone>,
    /// Why the connection closed; set once, by `close`. Written by whoever
    /// closes; read by the caller and the body to word their errors.
    close_reason: Mutex<Option<Closed>>,
    /// Mirrors `close_reason.is_some()` for lock-free checks.
    closed: AtomicBool,
    /// Bytes written to the socket so far. Written by: the writer thread,
    /// and a caller writing its request itself. Read
    /// by: the caller, to tell whether a failed request wrote anything.
    nwrite: AtomicU64,
    /// Served a request before: set when a response is handed back
    /// (Go's `markReused`). Read for `GotConnInfo::reused`.
    reused: AtomicBool,
    /// The verdict on each request, in order: was it written in full (Go's
    /// `writeErrCh`)? Sent by whoever wrote it (the writer thread, or the
    /// caller that wrote it all itself); taken once per
    /// request by `release` (on the caller's thread, at the response or at
    /// its body's end). A connection that skips a verdict closes.
    wrote: Receiver<bool>,
    /// Requests written in full. Written by: whoever wrote them. Read by: the
    /// caller, to name the phase a deadline interrupted without being woken
    /// for every successful write.
    requests_written: AtomicU64,
    /// With a `read_timeout`: one more than the number of the last request
    /// whose response's first byte has arrived. Written by: reader thread,
    /// when it takes the request. Read by: the caller, whose read-timeout
    /// timer covers the wait for that first byte (the reader's reads of
    /// the rest of the head and of the body time themselves).
    first_byte: AtomicU64,
    /// Between the reader's answer to a request whose read half it kept
    /// and that response's hand-back, the reader peeks on while the caller
    /// still has the response: it may take the server's FIN (TLS
    /// `close_notify`) or unasked bytes off the socket before the hand-back
    /// looks there. `ANSWERED` is set by the reader before it answers;
    /// then exactly one of them moves it on: the reader's peek to
    /// `PEER_CLOSED` or `PEER_SPOKE` (compare-exchange), or the hand-back
    /// to `NOTHING_PENDING` (swap), which refuses the pool if it finds
    /// either. Written by: reader thread and the caller, as said.
    answered: AtomicU8,
}

/// See [`Shared::answered`].
const NOTHING_PENDING: u8 = 0;
const ANSWERED: u8 = 1;
const PEER_CLOSED: u8 = 2;
const PEER_SPOKE: u8 = 3;

/// Why a connection closed: the reason, and the error that caused it when
/// there is one.
struct Closed {
    reason: CloseReason,
    error: Option<Error>,
}

/// The caller's ends of the connection's channels. Dropping them is how a
/// connection closes towards its threads: the writer's wait on `writech`
/// ends with a disconnection (this is Go's `closech`), the reader finds the
/// socket shut down, and both exit, which disconnects `replies` for a
/// caller still waiting there.
struct Requests {
    /// Caller → writer thread; read only by the writer.
    writech: Sender<ToWriter>,
    /// Caller → reader thread; read only by the reader, which never blocks
    /// on it (it takes a request when the response's first byte arrives).
    reqch: Sender<ReadRequest>,
    /// The caller's sender of the verdict (`Shared::wrote`), for a request
    /// it wrote all by itself; the writer thread holds the other. Dropped
    /// by `close` with the rest, so the channel disconnects once the
    /// writer has exited too.
    wrote: Sender<bool>,
    /// Reader and writer threads → caller: the one reply channel, for every
    /// request on this connection in turn. A caller waits on a clone of it.
    /// Only receivers live here: once the connection has closed and its
    /// caller has gone, a late response finds no receiver and drops (early
    /// close). One sent just before stays queued until both threads have
    /// exited; `close` makes sure the reader does not wait for its body
    /// ([`BodyDone::Closed`]).
    replies: Receiver<Reply>,
    /// The number of the next request (see [`Reply`]).
    seq: u64,
}

/// Room in the reply channel: a request's two answers (the writer's and
/// the reader's) and one late [`Answer::Written`] from the request before.
/// A send into it never blocks and never finds it full.
const REPLY_SLOTS: usize = 3;

/// An upgraded connection, as [`PersistConn::hand_over`] gives it to the
/// caller: both halves of the stream (the read half with the bytes the
/// reader had buffered past the 101's head) and a closer of its own, with
/// no timeout set. Whoever holds it owns the socket.
pub(crate) struct Handed {
    pub(crate) read: BufReadHalf,
    pub(crate) write: WriteHalf,
    pub(crate) closer: Closer,
}

/// One request as the transport hands it to a connection: what any
/// protocol needs. The HTTP/1 connection encodes it: the request line and
/// head, the body's framing, `Connection: close`.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a Method,
    pub(crate) url: &'a Url,
    /// Plain http through a proxy: the target goes in absolute form.
    pub(crate) via_proxy: bool,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Body,
    /// Ask for these encodings (the transport decodes them): the
    /// `Accept-Encoding` value, or `None`.
    pub(crate) accept_encoding: Option<&'static str>,
    pub(crate) cancel: Option<&'a CancelToken>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) trace: Option<&'a Arc<dyn ClientTrace>>,
}

impl PersistConn {
    /// Wraps a dialled stream and starts its reader and writer threads,
    /// counted in `threads`.
    pub(crate) fn start(
        id: u64,
        key: ConnKey,
        stream: Stream,
        cfg: Arc<Config>,
        threads: &Arc<Threads>,
        owner: Arc<dyn Handle<PersistConn>>,
    ) -> Result<PersistConn, Error> {
        let (writech, writech_rx) = bounded(1);
        let (reqch, reqch_rx) = bounded(1);
        let (wrote_tx, wrote) = bounded(1);
        let (reply, replies) = bounded(REPLY_SLOTS);
        let (body_done, body_done_rx) = bounded(1);
        let Stream {
            read,
            write,
            closer,
            local_addr,
            remote_addr,
            alpn: _,
        } = stream;
        let poked = write.poked();
        let mut rd = BufReadHalf::new(read)
            .map_err(|e| Error::new(ErrorKind::Connect, format!("map read buffer: {e}")))?;
        // The reader thread owns the half from here: its head reads and the
        // body reads it lends it to stall for `read_timeout` at most.
        rd.set_stall(cfg.read_timeout);
        let pc = PersistConn {
            inner: Arc::new(Shared {
                id,
                key,
                local_addr,
                remote_addr,
                cfg,
                owner,
                requests: Mutex::new(Some(Requests {
                    writech,
                    reqch,
                    wrote: wrote_tx.clone(),
                    replies,
                    seq: 0,
                })),
                wrote,
                closer,
                write: Mutex::new(Some(write)),
                body_done,
                close_reason: Mutex::new(None),
                closed: AtomicBool::new(false),
                nwrite: AtomicU64::new(0),
                reused: AtomicBool::new(false),
                requests_written: AtomicU64::new(0),
                first_byte: AtomicU64::new(0),
                answered: AtomicU8::new(NOTHING_PENDING),
            }),
        };
        let spawn_err = |e: std::io::Error| {
            Error::new(ErrorKind::Connect, format!("spawn connection thread: {e}"))
        };
        let r = pc.clone();
        let r_reply = reply.clone();
        threads
            .spawn(format!("nethttp-r{id}"), move || {
                let _closes = CloseOnExit(r.clone());
                reader::run(r, rd, reqch_rx, r_reply, body_done_rx)
            })
            .map_err(|e| {
                pc.close_on(CloseReason::Failed, spawn_err(e));
                Error::new(ErrorKind::Connect, "could not start the reader thread")
            })?;
        let w = pc.clone();
        threads
            .spawn(format!("nethttp-w{id}"), move || {
                let _closes = CloseOnExit(w.clone());
                writer::run(w, poked, writech_rx, wrote_tx, reply)
            })
            .map_err(|e| {
                pc.close_on(CloseReason::Failed, spawn_err(e));
                Error::new(ErrorKind::Connect, "could not start the writer thread")
            })?;
        Ok(pc)
    }

    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    pub(crate) fn key(&self) -> &ConnKey {
        &self.inner.key
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    pub(crate) fn remote_addr(&self) -> SocketAddr {
        self.inner.remote_addr
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Served a request before (see `reused`).
    pub(crate) fn is_reused(&self) -> bool {
        self.inner.reused.load(Ordering::Relaxed)
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// Asks the owner whether this idle connection is due (its idle read
    /// timed out after `timeout`).
    pub(crate) fn idle_check(&self, timeout: Duration) -> IdleCheck {
        self.inner.owner.idle_check(self, timeout)
    }

    /// Why the connection closed, if it has.
    fn close_reason(&self) -> Option<CloseReason> {
        self.inner.close_reason.lock().as_ref().map(|c| c.reason)
    }

    /// The error of the cancel or deadline that closed the connection, if
    /// one did: a body read it interrupted reports that.
    pub(crate) fn interrupted(&self) -> Option<Error> {
        match self.inner.close_reason.lock().as_ref() {
            Some(Closed {
                reason: CloseReason::Canceled | CloseReason::DeadlineExceeded,
                error: Some(e),
            }) => Some(e.duplicate()),
            _ => None,
        }
    }

    /// Closes the connection (Go's `persistConn.close`): records `why`, shuts
    /// the socket down (waking any blocked read or write), drops `writech`
    /// (waking an idle writer) and frees its pool slot. Idempotent: the
    /// first reason stays. Callable from any thread, never under the pool
    /// lock.
    pub(crate) fn close(&self, why: CloseReason) {
        self.close_with(why, None, false);
    }

    /// [`close`](Self::close), keeping the error that caused it (reason
    /// `Failed`, or a cancel's, a deadline's).
    pub(crate) fn close_on(&self, why: CloseReason, err: Error) {
        self.close_with(why, Some(err), false);
    }

    /// [`close`](Self::close) for a connection that is idle: TLS sends
    /// `close_notify` before the socket shuts down.
    pub(crate) fn close_idle(&self, why: CloseReason) {
        self.close_with(why, None, true);
    }

    ///
    /// Whoever calls it, the connection is out of the pool when it returns
    /// (a second caller that lost the race still makes sure), so counts read
    /// right after a close are exact.
    fn close_with(&self, reason: CloseReason, error: Option<Error>, graceful: bool) {
        {
            let mut closed = self.inner.close_reason.lock();
            if closed.is_some() {
                drop(closed);
                self.inner.owner.closed(self);
                return;
            }
            log::debug!(
                "nethttp: closing conn {} to {}: {}{}",
                self.inner.id,
                self.inner.key,
                reason,
                error
                    .as_ref()
                    .map_or(String::new(), |e| format!(": {}", e.message()))
            );
            *closed = Some(Closed { reason, error });
            self.inner.closed.store(true, Ordering::SeqCst);
        }
        if graceful {
            self.inner.closer.close_gracefully();
        } else {
            self.inner.closer.shutdown();
        }
        // Take the senders out, then drop them (waking the writer) with the
        // lock released.
        let requests = self.inner.requests.lock().take();
        drop(requests);
        // Wakes a reader waiting for a body (if the channel is full, the
        // reader has a message to wake to already).
        let _ = self.inner.body_done.try_send(BodyDone::Closed);
        self.inner.owner.closed(self);
    }

    /// A response ended cleanly (its body read to EOF, or it had none):
    /// offer the connection back to the pool (Go's `tryPutIdleConn`) if
    /// the one verdict ([`reuse::may_reuse`]) allows, else close it. After
    /// a request (`sent`), the writer's verdict on it is awaited briefly,
    /// as in Go. Whoever calls it has answered anyone who waits on this
    /// connection already, so that a waiting caller never sees the close
    /// before the answer. The trace hears last: a hook that panics finds
    /// the connection pooled or closed, never in between.
    pub(crate) fn release(&self, mut facts: Facts, sent: bool, trace: Option<&dyn ClientTrace>) {
        if sent {
            facts.written = self.inner.wrote.recv_timeout(MAX_WRITE_WAIT_BEFORE_REUSE) == Ok(true);
        }
        // The exchange's own rules refuse without a word to the trace (Go's
        // `alive && pc.wroteRequest()`); what the server did since, and the
        // pool, answer `put_idle_conn` (Go's `tryPutIdleConn` errors).
        if let Err(why) = reuse::may_reuse(&Facts {
            after: None,
            ..facts
        }) {
            self.close(why);
            return;
        }
        if sent {
            // Go's `markReused`, but only for a connection that served a
            // request: a dial handed on unused is not "reused".
            self.inner.reused.store(true, Ordering::Relaxed);
        }
        // A lent body looked at its end; otherwise look now.
        facts.after = facts.after.or_else(|| Some(self.peer_check()));
        let res = reuse::may_reuse(&facts).and_then(|()| self.inner.owner.put_idle(self));
        if let Err(why) = res {
            self.close(why);
        }
        if let Some(t) = trace {
            let err = res
                .err()
                .map(|why| Error::new(ErrorKind::Io, format!("put idle conn: {why}")));
            t.put_idle_conn(err.as_ref());
        }
    }

    /// Whether the server has, by now, closed this connection or sent bytes
    /// nobody asked for: it must not carry another request (Go's
    /// `isBroken`, which waits for the reader to notice; this also looks at
    /// the socket). Checked when a response is handed back and when an
    /// idle connection is checked out: a server that closes right after a
    /// keep-alive response would otherwise get the next request written
    /// onto a dead socket, in the moment before the reader sees the FIN.
    pub(crate) fn peer_check(&self) -> Result<(), CloseReason> {
        match self.inner.answered.swap(NOTHING_PENDING, Ordering::SeqCst) {
            PEER_CLOSED => return Err(CloseReason::PeerClosed),
            PEER_SPOKE => return Err(CloseReason::UnsolicitedBytes),
            _ => {}
        }
        match self.inner.closer.look() {
            Peer::Quiet => Ok(()),
            Peer::Closed => Err(CloseReason::PeerClosed),
            Peer::Spoke if !self.inner.closer.is_tls() => Err(CloseReason::UnsolicitedBytes),
            // TLS records without plaintext (session tickets) are the
            // reader's to absorb; it closes the connection on anything else.
            Peer::Spoke => Ok(()),
        }
    }

    /// The reader answered a request and kept its read half (the response
    /// has no body, or a copy of it): its idle peek now runs while the
    /// response is out (see `answered`).
    pub(crate) fn mark_answered(&self) {
        self.inner.answered.store(ANSWERED, Ordering::SeqCst);
    }

    /// The reader's peek returned: bytes (`spoke`), or EOF or an error. If
    /// the response it answered with is still out, its hand-back must not
    /// pool the connection (see `answered`).
    pub(crate) fn note_peer(&self, spoke: bool) {
        let seen = if spoke { PEER_SPOKE } else { PEER_CLOSED };
        let _ = self.inner.answered.compare_exchange(
            ANSWERED,
            seen,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// Sends one request and waits for its response head (Go's
    /// `persistConn.roundTrip`): whichever comes first of the reply (the
    /// response, or the writer's failure), the connection closing (the reply
    /// channel disconnects), the response-header timer, the deadline and
    /// the cancel signal.
    ///
    /// The wait yields first ([`CALLER_YIELDS`]); then, without a cancel
    /// token, it is a plain `recv` on the one reply channel, with the
    /// earliest timer as its deadline: a woken `select!`
    /// must unregister from every channel it watched, and would contend for
    /// the lock of the very channel whose sender is still waking it.
    pub(crate) fn round_trip(&self, out: Outgoing<'_>) -> Result<ResponseParts, ConnError> {
        let start_written = self.inner.nwrite.load(Ordering::SeqCst);
        let fresh = start_written == 0;
        let start_requests = self.inner.requests_written.load(Ordering::SeqCst);
        let headers = out.headers;
        // Without keep-alives a request gets `Connection: close`, unless it
        // asks to switch protocols (Go's `isProtocolSwitchHeader`: the
        // connection is not reused either way, and `close` would contradict
        // its `Connection: upgrade`).
        let close = (self.inner.cfg.disable_keep_alives && !is_protocol_switch(headers))
            || has_token(headers, &header::CONNECTION, "close");
        let framing = framing::request_framing(out.method, out.body.size());
        let expect_continue =
            !out.body.is_empty() && has_token(headers, &header::EXPECT, "100-continue");
        // Encoded per attempt (a retry sends the same bytes), into a buffer
        // the writer thread takes over: no shared copy.
        let target = request_target(out.url, out.via_proxy);
        let mut head = Vec::with_capacity(256);
        write_request_head(
            &RequestHead {
                method: out.method,
                target: &target,
                host: &out.url[url::Position::BeforeHost..url::Position::AfterPort],
                headers,
                framing,
                close,
                accept_encoding: out.accept_encoding,
            },
            &mut head,
        );
        let (continue_tx, continue_rx) = if expect_continue {
            let (tx, rx) = crossbeam_channel::bounded(1);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let mut rr = ReadRequest {
            method: out.method.clone(),
            close,
            seq: 0,
            continue_tx,
            cancel: out.cancel.cloned(),
            deadline: out.deadline,
            trace: out.trace.cloned(),
        };
        let mut wr = WriteRequest {
            head,
            body: out.body.into_kind(),
            framing,
            continue_rx,
            seq: 0,
            report_success: self.inner.cfg.response_header_timeout.is_some()
                || self.inner.cfg.read_timeout.is_some(),
            last: close,
            trace: out.trace.cloned(),
            headers_told: false,
        };
        // A request with nothing to stream goes out from this thread if it
        // can (`write_now`). The trace hears of its head first, as Go's
        // does before its flush: so before any response can arrive.
        let direct = writes_now(&mut wr);
        if direct {
            if let Some(t) = out.trace {
                self.hook(|| t.wrote_headers());
            }
            wr.headers_told = true;
        }
        // Nothing here blocks (one request at a time per connection). The
        // reader's send goes first: it must know the request before the
        // response can arrive. Then the request goes out from this thread
        // if it can, else to the writer. The sends fail only once the
        // connection has closed.
        let mut wrote_it = false;
        let sent = match self.inner.requests.lock().as_mut() {
            Some(chans) => {
                let seq = chans.seq;
                chans.seq += 1;
                (rr.seq, wr.seq) = (seq, seq);
                let sent = chans.reqch.try_send(rr).is_ok() && {
                    wrote_it = direct && self.write_now(&mut wr);
                    if wrote_it {
                        // The channel is empty: the last request's verdict
                        // was taken before the connection was reused.
                        let _ = chans.wrote.try_send(true);
                        true
                    } else {
                        chans.writech.try_send(ToWriter::Request(wr)).is_ok()
                    }
                };
                sent.then(|| (seq, chans.replies.clone()))
            }
            None => None,
        };
        let Some((seq, reply_rx)) = sent else {
            self.close(CloseReason::ThreadExited);
            return Err(self.closed_error(Failure::NothingWritten));
        };

        let mut header_deadline = None;
        // `read_timeout` for the response's first byte, from the moment the
        // request was written; the reader times the rest of the head.
        let mut stall_deadline = None;
        if wrote_it {
            // What the writer would have said and done (see `writer::serve`).
            if let Some(t) = out.trace {
                self.hook(|| t.wrote_request(None));
            }
            let now = Instant::now();
            header_deadline = self.inner.cfg.response_header_timeout.map(|t| now + t);
            stall_deadline = self.inner.cfg.read_timeout.map(|t| now + t);
        }
        loop {
            let timer = [out.deadline, header_deadline, stall_deadline]
                .into_iter()
                .flatten()
                .min();
            // The first response on a new connection is several hand-offs
            // away (two threads starting, the write, the server, the read):
            // yielding first only delays it. Any other is one server round
            // trip away: yield first, with or without timers and a cancel
            // token (see `CALLER_YIELDS`); they are looked at after.
            let soon = (!fresh)
                .then(|| try_soon(&reply_rx, CALLER_YIELDS))
                .flatten();
            let got = match (soon, &out.cancel) {
                (Some(got), _) => got.map_err(|_| Wake::Closed),
                (None, None) => match timer {
                    None if fresh => recv_now(&reply_rx).map_err(|_| Wake::Closed),
                    None => reply_rx.recv().map_err(|_| Wake::Closed),
                    Some(t) => reply_rx.recv_deadline(t).map_err(|e| match e {
                        RecvTimeoutError::Timeout => Wake::Timer,
                        RecvTimeoutError::Disconnected => Wake::Closed,
                    }),
                },
                (None, Some(cancel)) => {
                    let timer = timer.map_or_else(never, crossbeam_channel::at);
                    select! {
                        recv(reply_rx) -> r => r.map_err(|_| Wake::Closed),
                        recv(cancel.receiver()) -> _ => Err(Wake::Canceled),
                        recv(timer) -> _ => Err(Wake::Timer),
                    }
                }
            };
            let got = match got {
                // A late answer to the request before this one.
                Ok(Reply { seq: s, .. }) if s != seq => continue,
                Ok(Reply { answer, .. }) => Ok(answer),
                Err(wake) => Err(wake),
            };
            let (reason, interrupt) = match got {
                Ok(Answer::Response(res)) => return self.took(res, out.trace.map(|t| &**t)),
                Ok(Answer::Written(Ok(()))) => {
                    let now = Instant::now();
                    header_deadline = self.inner.cfg.response_header_timeout.map(|t| now + t);
                    stall_deadline = self.inner.cfg.read_timeout.map(|t| now + t);
                    continue;
                }
                Ok(Answer::Written(Err(err))) => {
                    let res = self.after_write_error(err, start_written, &reply_rx, seq);
                    return self.took(res, out.trace.map(|t| &**t));
                }
                Err(Wake::Closed) => {
                    // Neither thread answered: the server closed or failed
                    // before its first response byte (Go's
                    // errServerClosedIdle / transportReadFromServerError).
                    // Our own cancels and timeouts return below, not here.
                    let class = self.failure_since(start_written, Failure::BeforeResponse);
                    return Err(self.closed_error(class));
                }
                Err(Wake::Canceled) => (CloseReason::Canceled, Interrupt::Canceled),
                Err(Wake::Timer) if header_deadline.is_some_and(|h| Some(h) == timer) => {
                    let err = Error::new(ErrorKind::Timeout, "timeout awaiting response headers");
                    self.close_on(CloseReason::HeaderTimeout, err.duplicate());
                    return Err(ConnError {
                        err,
                        class: Failure::Other,
                    });
                }
                Err(Wake::Timer) if stall_deadline.is_some_and(|s| Some(s) == timer) => {
                    // The first byte came: the reader's head reads time
                    // the rest (and answer with their own error).
                    if self.inner.first_byte.load(Ordering::SeqCst) > seq {
                        stall_deadline = None;
                        continue;
                    }
                    let after = self.inner.cfg.read_timeout.unwrap_or_default();
                    let err = read_timeout_error(Phase::AwaitingHeaders, after);
                    self.close_on(CloseReason::ReadTimeout, err.duplicate());
                    return Err(ConnError {
                        err,
                        class: Failure::Other,
                    });
                }
                Err(Wake::Timer) => (CloseReason::DeadlineExceeded, Interrupt::Deadline),
            };
            let phase = if self.inner.requests_written.load(Ordering::SeqCst) == start_requests {
                Phase::WritingRequest
            } else {
                Phase::AwaitingHeaders
            };
            let err = interrupt.error(phase);
            self.close_on(reason, err.duplicate());
            return Err(ConnError {
                err,
                class: Failure::Other,
            });
        }
    }

    /// Runs a trace hook on the caller's thread in the middle of a request:
    /// if it unwinds, the panic goes on to the caller (API.md, "Safety
    /// rules") and the connection, its response unread, closes instead of
    /// staying in use for good.
    fn hook(&self, f: impl FnOnce()) {
        let closes = CloseOnUnwind(self);
        f();
        std::mem::forget(closes);
    }

    /// Writes a request that [`writes_now`] took on the caller's thread, in
    /// one write that never waits, so the writer thread is not woken: one
    /// hand-off fewer per request. `true` if it all went out; else `wr`
    /// holds what is left for the writer, maybe nothing but TLS records
    /// still queued in the write half, which the writer's flush sends. If
    /// the writer holds the half, all of it is left. An error is left for
    /// the writer to meet again and report, as for any request it writes.
    /// With the request channels locked, after the reader has the request.
    fn write_now(&self, wr: &mut WriteRequest) -> bool {
        let Some(mut half) = self.inner.write.try_lock() else {
            return false;
        };
        let Some(w) = half.as_mut() else {
            return false;
        };
        let n = w.write_now(&wr.head);
        let all = n == wr.head.len() && !w.queued();
        drop(half);
        self.inner.nwrite.fetch_add(n as u64, Ordering::SeqCst);
        if all {
            self.inner.requests_written.fetch_add(1, Ordering::SeqCst);
        } else {
            wr.head.drain(..n);
        }
        all
    }

    /// The caller's share of a response it took: one without a body puts
    /// the connection back now (see [`ResponseParts::release`]).
    fn took(
        &self,
        res: Result<ResponseParts, ConnError>,
        trace: Option<&dyn ClientTrace>,
    ) -> Result<ResponseParts, ConnError> {
        if let Some(facts) = res.as_ref().ok().and_then(|parts| parts.release) {
            self.release(facts, true, trace);
        }
        res
    }

    /// The writer failed. A socket error may mean the server answered early
    /// and closed: give that answer a moment to arrive, then close.
    fn after_write_error(
        &self,
        failure: WriteFailure,
        start_written: u64,
        reply_rx: &Receiver<Reply>,
        seq: u64,
    ) -> Result<ResponseParts, ConnError> {
        let WriteFailure { err, on_socket } = failure;
        if on_socket {
            // This request's only other answer is the reader's.
            let answer = reply_rx.recv_timeout(WRITE_ERROR_GRACE);
            if let Ok(Reply {
                seq: s,
                answer: Answer::Response(Ok(parts)),
            }) = answer
            {
                if s == seq {
                    return Ok(parts);
                }
            }
        }
        let class = self.failure_since(start_written, Failure::Other);
        self.close_on(CloseReason::Failed, err.duplicate());
        Err(ConnError { err, class })
    }

    /// The caller takes the connection over after a `101 Switching
    /// Protocols` (Go's `errCallerOwnsConn`; the steps are the module
    /// doc's, "Upgrades"). `rd` is the read half the reader thread lent the
    /// 101's body, with whatever it read past the head. On the caller's
    /// thread. Returns once both connection threads have left and the pool
    /// has forgotten the connection; the socket stays open, owned by the
    /// returned halves. On failure the connection is closed (socket shut
    /// down) and its threads are gone.
    pub(crate) fn hand_over(&self, mut rd: BufReadHalf) -> Result<Handed, Error> {
        // 1. Claim the connection, or find it closed already.
        {
            let mut closed = self.inner.close_reason.lock();
            if closed.is_some() {
                drop(closed);
                return Err(self.closed_error_for("before the upgrade"));
            }
            *closed = Some(Closed {
                reason: CloseReason::CallerOwnsConn,
                error: None,
            });
            self.inner.closed.store(true, Ordering::SeqCst);
        }
        log::debug!(
            "nethttp: conn {} to {} upgraded: the caller owns it",
            self.inner.id,
            self.inner.key
        );
        // 2. Ask the writer for its half, behind anything it still writes.
        // It took the 101's request before the server could answer it, so
        // the one slot is free: the send returns at once (or fails if the
        // writer is gone, dropping `to`: the wait below then ends).
        let (to, from_writer) = bounded(1);
        let replies = self.inner.requests.lock().take().map(|chans| {
            let _ = chans.writech.send(ToWriter::HandOver(to));
            chans.replies
        });
        // 3. The reader waits for this alone (see `reader::switch`).
        let _ = self.inner.body_done.try_send(BodyDone::Upgraded);
        // 4. The writer's half; then both threads leave (each holds a reply
        // sender until it does), and the pool forgets the connection.
        let write = recv_now(&from_writer);
        if let Some(replies) = replies {
            while replies.recv().is_ok() {}
        }
        self.inner.owner.closed(self);
        let Ok(write) = write else {
            self.inner.closer.shutdown();
            return Err(Error::new(
                ErrorKind::Io,
                "the connection's writer thread exited before the upgrade",
            ));
        };
        // 5. No timeout bounds an upgraded connection.
        if let Err(e) = rd
            .clear_timeouts()
            .and_then(|()| write.set_write_timeout(None))
        {
            self.inner.closer.shutdown();
            return Err(
                Error::new(ErrorKind::Io, "upgrade: clear the socket's timeouts").with_source(e),
            );
        }
        Ok(Handed {
            read: rd,
            write,
            closer: self.inner.closer.clone(),
        })
    }

    /// `NothingWritten` if no byte reached the socket since it had written
    /// `start_written` (Go's `nothingWrittenError`: safe to retry), else
    /// `otherwise`.
    fn failure_since(&self, start_written: u64, otherwise: Failure) -> Failure {
        if self.inner.nwrite.load(Ordering::SeqCst) == start_written {
            Failure::NothingWritten
        } else {
            otherwise
        }
    }

    /// The error for a request that found the connection closed under it.
    /// Not retried when a callback panicked: it would panic again.
    fn closed_error(&self, class: Failure) -> ConnError {
        let class = if self.close_reason() == Some(CloseReason::CallbackPanicked) {
            Failure::Other
        } else {
            class
        };
        ConnError {
            err: self.closed_error_for("before the response"),
            class,
        }
    }

    /// The error for a caller that found this connection closed `when`:
    /// its own cancel or deadline as it was, a TLS failure still a TLS
    /// failure, anything else the connection closing under it.
    pub(crate) fn closed_error_for(&self, when: &str) -> Error {
        let closed = self.inner.close_reason.lock();
        match closed.as_ref() {
            Some(Closed {
                reason:
                    CloseReason::Canceled
                    | CloseReason::DeadlineExceeded
                    | CloseReason::HeaderTimeout
                    | CloseReason::ReadTimeout,
                error: Some(e),
            }) => e.duplicate(),
            Some(Closed { error: Some(e), .. }) => {
                let kind = if e.kind() == ErrorKind::Tls {
                    ErrorKind::Tls
                } else {
                    ErrorKind::Io
                };
                Error::new(kind, format!("connection closed {when}: {}", e.message()))
            }
            Some(Closed { reason, .. }) => {
                Error::new(ErrorKind::Io, format!("connection closed {when}: {reason}"))
            }
            None => Error::new(ErrorKind::Io, format!("connection closed {when}")),
        }
    }
}

/// The error of a read that got no byte for the transport's `read_timeout`
/// (`after`) in `phase`: kind `Timeout`. HTTP/2 streams word theirs the
/// same way.
pub(crate) fn read_timeout_error(phase: Phase<'_>, after: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("read timeout: no data for {after:?} while {phase}"),
    )
}

/// A request that asks to switch protocols (RFC 9110 §7.8): the `upgrade`
/// token in `Connection`, as API.md words the rule. Go's
/// `isProtocolSwitchHeader` also wants an `Upgrade` field; a request
/// without one cannot switch anyway, so leaving its `Connection` alone
/// costs nothing.
fn is_protocol_switch(headers: &HeaderMap) -> bool {
    has_token(headers, &header::CONNECTION, "upgrade")
}

/// RFC 9112 §3.2: origin form (`/path?query`) to the server itself,
/// absolute form (without credentials or fragment) to a proxy.
fn request_target(url: &Url, absolute: bool) -> Cow<'_, str> {
    if absolute {
        let mut u = url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_fragment(None);
        return Cow::Owned(u.into());
    }
    Cow::Borrowed(&url[url::Position::BeforePath..url::Position::AfterQuery])
}

/// In-memory bodies up to this size go out in the same write as the head.
const COALESCE_LIMIT: usize = 64 * 1024;

/// Whether the caller may write `wr` itself ([`PersistConn::write_now`]):
/// nothing to stream (no body, or one in memory of up to
/// [`COALESCE_LIMIT`], which joins the head here, for whoever writes it)
/// and no `100 Continue` to wait for.
fn writes_now(wr: &mut WriteRequest) -> bool {
    if wr.continue_rx.is_some() {
        return false;
    }
    match &wr.body {
        BodyKind::Empty => true,
        BodyKind::Bytes(b) if b.len() <= COALESCE_LIMIT => {
            wr.head.extend_from_slice(b);
            wr.body = BodyKind::Empty;
            true
        }
        BodyKind::Bytes(_) | BodyKind::Reader { .. } => false,
    }
}

/// `crossbeam_channel::bounded`, in a frame of its own: it builds the
/// channel (over 600 bytes, cache-line aligned) on the stack before moving
/// it to the heap, and inlined into a connection thread's loop that frame
/// would sit under all its work. A thread's deepest stack stays resident
/// for as long as its connection lives.
#[inline(never)]
pub(crate) fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    crossbeam_channel::bounded(cap)
}

/// How often a connection thread waiting for its next job (the writer's
/// next request) yields its CPU before it blocks. (Measured on 2 CPUs, with
/// nginx: 1 to 16 yields all double the one-CPU keep-alive rate against no
/// yields; 0 leaves crossbeam's spin.)
pub(crate) const THREAD_YIELDS: usize = 4;

/// How often a caller waiting for its response yields its CPU before it
/// blocks. The response is a server's round trip away, not a thread's
/// hand-off: on a CPU with nothing else to run, each yield returns at
/// once, and the caller stays on the CPU for up to ~30 µs instead of
/// letting it go idle, which a virtual machine wakes from slowly (`seq` on
/// two CPUs, medians of 5 rounds: 0.83 of raw with 4 yields, 1.04 with 16,
/// 1.01 with 32, 1.36 with 64; one CPU and `conc` alike for all four, as
/// there other threads take the yields; docs/BENCHMARKS.md). Go's
/// scheduler spins before it parks for the same reason.
pub(crate) const CALLER_YIELDS: usize = 64;

/// A connection thread's `recv` for its next job (the writer's next
/// request). It usually comes within microseconds, from a thread that
/// needs this CPU to produce it: yield to it [`THREAD_YIELDS`] times before
/// blocking, instead of crossbeam's backoff, which first spins.
pub(crate) fn recv_soon<T>(rx: &Receiver<T>) -> Result<T, crossbeam_channel::RecvError> {
    try_soon(rx, THREAD_YIELDS).unwrap_or_else(|| rx.recv())
}

/// The yielding part of [`recv_soon`]: `None` if nothing came, for waits
/// that then block on more than one channel.
pub(crate) fn try_soon<T>(
    rx: &Receiver<T>,
    yields: usize,
) -> Option<Result<T, crossbeam_channel::RecvError>> {
    for _ in 0..yields {
        match rx.try_recv() {
            Ok(v) => return Some(Ok(v)),
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                return Some(Err(crossbeam_channel::RecvError));
            }
            Err(crossbeam_channel::TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    None
}

/// A `recv` for a wait that will be long: parks at once, without the
/// spinning and yielding of a plain `recv` (crossbeam's `select!` with one
/// arm compiles to that `recv`; the `Select` API does not).
pub(crate) fn recv_now<T>(rx: &Receiver<T>) -> Result<T, crossbeam_channel::RecvError> {
    let mut sel = crossbeam_channel::Select::new();
    sel.recv(rx);
    sel.select().recv(rx)
}

/// Held by each connection thread: however it ends, the connection closes,
/// so nobody waits on a thread that is gone. Every normal exit has closed
/// it already; then this is a no-op. A thread that unwinds (a user
/// callback panicked on it: a trace hook, a request body's reader) closes
/// it with a reason that says so, and the waiting request gets that error
/// (API.md, "Safety rules").
struct CloseOnExit(PersistConn);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        self.0.close(if std::thread::panicking() {
            CloseReason::CallbackPanicked
        } else {
            CloseReason::ThreadExited
        });
    }
}

/// See [`PersistConn::hook`]: closes the connection if dropped, which only
/// an unwind does (the hook forgets it when it returns).
struct CloseOnUnwind<'a>(&'a PersistConn);

impl Drop for CloseOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.close(CloseReason::CallbackPanicked);
    }
}

/// What ended a round trip's wait other than a reply.
enum Wake {
    /// The reply channel disconnected: the connection closed.
    Closed,
    Canceled,
    /// The deadline or the response-header timer.
    Timer,
}

impl fmt::Debug for PersistConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistConn")
            .field("id", &self.inner.id)
            .field("key", &self.inner.key)
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read as _, Write as _},
        net::{TcpListener, TcpStream},
        thread,
    };

    use super::*;
    use crate::{
        Body,
        pool::IdleCheck,
        stream::{Socket, Stream},
    };

    /// An owner that keeps nothing: these tests drive one connection.
    struct NoPool;

    impl Handle<PersistConn> for NoPool {
        fn put_idle(&self, _: &PersistConn) -> Result<(), CloseReason> {
            Ok(())
        }
        fn closed(&self, _: &PersistConn) {}
        fn idle_check(&self, _: &PersistConn, _: Duration) -> IdleCheck {
            IdleCheck::NotIdle
        }
    }

    /// Waits (bounded) for `done`.
    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// A caller can give up (a response-header timeout, a failed request
    /// body) in the moment its response arrives, and close the connection
    /// with the response still in the reply channel. Nobody will read that
    /// body or drop it until both threads have exited: the reader must not
    /// wait for it. Each case: the body lent (only part of it came with
    /// the head) and copied (all of it did).
    #[test]
    fn a_response_left_in_the_reply_channel_does_not_keep_the_reader() {
        for response in [
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (hang_up, hung_up) = crossbeam_channel::bounded::<()>(0);
            let server = thread::spawn(move || {
                let (mut s, _) = listener.accept().expect("accept");
                let mut head = Vec::new();
                let mut byte = [0];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).expect("read") == 1 {
                    head.push(byte[0]);
                }
                s.write_all(response.as_bytes()).expect("write");
                // Stay open: the client must not depend on our FIN.
                let _ = hung_up.recv_timeout(Duration::from_secs(10));
            });
            let sock = Socket::from(TcpStream::connect(addr).expect("connect"));
            let threads = Threads::new(128 * 1024, Duration::ZERO, 0);
            let key = ConnKey::for_url(&Url::parse(&format!("http://{addr}/")).expect("url"))
                .expect("key");
            let conn = PersistConn::start(
                1,
                key,
                Stream::plain(sock).expect("stream"),
                Arc::new(Config::default()),
                &threads,
                Arc::new(NoPool),
            )
            .expect("start");

            // Send a GET as `round_trip` does, but leave its reply unread.
            let (head, framing) = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), {
                framing::request_framing(&Method::GET, Body::empty().size())
            });
            {
                let mut requests = conn.inner.requests.lock();
                let chans = requests.as_mut().expect("open");
                let rr = ReadRequest {
                    method: Method::GET,
                    close: false,
                    seq: 0,
                    continue_tx: None,
                    cancel: None,
                    deadline: None,
                    trace: None,
                };
                let wr = WriteRequest {
                    head,
                    body: Body::empty().into_kind(),
                    framing,
                    continue_rx: None,
                    seq: 0,
                    report_success: false,
                    last: false,
                    trace: None,
                    headers_told: false,
                };
                assert!(
                    chans.reqch.try_send(rr).is_ok()
                        && chans.writech.try_send(ToWriter::Request(wr)).is_ok()
                );
            }
            let replies = conn
                .inner
                .requests
                .lock()
                .as_ref()
                .expect("open")
                .replies
                .clone();
            wait_until("the response in the reply channel", || replies.len() == 1);
            drop(replies);

            // The caller gives up: it closes the connection and leaves.
            conn.close(CloseReason::HeaderTimeout);
            wait_until("both connection threads to exit", || threads.working() == 0);
            drop(hang_up);
            server.join().expect("server");
        }
    }

    /// A connection to a server that answers the first request with a 101
    /// and `early` in the same write, then echoes; its thread count.
    fn switching_conn(early: &'static str) -> (PersistConn, Arc<Threads>, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut head = Vec::new();
            let mut byte = [0];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).expect("read") == 1 {
                head.push(byte[0]);
            }
            let switch = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n{early}");
            s.write_all(switch.as_bytes()).expect("write");
            let mut buf = [0; 64];
            while let Ok(n @ 1..) = s.read(&mut buf) {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        });
        let sock = Socket::from(TcpStream::connect(addr).expect("connect"));
        let threads = Threads::new(128 * 1024, Duration::ZERO, 0);
        let key =
            ConnKey::for_url(&Url::parse(&format!("http://{addr}/")).expect("url")).expect("key");
        let conn = PersistConn::start(
            1,
            key,
            Stream::plain(sock).expect("stream"),
            Arc::new(Config::default()),
            &threads,
            Arc::new(NoPool),
        )
        .expect("start");
        (conn, threads, server)
    }

    /// Sends a GET for an upgrade and returns the 101's connection, taken
    /// out of its body as `Response::upgrade` does.
    fn switch_of(conn: &PersistConn) -> Box<switch::Switch> {
        let url = Url::parse("http://x/").expect("url");
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "upgrade".parse().expect("value"));
        headers.insert(header::UPGRADE, "x".parse().expect("value"));
        let mut parts = conn
            .round_trip(Outgoing {
                method: &Method::GET,
                url: &url,
                via_proxy: false,
                headers: &headers,
                body: Body::empty(),
                accept_encoding: None,
                cancel: None,
                deadline: None,
                trace: None,
            })
            .map_err(|e| e.err)
            .expect("101");
        assert_eq!(parts.head.status, 101);
        parts
            .body
            .take_upgrade()
            .expect("a 101's body gives its connection up")
            .downcast::<switch::Switch>()
            .map_err(|_| "not a Switch")
            .expect("conn's type")
    }

    /// The hand-over: both threads leave, the socket stays open, the bytes
    /// the reader had read past the head come first.
    #[test]
    fn a_hand_over_gives_the_caller_the_open_socket() {
        let (conn, threads, server) = switching_conn("early");
        let switch = switch_of(&conn);
        assert_eq!(threads.working(), 2, "in use until taken");
        let Handed {
            mut read,
            mut write,
            closer,
        } = switch.hand_over().expect("hand over");
        wait_until("both connection threads to exit", || threads.working() == 0);
        assert_eq!(conn.close_reason(), Some(CloseReason::CallerOwnsConn));
        // Closing it now is a no-op: the socket is the caller's.
        conn.close(CloseReason::Failed);
        let mut buf = [0; 5];
        read.read_exact(&mut buf).expect("early bytes");
        assert_eq!(&buf, b"early");
        write.write_all(b"echo").expect("write");
        read.read_exact(&mut buf[..4]).expect("echo");
        assert_eq!(&buf[..4], b"echo");
        closer.shutdown();
        server.join().expect("server");
    }

    /// A 101 whose connection closed before the caller took it: the
    /// hand-over fails, and nothing is left behind.
    #[test]
    fn a_hand_over_after_a_close_fails_and_leaks_nothing() {
        let (conn, threads, server) = switching_conn("");
        let switch = switch_of(&conn);
        conn.close(CloseReason::Canceled);
        let err = switch.hand_over().map(drop).expect_err("closed first");
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        wait_until("both connection threads to exit", || threads.working() == 0);
        server.join().expect("server");

        // Dropped without a hand-over: closes, both threads exit.
        let (conn, threads, server) = switching_conn("");
        drop(switch_of(&conn));
        assert_eq!(conn.close_reason(), Some(CloseReason::SwitchingProtocols));
        wait_until("both connection threads to exit", || threads.working() == 0);
        server.join().expect("server");
    }

    #[test]
    fn request_target_forms() {
        let url = |s: &str| Url::parse(s).unwrap();
        let u = url("http://user:pw@h:8080/a/b?x=1&y=%20#frag");
        assert_eq!(request_target(&u, false), "/a/b?x=1&y=%20");
        assert_eq!(request_target(&url("http://h"), false), "/");
        assert_eq!(request_target(&url("http://h/p?"), false), "/p?");
        assert_eq!(request_target(&u, true), "http://h:8080/a/b?x=1&y=%20");
    }
}
