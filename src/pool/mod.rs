//! The connection pool: idle lists, the global LRU, per-host counts and the
//! two waiter queues (Go's `idleConn`, `idleLRU`, `idleConnWait`,
//! `connsPerHost`, `connsPerHostWait`).
//!
//! # Invariants
//!
//! Every connection is in exactly one of *dialing*, *idle*, *in use* or
//! *closed*. `State::conns` holds the idle and in-use ones; for every key,
//! `per_host[key]` = dialing + idle + in use for that key. The debug build
//! checks this after every mutation (`check_locked`).
//!
//! # Locking
//!
//! One `parking_lot::Mutex` guards all of [`State`]. It is never held across
//! I/O, a channel operation that can block, a thread spawn or a trace hook:
//! locked helpers (named `…_locked`, taking `&mut State`) record what to do
//! in an [`Actions`] list, which runs after the lock is released.

pub(crate) mod want;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    panic::{self, AssertUnwindSafe},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use crossbeam_channel::{never, select};
use parking_lot::Mutex;

use crate::{
    CancelToken, Error, ErrorKind, config::Config, conn::PersistConn, dial, route::ConnKey,
    threads, trace::ClientTrace,
};
pub(crate) use want::{Got, Want};

/// A snapshot of one transport's pool, exact at the moment of the call.
///
/// ```
/// let t = nethttp::Transport::new();
/// assert_eq!(t.stats(), nethttp::PoolStats::default()); // building starts nothing
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Open connections: `idle + in_use`.
    pub conns: usize,
    /// Connections in the idle lists.
    pub idle: usize,
    /// Connections serving a request, including those whose response body
    /// the caller still holds.
    pub in_use: usize,
    /// Dials under way.
    pub dialing: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
    /// Threads this transport started that have not finished: two per open
    /// connection plus running dial threads.
    pub threads: usize,
}

/// Connection ids are unique across the process, so thread names are too.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// A handle on one transport's pool. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    cfg: Arc<Config>,
    /// Threads started for this transport and still running.
    threads: Arc<AtomicUsize>,
}

#[derive(Default)]
struct State {
    /// Every open connection: idle or in use. Keyed by connection id.
    conns: HashMap<u64, Entry>,
    /// Idle connections per key, least recently used first.
    idle: HashMap<ConnKey, Vec<IdleConn>>,
    /// All idle connections by the order they went idle: the global LRU
    /// for `max_idle_conns`. The value is the connection itself (a handle:
    /// its key and id come with it, so going idle copies no key).
    lru: BTreeMap<u64, PersistConn>,
    /// Requests waiting for a connection, oldest first (Go `idleConnWait`).
    idle_wait: HashMap<ConnKey, VecDeque<Arc<Want>>>,
    /// dialing + idle + in use, per key.
    per_host: HashMap<ConnKey, usize>,
    /// Requests waiting for a connection slot to dial (Go `connsPerHostWait`).
    conns_wait: HashMap<ConnKey, VecDeque<Arc<Want>>>,
    dialing: usize,
    in_use: usize,
    waiting: usize,
    /// Set by `close_idle_connections`; cleared when a request starts
    /// (Go `closeIdle`). While set, released connections close.
    close_idle: bool,
    /// The transport was dropped: nothing goes idle any more.
    closed: bool,
    /// Source of LRU sequence numbers.
    seq: u64,
}

struct Entry {
    key: ConnKey,
    idle: bool,
}

struct IdleConn {
    conn: PersistConn,
    since: Instant,
    /// `since` by the wall clock, which runs on while the machine sleeps
    /// (the monotonic clock does not): see [`idle_too_long`].
    since_wall: SystemTime,
    seq: u64,
}

/// Work decided under the lock, done after it is released.
#[derive(Default)]
struct Actions {
    /// Idle (or never used) connections to close gracefully.
    close: Vec<(PersistConn, Error)>,
    dial: Vec<Arc<Want>>,
}

/// What a request's wait for a connection may be cut short by.
pub(crate) struct WaitCtx<'a> {
    pub(crate) cancel: Option<&'a CancelToken>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) trace: Option<Arc<dyn ClientTrace>>,
}

/// The reader thread's question when its idle read times out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IdleCheck {
    /// Idle past the timeout: removed from the pool; the caller closes it.
    Expired,
    /// Idle, but only for part of the timeout: wait this much longer.
    Remaining(Duration),
    /// Serving a request (or already gone from the pool).
    NotIdle,
}

impl Pool {
    pub(crate) fn new(cfg: Arc<Config>) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                cfg,
                threads: Arc::new(AtomicUsize::new(0)),
            }),
        }
    }

    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.shared.cfg
    }

    pub(crate) fn threads(&self) -> &Arc<AtomicUsize> {
        &self.shared.threads
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let st = self.shared.state.lock();
        let idle = st.lru.len();
        PoolStats {
            conns: idle + st.in_use,
            idle,
            in_use: st.in_use,
            dialing: st.dialing,
            waiting: st.waiting,
            threads: self.shared.threads.load(Ordering::SeqCst),
        }
    }

    /// Go's `getConn`: the most recently used idle connection for `key`, or
    /// whichever comes first of a released connection and our own dial.
    pub(crate) fn get_conn(&self, key: &ConnKey, ctx: &WaitCtx<'_>) -> Result<Got, Error> {
        let want = loop {
            let mut st = self.shared.state.lock();
            st.close_idle = false;
            let mut acts = Actions::default();
            if let Some(got) = self.take_idle_locked(&mut st, key, &mut acts) {
                drop(st);
                self.run(acts);
                // The server may have closed it a moment ago, before its
                // reader noticed: look, outside the lock.
                match got.conn.peer_check() {
                    Ok(()) => return Ok(got),
                    Err(why) => {
                        got.conn.close(why);
                        continue;
                    }
                }
            }
            // Nothing for this key exists, so nothing could be released
            // while we dial: a dial thread would buy nothing. Dial here,
            // unless something must be able to interrupt the wait: a cancel
            // token or the pool-wait timeout (a blocking connect cannot
            // watch them), or a deadline while a DNS lookup (which nothing
            // bounds) is needed.
            let needs_dns = crate::route::bare(key.dial_host_port().0)
                .parse::<std::net::IpAddr>()
                .is_err();
            if ctx.cancel.is_none()
                && self.shared.cfg.pool_wait_timeout.is_none()
                && !(ctx.deadline.is_some() && needs_dns)
                && !st.per_host.contains_key(key)
            {
                st.per_host.insert(key.clone(), 1);
                st.dialing += 1;
                self.check_locked(&st);
                drop(st);
                return self.dial_inline(key, ctx);
            }
            let want = Want::new(key.clone(), ctx.trace.clone());
            st.waiting += 1;
            push_want(st.idle_wait.entry(key.clone()).or_default(), &want);
            let max = self.shared.cfg.max_conns_per_host;
            let count = st.per_host.entry(key.clone()).or_insert(0);
            if max == 0 || *count < max {
                *count += 1;
                st.dialing += 1;
                acts.dial.push(want.clone());
            } else {
                push_want(st.conns_wait.entry(key.clone()).or_default(), &want);
            }
            self.check_locked(&st);
            drop(st);
            self.run(acts);
            break want;
        };

        let not_set = never();
        let cancel = ctx.cancel.map_or(&not_set, CancelToken::receiver);
        let deadline = ctx.deadline.map_or_else(never, crossbeam_channel::at);
        let pool_wait = self
            .shared
            .cfg
            .pool_wait_timeout
            .map_or_else(never, crossbeam_channel::after);
        select! {
            recv(want.rx) -> got => match got {
                Ok(result) => result,
                // `want` holds the sender: unreachable, but answer anyway.
                Err(_) => Err(Error::new(ErrorKind::Io, "get conn: pool dropped the request")),
            },
            recv(cancel) -> _ => self.abandon(&want, Error::new(
                ErrorKind::Canceled, format!("request canceled while {}", phase(&want)))),
            recv(deadline) -> _ => self.abandon(&want, Error::new(
                ErrorKind::Timeout, format!("deadline exceeded while {}", phase(&want)))),
            recv(pool_wait) -> _ => self.abandon(&want, Error::new(
                ErrorKind::PoolTimeout,
                format!("no connection to {key} became available within the pool wait timeout"))),
        }
    }

    /// Dials on the caller's thread (already counted in `dialing` and
    /// `per_host`) and hands the new connection straight to the caller.
    fn dial_inline(&self, key: &ConnKey, ctx: &WaitCtx<'_>) -> Result<Got, Error> {
        let slot = DialSlot { pool: self, key };
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        // Trace hooks run in here, on the caller's thread; one that panics
        // unwinds through `slot`, which gives the slot back.
        let res = dial::dial(key, &self.shared.cfg, ctx.trace.as_deref(), ctx.deadline)
            .and_then(|stream| PersistConn::start(id, key.clone(), stream, self.clone()));
        slot.finish(res)
    }

    /// A dial ended (its slot counted in `dialing` and `per_host`): the
    /// connection is registered in use, or the slot freed.
    fn finish_dial(&self, key: &ConnKey, res: Result<PersistConn, Error>) -> Result<Got, Error> {
        let mut acts = Actions::default();
        let got = {
            let mut st = self.shared.state.lock();
            let got = self.register_dial_locked(&mut st, key, res, &mut acts);
            self.check_locked(&st);
            got
        };
        self.run(acts);
        got
    }

    /// A dial finished (`dialing` and `per_host` already count it): a live
    /// connection is registered as in use and returned as a fresh `Got`;
    /// one that closed during setup, or a failed dial, frees its slot.
    fn register_dial_locked(
        &self,
        st: &mut State,
        key: &ConnKey,
        res: Result<PersistConn, Error>,
        acts: &mut Actions,
    ) -> Result<Got, Error> {
        st.dialing -= 1;
        match res {
            Ok(conn) if !conn.is_closed() && !st.closed => {
                st.conns.insert(
                    conn.id(),
                    Entry {
                        key: key.clone(),
                        idle: false,
                    },
                );
                st.in_use += 1;
                Ok(Got {
                    conn,
                    reused: false,
                    was_idle: false,
                    idle_time: Duration::ZERO,
                })
            }
            Ok(conn) => {
                self.dec_per_host_locked(st, key, acts);
                let err = conn.closed_error_for("as soon as it was made");
                acts.close.push((conn, err.duplicate()));
                Err(err)
            }
            Err(err) => {
                self.dec_per_host_locked(st, key, acts);
                Err(err)
            }
        }
    }

    /// The requester gives up on `want`. If a connection was delivered in
    /// the meantime it goes back to the pool (Go `wantConn.cancel`).
    fn abandon(&self, want: &Arc<Want>, err: Error) -> Result<Got, Error> {
        let mut st = self.shared.state.lock();
        if want.finish_locked() {
            st.waiting -= 1;
            self.check_locked(&st);
            return Err(err);
        }
        drop(st);
        if let Ok(Ok(got)) = want.rx.try_recv() {
            got.conn.release(true, false, None);
        }
        Err(err)
    }

    /// Takes the most recently used live idle connection for `key`.
    fn take_idle_locked(&self, st: &mut State, key: &ConnKey, acts: &mut Actions) -> Option<Got> {
        let now_wall = SystemTime::now();
        loop {
            let ic = st.idle.get_mut(key).and_then(Vec::pop)?;
            st.lru.remove(&ic.seq);
            let id = ic.conn.id();
            let expired = idle_too_long(ic.since_wall, now_wall, self.shared.cfg.idle_conn_timeout);
            if ic.conn.is_closed() || expired {
                // Its close is racing us, or it is due: account for it here.
                if let Some(e) = st.conns.remove(&id) {
                    debug_assert!(e.idle);
                    self.dec_per_host_locked(st, key, acts);
                }
                if expired {
                    let why = Error::new(ErrorKind::Io, "idle connection timed out");
                    acts.close.push((ic.conn, why));
                }
                continue;
            }
            if let Some(e) = st.conns.get_mut(&id) {
                e.idle = false;
            }
            st.in_use += 1;
            self.check_locked(st);
            return Some(Got {
                reused: ic.conn.is_reused(),
                conn: ic.conn,
                was_idle: true,
                idle_time: ic.since.elapsed(),
            });
        }
    }

    /// Go's `tryPutIdleConn`: hands `conn` (in use, its response finished)
    /// to the oldest waiter for its key, or puts it on the idle list.
    /// Returns why it could not; the caller then closes it.
    pub(crate) fn try_put_idle(&self, conn: &PersistConn) -> Result<(), Error> {
        let mut acts = Actions::default();
        let res = {
            let mut st = self.shared.state.lock();
            let res = self.try_put_idle_locked(&mut st, conn, &mut acts);
            self.check_locked(&st);
            res
        };
        self.run(acts);
        res
    }

    fn try_put_idle_locked(
        &self,
        st: &mut State,
        conn: &PersistConn,
        acts: &mut Actions,
    ) -> Result<(), Error> {
        let cfg = &self.shared.cfg;
        let refuse = |why: &str| Err(Error::new(ErrorKind::Io, format!("put idle conn: {why}")));
        if cfg.disable_keep_alives {
            return refuse("keep-alives disabled");
        }
        if st.closed {
            return refuse("transport dropped");
        }
        if st.close_idle {
            return refuse("close_idle_connections was called");
        }
        if conn.is_closed() {
            return refuse("connection broken");
        }
        let key = conn.key();
        match st.conns.get(&conn.id()) {
            Some(e) if !e.idle => {}
            _ => return refuse("connection not in use"),
        }
        // A waiting request gets it straight away, oldest first.
        if let Some(q) = st.idle_wait.get_mut(key) {
            while let Some(w) = q.pop_front() {
                let got = Got {
                    conn: conn.clone(),
                    reused: conn.is_reused(),
                    was_idle: false,
                    idle_time: Duration::ZERO,
                };
                if w.deliver_locked(Ok(got)).is_ok() {
                    st.waiting -= 1;
                    if q.is_empty() {
                        st.idle_wait.remove(key);
                    }
                    return Ok(());
                }
            }
            st.idle_wait.remove(key);
        }
        let max_per_host = match cfg.max_idle_conns_per_host {
            0 => 2, // Go's DefaultMaxIdleConnsPerHost
            n => n,
        };
        if st
            .idle
            .get(key)
            .is_some_and(|list| list.len() >= max_per_host)
        {
            return refuse("too many idle connections for host");
        }
        st.seq += 1;
        let seq = st.seq;
        let ic = IdleConn {
            conn: conn.clone(),
            since: Instant::now(),
            since_wall: SystemTime::now(),
            seq,
        };
        // A key with traffic keeps its (possibly empty) list: the key is
        // copied only when its first connection goes idle, not per request.
        match st.idle.get_mut(key) {
            Some(list) => list.push(ic),
            None => {
                st.idle.insert(key.clone(), vec![ic]);
            }
        }
        st.lru.insert(seq, conn.clone());
        if let Some(e) = st.conns.get_mut(&conn.id()) {
            e.idle = true;
        }
        st.in_use -= 1;
        if cfg.max_idle_conns > 0 && st.lru.len() > cfg.max_idle_conns {
            if let Some((_, oldest)) = st.lru.pop_first() {
                if let Some(old) = self.remove_idle_entry_locked(st, oldest.key(), oldest.id()) {
                    self.dec_per_host_locked(st, old.key(), acts);
                    acts.close
                        .push((old, Error::new(ErrorKind::Io, "too many idle connections")));
                }
            }
        }
        Ok(())
    }

    /// Go's `putOrCloseIdleConn` after a dial whose requester was already
    /// served, and the registration of every new connection.
    pub(crate) fn dial_done(&self, want: &Arc<Want>, res: Result<PersistConn, Error>) {
        let mut acts = Actions::default();
        {
            let mut st = self.shared.state.lock();
            let result = self.register_dial_locked(&mut st, &want.key, res, &mut acts);
            match want.deliver_locked(result) {
                Ok(()) => st.waiting -= 1,
                // Already served or abandoned: a new connection goes to the
                // next waiter or the idle list (`close` fixes the counts
                // when it cannot); an error has nobody to tell.
                Err(Ok(got)) => {
                    if let Err(why) = self.try_put_idle_locked(&mut st, &got.conn, &mut acts) {
                        acts.close.push((got.conn, why));
                    }
                }
                Err(Err(_)) => {}
            }
            self.check_locked(&st);
        }
        self.run(acts);
    }

    /// A connection closed: forget it and free its slot. Idempotent.
    pub(crate) fn conn_closed(&self, conn: &PersistConn) {
        let mut acts = Actions::default();
        {
            let mut st = self.shared.state.lock();
            let id = conn.id();
            let Some(entry) = st.conns.get(&id) else {
                return;
            };
            let key = entry.key.clone();
            if entry.idle {
                self.remove_idle_entry_locked(&mut st, &key, id);
            } else {
                st.conns.remove(&id);
                st.in_use -= 1;
            }
            self.dec_per_host_locked(&mut st, &key, &mut acts);
            self.check_locked(&st);
        }
        self.run(acts);
    }

    /// Go's `closeConnIfStillIdle`, asked by the reader when its idle read
    /// times out.
    pub(crate) fn idle_check(&self, conn: &PersistConn, timeout: Duration) -> IdleCheck {
        let mut st = self.shared.state.lock();
        let id = conn.id();
        let key = conn.key();
        let since = match st.conns.get(&id) {
            Some(e) if e.idle => st
                .idle
                .get(key)
                .and_then(|l| l.iter().find(|ic| ic.conn.id() == id))
                .map(|ic| ic.since),
            _ => None,
        };
        let Some(since) = since else {
            return IdleCheck::NotIdle;
        };
        let idle_for = since.elapsed();
        if idle_for < timeout {
            return IdleCheck::Remaining(timeout - idle_for);
        }
        let mut acts = Actions::default();
        self.remove_idle_entry_locked(&mut st, key, id);
        self.dec_per_host_locked(&mut st, key, &mut acts);
        self.check_locked(&st);
        drop(st);
        self.run(acts);
        IdleCheck::Expired
    }

    /// Closes every idle connection now; connections in use close when
    /// released, until the next request starts.
    pub(crate) fn close_idle_connections(&self) {
        self.close_idle_with(false);
    }

    /// The transport is gone: close the idle connections and refuse any more.
    pub(crate) fn shut_down(&self) {
        self.close_idle_with(true);
    }

    fn close_idle_with(&self, closed: bool) {
        let mut acts = Actions::default();
        {
            let mut st = self.shared.state.lock();
            st.close_idle = true;
            st.closed |= closed;
            for idle in std::mem::take(&mut st.lru).into_values() {
                if let Some(conn) = self.remove_idle_entry_locked(&mut st, idle.key(), idle.id()) {
                    self.dec_per_host_locked(&mut st, conn.key(), &mut acts);
                    acts.close.push((
                        conn,
                        Error::new(ErrorKind::Io, "idle connection closed by the pool"),
                    ));
                }
            }
            self.check_locked(&st);
        }
        self.run(acts);
    }

    /// Removes an idle connection from its list, the LRU and `conns`.
    /// Leaves `per_host` to the caller.
    fn remove_idle_entry_locked(
        &self,
        st: &mut State,
        key: &ConnKey,
        id: u64,
    ) -> Option<PersistConn> {
        st.conns.remove(&id);
        let list = st.idle.get_mut(key)?;
        let pos = list.iter().position(|ic| ic.conn.id() == id)?;
        let ic = list.remove(pos);
        if list.is_empty() {
            st.idle.remove(key);
        }
        st.lru.remove(&ic.seq);
        Some(ic.conn)
    }

    /// Go's `decConnsPerHost`: a slot for `key` is free. The oldest request
    /// waiting for a slot gets it and dials; otherwise the count drops.
    fn dec_per_host_locked(&self, st: &mut State, key: &ConnKey, acts: &mut Actions) {
        if let Some(q) = st.conns_wait.get_mut(key) {
            while let Some(w) = q.pop_front() {
                if w.is_pending_locked() {
                    st.dialing += 1;
                    acts.dial.push(w);
                    return;
                }
            }
            st.conns_wait.remove(key);
        }
        if let Some(n) = st.per_host.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                st.per_host.remove(key);
            }
        }
    }

    fn run(&self, acts: Actions) {
        for (conn, why) in acts.close {
            conn.close_idle(why);
        }
        for want in acts.dial {
            self.start_dial(want);
        }
    }

    /// Starts a dial thread for `want` (already counted in `dialing` and
    /// `per_host`). Its result goes through [`Pool::dial_done`].
    fn start_dial(&self, want: Arc<Want>) {
        want.dial_started.store(true, Ordering::Relaxed);
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let pool = self.clone();
        let w = want.clone();
        let spawned = threads::spawn(
            format!("nethttp-d{id}"),
            self.shared.cfg.thread_stack_size,
            &self.shared.threads,
            move || {
                // Trace hooks run in the dial: one that panics fails this
                // dial, and its waiter hears why.
                let res = panic::catch_unwind(AssertUnwindSafe(|| {
                    dial::dial(&w.key, &pool.shared.cfg, w.trace.as_deref(), None).and_then(
                        |stream| PersistConn::start(id, w.key.clone(), stream, pool.clone()),
                    )
                }))
                .unwrap_or_else(|_| Err(Error::callback_panicked("dialling")));
                pool.dial_done(&w, res);
            },
        );
        if let Err(e) = spawned {
            let err = Error::new(ErrorKind::Connect, "spawn dial thread").with_source(e);
            self.dial_done(&want, Err(err));
        }
    }

    /// Checks the invariants of the module doc (debug builds only).
    fn check_locked(&self, st: &State) {
        if cfg!(debug_assertions) {
            let idle_in_lists: usize = st.idle.values().map(Vec::len).sum();
            assert_eq!(idle_in_lists, st.lru.len(), "idle lists and LRU disagree");
            let idle_entries = st.conns.values().filter(|e| e.idle).count();
            assert_eq!(idle_entries, st.lru.len(), "idle entries and LRU disagree");
            assert_eq!(
                st.conns.len() - idle_entries,
                st.in_use,
                "in-use count is off"
            );
            let slots: usize = st.per_host.values().sum();
            assert_eq!(
                slots,
                st.dialing + st.conns.len(),
                "per-host counts are off"
            );
        }
    }
}

/// A dial's claim on a connection slot for its key (counted in `dialing`
/// and `per_host`), held by a dial on the caller's thread. [`finish`]
/// consumes it with the dial's result; dropped unfinished (a trace hook
/// that panicked mid-dial unwinds through it) it gives the slot back, so
/// the unwind leaks nothing and the next request to the host does not wait
/// for a slot that is never freed (API.md, "Safety rules").
///
/// [`finish`]: DialSlot::finish
struct DialSlot<'a> {
    pool: &'a Pool,
    key: &'a ConnKey,
}

impl DialSlot<'_> {
    fn finish(self, res: Result<PersistConn, Error>) -> Result<Got, Error> {
        let this = std::mem::ManuallyDrop::new(self);
        this.pool.finish_dial(this.key, res)
    }
}

impl Drop for DialSlot<'_> {
    fn drop(&mut self) {
        let _ = self
            .pool
            .finish_dial(self.key, Err(Error::callback_panicked("dialling")));
    }
}

/// Go's `tooOld` check at checkout: idle past `timeout` by the wall clock.
/// The reader's idle wait times out by the monotonic clock, which stops
/// while the machine sleeps; a laptop or VM that wakes up must not reuse a
/// connection the server dropped hours ago. A wall clock that stepped back
/// counts as no time.
fn idle_too_long(since: SystemTime, now: SystemTime, timeout: Option<Duration>) -> bool {
    let Some(timeout) = timeout.filter(|t| !t.is_zero()) else {
        return false;
    };
    now.duration_since(since).is_ok_and(|idle| idle > timeout)
}

/// What a request waiting in the pool was doing, for error messages.
fn phase(want: &Want) -> String {
    if want.dial_started.load(Ordering::Relaxed) {
        format!("connecting to {}", want.key)
    } else {
        format!("waiting for a free connection to {}", want.key)
    }
}

/// Queues `want`, first dropping finished wants from the front so queues of
/// abandoned requests do not grow.
fn push_want(q: &mut VecDeque<Arc<Want>>, want: &Arc<Want>) {
    while q.front().is_some_and(|w| !w.is_pending_locked()) {
        q.pop_front();
    }
    q.push_back(want.clone());
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_age_is_judged_by_the_wall_clock() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let secs = Duration::from_secs;
        let too_long = |idle: Duration, timeout| idle_too_long(t0, t0 + idle, timeout);
        assert!(!too_long(secs(89), Some(secs(90))));
        assert!(!too_long(secs(90), Some(secs(90))));
        // A machine that slept for an hour: the monotonic clock says
        // nothing happened, the wall clock says the connection is stale.
        assert!(too_long(secs(3600), Some(secs(90))));
        // No timeout, or a zero one (= none): never too long.
        assert!(!too_long(secs(3600), None));
        assert!(!too_long(secs(3600), Some(Duration::ZERO)));
        // A wall clock stepped back is no time at all.
        assert!(!idle_too_long(t0 + secs(10), t0, Some(secs(1))));
    }
}
