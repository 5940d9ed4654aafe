//! [`Conns`]: the transport's connections. It drives the passive pool
//! (`pool::Pool<Conn>`): it decides whether a request dials on its
//! own thread or on a dial thread, dials and starts connections, waits for
//! whichever comes first (a released connection, its own dial, the cancel
//! token, the deadline, `pool_wait_timeout`), and carries out what the pool
//! decides under its lock (closing idle connections, starting the dials of
//! requests that got a slot). Connections reach it back through the narrow
//! [`Handle`] they hold: the runtime cycle (a body gives its connection
//! back, the pool holds connections, a connection leaves the pool when it
//! dies) without a module cycle.

use std::{
    panic::{self, AssertUnwindSafe},
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{never, select};

use crate::{
    CancelToken, Error, ErrorKind, PoolStats,
    close_reason::CloseReason,
    config::Config,
    config::Protocols,
    conn::{PersistConn, reuse::Facts},
    dial,
    h2conn::H2Conn,
    phase::{Interrupt, Phase},
    pool::{Actions, Checkout, Got, Handle, IdleCheck, Limits, Pool, Poolable, Want},
    route::{ConnKey, Scheme},
    threads::Threads,
    trace::ClientTrace,
};

/// Connection ids are unique across the process, so thread names are too.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// A request's wait for a connection, and what may cut it short.
pub(crate) struct WaitCtx<'a> {
    pub(crate) cancel: Option<&'a CancelToken>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) trace: Option<Arc<dyn ClientTrace>>,
}

/// One transport's connections: the pool, the settings, the thread count.
pub(crate) struct Conns {
    pool: Pool<Conn>,
    cfg: Arc<Config>,
    /// Threads started for this transport: at work, and spares.
    threads: Arc<Threads>,
    /// This value's own `Arc`, for the handles new connections hold and
    /// the dial threads it starts.
    me: Weak<Conns>,
}

impl Conns {
    pub(crate) fn new(cfg: Arc<Config>) -> Arc<Conns> {
        let limits = Limits {
            max_idle: cfg.max_idle_conns,
            max_idle_per_host: cfg.max_idle_conns_per_host,
            max_conns_per_host: cfg.max_conns_per_host,
            idle_timeout: cfg.idle_conn_timeout,
            keep_alives: !cfg.disable_keep_alives,
        };
        // API.md's bound on spares: twice the idle connections per host.
        let threads = Threads::new(
            cfg.thread_stack_size,
            cfg.spare_thread_timeout,
            cfg.max_idle_conns_per_host.saturating_mul(2),
        );
        Arc::new_cyclic(|me| Conns {
            pool: Pool::new(limits),
            cfg,
            threads,
            me: me.clone(),
        })
    }

    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.cfg
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let c = self.pool.counts();
        PoolStats {
            conns: c.idle + c.in_use,
            idle: c.idle,
            in_use: c.in_use,
            dialing: c.dialing,
            waiting: c.waiting,
            threads: self.threads.working(),
            spare_threads: self.threads.spares(),
            streams: c.streams,
        }
    }

    /// Closes every idle connection now; connections in use close when
    /// released, until the next request starts.
    pub(crate) fn close_idle_connections(&self) {
        self.run(self.pool.close_idle(false));
        self.threads.end_spares(false);
    }

    /// The transport is gone: close the idle connections and refuse any
    /// more.
    pub(crate) fn shut_down(&self) {
        self.run(self.pool.close_idle(true));
        self.threads.end_spares(true);
    }

    /// Go's `getConn`: the most recently used idle connection for `key`,
    /// or whichever comes first of a released connection and our own
    /// dial.
    pub(crate) fn get_conn(&self, key: &ConnKey, ctx: &WaitCtx<'_>) -> Result<Got<Conn>, Error> {
        // Dialling on this thread buys the most when nothing for the key
        // exists (nothing could be released meanwhile: the pool checks
        // that). Not when something must be able to interrupt the wait: a
        // cancel token or the pool-wait timeout (a blocking connect cannot
        // watch them), or a deadline while a DNS lookup (which nothing
        // bounds) is needed.
        let may_dial_here = ctx.cancel.is_none()
            && self.cfg.pool_wait_timeout.is_none()
            && (ctx.deadline.is_none() || !key.needs_dns());
        // HTTP/2 is likely (prior knowledge, or offered over TLS): until a
        // connection to the key says otherwise, requests that find a dial
        // under way wait for it rather than dial their own, so a burst at
        // a fresh host makes one connection, not one per request.
        let shared_hint = self.likely_h2(key);
        loop {
            let (checkout, acts) =
                self.pool
                    .checkout(key, may_dial_here, shared_hint, ctx.trace.as_ref());
            self.run(acts);
            match checkout {
                Checkout::Idle(got) => {
                    // The server may have closed it a moment ago, before
                    // its reader noticed: look, outside the pool lock.
                    match got.conn.peer_check() {
                        Ok(()) => return Ok(got),
                        Err(why) => got.conn.close(why),
                    }
                }
                Checkout::DialHere => return self.dial_here(key, ctx),
                Checkout::Wait { want, dial } => {
                    if dial {
                        self.start_dial(want.clone());
                    }
                    return self.wait(key, &want, ctx);
                }
            }
        }
    }

    /// Whether a connection to `key` will likely speak HTTP/2: by prior
    /// knowledge (but not to a proxy in absolute form), or over TLS when
    /// the ALPN list offers `h2`.
    fn likely_h2(&self, key: &ConnKey) -> bool {
        match self.cfg.protocols {
            Protocols::Http2PriorKnowledge => !key.is_proxied_http(),
            Protocols::Http1Only => false,
            Protocols::Negotiate => {
                key.scheme == Scheme::Https
                    && self
                        .cfg
                        .tls_config
                        .as_ref()
                        .is_none_or(|c| c.alpn_protocols.iter().any(|p| p == dial::tls::ALPN_H2))
            }
        }
    }

    /// Dials on the caller's thread (the slot already counted) and hands the
    /// new connection straight to the caller.
    fn dial_here(&self, key: &ConnKey, ctx: &WaitCtx<'_>) -> Result<Got<Conn>, Error> {
        let slot = DialSlot { conns: self, key };
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        // Trace hooks run in here, on the caller's thread; one that panics
        // unwinds through `slot`, which gives the slot back.
        let res = self.dial(id, key, ctx.trace.as_ref(), ctx.deadline);
        slot.finish(res)
    }

    /// Dials `key` and starts connection `id`'s two threads.
    fn dial(
        &self,
        id: u64,
        key: &ConnKey,
        trace: Option<&Arc<dyn ClientTrace>>,
        deadline: Option<Instant>,
    ) -> Result<Conn, Error> {
        let (offer, spoken) = alpn(self.cfg.protocols);
        let ctx = dial::DialCtx {
            cfg: &self.cfg,
            trace,
            deadline,
            threads: &self.threads,
        };
        let stream = dial::dial(key, &ctx, offer, spoken)?;
        // The protocol seam: ALPN's choice (none for plain http) decides
        // which kind of connection this stream becomes; the handshake has
        // refused any protocol not in `spoken`.
        debug_assert!(stream.alpn.as_deref().is_none_or(|p| spoken.contains(&p)));
        let prior = self.cfg.protocols == Protocols::Http2PriorKnowledge;
        let h2 = match stream.alpn.as_deref() {
            Some(p) => p == dial::tls::ALPN_H2,
            None if prior && key.scheme == Scheme::Https => {
                // Prior knowledge never falls back (API.md).
                return Err(Error::new(
                    ErrorKind::Tls,
                    format!("{key} did not negotiate h2 (ALPN), and HTTP/2 was required"),
                ));
            }
            // A proxy gets plain http in absolute form, HTTP/1.1.
            None => prior && !key.is_proxied_http(),
        };
        let Some(me) = self.me.upgrade() else {
            return Err(Error::new(
                ErrorKind::Io,
                "transport dropped during the dial",
            ));
        };
        let cfg = self.cfg.clone();
        if h2 {
            let handle: Arc<dyn Handle<H2Conn>> = me;
            let c = H2Conn::start(id, key.clone(), stream, cfg, &self.threads, handle)?;
            return Ok(Conn::H2(c));
        }
        let handle: Arc<dyn Handle<PersistConn>> = me;
        let h1 = PersistConn::start(id, key.clone(), stream, cfg, &self.threads, handle)?;
        Ok(Conn::H1(h1))
    }

    /// Starts a dial thread for `want` (its slot already counted). Its
    /// result goes through [`Pool::dial_done`].
    fn start_dial(&self, want: Arc<Want<Conn, ConnKey>>) {
        want.dial_started.store(true, Ordering::Relaxed);
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let Some(conns) = self.me.upgrade() else {
            let err = Error::new(ErrorKind::Io, "transport dropped before the dial");
            self.run(self.pool.dial_done(&want, Err(err)));
            return;
        };
        let w = want.clone();
        let spawned = self
            .threads
            .spawn_transient(format!("nethttp-d{id}"), move || {
                // Trace hooks run in the dial: one that panics fails this
                // dial, and its waiter hears why.
                let res = panic::catch_unwind(AssertUnwindSafe(|| {
                    conns.dial(id, &w.key, w.trace.as_ref(), None)
                }))
                .unwrap_or_else(|_| Err(Error::callback_panicked("dialling")));
                conns.run(conns.pool.dial_done(&w, res));
            });
        if let Err(e) = spawned {
            let err = Error::new(ErrorKind::Connect, "spawn dial thread").with_source(e);
            self.run(self.pool.dial_done(&want, Err(err)));
        }
    }

    /// Waits for `want`: whichever comes first of a connection delivered
    /// to it, the cancel token, the deadline and the pool-wait timeout.
    fn wait(
        &self,
        key: &ConnKey,
        want: &Arc<Want<Conn, ConnKey>>,
        ctx: &WaitCtx<'_>,
    ) -> Result<Got<Conn>, Error> {
        let not_set = never();
        let cancel = ctx.cancel.map_or(&not_set, CancelToken::receiver);
        let deadline = ctx.deadline.map_or_else(never, crossbeam_channel::at);
        let pool_wait = self
            .cfg
            .pool_wait_timeout
            .map_or_else(never, crossbeam_channel::after);
        let gave_up = select! {
            recv(want.rx) -> got => return match got {
                Ok(result) => result,
                // `want` holds the sender: unreachable, but answer anyway.
                Err(_) => Err(Error::new(ErrorKind::Io, "get conn: pool dropped the request")),
            },
            recv(cancel) -> _ => Interrupt::Canceled.error(phase(want)),
            recv(deadline) -> _ => Interrupt::Deadline.error(phase(want)),
            recv(pool_wait) -> _ => Error::new(
                ErrorKind::PoolTimeout,
                format!("no connection to {key} became available within the pool wait timeout")),
        };
        // A connection delivered in the same instant goes back.
        if let Some(got) = self.pool.abandon(want) {
            got.conn.put_back_unused();
        }
        Err(gave_up)
    }

    /// Carries out what the pool decided under its lock.
    fn run(&self, acts: Actions<Conn>) {
        if acts.is_empty() {
            return;
        }
        for (conn, why) in acts.close {
            conn.close_idle(why);
        }
        for want in acts.dial {
            self.start_dial(want);
        }
    }
}

/// How connections reach their pool: to go back to it, to leave it, and
/// to ask whether an idle one is due.
impl Handle<PersistConn> for Conns {
    fn put_idle(&self, conn: &PersistConn) -> Result<(), CloseReason> {
        let (res, acts) = self.pool.try_put_idle(&Conn::H1(conn.clone()));
        self.run(acts);
        res
    }

    fn closed(&self, conn: &PersistConn) {
        let acts = self.pool.closed(&Conn::H1(conn.clone()));
        self.run(acts);
    }

    fn idle_check(&self, conn: &PersistConn, timeout: Duration) -> IdleCheck {
        let (check, acts) = self.pool.idle_check(&Conn::H1(conn.clone()), timeout);
        self.run(acts);
        check
    }
}

/// How HTTP/2 connections reach their pool: `put_idle` says a stream
/// freed (the pool hands it to a waiting request); `Err` means the pool
/// wants the connection gone once it has no stream.
impl Handle<H2Conn> for Conns {
    fn put_idle(&self, conn: &H2Conn) -> Result<(), CloseReason> {
        let (res, acts) = self.pool.try_put_idle(&Conn::H2(conn.clone()));
        self.run(acts);
        res
    }

    fn closed(&self, conn: &H2Conn) {
        let acts = self.pool.closed(&Conn::H2(conn.clone()));
        self.run(acts);
    }

    fn idle_check(&self, conn: &H2Conn, timeout: Duration) -> IdleCheck {
        let (check, acts) = self.pool.idle_check(&Conn::H2(conn.clone()), timeout);
        self.run(acts);
        check
    }
}

/// The ALPN protocols to offer (`None`: the caller's TLS configuration's
/// own list) and those there is a [`Conn`] for.
fn alpn(protocols: Protocols) -> (Option<&'static [&'static [u8]]>, &'static [&'static [u8]]) {
    use dial::tls::{ALPN_H2, ALPN_HTTP1};
    const BOTH: &[&[u8]] = &[ALPN_H2, ALPN_HTTP1];
    const H1: &[&[u8]] = &[ALPN_HTTP1];
    const H2: &[&[u8]] = &[ALPN_H2];
    match protocols {
        Protocols::Negotiate => (None, BOTH),
        Protocols::Http1Only => (Some(H1), H1),
        Protocols::Http2PriorKnowledge => (Some(H2), H2),
    }
}

/// A dial's claim on a connection slot for its key (counted in the pool),
/// held by a dial on the caller's thread. [`finish`] consumes it with the
/// dial's result; dropped unfinished (a trace hook that panicked mid-dial
/// unwinds through it) it gives the slot back, so the unwind leaks nothing
/// and the next request to the host does not wait for a slot that is never
/// freed (API.md, "Safety rules").
///
/// [`finish`]: DialSlot::finish
struct DialSlot<'a> {
    conns: &'a Conns,
    key: &'a ConnKey,
}

impl DialSlot<'_> {
    fn finish(self, res: Result<Conn, Error>) -> Result<Got<Conn>, Error> {
        let this = std::mem::ManuallyDrop::new(self);
        let (got, acts) = this.conns.pool.dial_done_here(this.key, res);
        this.conns.run(acts);
        got
    }
}

impl Drop for DialSlot<'_> {
    fn drop(&mut self) {
        let err = Error::callback_panicked("dialling");
        let (_, acts) = self.conns.pool.dial_done_here(self.key, Err(err));
        self.conns.run(acts);
    }
}

/// What a request waiting in the pool was doing.
fn phase(want: &Want<Conn, ConnKey>) -> Phase<'_> {
    if want.dial_started.load(Ordering::Relaxed) {
        Phase::Connecting(&want.key)
    } else {
        Phase::WaitingForConnection(&want.key)
    }
}

/// A pooled connection, by protocol (Go's `persistConn.alt`): the seam
/// where another protocol joins HTTP/1.
#[derive(Clone, Debug)]
pub(crate) enum Conn {
    H1(PersistConn),
    H2(H2Conn),
}

impl Conn {
    pub(crate) fn id(&self) -> u64 {
        match self {
            Conn::H1(c) => c.id(),
            Conn::H2(c) => c.id(),
        }
    }

    pub(crate) fn local_addr(&self) -> std::net::SocketAddr {
        match self {
            Conn::H1(c) => c.local_addr(),
            Conn::H2(c) => c.local_addr(),
        }
    }

    pub(crate) fn remote_addr(&self) -> std::net::SocketAddr {
        match self {
            Conn::H1(c) => c.remote_addr(),
            Conn::H2(c) => c.remote_addr(),
        }
    }

    pub(crate) fn version(&self) -> http::Version {
        match self {
            Conn::H1(_) => http::Version::HTTP_11,
            Conn::H2(_) => http::Version::HTTP_2,
        }
    }

    /// Whether the server closed it or spoke since (see
    /// [`PersistConn::peer_check`]).
    fn peer_check(&self) -> Result<(), CloseReason> {
        match self {
            Conn::H1(c) => c.peer_check(),
            // Its reader is always reading: a close is seen at once.
            Conn::H2(c) if c.is_closed() => Err(CloseReason::Broken),
            Conn::H2(_) => Ok(()),
        }
    }

    /// Hands an unused connection back (its request gave up, or unwound).
    pub(crate) fn put_back_unused(&self) {
        match self {
            Conn::H1(c) => c.release(Facts::unused(), false, None),
            Conn::H2(c) => c.unreserve(),
        }
    }

    pub(crate) fn close(&self, why: CloseReason) {
        match self {
            Conn::H1(c) => c.close(why),
            Conn::H2(c) => c.close(why, None),
        }
    }

    fn close_idle(&self, why: CloseReason) {
        match self {
            Conn::H1(c) => c.close_idle(why),
            Conn::H2(c) => c.close_idle(why),
        }
    }
}

impl Poolable for Conn {
    type Key = ConnKey;

    fn id(&self) -> u64 {
        Conn::id(self)
    }

    fn key(&self) -> &ConnKey {
        match self {
            Conn::H1(c) => c.key(),
            Conn::H2(c) => c.key(),
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Conn::H1(c) => c.is_closed(),
            Conn::H2(c) => c.is_closed(),
        }
    }

    fn is_reused(&self) -> bool {
        match self {
            Conn::H1(c) => c.is_reused(),
            Conn::H2(c) => c.is_reused(),
        }
    }

    fn closed_error(&self) -> Error {
        match self {
            Conn::H1(c) => c.closed_error_for("as soon as it was made"),
            Conn::H2(c) => c.closed_error(),
        }
    }

    fn is_shared(&self) -> bool {
        matches!(self, Conn::H2(_))
    }

    fn try_reserve(&self) -> bool {
        match self {
            Conn::H1(_) => false,
            Conn::H2(c) => c.try_reserve(),
        }
    }

    fn streams(&self) -> usize {
        match self {
            Conn::H1(_) => 0,
            Conn::H2(c) => c.streams(),
        }
    }

    fn try_retire(&self) -> bool {
        match self {
            Conn::H1(_) => true,
            Conn::H2(c) => c.try_retire(),
        }
    }

    fn has_room(&self) -> bool {
        match self {
            Conn::H1(_) => false,
            Conn::H2(c) => c.has_room(),
        }
    }
}
