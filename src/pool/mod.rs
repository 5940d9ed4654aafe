//! The connection pool: idle lists, the global LRU, per-host counts and the
//! two waiter queues (Go's `idleConn`, `idleLRU`, `idleConnWait`,
//! `connsPerHost`, `connsPerHostWait`), as a passive state machine.
//!
//! The pool never dials, spawns, closes or names a connection type: it is
//! generic over [`Poolable`] and answers. A checkout gets "here is one"
//! ([`Checkout::Idle`]), "dial here" ([`Checkout::DialHere`]) or "wait"
//! ([`Checkout::Wait`], maybe with a dial to start); the pool is told
//! [`dial_done`](Pool::dial_done), [`try_put_idle`](Pool::try_put_idle),
//! [`closed`](Pool::closed) and asked [`idle_check`](Pool::idle_check).
//! Whatever must happen after the lock is released (connections to close,
//! dials to start for requests that got a slot) comes back as [`Actions`],
//! which the caller (the transport) carries out.
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
//! nothing of the kind happens in here, and locked helpers (named
//! `…_locked`, taking `&mut State`) record what to do in [`Actions`].

pub(crate) mod want;

#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    hash::Hash,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use parking_lot::Mutex;

use crate::{Error, close_reason::CloseReason, trace::ClientTrace};
pub(crate) use want::{Got, Want};

/// What the pool needs to know of a connection.
pub(crate) trait Poolable: Clone {
    /// Which requests may share it.
    type Key: Clone + Eq + Hash + fmt::Debug;

    /// Unique among the pool's connections.
    fn id(&self) -> u64;
    fn key(&self) -> &Self::Key;
    /// It closed (or failed) since it was pooled (Go's `isBroken`).
    fn is_closed(&self) -> bool;
    /// It served a request before (for [`Got::reused`]).
    fn is_reused(&self) -> bool;
    /// Why a connection that closed during its setup cannot be used, for
    /// the request that dialled it.
    fn closed_error(&self) -> Error;

    /// Serves many requests at once (HTTP/2): it stays in the pool while in
    /// use, and each checkout reserves one of its streams instead of taking
    /// it (hyper-util's `Reservation::Shared`).
    fn is_shared(&self) -> bool {
        false
    }
    /// Shared only: reserves one stream for a request; false when it is
    /// full or going away. Called under the pool's lock.
    fn try_reserve(&self) -> bool {
        false
    }
    /// Shared only: its streams, open or reserved (0: idle).
    fn streams(&self) -> usize {
        0
    }
    /// Shared only: it can take another stream now, or may once the
    /// server's first SETTINGS say how many (Go's `CanTakeNewRequest`).
    fn has_room(&self) -> bool {
        false
    }
    /// Shared only: takes it out of service if it has no stream (true; the
    /// caller then closes it). Called under the pool's lock.
    fn try_retire(&self) -> bool {
        true
    }
}

/// How a pooled connection reaches its pool (the narrow handle each
/// connection holds): to go back to it, to leave it, and to ask whether an
/// idle one is due. Implemented by whoever drives the pool (the
/// transport), which also carries out the pool's [`Actions`]; so the
/// connection names neither the pool nor the transport.
pub(crate) trait Handle<C>: Send + Sync {
    /// Go's `tryPutIdleConn`: `Err(why)` means close it instead.
    fn put_idle(&self, conn: &C) -> Result<(), CloseReason>;
    /// It closed: forget it and free its slot. Idempotent.
    fn closed(&self, conn: &C);
    /// Its idle read timed out after `timeout` (Go's
    /// `closeConnIfStillIdle`).
    fn idle_check(&self, conn: &C, timeout: Duration) -> IdleCheck;
}

/// The pool's limits (Go's `MaxIdleConns`, `MaxIdleConnsPerHost`,
/// `MaxConnsPerHost`, `IdleConnTimeout`, `DisableKeepAlives`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// 0 = no limit.
    pub(crate) max_idle: usize,
    /// 0 = 2 (Go's `DefaultMaxIdleConnsPerHost`).
    pub(crate) max_idle_per_host: usize,
    /// 0 = no limit.
    pub(crate) max_conns_per_host: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) keep_alives: bool,
}

/// The pool's counts, exact at the moment of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub(crate) idle: usize,
    pub(crate) in_use: usize,
    pub(crate) dialing: usize,
    pub(crate) waiting: usize,
    /// Streams of shared connections, open or reserved.
    pub(crate) streams: usize,
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

/// The answer to a checkout.
pub(crate) enum Checkout<C: Poolable> {
    /// The most recently used idle connection, now in use. The pool did
    /// not look at its socket: the caller may, and hand it back through
    /// [`Pool::closed`] if it turns out dead.
    Idle(Got<C>),
    /// Nothing for the key exists, so nothing could be released while the
    /// caller dials: a slot is counted (`dialing`, `per_host`); dial on
    /// this thread and report through [`Pool::dial_done_here`].
    DialHere,
    /// Registered: wait on the want. With `dial`, it also got a slot: start
    /// a dial for it that reports through [`Pool::dial_done`]. Without,
    /// it waits for a connection another request releases, or for a slot
    /// (which then comes back in [`Actions::dial`]).
    Wait {
        want: Arc<Want<C, C::Key>>,
        dial: bool,
    },
}

/// Work decided under the lock, for the caller to do after it.
#[must_use = "the pool does no I/O: close these connections and start these dials"]
pub(crate) struct Actions<C: Poolable> {
    /// Idle (or never used) connections to close, and why.
    pub(crate) close: Vec<(C, CloseReason)>,
    /// Wants that got a connection slot: start a dial for each.
    pub(crate) dial: Vec<Arc<Want<C, C::Key>>>,
}

impl<C: Poolable> Default for Actions<C> {
    fn default() -> Self {
        Actions {
            close: Vec::new(),
            dial: Vec::new(),
        }
    }
}

impl<C: Poolable> Actions<C> {
    pub(crate) fn is_empty(&self) -> bool {
        self.close.is_empty() && self.dial.is_empty()
    }
}

/// The pool of one transport. Share it behind an `Arc`.
pub(crate) struct Pool<C: Poolable> {
    state: Mutex<State<C>>,
    limits: Limits,
}

struct State<C: Poolable> {
    /// Every open connection: idle, in use or shared. Keyed by connection
    /// id.
    conns: HashMap<u64, Entry<C::Key>>,
    /// Shared connections per key, oldest first: each serves requests
    /// until it is full ([`Poolable::try_reserve`]), and counts as idle
    /// while it has no stream, else in use.
    shared: HashMap<C::Key, Vec<C>>,
    /// What the last connection made for a key was: shared (`true`) or
    /// not. While a dial to a key that is (or, unknown, is likely to be:
    /// the checkout's `shared_hint`) shared is under way, a request waits
    /// for it instead of dialling its own.
    shared_keys: HashMap<C::Key, bool>,
    /// Dials under way, per key.
    dials: HashMap<C::Key, usize>,
    /// Requests riding on another request's dial to a shared key (they are
    /// in `idle_wait` too): if every dial to the key fails, they get the
    /// error (Go's shared `dialCall`); if the dial comes back unshared,
    /// each gets a dial of its own.
    riders: HashMap<C::Key, WantQueue<C>>,
    /// Idle connections per key, least recently used first.
    idle: HashMap<C::Key, Vec<IdleConn<C>>>,
    /// All idle connections by the order they went idle: the global LRU
    /// for `max_idle`. The value is the connection itself: its key and id
    /// come with it, so going idle copies no key.
    lru: BTreeMap<u64, C>,
    /// Requests waiting for a connection, oldest first (Go `idleConnWait`).
    idle_wait: HashMap<C::Key, WantQueue<C>>,
    /// dialing + idle + in use, per key.
    per_host: HashMap<C::Key, usize>,
    /// Requests waiting for a connection slot to dial (Go
    /// `connsPerHostWait`).
    conns_wait: HashMap<C::Key, WantQueue<C>>,
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

/// Wants for one key, oldest first (Go's `wantConnQueue`).
type WantQueue<C> = VecDeque<Arc<Want<C, <C as Poolable>::Key>>>;

struct Entry<K> {
    key: K,
    idle: bool,
    shared: bool,
}

struct IdleConn<C> {
    conn: C,
    since: Instant,
    /// `since` by the wall clock, which runs on while the machine sleeps
    /// (the monotonic clock does not): see [`idle_too_long`].
    since_wall: SystemTime,
    seq: u64,
}

impl<C: Poolable> Pool<C> {
    pub(crate) fn new(limits: Limits) -> Pool<C> {
        Pool {
            state: Mutex::new(State {
                conns: HashMap::new(),
                shared: HashMap::new(),
                shared_keys: HashMap::new(),
                dials: HashMap::new(),
                riders: HashMap::new(),
                idle: HashMap::new(),
                lru: BTreeMap::new(),
                idle_wait: HashMap::new(),
                per_host: HashMap::new(),
                conns_wait: HashMap::new(),
                dialing: 0,
                in_use: 0,
                waiting: 0,
                close_idle: false,
                closed: false,
                seq: 0,
            }),
            limits,
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        let st = self.state.lock();
        let mut c = Counts {
            idle: st.lru.len(),
            in_use: st.in_use,
            dialing: st.dialing,
            waiting: st.waiting,
            streams: 0,
        };
        for conn in st.shared.values().flatten() {
            match conn.streams() {
                0 => c.idle += 1,
                n => {
                    c.in_use += 1;
                    c.streams += n;
                }
            }
        }
        c
    }

    /// Go's `getConn` up to the wait: the most recently used idle
    /// connection for `key`; else, when `may_dial_here` and nothing for the
    /// key exists (nothing could be released meanwhile), a slot to dial on
    /// the caller's thread; else a want, with a dial slot if
    /// `max_conns_per_host` allows one. `trace` goes with the want to its
    /// dial.
    ///
    /// A shared connection to `key` with a stream free comes first. When
    /// the last connection made for the key was shared, or none was made
    /// yet and `shared_hint` says one likely will be (HTTP/2 by prior
    /// knowledge, or offered over TLS), a request that finds a dial to the
    /// key under way waits for it instead of dialling its own.
    pub(crate) fn checkout(
        &self,
        key: &C::Key,
        may_dial_here: bool,
        shared_hint: bool,
        trace: Option<&Arc<dyn ClientTrace>>,
    ) -> (Checkout<C>, Actions<C>) {
        let mut acts = Actions::default();
        let mut st = self.state.lock();
        st.close_idle = false;
        // Without keep-alives a shared connection serves one request
        // (Go's `singleUse`): never a second.
        if self.limits.keep_alives {
            if let Some(got) = take_shared_locked(&st, key) {
                return (Checkout::Idle(got), acts);
            }
        }
        if let Some(got) = self.take_idle_locked(&mut st, key, &mut acts) {
            return (Checkout::Idle(got), acts);
        }
        if may_dial_here && !st.per_host.contains_key(key) {
            st.per_host.insert(key.clone(), 1);
            st.dialing += 1;
            *st.dials.entry(key.clone()).or_insert(0) += 1;
            self.check_locked(&st);
            return (Checkout::DialHere, acts);
        }
        let want = Want::new(key.clone(), trace.cloned());
        st.waiting += 1;
        push_want(st.idle_wait.entry(key.clone()).or_default(), &want);
        // It rides on a dial under way to a key known to be shared, or on
        // a shared connection that has room but took no stream (its
        // server's SETTINGS are still to come).
        let rides = self.limits.keep_alives
            && ((st.shared_keys.get(key).copied().unwrap_or(shared_hint)
                && st.dials.get(key).is_some_and(|&n| n > 0))
                || self.with_room_locked(&st, key).is_some());
        if rides {
            push_want(st.riders.entry(key.clone()).or_default(), &want);
            self.check_locked(&st);
            return (Checkout::Wait { want, dial: false }, acts);
        }
        let max = self.limits.max_conns_per_host;
        let count = st.per_host.entry(key.clone()).or_insert(0);
        let dial = max == 0 || *count < max;
        if dial {
            *count += 1;
            st.dialing += 1;
            *st.dials.entry(key.clone()).or_insert(0) += 1;
        } else {
            push_want(st.conns_wait.entry(key.clone()).or_default(), &want);
        }
        self.check_locked(&st);
        (Checkout::Wait { want, dial }, acts)
    }

    /// A dial on the caller's thread ([`Checkout::DialHere`]) ended: a live
    /// connection is registered in use and returned; one that closed
    /// during its setup (or any, after shutdown) frees its slot and comes
    /// back in `Actions::close`, its error in the result; a failed dial
    /// frees its slot.
    pub(crate) fn dial_done_here(
        &self,
        key: &C::Key,
        res: Result<C, Error>,
    ) -> (Result<Got<C>, Error>, Actions<C>) {
        let mut acts = Actions::default();
        let mut st = self.state.lock();
        let mut got = self.register_dial_locked(&mut st, key, res, &mut acts);
        let shared = got
            .as_ref()
            .ok()
            .filter(|g| g.conn.is_shared())
            .map(|g| g.conn.clone());
        if let Some(conn) = &shared {
            // A dial thread's shared connection landed first and has a
            // stream free: the caller takes it, and this one is surplus.
            let other = st.shared.get(key).and_then(|l| {
                l.iter()
                    .find(|c| c.id() != conn.id() && self.limits.keep_alives && c.try_reserve())
                    .cloned()
            });
            if let Some(other) = other {
                got = Ok(Got {
                    reused: other.is_reused(),
                    was_idle: other.streams() == 1,
                    idle_time: Duration::ZERO,
                    conn: other,
                });
                // Kept if waiters take its streams or the other is full.
                self.serve_shared_locked(&mut st, conn);
                self.drop_surplus_locked(&mut st, conn, &mut acts);
                self.check_locked(&st);
                return (got, acts);
            }
        }
        if let Some(conn) = shared {
            // The dialler's stream first, then any waiters.
            if !conn.try_reserve() {
                got = Err(conn.closed_error());
            }
            self.serve_shared_locked(&mut st, &conn);
        }
        self.check_locked(&st);
        (got, acts)
    }

    /// A dial started for `want` ended (Go's `dialConnFor`): the result
    /// goes to the want; if it was already served or abandoned, a new
    /// connection goes to the next waiter or the idle list instead (Go's
    /// `putOrCloseIdleConn`), and an error has nobody to tell.
    pub(crate) fn dial_done(
        &self,
        want: &Arc<Want<C, C::Key>>,
        res: Result<C, Error>,
    ) -> Actions<C> {
        let mut acts = Actions::default();
        let mut st = self.state.lock();
        let result = self.register_dial_locked(&mut st, &want.key, res, &mut acts);
        if let Ok(got) = &result {
            if got.conn.is_shared() {
                let conn = got.conn.clone();
                if want.is_pending_locked() && self.has_room_locked(&st, &want.key, conn.id()) {
                    // Another shared connection to the key has room (or
                    // will, once its SETTINGS arrive): the request rides on
                    // it and this one is surplus (Go's `addConnIfNeeded`).
                    push_want(st.riders.entry(want.key.clone()).or_default(), want);
                    self.drop_surplus_locked(&mut st, &conn, &mut acts);
                    if let Some(other) = self.with_room_locked(&st, &want.key) {
                        self.serve_shared_locked(&mut st, &other);
                    }
                    self.check_locked(&st);
                    return acts;
                }
                let mine = want.is_pending_locked() && conn.try_reserve();
                if mine && want.deliver_locked(result).is_ok() {
                    st.waiting -= 1;
                }
                self.serve_shared_locked(&mut st, &conn);
                self.drop_surplus_locked(&mut st, &conn, &mut acts);
                self.reroute_riders_locked(&mut st, &want.key, &mut acts);
                self.check_locked(&st);
                return acts;
            }
        }
        match want.deliver_locked(result) {
            Ok(()) => st.waiting -= 1,
            Err(Ok(got)) => {
                if let Err(why) = self.try_put_idle_locked(&mut st, &got.conn, &mut acts) {
                    acts.close.push((got.conn, why));
                }
            }
            Err(Err(_)) => {}
        }
        self.check_locked(&st);
        acts
    }

    /// A dial finished (its slot counted in `dialing` and `per_host`): a
    /// live connection is registered in use; one that closed during setup,
    /// or any after shutdown, and a failed dial free the slot.
    fn register_dial_locked(
        &self,
        st: &mut State<C>,
        key: &C::Key,
        res: Result<C, Error>,
        acts: &mut Actions<C>,
    ) -> Result<Got<C>, Error> {
        st.dialing -= 1;
        if let Some(n) = st.dials.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                st.dials.remove(key);
            }
        }
        let dials_left = st.dials.contains_key(key);
        match res {
            Ok(conn) if !conn.is_closed() && !st.closed => {
                let shared = conn.is_shared();
                st.conns.insert(
                    conn.id(),
                    Entry {
                        key: key.clone(),
                        idle: false,
                        shared,
                    },
                );
                if st.shared_keys.get(key) != Some(&shared) {
                    st.shared_keys.insert(key.clone(), shared);
                }
                if shared {
                    st.shared.entry(key.clone()).or_default().push(conn.clone());
                } else {
                    st.in_use += 1;
                    // Riders hoped for a shared connection: each needs a
                    // connection of its own now.
                    self.unride_locked(st, key, acts);
                }
                Ok(Got {
                    reused: conn.is_reused(),
                    conn,
                    was_idle: false,
                    idle_time: Duration::ZERO,
                })
            }
            Ok(conn) => {
                self.dec_per_host_locked(st, key, acts);
                let err = conn.closed_error();
                if !dials_left && self.with_room_locked(st, key).is_none() {
                    fail_riders_locked(st, key, &err);
                }
                let why = if st.closed {
                    CloseReason::TransportDropped
                } else {
                    CloseReason::Broken
                };
                acts.close.push((conn, why));
                Err(err)
            }
            Err(err) => {
                self.dec_per_host_locked(st, key, acts);
                if !dials_left && self.with_room_locked(st, key).is_none() {
                    fail_riders_locked(st, key, &err);
                }
                Err(err)
            }
        }
    }

    /// Hands streams of the shared `conn` to the requests waiting for its
    /// key, oldest first, while it has streams free.
    fn serve_shared_locked(&self, st: &mut State<C>, conn: &C) {
        if !self.limits.keep_alives {
            return;
        }
        let key = conn.key();
        let Some(q) = st.idle_wait.get_mut(key) else {
            return;
        };
        let mut served = 0;
        while let Some(w) = q.front() {
            if !w.is_pending_locked() {
                q.pop_front();
                continue;
            }
            if !conn.try_reserve() {
                break;
            }
            let got = Got {
                conn: conn.clone(),
                reused: conn.is_reused(),
                was_idle: false,
                idle_time: Duration::ZERO,
            };
            if w.deliver_locked(Ok(got)).is_ok() {
                served += 1;
            }
            q.pop_front();
        }
        if q.is_empty() {
            st.idle_wait.remove(key);
        }
        st.waiting -= served;
    }

    /// Whether a shared connection to `key` other than `except` has room
    /// ([`Poolable::has_room`]). Never without keep-alives: then each
    /// serves one request.
    fn has_room_locked(&self, st: &State<C>, key: &C::Key, except: u64) -> bool {
        self.limits.keep_alives
            && st
                .shared
                .get(key)
                .is_some_and(|l| l.iter().any(|c| c.id() != except && c.has_room()))
    }

    /// The oldest shared connection to `key` with room (none without
    /// keep-alives).
    fn with_room_locked(&self, st: &State<C>, key: &C::Key) -> Option<C> {
        if !self.limits.keep_alives {
            return None;
        }
        st.shared.get(key)?.iter().find(|c| c.has_room()).cloned()
    }

    /// A shared connection without a stream (its dial's request was
    /// served by another and no waiter took a stream, or its last stream
    /// ended) while another shared connection to its key has room:
    /// closed, as Go closes the connection `addConnIfNeeded` did not use.
    fn drop_surplus_locked(&self, st: &mut State<C>, conn: &C, acts: &mut Actions<C>) {
        let key = conn.key();
        let others = self.has_room_locked(st, key, conn.id());
        if others && conn.streams() == 0 && conn.try_retire() {
            self.remove_shared_locked(st, conn);
            self.dec_per_host_locked(st, key, acts);
            acts.close.push((conn.clone(), CloseReason::NotInUse));
        }
    }

    /// Forgets a shared connection (its entry and list place). Leaves
    /// `per_host` to the caller. False if it was not there.
    fn remove_shared_locked(&self, st: &mut State<C>, conn: &C) -> bool {
        let id = conn.id();
        if st.conns.remove(&id).is_none() {
            return false;
        }
        let key = conn.key();
        if let Some(list) = st.shared.get_mut(key) {
            list.retain(|c| c.id() != id);
            if list.is_empty() {
                st.shared.remove(key);
            }
        }
        true
    }

    /// Riders still waiting when nothing they wait for can serve them (no
    /// dial to the key under way, no shared connection with room: the
    /// connections are full under the server's limit, or gone) get a dial
    /// of their own, as any request that finds every connection full.
    fn reroute_riders_locked(&self, st: &mut State<C>, key: &C::Key, acts: &mut Actions<C>) {
        let waiting = st
            .riders
            .get(key)
            .is_some_and(|q| q.iter().any(|w| w.is_pending_locked()));
        if waiting && !st.dials.contains_key(key) && self.with_room_locked(st, key).is_none() {
            self.unride_locked(st, key, acts);
        }
    }

    /// The dial riders waited for came back unshared (or see
    /// [`reroute_riders_locked`](Self::reroute_riders_locked)): each
    /// pending rider gets a dial slot of its own, or queues for one.
    fn unride_locked(&self, st: &mut State<C>, key: &C::Key, acts: &mut Actions<C>) {
        let Some(riders) = st.riders.remove(key) else {
            return;
        };
        let max = self.limits.max_conns_per_host;
        for w in riders {
            if !w.is_pending_locked() {
                continue;
            }
            let count = st.per_host.entry(key.clone()).or_insert(0);
            if max == 0 || *count < max {
                *count += 1;
                st.dialing += 1;
                *st.dials.entry(key.clone()).or_insert(0) += 1;
                acts.dial.push(w);
            } else {
                push_want(st.conns_wait.entry(key.clone()).or_default(), &w);
            }
        }
    }

    /// The requester gives up on `want` (Go `wantConn.cancel`): `None` if
    /// it was still pending; a connection delivered in the meantime comes
    /// back, in use, for the caller to put back.
    pub(crate) fn abandon(&self, want: &Arc<Want<C, C::Key>>) -> Option<Got<C>> {
        let mut st = self.state.lock();
        if want.finish_locked() {
            st.waiting -= 1;
            self.check_locked(&st);
            return None;
        }
        drop(st);
        match want.rx.try_recv() {
            Ok(Ok(got)) => Some(got),
            _ => None,
        }
    }

    /// Takes the most recently used live idle connection for `key`; closed
    /// ones and ones idle too long by the wall clock are dropped on the
    /// way (the latter into `acts.close`).
    fn take_idle_locked(
        &self,
        st: &mut State<C>,
        key: &C::Key,
        acts: &mut Actions<C>,
    ) -> Option<Got<C>> {
        let now_wall = SystemTime::now();
        loop {
            let ic = st.idle.get_mut(key).and_then(Vec::pop)?;
            st.lru.remove(&ic.seq);
            let id = ic.conn.id();
            let expired = idle_too_long(ic.since_wall, now_wall, self.limits.idle_timeout);
            if ic.conn.is_closed() || expired {
                // Its close is racing us, or it is due: account for it here.
                if let Some(e) = st.conns.remove(&id) {
                    debug_assert!(e.idle);
                    self.dec_per_host_locked(st, key, acts);
                }
                if expired {
                    acts.close.push((ic.conn, CloseReason::IdleTimeout));
                }
                continue;
            }
            if let Some(e) = st.conns.get_mut(&id) {
                e.idle = false;
            }
            // The key keeps its (maybe empty) list: a key with traffic is
            // copied when its first connection goes idle, not per request.
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
    /// Refuses with the reason; the caller then closes it.
    pub(crate) fn try_put_idle(&self, conn: &C) -> (Result<(), CloseReason>, Actions<C>) {
        let mut acts = Actions::default();
        let mut st = self.state.lock();
        let res = self.try_put_idle_locked(&mut st, conn, &mut acts);
        self.check_locked(&st);
        (res, acts)
    }

    fn try_put_idle_locked(
        &self,
        st: &mut State<C>,
        conn: &C,
        acts: &mut Actions<C>,
    ) -> Result<(), CloseReason> {
        // A shared connection tells the pool whenever a stream frees, its
        // server's SETTINGS included, which may come before the dial that
        // made it has registered it: unknown, not refused.
        if conn.is_shared() && !st.conns.contains_key(&conn.id()) {
            return Err(CloseReason::NotInUse);
        }
        if !self.limits.keep_alives {
            return Err(CloseReason::KeepAlivesDisabled);
        }
        if st.closed {
            return Err(CloseReason::TransportDropped);
        }
        if st.close_idle {
            return Err(CloseReason::CloseIdleRequested);
        }
        if conn.is_closed() {
            return Err(CloseReason::Broken);
        }
        match st.conns.get(&conn.id()) {
            Some(e) if e.shared => {
                // A stream freed (or the server allows more): the next
                // waiters get it; riders it cannot serve dial their own.
                self.serve_shared_locked(st, conn);
                self.reroute_riders_locked(st, conn.key(), acts);
                // Idle now, while another to the key has room: one
                // connection does (a burst may have dialled several).
                self.drop_surplus_locked(st, conn, acts);
                return Ok(());
            }
            Some(e) if !e.idle => {}
            _ => return Err(CloseReason::NotInUse),
        }
        let key = conn.key();
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
        let max_per_host = match self.limits.max_idle_per_host {
            0 => 2, // Go's DefaultMaxIdleConnsPerHost
            n => n,
        };
        if st
            .idle
            .get(key)
            .is_some_and(|list| list.len() >= max_per_host)
        {
            return Err(CloseReason::TooManyIdleForHost);
        }
        st.seq += 1;
        let seq = st.seq;
        let ic = IdleConn {
            conn: conn.clone(),
            since: Instant::now(),
            since_wall: SystemTime::now(),
            seq,
        };
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
        let max_idle = self.limits.max_idle;
        if max_idle > 0 && st.lru.len() > max_idle {
            if let Some((_, oldest)) = st.lru.pop_first() {
                if let Some(old) = self.remove_idle_entry_locked(st, oldest.key(), oldest.id()) {
                    self.dec_per_host_locked(st, old.key(), acts);
                    acts.close.push((old, CloseReason::TooManyIdle));
                }
            }
        }
        Ok(())
    }

    /// A connection closed: forget it and free its slot. Idempotent.
    pub(crate) fn closed(&self, conn: &C) -> Actions<C> {
        let mut acts = Actions::default();
        let mut st = self.state.lock();
        let id = conn.id();
        let Some(entry) = st.conns.get(&id) else {
            return acts;
        };
        let key = entry.key.clone();
        if entry.shared {
            self.remove_shared_locked(&mut st, conn);
            self.dec_per_host_locked(&mut st, &key, &mut acts);
            self.reroute_riders_locked(&mut st, &key, &mut acts);
            self.check_locked(&st);
            return acts;
        } else if entry.idle {
            self.remove_idle_entry_locked(&mut st, &key, id);
        } else {
            st.conns.remove(&id);
            st.in_use -= 1;
        }
        self.dec_per_host_locked(&mut st, &key, &mut acts);
        self.check_locked(&st);
        acts
    }

    /// Go's `closeConnIfStillIdle`, asked by a connection whose idle read
    /// timed out after `timeout`: an expired one is removed (the caller
    /// closes it).
    pub(crate) fn idle_check(&self, conn: &C, timeout: Duration) -> (IdleCheck, Actions<C>) {
        let mut acts = Actions::default();
        let mut st = self.state.lock();
        let id = conn.id();
        let key = conn.key();
        if st.conns.get(&id).is_some_and(|e| e.shared) {
            if !conn.try_retire() {
                return (IdleCheck::NotIdle, acts);
            }
            self.remove_shared_locked(&mut st, conn);
            self.dec_per_host_locked(&mut st, key, &mut acts);
            self.check_locked(&st);
            return (IdleCheck::Expired, acts);
        }
        let since = match st.conns.get(&id) {
            Some(e) if e.idle => st
                .idle
                .get(key)
                .and_then(|l| l.iter().find(|ic| ic.conn.id() == id))
                .map(|ic| ic.since),
            _ => None,
        };
        let Some(since) = since else {
            return (IdleCheck::NotIdle, acts);
        };
        let idle_for = since.elapsed();
        if idle_for < timeout {
            return (IdleCheck::Remaining(timeout - idle_for), acts);
        }
        self.remove_idle_entry_locked(&mut st, key, id);
        self.dec_per_host_locked(&mut st, key, &mut acts);
        self.check_locked(&st);
        (IdleCheck::Expired, acts)
    }

    /// Closes every idle connection now; connections in use close when
    /// released, until the next checkout. With `shut_down`, nothing goes
    /// idle again (the transport is gone).
    pub(crate) fn close_idle(&self, shut_down: bool) -> Actions<C> {
        let mut acts = Actions::default();
        let mut st = self.state.lock();
        st.close_idle = true;
        st.closed |= shut_down;
        for idle in std::mem::take(&mut st.lru).into_values() {
            if let Some(conn) = self.remove_idle_entry_locked(&mut st, idle.key(), idle.id()) {
                self.dec_per_host_locked(&mut st, conn.key(), &mut acts);
                acts.close.push((conn, CloseReason::ClosedIdle));
            }
        }
        // Shared connections without a stream close now; the others when
        // their last stream ends (they ask `try_put_idle`, which refuses).
        let shared: Vec<C> = st.shared.values().flatten().cloned().collect();
        for conn in shared {
            if conn.try_retire() {
                self.remove_shared_locked(&mut st, &conn);
                self.dec_per_host_locked(&mut st, conn.key(), &mut acts);
                acts.close.push((conn, CloseReason::ClosedIdle));
            }
        }
        self.check_locked(&st);
        acts
    }

    /// Removes an idle connection from its list, the LRU and `conns`.
    /// Leaves `per_host` to the caller.
    fn remove_idle_entry_locked(&self, st: &mut State<C>, key: &C::Key, id: u64) -> Option<C> {
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
    /// waiting for a slot gets it (into `acts.dial`); otherwise the count
    /// drops.
    fn dec_per_host_locked(&self, st: &mut State<C>, key: &C::Key, acts: &mut Actions<C>) {
        if let Some(q) = st.conns_wait.get_mut(key) {
            while let Some(w) = q.pop_front() {
                if w.is_pending_locked() {
                    st.dialing += 1;
                    *st.dials.entry(key.clone()).or_insert(0) += 1;
                    acts.dial.push(w);
                    if q.is_empty() {
                        st.conns_wait.remove(key);
                    }
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

    /// Checks the invariants of the module doc (debug builds only).
    fn check_locked(&self, st: &State<C>) {
        if cfg!(debug_assertions) {
            let idle_in_lists: usize = st.idle.values().map(Vec::len).sum();
            assert_eq!(idle_in_lists, st.lru.len(), "idle lists and LRU disagree");
            let idle_entries = st.conns.values().filter(|e| e.idle).count();
            assert_eq!(idle_entries, st.lru.len(), "idle entries and LRU disagree");
            let shared_entries = st.conns.values().filter(|e| e.shared).count();
            let shared_listed: usize = st.shared.values().map(Vec::len).sum();
            assert_eq!(shared_entries, shared_listed, "shared lists are off");
            assert_eq!(
                st.conns.len() - idle_entries - shared_entries,
                st.in_use,
                "in-use count is off"
            );
            let dials: usize = st.dials.values().sum();
            assert_eq!(dials, st.dialing, "per-key dial counts are off");
            let slots: usize = st.per_host.values().sum();
            assert_eq!(
                slots,
                st.dialing + st.conns.len(),
                "per-host counts are off"
            );
        }
    }
}

/// The oldest shared connection to `key` with a stream free, that stream
/// reserved.
fn take_shared_locked<C: Poolable>(st: &State<C>, key: &C::Key) -> Option<Got<C>> {
    let list = st.shared.get(key)?;
    let conn = list.iter().find(|c| c.try_reserve())?;
    Some(Got {
        reused: conn.is_reused(),
        was_idle: conn.streams() == 1,
        idle_time: Duration::ZERO,
        conn: conn.clone(),
    })
}

/// Every dial to `key` failed: requests riding on them get the error.
fn fail_riders_locked<C: Poolable>(st: &mut State<C>, key: &C::Key, err: &Error) {
    let Some(riders) = st.riders.remove(key) else {
        return;
    };
    for w in riders {
        if w.deliver_locked(Err(err.duplicate())).is_ok() {
            st.waiting -= 1;
        }
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

/// Queues `want`, first dropping finished wants from the front so queues of
/// abandoned requests do not grow.
fn push_want<C, K>(q: &mut VecDeque<Arc<Want<C, K>>>, want: &Arc<Want<C, K>>) {
    while q.front().is_some_and(|w| !w.is_pending_locked()) {
        q.pop_front();
    }
    q.push_back(want.clone());
}

impl<C: Poolable> fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("counts", &self.counts())
            .finish()
    }
}
