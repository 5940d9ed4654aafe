//! One HTTP/2 connection (Go's `http2ClientConn`): many streams over the
//! same two threads an HTTP/1 connection has.
//!
//! ```text
//!  caller A ─┐ open: id + HEADERS job, under the state lock
//!  caller B ─┼──────── jobs ─────────▶ writer thread (nethttp-w<id>) ──▶ socket
//!  body  A  ─┘ DATA (flow-controlled),       HPACK encoder, frames
//!              WINDOW_UPDATE, RST_STREAM
//!                                     reader thread (nethttp-r<id>) ◀── socket
//!  caller/body ◀── bell (per stream) ──┘  HPACK decoder; HEADERS, DATA into
//!                                         the stream's buffer; SETTINGS,
//!                                         PING, GOAWAY, WINDOW_UPDATE
//! ```
//!
//! # Who owns what
//!
//! - [`State`] (one `parking_lot::Mutex` per connection) holds every
//!   stream's buffers and windows, the connection's windows, the peer's
//!   settings and the only sender of the writer's job channel. Callers,
//!   bodies and the reader lock it briefly; nobody holds it across socket
//!   I/O, a blocking channel operation, a user callback or a call into the
//!   pool. Lock order: the pool's lock, then this one (the pool asks
//!   [`H2Conn::try_reserve`] under its own lock); never the other way.
//! - The writer thread owns the socket's write half and the HPACK encoder:
//!   it writes jobs in the order they were queued. Stream ids are allocated
//!   in the same critical section that queues the stream's HEADERS job, so
//!   queue order is id order and ids go out increasing (RFC 9113 §5.1.1).
//!   It never calls user code.
//! - The reader thread owns the read half and the HPACK decoder (its state
//!   follows frame order). It never writes: acks and window updates are
//!   jobs for the writer.
//! - A caller uploads its own request body on its own thread, in chunks the
//!   send windows allow; its response body reads the stream's buffer, which
//!   the window nethttp advertised bounds. Each stream has a bell (a
//!   one-slot channel): whoever changes the stream's state rings it, and
//!   its caller or body waits on it together with its cancel token,
//!   deadline and `read_timeout` (a head or a body read that waits that
//!   long fails, and its stream is reset; the connection stays).
//!
//! # Closing
//!
//! [`H2Conn::close`] records why, drops the job sender (the writer exits
//! once it has written what was queued), shuts the socket down unless the
//! close is graceful, and rings every stream. A graceful close (an idle
//! connection retired) queues GOAWAY first and lets the writer shut the
//! socket after it. Each thread holds a `CloseOnExit`.

mod body;
mod reader;
mod writer;

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::BytesMut;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, never, select};
use http::{HeaderMap, Method, StatusCode, Version, header};
use parking_lot::Mutex;

use crate::{
    Body, Error, ErrorKind,
    body::request::Kind as BodyKind,
    close_reason::CloseReason,
    config::Config,
    conn::{
        Outgoing,
        msg::{ConnError, Failure, ResponseParts},
    },
    phase::{Interrupt, Phase},
    pool::{Handle, IdleCheck},
    route::ConnKey,
    stream::{Closer, Stream},
    threads::Threads,
    trace::ClientTrace,
};
use writer::Job;

// The codecs' paths, each from its own root (a `head` nested in a
// `crate::{…}` group reads as the crate root's `head` function to
// ../shared/tools/layers.py).
use crate::h1::framing::{BodySize, has_token, request_framing};
use crate::h1::head::{RequestFraming, ResponseHead};
use crate::h2::flow::{Credit, Window};
use crate::h2::frame::ErrorCode;
use crate::h2::head::{self, RequestHead};
use crate::h2::settings::Settings;

/// Streams a connection carries before the server's SETTINGS say how many
/// it allows. Go assumes 100 (`initialMaxConcurrentStreams`) and lets the
/// server refuse the excess; we open one and let the others wait for the
/// SETTINGS, which every server sends first (RFC 9113 §3.4), usually
/// within the round trip the first request waits anyway: nothing refused,
/// nothing retried.
const INITIAL_MAX_STREAMS: usize = 1;

/// The largest stream id a client may use (RFC 9113 §5.1.1).
const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// The largest request body chunk a caller queues at once: the peer's
/// frame size bounds each DATA frame, this bounds a job.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// A handle on one HTTP/2 connection. Clones share it; the pool, each
/// caller and body, and both threads hold one.
#[derive(Clone)]
pub(crate) struct H2Conn {
    inner: Arc<Shared>,
}

struct Shared {
    id: u64,
    key: ConnKey,
    local_addr: SocketAddr,
    remote_addr: SocketAddr,
    cfg: Arc<Config>,
    /// Whoever pools the connection: told when a stream's capacity frees,
    /// when the connection leaves, and asked whether an idle one is due.
    owner: Arc<dyn Handle<H2Conn>>,
    /// Shuts the socket down from any thread.
    closer: Closer,
    state: Mutex<State>,
}

/// Everything the connection's threads, callers and bodies share. See the
/// module doc for who may touch it.
struct State {
    /// To the writer thread; `None` once closed (its drop ends the writer).
    /// Unbounded: the reader's acks never wait for the writer, and what
    /// callers queue is bounded by the peer's flow-control windows.
    jobs: Option<Sender<Job>>,
    streams: HashMap<u32, StreamState>,
    /// The id the next stream gets (odd: client-initiated).
    next_id: u32,
    /// Streams open on the wire (not yet closed both ways or reset): what
    /// the server's `MAX_CONCURRENT_STREAMS` limits.
    active: usize,
    /// Streams promised to requests by the pool that are not open yet.
    reserved: usize,
    /// Reservations ever made: `reused` is true from the second on.
    taken: u64,
    /// The server's settings as they stand.
    peer: Settings,
    /// Whether the server's first SETTINGS frame has arrived.
    seen_settings: bool,
    /// The connection-level send window (what we may still send).
    send_window: Window,
    /// The connection-level receive window (what the server may still
    /// send) and the credit consumed bytes earn back.
    recv_window: Window,
    recv_credit: Credit,
    /// The server's GOAWAY: no new stream; streams above `last_stream`
    /// were not processed.
    goaway: Option<GoAway>,
    /// Taken out of service (idle too long, closing idle connections):
    /// no new stream.
    retired: bool,
    /// Closed, and why (the error streams in flight fail with).
    closed: Option<Error>,
    /// When the last stream was forgotten (for the idle timeout).
    idle_since: Instant,
}

#[derive(Debug, Clone)]
struct GoAway {
    last_stream: u32,
    code: ErrorCode,
    debug: String,
}

/// One stream, from its HEADERS until its caller is done with it (the
/// body read to its end or dropped).
struct StreamState {
    /// Rung (never blocking) whenever this stream's state changes.
    bell: Sender<()>,
    /// A HEAD request: the response has no body whatever it says.
    head_request: bool,
    /// Informational (1xx) heads not yet seen by the caller.
    informational: Vec<(StatusCode, HeaderMap)>,
    /// The final response head, once it arrived (taken by the caller).
    response: Option<(StatusCode, HeaderMap)>,
    /// Whether the final head arrived (stays true once taken).
    got_response: bool,
    /// The response's declared length, checked against the DATA (§8.1.1).
    content_length: Option<u64>,
    /// DATA bytes received.
    received: u64,
    /// Received and not yet read by the body.
    data: BytesMut,
    trailers: Option<HeaderMap>,
    /// Why the stream failed (reset by either side, malformed, the
    /// connection gone), with its retry class.
    error: Option<(Error, Failure)>,
    /// END_STREAM sent (or the request given up and reset).
    local_end: bool,
    /// END_STREAM received, or reset.
    remote_end: bool,
    /// Counted in `State::active` until both ends are done.
    counted: bool,
    send_window: Window,
    recv_window: Window,
    recv_credit: Credit,
}

impl State {
    /// Queues a job for the writer. Never blocks; a closed connection
    /// drops it.
    fn queue(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            let _ = tx.send(job);
        }
    }

    /// Marks stream `id`'s ends and stops counting it once both are done.
    /// True when that freed a slot of the server's stream limit.
    fn settle(&mut self, id: u32) -> bool {
        let Some(s) = self.streams.get_mut(&id) else {
            return false;
        };
        if s.counted && s.local_end && s.remote_end {
            s.counted = false;
            self.active -= 1;
            return true;
        }
        false
    }

    /// Resets stream `id` from our side (`RST_STREAM` with `code`) unless
    /// it is already closed both ways. True when a slot freed.
    fn reset(&mut self, id: u32, code: ErrorCode) -> bool {
        let Some(s) = self.streams.get_mut(&id) else {
            return false;
        };
        if !(s.local_end && s.remote_end) {
            s.local_end = true;
            s.remote_end = true;
            self.queue(Job::Reset { id, code });
        }
        self.settle(id)
    }

    /// The caller is done with stream `id`: forget it, and give the
    /// connection window back for bytes it never read. True when a slot
    /// freed.
    fn forget(&mut self, id: u32) -> bool {
        let freed = self.reset(id, ErrorCode::CANCEL);
        if let Some(s) = self.streams.remove(&id) {
            self.give_back(s.data.len());
        }
        if self.streams.is_empty() && self.reserved == 0 {
            self.idle_since = Instant::now();
        }
        freed
    }

    /// `n` received bytes left the connection's receive buffer (read or
    /// discarded): earn the connection window back.
    fn give_back(&mut self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n == 0 {
            return;
        }
        if let Some(inc) = self.recv_credit.consumed(n) {
            if self.recv_window.increase(inc).is_ok() {
                self.queue(Job::WindowUpdate {
                    id: 0,
                    increment: inc,
                });
            }
        }
    }

    /// Whether a new stream may open.
    fn can_open(&self) -> bool {
        self.closed.is_none()
            && self.goaway.is_none()
            && !self.retired
            && self.next_id <= MAX_STREAM_ID
    }

    /// The server's stream limit, or ours before its SETTINGS.
    fn max_streams(&self) -> usize {
        match self.peer.max_concurrent_streams {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None if self.seen_settings => usize::MAX,
            None => INITIAL_MAX_STREAMS,
        }
    }

    fn ring_all(&self) {
        for s in self.streams.values() {
            let _ = s.bell.try_send(());
        }
    }
}

/// What the writer needs at its start.
struct Start {
    settings: Vec<(u16, u32)>,
    conn_window_increase: u32,
}

impl H2Conn {
    /// Wraps a dialled stream over which HTTP/2 was negotiated (or is
    /// spoken by prior knowledge) and starts its reader and writer
    /// threads, counted in `threads`. The writer sends the connection
    /// preface and our SETTINGS first.
    pub(crate) fn start(
        id: u64,
        key: ConnKey,
        stream: Stream,
        cfg: Arc<Config>,
        threads: &Arc<Threads>,
        owner: Arc<dyn Handle<H2Conn>>,
    ) -> Result<H2Conn, Error> {
        let Stream {
            read,
            write,
            closer,
            local_addr,
            remote_addr,
            alpn: _,
        } = stream;
        let (jobs, jobs_rx) = crossbeam_channel::unbounded();
        let conn_window = cfg.http2_initial_connection_window;
        let start = Start {
            settings: local_settings(&cfg),
            conn_window_increase: conn_window.saturating_sub(DEFAULT_WINDOW),
        };
        let conn = H2Conn {
            inner: Arc::new(Shared {
                id,
                key,
                local_addr,
                remote_addr,
                owner,
                closer,
                state: Mutex::new(State {
                    jobs: Some(jobs),
                    streams: HashMap::new(),
                    next_id: 1,
                    active: 0,
                    reserved: 0,
                    taken: 0,
                    peer: Settings::default(),
                    seen_settings: false,
                    send_window: Window::new(DEFAULT_WINDOW),
                    recv_window: Window::new(conn_window.max(DEFAULT_WINDOW)),
                    recv_credit: Credit::new(conn_window.max(DEFAULT_WINDOW)),
                    goaway: None,
                    retired: false,
                    closed: None,
                    idle_since: Instant::now(),
                }),
                cfg,
            }),
        };
        let spawn_err = |e: std::io::Error| {
            Error::new(ErrorKind::Connect, format!("spawn connection thread: {e}"))
        };
        let r = conn.clone();
        threads
            .spawn(format!("nethttp-r{id}"), move || {
                let _closes = CloseOnExit(r.clone());
                reader::run(r, read);
            })
            .map_err(|e| {
                conn.close(CloseReason::Failed, Some(spawn_err(e)));
                Error::new(ErrorKind::Connect, "could not start the reader thread")
            })?;
        let w = conn.clone();
        threads
            .spawn(format!("nethttp-w{id}"), move || {
                let _closes = CloseOnExit(w.clone());
                writer::run(w, write, jobs_rx, start);
            })
            .map_err(|e| {
                conn.close(CloseReason::Failed, Some(spawn_err(e)));
                Error::new(ErrorKind::Connect, "could not start the writer thread")
            })?;
        Ok(conn)
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
        self.inner.state.lock().closed.is_some()
    }

    /// True from the connection's second reservation on (API.md: every
    /// stream after the first on a connection is reused).
    pub(crate) fn is_reused(&self) -> bool {
        self.inner.state.lock().taken > 1
    }

    /// Streams held: open on the wire, or their bodies not yet done.
    pub(crate) fn streams(&self) -> usize {
        let st = self.inner.state.lock();
        st.streams.len() + st.reserved
    }

    /// Takes one stream of capacity for a request the pool hands this
    /// connection to; false when it is full, closing or going away.
    /// Called under the pool's lock.
    pub(crate) fn try_reserve(&self) -> bool {
        let mut st = self.inner.state.lock();
        if !st.can_open() || st.active + st.reserved >= st.max_streams() {
            return false;
        }
        st.reserved += 1;
        st.taken += 1;
        true
    }

    /// Whether it can take another stream now, or may once the server's
    /// SETTINGS arrive (until then it takes one). Called under the pool's
    /// lock.
    pub(crate) fn has_room(&self) -> bool {
        let st = self.inner.state.lock();
        st.can_open() && (!st.seen_settings || st.active + st.reserved < st.max_streams())
    }

    /// Gives back a reservation that was never used (the request gave up).
    pub(crate) fn unreserve(&self) {
        {
            let mut st = self.inner.state.lock();
            st.reserved = st.reserved.saturating_sub(1);
            if st.streams.is_empty() && st.reserved == 0 {
                st.idle_since = Instant::now();
            }
        }
        self.capacity_freed();
    }

    /// Takes the connection out of service if it has no stream and no
    /// reservation: true when it did (the caller then closes it). Called
    /// under the pool's lock.
    pub(crate) fn try_retire(&self) -> bool {
        let mut st = self.inner.state.lock();
        if st.streams.is_empty() && st.reserved == 0 {
            st.retired = true;
            return true;
        }
        false
    }

    /// How long it has had no stream, if it has none.
    fn idle_for(&self) -> Option<Duration> {
        let st = self.inner.state.lock();
        (st.streams.is_empty() && st.reserved == 0).then(|| st.idle_since.elapsed())
    }

    /// Its idle read timed out: ask the pool whether it is due.
    fn idle_check(&self, timeout: Duration) -> IdleCheck {
        self.inner.owner.idle_check(self, timeout)
    }

    /// Releases the state lock, then tells the pool if a stream slot
    /// freed (never under the lock: see the module doc).
    fn unlock(&self, st: parking_lot::MutexGuard<'_, State>, freed: bool) {
        drop(st);
        if freed {
            self.capacity_freed();
        }
    }

    /// A stream slot freed (or the server allows more): the pool may hand
    /// it to a waiting request. The connection closes once it has no
    /// stream left if the pool wants it gone (closing idle connections,
    /// the transport dropped) or the server said GOAWAY. A pool that does
    /// not know it (`NotInUse`: not registered yet, as when the server's
    /// SETTINGS beat the dial's return) is no reason to close.
    fn capacity_freed(&self) {
        let refused = match self.inner.owner.put_idle(self) {
            Err(CloseReason::NotInUse) | Ok(()) => None,
            Err(why) => Some(why),
        };
        let why = match refused {
            Some(why) => why,
            None if self.inner.state.lock().goaway.is_some() => CloseReason::PeerClosed,
            None => return,
        };
        if self.try_retire() {
            self.close(why, None);
        }
    }

    /// Closes the connection abruptly: the socket is shut down at once,
    /// every stream in flight fails with `err` (or the reason), and the
    /// pool forgets it. Idempotent; the first reason wins.
    pub(crate) fn close(&self, why: CloseReason, err: Option<Error>) {
        if self.shut(why, err, None) {
            self.inner.closer.shutdown();
        }
    }

    /// Closes an idle connection gracefully: GOAWAY, then the writer shuts
    /// the socket down (TLS says `close_notify`).
    pub(crate) fn close_idle(&self, why: CloseReason) {
        self.shut(why, None, Some(ErrorCode::NO_ERROR));
    }

    /// Records the close and wakes everyone; true if this call closed it.
    fn shut(&self, why: CloseReason, err: Option<Error>, goaway: Option<ErrorCode>) -> bool {
        {
            let mut st = self.inner.state.lock();
            if st.closed.is_some() {
                return false;
            }
            let err = err.unwrap_or_else(|| {
                Error::new(ErrorKind::Io, format!("http2: connection closed: {why}"))
            });
            log::debug!("nethttp: h2 connection {} closed: {err}", self.inner.id);
            if let Some(code) = goaway {
                st.queue(Job::GoAway { code });
            }
            st.queue(Job::Close {
                graceful: goaway.is_some(),
            });
            st.jobs = None;
            for s in st.streams.values_mut() {
                // A response the server finished stays readable to its end.
                if s.error.is_none() && !s.remote_end {
                    let class = if s.got_response {
                        Failure::Other
                    } else {
                        Failure::BeforeResponse
                    };
                    s.error = Some((err.duplicate(), class));
                }
            }
            st.closed = Some(err);
            st.ring_all();
        }
        self.inner.owner.closed(self);
        true
    }

    /// The error for a request that finds the connection closed.
    pub(crate) fn closed_error(&self) -> Error {
        let st = self.inner.state.lock();
        match &st.closed {
            Some(e) => e.duplicate(),
            None => Error::new(ErrorKind::Io, "http2: connection closed"),
        }
    }

    /// One request on a stream of its own (Go's `ClientConn.RoundTrip`):
    /// opens the stream with its HEADERS, uploads the body in the chunks
    /// the windows allow, and waits for the response head. The caller holds
    /// a reservation ([`try_reserve`](Self::try_reserve)), which this
    /// consumes whatever happens.
    pub(crate) fn round_trip(&self, out: Outgoing<'_>) -> Result<ResponseParts, ConnError> {
        let size = out.body.size();
        let content_length = match request_framing(out.method, size) {
            RequestFraming::Length(n) => Some(n),
            RequestFraming::None | RequestFraming::Chunked => None,
        };
        let scheme = out.url.scheme();
        let fields = head::request_fields(&RequestHead {
            method: out.method,
            scheme,
            authority: &out.url[url::Position::BeforeHost..url::Position::AfterPort],
            path: &out.url[url::Position::BeforePath..url::Position::AfterQuery],
            headers: out.headers,
            content_length,
            accept_encoding: out.accept_encoding,
        });
        let fields = match fields {
            Ok(f) => f,
            Err(e) => {
                self.unreserve();
                return Err(ConnError {
                    err: Error::new(ErrorKind::InvalidRequest, e),
                    class: Failure::Other,
                });
            }
        };
        let body = out.body;
        let has_body = !body.is_empty();
        let expect_continue = has_body && has_token(out.headers, &header::EXPECT, "100-continue");
        let (bell, bell_rx) = crossbeam_channel::bounded(1);
        let head_request = *out.method == Method::HEAD;

        // Open: the id and the HEADERS job in one critical section.
        let id = {
            let mut st = self.inner.state.lock();
            st.reserved = st.reserved.saturating_sub(1);
            if !st.can_open() {
                drop(st);
                self.capacity_freed();
                return Err(self.not_opened());
            }
            let id = st.next_id;
            st.next_id += 2;
            st.active += 1;
            let send_window = Window::new(st.peer.initial_window_size);
            let stream_window = self.inner.cfg.http2_initial_stream_window;
            st.streams.insert(
                id,
                StreamState {
                    bell,
                    head_request,
                    informational: Vec::new(),
                    response: None,
                    got_response: false,
                    content_length: None,
                    received: 0,
                    data: BytesMut::new(),
                    trailers: None,
                    error: None,
                    local_end: !has_body,
                    remote_end: false,
                    counted: true,
                    send_window,
                    recv_window: Window::new(stream_window),
                    recv_credit: Credit::new(stream_window),
                },
            );
            st.queue(Job::Headers {
                id,
                fields,
                end_stream: !has_body,
            });
            id
        };
        let trace = out.trace.map(|t| &**t);
        if let Some(t) = trace {
            t.wrote_headers();
        }
        let waits = Waits {
            bell: &bell_rx,
            cancel: out.cancel.map(|c| c.receiver()),
            deadline: out.deadline,
        };
        let mut exchange = Exchange {
            conn: self,
            id,
            waits,
            done: false,
        };

        if has_body {
            let send = if expect_continue {
                exchange.await_continue(trace)?
            } else {
                true
            };
            if send {
                let res = exchange.upload(body, size);
                if let Some(t) = trace {
                    t.wrote_request(res.as_ref().err().map(|e| &e.err));
                }
                res?;
            }
            // Else a final answer came instead of 100 Continue: the body
            // is not sent, and the stream, still open from our side, is
            // reset once the response is read (`forget`), as Go's
            // `cleanupWriteRequest` does; not before, or the server would
            // stop sending the response.
        } else if let Some(t) = trace {
            t.wrote_request(None);
        }

        let (status, headers) = exchange.await_head(trace)?;
        exchange.response(
            status,
            headers,
            out.cancel.cloned(),
            out.deadline,
            out.trace,
        )
    }

    /// The error for a request whose stream could not open: not processed,
    /// so safe to retry on another connection.
    fn not_opened(&self) -> ConnError {
        let st = self.inner.state.lock();
        let err = match (&st.closed, &st.goaway) {
            (Some(e), _) => e.duplicate(),
            (None, Some(g)) => goaway_error(g),
            _ => Error::new(
                ErrorKind::Io,
                "http2: connection taken out of service before the request was sent",
            ),
        };
        ConnError {
            err,
            class: Failure::NotProcessed,
        }
    }

    /// The stream's caller is done with it (see [`State::forget`]).
    fn forget(&self, id: u32) {
        let freed = self.inner.state.lock().forget(id);
        if freed {
            self.capacity_freed();
        } else {
            self.after_forget();
        }
    }

    /// A stream left the map without freeing a slot: the connection may
    /// have become idle for a pool that wants idle connections closed.
    fn after_forget(&self) {
        if self.streams() == 0 {
            self.capacity_freed();
        }
    }
}

/// RFC 9113 §6.9.2: every window starts at 65,535.
const DEFAULT_WINDOW: u32 = 65_535;

/// Our SETTINGS (Go's transport sends the same three, plus the header
/// list size): no server push, the stream window we advertise, the header
/// list we accept.
fn local_settings(cfg: &Config) -> Vec<(u16, u32)> {
    use crate::h2::settings::{ENABLE_PUSH, INITIAL_WINDOW_SIZE, MAX_HEADER_LIST_SIZE};
    vec![
        (ENABLE_PUSH, 0),
        (INITIAL_WINDOW_SIZE, cfg.http2_initial_stream_window),
        (
            MAX_HEADER_LIST_SIZE,
            u32::try_from(cfg.max_response_header_bytes).unwrap_or(u32::MAX),
        ),
    ]
}

/// The error streams above a GOAWAY's last stream id get.
fn goaway_error(g: &GoAway) -> Error {
    let mut msg = format!(
        "http2: server sent GOAWAY (last stream {}, {})",
        g.last_stream, g.code
    );
    if !g.debug.is_empty() {
        msg.push_str(&format!(", debug {:?}", g.debug));
    }
    let kind = if g.code == ErrorCode::NO_ERROR {
        ErrorKind::Io
    } else {
        ErrorKind::Protocol
    };
    Error::new(kind, msg)
}

/// What a caller or body waits on: its stream's bell, its cancel token,
/// its deadline.
struct Waits<'a> {
    bell: &'a Receiver<()>,
    cancel: Option<&'a Receiver<()>>,
    deadline: Option<Instant>,
}

/// Why a wait ended without the bell.
enum Woke {
    Canceled,
    Deadline,
    Timer,
    /// The stream made no progress for the transport's `read_timeout`.
    Stalled,
}

impl Waits<'_> {
    /// Waits for the bell, or `Err` for what cut the wait short. `timer`
    /// is an extra deadline (the response-header or 100-continue timer).
    fn wait(&self, timer: Option<Instant>) -> Result<(), Woke> {
        self.wait_with(timer, None)
    }

    /// [`wait`](Self::wait), also ending at `stall`: when the stream's
    /// head or body stalls for the `read_timeout`. On a tie the deadline
    /// wins, then the timer.
    fn wait_with(&self, timer: Option<Instant>, stall: Option<Instant>) -> Result<(), Woke> {
        let own = [
            (self.deadline, Woke::Deadline),
            (timer, Woke::Timer),
            (stall, Woke::Stalled),
        ]
        .into_iter()
        .filter_map(|(at, why)| Some((at?, why)))
        .min_by_key(|(at, _)| *at);
        // The bell's sender lives in the stream, which outlives every wait
        // on it: a disconnect cannot happen, and is treated as a ring. The
        // ring usually comes within microseconds, from a thread that needs
        // this CPU, or a server round trip away: yield first, timers and
        // cancel token or not (as HTTP/1's waits do, measured there; see
        // `conn::CALLER_YIELDS`).
        if crate::conn::try_soon(self.bell, crate::conn::CALLER_YIELDS).is_some() {
            return Ok(());
        }
        match self.cancel {
            None => match own {
                None => {
                    let _ = self.bell.recv();
                    Ok(())
                }
                Some((t, why)) => match self.bell.recv_deadline(t) {
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => Ok(()),
                    Err(RecvTimeoutError::Timeout) => Err(why),
                },
            },
            Some(cancel) => {
                let (at, why) = match own {
                    Some((t, why)) => (crossbeam_channel::at(t), Some(why)),
                    None => (never(), None),
                };
                select! {
                    recv(self.bell) -> _ => Ok(()),
                    recv(cancel) -> _ => Err(Woke::Canceled),
                    recv(at) -> _ => Err(why.unwrap_or(Woke::Deadline)),
                }
            }
        }
    }
}

/// A request's stream while its caller is in `round_trip`. Dropped
/// before [`response`](Self::response) took the stream over (an error,
/// an unwinding trace hook), it resets and forgets the stream.
struct Exchange<'a> {
    conn: &'a H2Conn,
    id: u32,
    waits: Waits<'a>,
    /// The stream went to a response body (or was forgotten already).
    done: bool,
}

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.forget(self.id);
        }
    }
}

impl Exchange<'_> {
    fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        self.conn.inner.state.lock()
    }

    /// The stream's failure, if it failed.
    fn failed(st: &State, id: u32) -> Option<ConnError> {
        let s = st.streams.get(&id)?;
        s.error.as_ref().map(|(e, class)| ConnError {
            err: e.duplicate(),
            class: *class,
        })
    }

    /// The error for an interrupted wait: the stream is reset, the
    /// connection stays.
    fn interrupted(&mut self, woke: Woke, phase: Phase<'_>) -> ConnError {
        let err = match woke {
            Woke::Canceled => Interrupt::Canceled.error(phase),
            Woke::Deadline => Interrupt::Deadline.error(phase),
            Woke::Timer => Error::new(ErrorKind::Timeout, "timeout awaiting response headers"),
            Woke::Stalled => {
                let after = self.conn.inner.cfg.read_timeout.unwrap_or_default();
                crate::conn::read_timeout_error(phase, after)
            }
        };
        ConnError {
            err,
            class: Failure::Other,
        }
    }

    /// `Expect: 100-continue`: waits for `100 Continue` (send the body),
    /// a final head (do not), or the timer (send it anyway).
    fn await_continue(&mut self, trace: Option<&dyn ClientTrace>) -> Result<bool, ConnError> {
        if let Some(t) = trace {
            t.wait_100_continue();
        }
        let timer = Instant::now() + self.conn.inner.cfg.expect_continue_timeout;
        loop {
            let seen = {
                let mut st = self.state();
                if let Some(e) = Self::failed(&st, self.id) {
                    return Err(e);
                }
                let Some(s) = st.streams.get_mut(&self.id) else {
                    return Err(self.gone());
                };
                if s.got_response {
                    return Ok(false);
                }
                let infos = std::mem::take(&mut s.informational);
                let go = infos
                    .iter()
                    .any(|(status, _)| *status == StatusCode::CONTINUE);
                (infos, go)
            };
            let (infos, go) = seen;
            report_1xx(trace, &infos);
            if go {
                if let Some(t) = trace {
                    t.got_100_continue();
                }
                return Ok(true);
            }
            match self.waits.wait(Some(timer)) {
                Ok(()) => {}
                Err(Woke::Timer) => return Ok(true),
                Err(w) => return Err(self.interrupted(w, Phase::WritingRequest)),
            }
        }
    }

    /// The stream vanished from the map: only `close` racing us.
    fn gone(&self) -> ConnError {
        ConnError {
            err: self.conn.closed_error(),
            class: Failure::Other,
        }
    }

    /// Sends the request body in DATA frames as the windows allow, the
    /// last one with END_STREAM. Stops early, without error, when the
    /// server already answered in full (RFC 9113 §8.1: it may then reset
    /// the stream with NO_ERROR).
    fn upload(&mut self, body: Body, size: BodySize) -> Result<(), ConnError> {
        let mut src = match body.into_kind() {
            BodyKind::Empty => BodySrc::Bytes(bytes::Bytes::new()),
            BodyKind::Bytes(b) => BodySrc::Bytes(b),
            BodyKind::Reader { reader, .. } => BodySrc::Reader(reader),
        };
        let declared = match size {
            BodySize::Known(n) => Some(n),
            _ => None,
        };
        let mut sent: u64 = 0;
        let mut chunk = Vec::new();
        loop {
            chunk.clear();
            let eof = src.fill(&mut chunk, UPLOAD_CHUNK).map_err(|e| ConnError {
                err: Error::from_io(e, ErrorKind::Io, "reading the request body"),
                class: Failure::Other,
            })?;
            sent += chunk.len() as u64;
            if declared.is_some_and(|n| sent > n) {
                return Err(body_length_error(declared, sent));
            }
            if eof && declared.is_some_and(|n| sent != n) {
                return Err(body_length_error(declared, sent));
            }
            if !self.send_data(&chunk, eof)? {
                return Ok(());
            }
            if eof {
                return Ok(());
            }
        }
    }

    /// Queues `data` in DATA jobs as the windows open, END_STREAM on the
    /// last if `end`. False when the server ended the stream meanwhile
    /// (the rest is not wanted).
    fn send_data(&mut self, mut data: &[u8], end: bool) -> Result<bool, ConnError> {
        if data.is_empty() && !end {
            return Ok(true);
        }
        let id = self.id;
        loop {
            let mut st = self.state();
            if let Some(e) = Self::failed(&st, id) {
                return Err(e);
            }
            let conn_avail = st.send_window.available();
            let frame = st.peer.max_frame_size;
            let Some(s) = st.streams.get_mut(&id) else {
                return Err(self.gone());
            };
            if s.remote_end {
                // Answered in full (and maybe reset with NO_ERROR): stop
                // sending; the stream ends from our side too.
                let freed = st.reset(id, ErrorCode::CANCEL);
                self.conn.unlock(st, freed);
                return Ok(false);
            }
            // An empty last frame needs no window.
            let n = conn_avail.min(s.send_window.available()).min(frame) as usize;
            let n = n.min(data.len());
            if n == 0 && !(data.is_empty() && end) {
                drop(st);
                if let Err(w) = self.waits.wait(None) {
                    return Err(self.interrupted(w, Phase::WritingRequest));
                }
                continue;
            }
            let (now, rest) = data.split_at(n);
            let last = end && rest.is_empty();
            // Both fit: `n` is at most either window.
            let _ = s.send_window.consume(n as u32);
            s.local_end |= last;
            let _ = st.send_window.consume(n as u32);
            st.queue(Job::Data {
                id,
                data: now.to_vec(),
                end_stream: last,
            });
            data = rest;
            if data.is_empty() {
                let freed = last && st.settle(id);
                self.conn.unlock(st, freed);
                return Ok(true);
            }
        }
    }

    /// Waits for the final response head, reporting 1xx heads on the way.
    fn await_head(
        &mut self,
        trace: Option<&dyn ClientTrace>,
    ) -> Result<(StatusCode, HeaderMap), ConnError> {
        let header_timer = self
            .conn
            .inner
            .cfg
            .response_header_timeout
            .map(|t| Instant::now() + t);
        // `read_timeout`: the head (or an interim one) must come within it
        // of the request's end, and of each interim head.
        let read_timeout = self.conn.inner.cfg.read_timeout;
        let mut stall = read_timeout.map(|t| Instant::now() + t);
        let mut first_byte = false;
        loop {
            let (infos, head) = {
                let mut st = self.state();
                let failed = Self::failed(&st, self.id);
                let Some(s) = st.streams.get_mut(&self.id) else {
                    return Err(self.gone());
                };
                let infos = std::mem::take(&mut s.informational);
                let head = s.response.take();
                if head.is_none() && infos.is_empty() {
                    if let Some(e) = failed {
                        return Err(e);
                    }
                }
                (infos, head)
            };
            if !first_byte && (head.is_some() || !infos.is_empty()) {
                first_byte = true;
                if let Some(t) = trace {
                    t.got_first_response_byte();
                }
            }
            report_1xx(trace, &infos);
            if let Some(head) = head {
                return Ok(head);
            }
            if !infos.is_empty() {
                stall = read_timeout.map(|t| Instant::now() + t);
            }
            // Dropping the exchange on an error resets the stream
            // (`RST_STREAM CANCEL`); the connection stays.
            if let Err(w) = self.waits.wait_with(header_timer, stall) {
                return Err(self.interrupted(w, Phase::AwaitingHeaders));
            }
        }
    }

    /// The response: its head, and a body reading the stream's buffer (or
    /// none, the stream forgotten, when it already ended with no data).
    fn response(
        mut self,
        status: StatusCode,
        headers: HeaderMap,
        cancel: Option<crate::CancelToken>,
        deadline: Option<Instant>,
        trace: Option<&Arc<dyn ClientTrace>>,
    ) -> Result<ResponseParts, ConnError> {
        let (content_length, empty) = {
            let st = self.state();
            let s = st.streams.get(&self.id);
            let cl = s.and_then(|s| s.content_length);
            let empty = s.is_none_or(|s| s.remote_end && s.data.is_empty() && s.error.is_none());
            (cl, empty)
        };
        let head = ResponseHead {
            version: Version::HTTP_2,
            status,
            headers,
        };
        let body = if empty {
            let trailers = {
                let mut st = self.state();
                st.streams.get_mut(&self.id).and_then(|s| s.trailers.take())
            };
            // The stream is done: forgotten now, its slot free; the
            // connection is available again, as an HTTP/1 connection is
            // put idle at its response's end.
            self.done = true;
            self.conn.forget(self.id);
            if let Some(t) = trace {
                t.put_idle_conn(None);
            }
            match trailers {
                Some(t) => crate::ResponseBody::from_source(Box::new(body::Finished::new(t))),
                None => crate::ResponseBody::empty(),
            }
        } else {
            self.done = true;
            crate::ResponseBody::from_source(Box::new(body::StreamBody::new(
                self.conn.clone(),
                self.id,
                self.waits.bell.clone(),
                cancel,
                deadline,
                content_length,
                trace.cloned(),
            )))
        };
        Ok(ResponseParts {
            head,
            content_length,
            body,
            release: None,
        })
    }
}

/// Reports 1xx heads to the trace (on the caller's thread).
fn report_1xx(trace: Option<&dyn ClientTrace>, infos: &[(StatusCode, HeaderMap)]) {
    if let Some(t) = trace {
        for (status, headers) in infos {
            t.got_1xx_response(*status, headers);
        }
    }
}

fn body_length_error(declared: Option<u64>, sent: u64) -> ConnError {
    let msg = match declared {
        Some(n) if sent > n => format!("request body longer than its declared length {n}"),
        Some(n) => format!("request body ended after {sent} of its declared {n} bytes"),
        None => "request body length mismatch".to_string(),
    };
    ConnError {
        err: Error::new(ErrorKind::InvalidRequest, msg),
        class: Failure::Other,
    }
}

/// Where the request body's bytes come from.
enum BodySrc {
    Bytes(bytes::Bytes),
    Reader(Box<dyn std::io::Read + Send>),
}

impl BodySrc {
    /// Appends up to `max` bytes to `buf`; true at the body's end.
    fn fill(&mut self, buf: &mut Vec<u8>, max: usize) -> std::io::Result<bool> {
        match self {
            BodySrc::Bytes(b) => {
                let n = b.len().min(max);
                buf.extend_from_slice(&b.split_to(n));
                Ok(b.is_empty())
            }
            BodySrc::Reader(r) => {
                buf.resize(max, 0);
                let mut filled = 0;
                while filled < max {
                    match r.read(&mut buf[filled..]) {
                        Ok(0) => {
                            buf.truncate(filled);
                            return Ok(true);
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            buf.truncate(filled);
                            return Err(e);
                        }
                    }
                }
                Ok(false)
            }
        }
    }
}

/// Closes the connection when a thread ends, however it ends.
struct CloseOnExit(H2Conn);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        let why = if std::thread::panicking() {
            CloseReason::CallbackPanicked
        } else {
            CloseReason::ThreadExited
        };
        self.0.close(why, None);
    }
}

impl fmt::Debug for H2Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("H2Conn")
            .field("id", &self.inner.id)
            .field("key", &self.inner.key)
            .finish_non_exhaustive()
    }
}
