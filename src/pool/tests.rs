//! The pool's rules, one test each, over fake connections: no socket, no
//! thread, no timing. Every mutation also runs the debug invariant check.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

use super::*;
use crate::ErrorKind;

/// A connection as the pool sees it: an id, a key, and two flags the test
/// flips; a shared one (HTTP/2) also has its streams.
#[derive(Clone, Debug)]
struct Fake {
    id: u64,
    key: &'static str,
    closed: Arc<AtomicBool>,
    reused: Arc<AtomicBool>,
    shared: Option<Arc<FakeStreams>>,
}

/// The streams of a shared fake: the server's limit, how many are open or
/// reserved, and whether it was taken out of service.
#[derive(Debug)]
struct FakeStreams {
    max: usize,
    open: AtomicUsize,
    retired: AtomicBool,
    /// The server's SETTINGS arrived: until then, like `H2Conn`, one
    /// stream and room for more.
    settled: AtomicBool,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

fn conn(key: &'static str) -> Fake {
    Fake {
        id: NEXT.fetch_add(1, Ordering::Relaxed),
        key,
        closed: Arc::new(AtomicBool::new(false)),
        reused: Arc::new(AtomicBool::new(false)),
        shared: None,
    }
}

/// A shared connection (HTTP/2) whose server allows `max` streams at once.
fn h2(key: &'static str, max: usize) -> Fake {
    let c = h2_unsettled(key, max);
    c.streams_of().settled.store(true, Ordering::Relaxed);
    c
}

/// A shared connection whose server's SETTINGS have not arrived yet.
fn h2_unsettled(key: &'static str, max: usize) -> Fake {
    Fake {
        shared: Some(Arc::new(FakeStreams {
            max,
            open: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            settled: AtomicBool::new(false),
        })),
        ..conn(key)
    }
}

impl Fake {
    fn streams_of(&self) -> &FakeStreams {
        self.shared.as_deref().expect("a shared connection")
    }

    fn is_retired(&self) -> bool {
        self.streams_of().retired.load(Ordering::Relaxed)
    }
}

/// One stream of the shared `c` ended (its response done, or its
/// reservation given back).
fn end_stream(c: &Fake) {
    let was = c.streams_of().open.fetch_sub(1, Ordering::Relaxed);
    assert!(was > 0, "no stream to end");
}

/// A stream of the shared `c` ends and, as the connection does, tells the
/// pool a stream is free; the pool must keep it.
fn free_stream(pool: &Pool<Fake>, c: &Fake) -> Actions<Fake> {
    end_stream(c);
    let (res, acts) = pool.try_put_idle(c);
    assert_eq!(res, Ok(()));
    acts
}

impl Poolable for Fake {
    type Key = &'static str;

    fn id(&self) -> u64 {
        self.id
    }
    fn key(&self) -> &&'static str {
        &self.key
    }
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
    fn is_reused(&self) -> bool {
        self.reused.load(Ordering::Relaxed)
    }
    fn closed_error(&self) -> Error {
        Error::new(ErrorKind::Io, "closed during setup")
    }

    fn is_shared(&self) -> bool {
        self.shared.is_some()
    }
    fn try_reserve(&self) -> bool {
        let Some(s) = &self.shared else {
            return false;
        };
        if self.is_closed() || s.retired.load(Ordering::Relaxed) {
            return false;
        }
        let max = if s.settled.load(Ordering::Relaxed) {
            s.max
        } else {
            1
        };
        s.open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }
    fn streams(&self) -> usize {
        self.shared
            .as_ref()
            .map_or(0, |s| s.open.load(Ordering::Relaxed))
    }
    fn has_room(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| {
            !self.is_closed()
                && !s.retired.load(Ordering::Relaxed)
                && (!s.settled.load(Ordering::Relaxed) || s.open.load(Ordering::Relaxed) < s.max)
        })
    }
    fn try_retire(&self) -> bool {
        let Some(s) = &self.shared else {
            return true;
        };
        if s.open.load(Ordering::Relaxed) > 0 {
            return false;
        }
        s.retired.store(true, Ordering::Relaxed);
        true
    }
}

fn limits() -> Limits {
    Limits {
        max_idle: 100,
        max_idle_per_host: 2,
        max_conns_per_host: 0,
        idle_timeout: Some(Duration::from_secs(90)),
        keep_alives: true,
    }
}

type Wanted = Arc<Want<Fake, &'static str>>;

/// Checks out a new connection for `key` by dialling "here", as a request
/// to a host with nothing pooled does.
fn dial_here(pool: &Pool<Fake>, key: &'static str) -> Fake {
    let (co, acts) = pool.checkout(&key, true, false, None);
    assert!(acts.is_empty());
    assert!(
        matches!(co, Checkout::DialHere),
        "nothing existed for {key}"
    );
    let (got, acts) = pool.dial_done_here(&key, Ok(conn(key)));
    assert!(acts.is_empty());
    got.expect("registered").conn
}

/// Puts `c` back; it must be accepted.
fn put(pool: &Pool<Fake>, c: &Fake) -> Actions<Fake> {
    c.reused.store(true, Ordering::Relaxed);
    let (res, acts) = pool.try_put_idle(c);
    assert_eq!(res, Ok(()));
    acts
}

/// Checks out `key` and expects an idle connection.
fn take_idle(pool: &Pool<Fake>, key: &'static str) -> Got<Fake> {
    match pool.checkout(&key, true, false, None).0 {
        Checkout::Idle(got) => got,
        _ => panic!("expected an idle connection for {key}"),
    }
}

/// Checks out `key` without dialling here: a want, with or without a slot.
fn want(pool: &Pool<Fake>, key: &'static str) -> (Wanted, bool) {
    match pool.checkout(&key, false, false, None).0 {
        Checkout::Wait { want, dial } => (want, dial),
        _ => panic!("expected to wait for {key}"),
    }
}

fn delivered(w: &Wanted) -> Got<Fake> {
    w.rx.try_recv()
        .expect("delivered")
        .expect("a connection, not an error")
}

fn counts(pool: &Pool<Fake>) -> (usize, usize, usize, usize) {
    let c = pool.counts();
    (c.idle, c.in_use, c.dialing, c.waiting)
}

#[test]
fn the_most_recently_used_idle_connection_goes_first() {
    let pool = Pool::new(limits());
    let (a, b) = (dial_here(&pool, "h"), {
        // `h` exists now: a second connection is a want with a slot.
        let (w, dial) = want(&pool, "h");
        assert!(dial);
        assert!(pool.dial_done(&w, Ok(conn("h"))).is_empty());
        delivered(&w).conn
    });
    assert!(put(&pool, &a).is_empty());
    assert!(put(&pool, &b).is_empty());
    assert_eq!(counts(&pool), (2, 0, 0, 0));
    let first = take_idle(&pool, "h");
    assert_eq!(first.conn.id, b.id, "most recently used first");
    assert!(first.reused && first.was_idle);
    assert_eq!(take_idle(&pool, "h").conn.id, a.id);
    assert_eq!(counts(&pool), (0, 2, 0, 0));
}

#[test]
fn beyond_max_idle_the_least_recently_used_anywhere_is_evicted() {
    let pool = Pool::new(Limits {
        max_idle: 2,
        ..limits()
    });
    let (a, b, c) = (
        dial_here(&pool, "a"),
        dial_here(&pool, "b"),
        dial_here(&pool, "c"),
    );
    assert!(put(&pool, &a).is_empty());
    assert!(put(&pool, &b).is_empty());
    let acts = put(&pool, &c);
    let evicted: Vec<_> = acts.close.iter().map(|(c, why)| (c.id, *why)).collect();
    assert_eq!(evicted, [(a.id, CloseReason::TooManyIdle)]);
    assert_eq!(counts(&pool), (2, 0, 0, 0));
    // `a`'s host has no connection left: the next request dials there.
    assert!(matches!(
        pool.checkout(&"a", true, false, None).0,
        Checkout::DialHere
    ));
}

#[test]
fn beyond_max_idle_per_host_a_returned_connection_is_refused() {
    let pool = Pool::new(Limits {
        max_idle_per_host: 1,
        ..limits()
    });
    let a = dial_here(&pool, "h");
    let (w, _) = want(&pool, "h");
    assert!(pool.dial_done(&w, Ok(conn("h"))).is_empty());
    let b = delivered(&w).conn;
    assert!(put(&pool, &a).is_empty());
    let (res, acts) = pool.try_put_idle(&b);
    assert_eq!(res, Err(CloseReason::TooManyIdleForHost));
    assert!(acts.is_empty());
    // The refused one is still in use until its owner closes it.
    assert_eq!(counts(&pool), (1, 1, 0, 0));
    assert!(pool.closed(&b).is_empty());
    assert_eq!(counts(&pool), (1, 0, 0, 0));
}

#[test]
fn max_conns_per_host_queues_requests_for_a_slot_first_come_first_served() {
    let pool = Pool::new(Limits {
        max_conns_per_host: 1,
        ..limits()
    });
    let a = dial_here(&pool, "h");
    let (w1, dial1) = want(&pool, "h");
    let (w2, dial2) = want(&pool, "h");
    assert!(!dial1 && !dial2, "no slot while `a` exists");
    assert_eq!(counts(&pool), (0, 1, 0, 2));
    // `a` closes: its slot goes to the oldest waiter, which dials.
    let acts = pool.closed(&a);
    assert_eq!(acts.dial.len(), 1);
    assert!(Arc::ptr_eq(&acts.dial[0], &w1));
    assert_eq!(counts(&pool), (0, 0, 1, 2));
    assert!(pool.dial_done(&w1, Ok(conn("h"))).is_empty());
    let b = delivered(&w1).conn;
    // `b` is released: the next waiter gets it straight away.
    assert!(put(&pool, &b).is_empty());
    let got = delivered(&w2);
    assert_eq!(got.conn.id, b.id);
    assert!(got.reused && !got.was_idle);
    assert_eq!(counts(&pool), (0, 1, 0, 0));
}

#[test]
fn a_dial_that_finishes_after_its_want_was_served_is_not_wasted() {
    let pool = Pool::new(limits());
    let a = dial_here(&pool, "h");
    let (w1, dial) = want(&pool, "h");
    assert!(dial, "no limit: w1 dials");
    // `a` comes back first and serves w1.
    assert!(put(&pool, &a).is_empty());
    assert_eq!(delivered(&w1).conn.id, a.id);
    // w1's dial lands later: it goes to the next waiter...
    let (w2, dial2) = want(&pool, "h");
    assert!(dial2);
    let late = conn("h");
    assert!(pool.dial_done(&w1, Ok(late.clone())).is_empty());
    let got = delivered(&w2);
    assert_eq!(got.conn.id, late.id);
    assert!(!got.reused, "never served a request");
    // ...and w2's own dial, landing with nobody waiting, goes idle.
    assert!(pool.dial_done(&w2, Ok(conn("h"))).is_empty());
    assert_eq!(counts(&pool), (1, 2, 0, 0));
    let idle = take_idle(&pool, "h");
    assert!(idle.was_idle && !idle.reused);
}

#[test]
fn a_failed_dial_frees_its_slot_and_tells_its_waiter() {
    let pool = Pool::new(Limits {
        max_conns_per_host: 1,
        ..limits()
    });
    let (w1, dial) = want(&pool, "h");
    assert!(dial);
    let (w2, dial2) = want(&pool, "h");
    assert!(!dial2);
    let acts = pool.dial_done(&w1, Err(Error::new(ErrorKind::Connect, "refused")));
    let err = w1.rx.try_recv().expect("answered").expect_err("an error");
    assert_eq!(err.kind(), ErrorKind::Connect);
    // The freed slot goes to w2.
    assert_eq!(acts.dial.len(), 1);
    assert!(Arc::ptr_eq(&acts.dial[0], &w2));
    assert_eq!(counts(&pool), (0, 0, 1, 1));
}

#[test]
fn abandoning_a_want_after_delivery_hands_the_connection_back() {
    let pool = Pool::new(limits());
    let a = dial_here(&pool, "h");
    let (w, _) = want(&pool, "h");
    assert!(put(&pool, &a).is_empty());
    // The requester gave up in the same instant: the delivery comes back
    // to it, to put back; the want is no longer waiting.
    let got = pool.abandon(&w).expect("the delivered connection");
    assert_eq!(got.conn.id, a.id);
    assert_eq!(counts(&pool).3, 0);
    assert!(put(&pool, &got.conn).is_empty());
    // A want abandoned before any delivery is just dropped.
    let (w2, _) = want(&pool, "h2");
    assert!(pool.abandon(&w2).is_none());
    assert_eq!(counts(&pool), (1, 0, 2, 0), "both wants' dials are out");
    // Their dials, when they land, go idle.
    assert!(pool.dial_done(&w2, Ok(conn("h2"))).is_empty());
    assert!(pool.dial_done(&w, Ok(conn("h"))).is_empty());
    assert_eq!(counts(&pool), (3, 0, 0, 0));
}

#[test]
fn close_idle_connections_closes_idle_ones_and_refuses_late_returners_until_the_next_request() {
    let pool = Pool::new(limits());
    let (a, b) = (dial_here(&pool, "a"), dial_here(&pool, "b"));
    assert!(put(&pool, &a).is_empty());
    let acts = pool.close_idle(false);
    let closed: Vec<_> = acts.close.iter().map(|(c, why)| (c.id, *why)).collect();
    assert_eq!(closed, [(a.id, CloseReason::ClosedIdle)]);
    let (res, _) = pool.try_put_idle(&b);
    assert_eq!(res, Err(CloseReason::CloseIdleRequested));
    assert!(pool.closed(&b).is_empty());
    // A new request clears the mark.
    let c = dial_here(&pool, "c");
    assert!(put(&pool, &c).is_empty());
    assert_eq!(counts(&pool), (1, 0, 0, 0));
}

#[test]
fn after_shutdown_nothing_goes_idle_and_late_dials_are_closed() {
    let pool = Pool::new(limits());
    let (a, b) = (dial_here(&pool, "h"), dial_here(&pool, "k"));
    let (w, _) = want(&pool, "h");
    assert!(put(&pool, &a).is_empty(), "a serves w");
    assert!(pool.close_idle(true).is_empty(), "nothing idle");
    let (res, _) = pool.try_put_idle(&b);
    assert_eq!(res, Err(CloseReason::TransportDropped));
    // w's dial lands after the shutdown: unusable, closed.
    let late = conn("h");
    let acts = pool.dial_done(&w, Ok(late.clone()));
    let closed: Vec<_> = acts.close.iter().map(|(c, why)| (c.id, *why)).collect();
    assert_eq!(closed, [(late.id, CloseReason::TransportDropped)]);
    // A checkout after the shutdown clears close_idle, not `closed`.
    let _ = pool.checkout(&"z", true, false, None);
    let (res, _) = pool.try_put_idle(&delivered(&w).conn);
    assert_eq!(res, Err(CloseReason::TransportDropped));
}

#[test]
fn a_connection_that_closed_while_idle_is_skipped_at_checkout() {
    let pool = Pool::new(limits());
    let a = dial_here(&pool, "h");
    assert!(put(&pool, &a).is_empty());
    a.closed.store(true, Ordering::Relaxed);
    // Its close is racing the checkout: the pool forgets it and, nothing
    // being left for the host, lets the request dial here.
    assert!(matches!(
        pool.checkout(&"h", true, false, None).0,
        Checkout::DialHere
    ));
    assert_eq!(counts(&pool), (0, 0, 1, 0));
    // The close's own report finds nothing left to do.
    assert!(pool.closed(&a).is_empty());
}

#[test]
fn dialling_here_only_when_nothing_for_the_key_exists() {
    let pool = Pool::new(limits());
    let _a = dial_here(&pool, "h");
    // `a` is in use and could be released: wait for it while dialling.
    let (_, dial) = want(&pool, "h");
    assert!(dial);
    assert!(matches!(
        pool.checkout(&"h", true, false, None).0,
        Checkout::Wait { dial: true, .. }
    ));
    // A request that must stay interruptible never dials here.
    assert!(matches!(
        pool.checkout(&"other", false, false, None).0,
        Checkout::Wait { dial: true, .. }
    ));
}

#[test]
fn idle_checks_tell_due_from_remaining_from_in_use() {
    let pool = Pool::new(limits());
    let a = dial_here(&pool, "h");
    assert_eq!(pool.idle_check(&a, Duration::ZERO).0, IdleCheck::NotIdle);
    assert!(put(&pool, &a).is_empty());
    let (check, _) = pool.idle_check(&a, Duration::from_secs(3600));
    assert!(matches!(check, IdleCheck::Remaining(d) if d > Duration::from_secs(3500)));
    assert_eq!(pool.idle_check(&a, Duration::ZERO).0, IdleCheck::Expired);
    assert_eq!(counts(&pool), (0, 0, 0, 0), "expired: removed");
}

#[test]
fn keep_alives_disabled_pools_nothing() {
    let pool = Pool::new(Limits {
        keep_alives: false,
        ..limits()
    });
    let a = dial_here(&pool, "h");
    let (res, _) = pool.try_put_idle(&a);
    assert_eq!(res, Err(CloseReason::KeepAlivesDisabled));
}

#[test]
fn idle_age_is_judged_by_the_wall_clock() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let secs = Duration::from_secs;
    let too_long = |idle: Duration, timeout| idle_too_long(t0, t0 + idle, timeout);
    assert!(!too_long(secs(89), Some(secs(90))));
    assert!(!too_long(secs(90), Some(secs(90))));
    // A machine that slept for an hour: the monotonic clock says nothing
    // happened, the wall clock says the connection is stale.
    assert!(too_long(secs(3600), Some(secs(90))));
    // No timeout, or a zero one (= none): never too long.
    assert!(!too_long(secs(3600), None));
    assert!(!too_long(secs(3600), Some(Duration::ZERO)));
    // A wall clock stepped back is no time at all.
    assert!(!idle_too_long(t0 + secs(10), t0, Some(secs(1))));
}

// Shared connections (HTTP/2): one connection, many streams at once.

/// Checks out `key` with nothing for it existing, dials here and gets a
/// shared connection whose server allows `max` streams: the dialler holds
/// one of them.
fn dial_here_shared(pool: &Pool<Fake>, key: &'static str, max: usize) -> Fake {
    let (co, acts) = pool.checkout(&key, true, false, None);
    assert!(acts.is_empty());
    assert!(
        matches!(co, Checkout::DialHere),
        "nothing existed for {key}"
    );
    let c = h2(key, max);
    let (got, acts) = pool.dial_done_here(&key, Ok(c.clone()));
    assert!(acts.is_empty());
    assert_eq!(got.expect("registered").conn.id, c.id);
    assert_eq!(c.streams(), 1, "the dialler's stream");
    c
}

/// Checks out `key` as a request that knows the key is shared (HTTP/2 by
/// prior knowledge), without dialling here.
fn want_shared(pool: &Pool<Fake>, key: &'static str) -> (Wanted, bool) {
    match pool.checkout(&key, false, true, None) {
        (Checkout::Wait { want, dial }, acts) => {
            assert!(acts.is_empty());
            (want, dial)
        }
        _ => panic!("expected to wait for {key}"),
    }
}

/// Checks out `key` and expects a stream of a shared connection.
fn take_shared(pool: &Pool<Fake>, key: &'static str) -> Got<Fake> {
    match pool.checkout(&key, true, false, None) {
        (Checkout::Idle(got), acts) if got.conn.is_shared() => {
            assert!(acts.is_empty());
            got
        }
        _ => panic!("expected a shared connection for {key}"),
    }
}

/// idle, in use, dialing, waiting, streams.
fn stats(pool: &Pool<Fake>) -> (usize, usize, usize, usize, usize) {
    let c = pool.counts();
    (c.idle, c.in_use, c.dialing, c.waiting, c.streams)
}

fn closes(acts: &Actions<Fake>) -> Vec<(u64, CloseReason)> {
    acts.close.iter().map(|(c, why)| (c.id, *why)).collect()
}

/// The dials `acts` starts are exactly those of `wants`, in order.
fn dials_for(acts: &Actions<Fake>, wants: &[&Wanted]) -> bool {
    acts.dial.len() == wants.len() && acts.dial.iter().zip(wants).all(|(d, w)| Arc::ptr_eq(d, w))
}

fn failed(w: &Wanted) -> ErrorKind {
    w.rx.try_recv()
        .expect("answered")
        .expect_err("an error, not a connection")
        .kind()
}

fn refused() -> Error {
    Error::new(ErrorKind::Connect, "refused")
}

#[test]
fn a_dial_that_comes_back_shared_serves_its_request_and_the_waiters_up_to_the_stream_limit() {
    let pool = Pool::new(Limits {
        max_conns_per_host: 1,
        ..limits()
    });
    let (w1, dial) = want(&pool, "h");
    assert!(dial);
    let rest: Vec<_> = (0..3).map(|_| want(&pool, "h")).collect();
    assert!(rest.iter().all(|(_, dial)| !dial), "w1's dial has the slot");
    let s = h2("h", 3);
    assert!(pool.dial_done(&w1, Ok(s.clone())).is_empty());
    assert_eq!(delivered(&w1).conn.id, s.id);
    for (w, _) in &rest[..2] {
        let got = delivered(w);
        assert_eq!(got.conn.id, s.id);
        assert!(!got.was_idle);
    }
    assert!(rest[2].0.rx.is_empty(), "beyond the limit: still waiting");
    assert_eq!(stats(&pool), (0, 1, 0, 1, 3));

    // Its own request comes first, even when older waiters are left over.
    let pool = Pool::new(limits());
    let (old, _) = want(&pool, "k");
    let (mine, _) = want(&pool, "k");
    let s = h2("k", 1);
    assert!(pool.dial_done(&mine, Ok(s.clone())).is_empty());
    assert_eq!(delivered(&mine).conn.id, s.id);
    assert!(old.rx.is_empty(), "its own dial is still under way");
    assert_eq!(stats(&pool), (0, 1, 1, 1, 1));
}

#[test]
fn a_shared_connection_with_a_stream_free_comes_before_the_idle_list_and_before_dialling() {
    let pool = Pool::new(limits());
    let a = dial_here(&pool, "h");
    let (w, dial) = want(&pool, "h");
    assert!(dial);
    let s = h2("h", 10);
    assert!(pool.dial_done(&w, Ok(s.clone())).is_empty());
    assert_eq!(delivered(&w).conn.id, s.id);
    assert!(put(&pool, &a).is_empty());
    assert_eq!(stats(&pool), (1, 1, 0, 0, 1));
    let got = take_shared(&pool, "h");
    assert_eq!(got.conn.id, s.id);
    assert!(!got.was_idle, "it had a stream open");
    assert_eq!(stats(&pool), (1, 1, 0, 0, 2), "`a` stays idle; no dial");
    // With no stream at all it still comes first, and counts as was idle.
    assert!(free_stream(&pool, &s).is_empty());
    assert!(free_stream(&pool, &s).is_empty());
    assert_eq!(stats(&pool), (2, 0, 0, 0, 0));
    let got = take_shared(&pool, "h");
    assert_eq!(got.conn.id, s.id);
    assert!(got.was_idle);
    assert_eq!(stats(&pool), (1, 1, 0, 0, 1));
}

#[test]
fn a_full_shared_connection_makes_a_request_dial_or_wait_and_a_freed_stream_goes_to_the_oldest_waiter()
 {
    // No limit per host: a request that finds it full dials.
    let pool = Pool::new(limits());
    let _s = dial_here_shared(&pool, "h", 1);
    let (_, dial) = want(&pool, "h");
    assert!(dial, "full: a connection of its own");
    assert_eq!(stats(&pool), (0, 1, 1, 1, 1));

    // One connection per host: requests wait, and each stream that ends
    // goes to the oldest of them.
    let pool = Pool::new(Limits {
        max_conns_per_host: 1,
        ..limits()
    });
    let s = dial_here_shared(&pool, "h", 1);
    let (w1, dial1) = want(&pool, "h");
    let (w2, dial2) = want(&pool, "h");
    assert!(!dial1 && !dial2, "no slot: `s` holds it");
    assert_eq!(stats(&pool), (0, 1, 0, 2, 1));
    assert!(free_stream(&pool, &s).is_empty());
    let got = delivered(&w1);
    assert_eq!(got.conn.id, s.id);
    assert!(!got.was_idle);
    assert!(w2.rx.is_empty());
    assert_eq!(stats(&pool), (0, 1, 0, 1, 1));
    assert!(free_stream(&pool, &s).is_empty());
    assert_eq!(delivered(&w2).conn.id, s.id);
    assert_eq!(stats(&pool), (0, 1, 0, 0, 1));
}

#[test]
fn with_the_shared_hint_requests_ride_on_the_dial_under_way_instead_of_dialling_their_own() {
    let pool = Pool::new(limits());
    assert!(matches!(
        pool.checkout(&"h", true, true, None).0,
        Checkout::DialHere
    ));
    let (r1, dial1) = want_shared(&pool, "h");
    let (r2, dial2) = want_shared(&pool, "h");
    assert!(!dial1 && !dial2, "they ride on the dial under way");
    assert_eq!(stats(&pool), (0, 0, 1, 2, 0));
    // The dial here comes back shared: the dialler first, then the riders.
    let s = h2("h", 10);
    let (got, acts) = pool.dial_done_here(&"h", Ok(s.clone()));
    assert!(acts.is_empty());
    assert_eq!(got.expect("the dialler's").conn.id, s.id);
    assert_eq!(delivered(&r1).conn.id, s.id);
    assert_eq!(delivered(&r2).conn.id, s.id);
    assert_eq!(stats(&pool), (0, 1, 0, 0, 3));

    // Without the hint, a key never seen shared: each request dials.
    assert!(matches!(
        pool.checkout(&"k", true, false, None).0,
        Checkout::DialHere
    ));
    assert!(want(&pool, "k").1);
}

#[test]
fn a_key_that_had_a_shared_connection_makes_later_requests_ride_on_a_dial_under_way() {
    let pool = Pool::new(limits());
    let s = dial_here_shared(&pool, "h", 1);
    // Full: the next request dials; the one after rides on that dial.
    let (w, dial) = want(&pool, "h");
    assert!(dial);
    let (r, dial) = want(&pool, "h");
    assert!(!dial, "rides");
    assert_eq!(stats(&pool), (0, 1, 1, 2, 1));
    let s2 = h2("h", 10);
    assert!(pool.dial_done(&w, Ok(s2.clone())).is_empty());
    assert_eq!(delivered(&w).conn.id, s2.id);
    assert_eq!(delivered(&r).conn.id, s2.id);
    assert_eq!(stats(&pool), (0, 2, 0, 0, 3));
    // The key stays shared after its connections are gone.
    for c in [&s, &s2] {
        c.closed.store(true, Ordering::Relaxed);
        assert!(pool.closed(c).is_empty());
    }
    let (_, dial) = want(&pool, "h");
    assert!(dial);
    assert!(!want(&pool, "h").1, "rides");
}

#[test]
fn when_every_dial_riders_wait_for_fails_each_rider_gets_the_error() {
    let pool = Pool::new(limits());
    // Two dials under way before the key was known to be shared.
    let (w1, dial1) = want(&pool, "h");
    let (w2, dial2) = want(&pool, "h");
    assert!(dial1 && dial2);
    let (r1, dial1) = want_shared(&pool, "h");
    let (r2, dial2) = want_shared(&pool, "h");
    assert!(!dial1 && !dial2, "they ride");
    assert!(pool.dial_done(&w1, Err(refused())).is_empty());
    assert_eq!(failed(&w1), ErrorKind::Connect);
    assert!(
        r1.rx.is_empty() && r2.rx.is_empty(),
        "w2's dial is under way"
    );
    assert_eq!(stats(&pool), (0, 0, 1, 3, 0));
    let tls = Error::new(ErrorKind::Tls, "handshake");
    assert!(pool.dial_done(&w2, Err(tls)).is_empty());
    assert_eq!(failed(&w2), ErrorKind::Tls);
    assert_eq!(failed(&r1), ErrorKind::Tls, "the last dial's error");
    assert_eq!(failed(&r2), ErrorKind::Tls);
    assert_eq!(stats(&pool), (0, 0, 0, 0, 0));

    // The same for a dial on the caller's thread, and for a connection
    // that closed during its setup.
    for res in [Err(refused()), Ok(h2("k", 10))] {
        if let Ok(c) = &res {
            c.closed.store(true, Ordering::Relaxed);
        }
        assert!(matches!(
            pool.checkout(&"k", true, true, None).0,
            Checkout::DialHere
        ));
        let (r, dial) = want_shared(&pool, "k");
        assert!(!dial, "rides");
        let (got, _acts) = pool.dial_done_here(&"k", res);
        let kind = got.expect_err("the dial failed").kind();
        assert_eq!(failed(&r), kind);
        assert_eq!(stats(&pool), (0, 0, 0, 0, 0));
    }
}

#[test]
fn when_the_dial_riders_wait_for_comes_back_unshared_each_rider_gets_a_dial_of_its_own() {
    let pool = Pool::new(Limits {
        max_conns_per_host: 2,
        ..limits()
    });
    let (w, dial) = want_shared(&pool, "h");
    assert!(dial);
    let (r1, _) = want_shared(&pool, "h");
    let (gone, _) = want_shared(&pool, "h");
    let (r2, _) = want_shared(&pool, "h");
    assert!(pool.abandon(&gone).is_none());
    let a = conn("h");
    let acts = pool.dial_done(&w, Ok(a.clone()));
    assert!(acts.close.is_empty());
    assert!(dials_for(&acts, &[&r1]), "the second slot; `gone` skipped");
    assert_eq!(delivered(&w).conn.id, a.id);
    assert_eq!(stats(&pool), (0, 1, 1, 2, 0));
    // r1's dial lands; r2 is queued for a slot, which `a`'s close frees.
    assert!(pool.dial_done(&r1, Ok(conn("h"))).is_empty());
    let _ = delivered(&r1);
    let acts = pool.closed(&a);
    assert!(dials_for(&acts, &[&r2]));
    assert_eq!(stats(&pool), (0, 1, 1, 1, 0));
}

#[test]
fn a_shared_dial_nobody_needs_while_another_shared_connection_has_room_is_closed() {
    let pool = Pool::new(Limits {
        max_conns_per_host: 2,
        ..limits()
    });
    let (w1, dial1) = want(&pool, "h");
    let (w2, dial2) = want(&pool, "h");
    assert!(dial1 && dial2);
    let s1 = h2("h", 10);
    assert!(pool.dial_done(&w1, Ok(s1.clone())).is_empty());
    assert_eq!(delivered(&w1).conn.id, s1.id);
    assert_eq!(delivered(&w2).conn.id, s1.id, "served before its own dial");
    let s2 = h2("h", 10);
    let acts = pool.dial_done(&w2, Ok(s2.clone()));
    assert_eq!(closes(&acts), [(s2.id, CloseReason::NotInUse)]);
    assert!(acts.dial.is_empty());
    assert!(s2.is_retired());
    assert_eq!(stats(&pool), (0, 1, 0, 0, 2));
    // Its slot is free: once `s1` is gone too, nothing is left for the key.
    s1.closed.store(true, Ordering::Relaxed);
    assert!(pool.closed(&s1).is_empty());
    assert!(matches!(
        pool.checkout(&"h", true, false, None).0,
        Checkout::DialHere
    ));
}

#[test]
fn a_shared_dial_nobody_needs_is_kept_when_it_is_the_only_shared_connection() {
    let pool = Pool::new(limits());
    let (w, dial) = want(&pool, "h");
    assert!(dial);
    assert!(pool.abandon(&w).is_none());
    let s = h2("h", 10);
    assert!(pool.dial_done(&w, Ok(s.clone())).is_empty());
    assert!(!s.is_retired());
    assert_eq!(stats(&pool), (1, 0, 0, 0, 0));
    assert_eq!(take_shared(&pool, "h").conn.id, s.id);
}

#[test]
fn a_shared_dial_nobody_needs_is_kept_when_the_other_shared_connection_is_full() {
    let pool = Pool::new(limits());
    let (w1, _) = want(&pool, "h");
    let (w2, _) = want(&pool, "h");
    let s1 = h2("h", 1);
    assert!(pool.dial_done(&w1, Ok(s1.clone())).is_empty());
    let _ = delivered(&w1);
    // w1's stream ends and goes to w2: `s1` is full again.
    assert!(free_stream(&pool, &s1).is_empty());
    assert_eq!(delivered(&w2).conn.id, s1.id);
    // w2's own dial lands: `s1` has no room, so this is the room the next
    // request needs (Go's `addConnIfNeeded` keeps it unless another
    // connection `CanTakeNewRequest`).
    let s2 = h2("h", 1);
    let acts = pool.dial_done(&w2, Ok(s2.clone()));
    assert!(closes(&acts).is_empty(), "closed although `s1` is full");
    assert_eq!(stats(&pool), (1, 1, 0, 0, 1));
}

#[test]
fn a_closed_shared_connection_is_forgotten_and_its_slot_goes_to_a_request_queued_for_one() {
    let pool = Pool::new(Limits {
        max_conns_per_host: 1,
        ..limits()
    });
    let s = dial_here_shared(&pool, "h", 1);
    let (w, dial) = want(&pool, "h");
    assert!(!dial);
    s.closed.store(true, Ordering::Relaxed);
    let acts = pool.closed(&s);
    assert!(acts.close.is_empty());
    assert!(dials_for(&acts, &[&w]));
    assert_eq!(stats(&pool), (0, 0, 1, 1, 0));
    assert!(pool.closed(&s).is_empty(), "idempotent");
    assert_eq!(stats(&pool), (0, 0, 1, 1, 0));
    // Its last stream's end finds it gone: unknown to the pool (the
    // answer a connection not registered yet gets too).
    end_stream(&s);
    let (res, acts) = pool.try_put_idle(&s);
    assert_eq!(res, Err(CloseReason::NotInUse));
    assert!(acts.is_empty());
    assert_eq!(stats(&pool), (0, 0, 1, 1, 0));
}

#[test]
fn an_idle_check_expires_a_shared_connection_only_when_it_has_no_stream() {
    let pool = Pool::new(limits());
    let s = dial_here_shared(&pool, "h", 10);
    let (check, acts) = pool.idle_check(&s, Duration::ZERO);
    assert_eq!(check, IdleCheck::NotIdle);
    assert!(acts.is_empty());
    assert!(!s.is_retired());
    assert!(free_stream(&pool, &s).is_empty());
    assert_eq!(stats(&pool), (1, 0, 0, 0, 0));
    // The connection judged its own idle time before asking.
    let (check, acts) = pool.idle_check(&s, Duration::from_secs(90));
    assert_eq!(check, IdleCheck::Expired);
    assert!(acts.is_empty(), "the caller closes it");
    assert!(s.is_retired(), "no stream can be reserved on it any more");
    assert_eq!(stats(&pool), (0, 0, 0, 0, 0));
    assert_eq!(pool.idle_check(&s, Duration::ZERO).0, IdleCheck::NotIdle);
    // Its slot is free.
    assert!(matches!(
        pool.checkout(&"h", true, false, None).0,
        Checkout::DialHere
    ));
}

#[test]
fn close_idle_closes_shared_connections_without_streams_and_busy_ones_retire_after_their_last_stream()
 {
    let pool = Pool::new(limits());
    let quiet = dial_here_shared(&pool, "a", 10);
    assert!(free_stream(&pool, &quiet).is_empty());
    let busy = dial_here_shared(&pool, "b", 10);
    let _second = take_shared(&pool, "b");
    assert_eq!(stats(&pool), (1, 1, 0, 0, 2));
    let acts = pool.close_idle(false);
    assert_eq!(closes(&acts), [(quiet.id, CloseReason::ClosedIdle)]);
    assert!(acts.dial.is_empty());
    assert!(quiet.is_retired() && !busy.is_retired());
    assert_eq!(stats(&pool), (0, 1, 0, 0, 2));
    // Each of `busy`'s streams that ends is refused; the connection retires
    // (and closes) after the last, as the real one does.
    end_stream(&busy);
    let (res, _) = pool.try_put_idle(&busy);
    assert_eq!(res, Err(CloseReason::CloseIdleRequested));
    assert!(!busy.try_retire(), "a stream is left");
    end_stream(&busy);
    let (res, _) = pool.try_put_idle(&busy);
    assert_eq!(res, Err(CloseReason::CloseIdleRequested));
    assert!(busy.try_retire());
    busy.closed.store(true, Ordering::Relaxed);
    assert!(pool.closed(&busy).is_empty());
    assert_eq!(stats(&pool), (0, 0, 0, 0, 0));

    // A new request clears the mark: streams that end go back again.
    let c = dial_here_shared(&pool, "c", 10);
    assert!(pool.close_idle(false).is_empty(), "`c` is busy");
    let _z = dial_here(&pool, "z");
    assert!(free_stream(&pool, &c).is_empty());
    assert_eq!(stats(&pool), (1, 1, 0, 0, 0));
}

#[test]
fn counts_call_a_shared_connection_idle_without_streams_and_in_use_with_some_and_add_up_the_streams()
 {
    let pool = Pool::new(limits());
    let quiet = dial_here_shared(&pool, "a", 10);
    assert!(free_stream(&pool, &quiet).is_empty());
    let _b = dial_here_shared(&pool, "b", 10);
    let _second = take_shared(&pool, "b");
    let _c = dial_here_shared(&pool, "c", 10);
    let idle = dial_here(&pool, "d");
    assert!(put(&pool, &idle).is_empty());
    let _busy = dial_here(&pool, "e");
    assert_eq!(
        pool.counts(),
        Counts {
            idle: 2,
            in_use: 3,
            dialing: 0,
            waiting: 0,
            streams: 3,
        }
    );
}

#[test]
fn abandoning_a_want_that_was_handed_a_shared_stream_returns_it_to_give_back() {
    let pool = Pool::new(Limits {
        max_conns_per_host: 1,
        ..limits()
    });
    let s = dial_here_shared(&pool, "h", 1);
    let (w, dial) = want(&pool, "h");
    assert!(!dial);
    // The dialler's stream ends and goes to w, as w gives up.
    assert!(free_stream(&pool, &s).is_empty());
    let got = pool.abandon(&w).expect("the stream delivered");
    assert_eq!(got.conn.id, s.id);
    assert_eq!(s.streams(), 1, "still reserved for w");
    assert_eq!(stats(&pool), (0, 1, 0, 0, 1));
    // The caller gives the reservation back.
    assert!(free_stream(&pool, &got.conn).is_empty());
    assert_eq!(stats(&pool), (1, 0, 0, 0, 0));
}

#[test]
fn a_rider_a_full_shared_connection_cannot_serve_gets_a_dial_of_its_own() {
    let pool = Pool::new(limits());
    let (w, dial) = want_shared(&pool, "h");
    assert!(dial);
    let (r, dial) = want_shared(&pool, "h");
    assert!(!dial, "rides");
    // The server allows one stream, and w took it: every connection is
    // full, so r dials, as any request that finds them full.
    let s = h2("h", 1);
    let acts = pool.dial_done(&w, Ok(s.clone()));
    assert_eq!(delivered(&w).conn.id, s.id);
    assert!(dials_for(&acts, &[&r]), "{:?}", stats(&pool));
}

#[test]
fn a_rider_waits_for_the_settings_of_a_new_connection_and_then_for_its_streams() {
    let pool = Pool::new(limits());
    let (w, _) = want_shared(&pool, "h");
    let (r1, _) = want_shared(&pool, "h");
    let (r2, _) = want_shared(&pool, "h");
    let s = h2_unsettled("h", 2);
    // Before its SETTINGS it takes one stream; the riders wait for them.
    assert!(pool.dial_done(&w, Ok(s.clone())).is_empty());
    assert_eq!(delivered(&w).conn.id, s.id);
    assert!(r1.rx.is_empty() && r2.rx.is_empty());
    // SETTINGS: two streams. r1 gets the second; r2 finds it full and
    // dials.
    s.streams_of().settled.store(true, Ordering::Relaxed);
    let (res, acts) = pool.try_put_idle(&s);
    assert_eq!(res, Ok(()));
    assert_eq!(delivered(&r1).conn.id, s.id);
    assert!(dials_for(&acts, &[&r2]), "{:?}", stats(&pool));
}

/// A dial that lands while another shared connection to its key has room
/// (or awaits its SETTINGS) is surplus: its request rides on the other.
#[test]
fn a_dial_that_lands_while_another_shared_connection_has_room_is_closed_and_its_request_rides() {
    let pool = Pool::new(limits());
    let (w1, d1) = want(&pool, "h");
    let (w2, d2) = want(&pool, "h");
    assert!(d1 && d2, "the key is not known to be shared yet: both dial");
    let s1 = h2_unsettled("h", 10);
    assert!(pool.dial_done(&w1, Ok(s1.clone())).is_empty());
    assert_eq!(delivered(&w1).conn.id, s1.id);
    let s2 = h2_unsettled("h", 10);
    let acts = pool.dial_done(&w2, Ok(s2.clone()));
    assert_eq!(closes(&acts), vec![(s2.id, CloseReason::NotInUse)]);
    assert!(w2.rx.is_empty(), "w2 waits for s1's SETTINGS");
    s1.streams_of().settled.store(true, Ordering::Relaxed);
    let (res, acts) = pool.try_put_idle(&s1);
    assert!(res.is_ok() && acts.is_empty());
    assert_eq!(delivered(&w2).conn.id, s1.id);
    assert_eq!(stats(&pool), (0, 1, 0, 0, 2));
}

#[test]
fn a_rider_still_waiting_when_the_shared_connection_it_rode_on_closes_is_not_forgotten() {
    let pool = Pool::new(limits());
    let (w, dial) = want_shared(&pool, "h");
    assert!(dial);
    let (r, dial) = want_shared(&pool, "h");
    assert!(!dial, "rides");
    let s = h2_unsettled("h", 1);
    assert!(pool.dial_done(&w, Ok(s.clone())).is_empty());
    let _ = delivered(&w);
    assert!(r.rx.is_empty(), "full: r waits for a stream");
    // The connection dies (the server went away) with w's stream open.
    s.closed.store(true, Ordering::Relaxed);
    let acts = pool.closed(&s);
    // Nothing else will answer r now: it needs a dial of its own (or an
    // error).
    let answered = dials_for(&acts, &[&r]) || !r.rx.is_empty();
    assert!(
        answered,
        "r is left waiting with no dial, no connection and no place in a slot queue: {:?}",
        stats(&pool)
    );
}

#[test]
fn without_keep_alives_a_shared_connection_serves_one_request() {
    let pool = Pool::new(Limits {
        keep_alives: false,
        ..limits()
    });
    let s = dial_here_shared(&pool, "h", 10);
    let (w, dial) = want(&pool, "h");
    assert!(dial, "`s` has room but serves no second request");
    let s2 = h2("h", 10);
    assert!(pool.dial_done(&w, Ok(s2.clone())).is_empty());
    assert_eq!(delivered(&w).conn.id, s2.id);
    assert_eq!(stats(&pool), (0, 2, 0, 0, 2));
    // Its stream ends: refused, so the connection retires and closes.
    end_stream(&s);
    let (res, acts) = pool.try_put_idle(&s);
    assert_eq!(res, Err(CloseReason::KeepAlivesDisabled));
    assert!(acts.is_empty());
    assert!(s.try_retire());
    s.closed.store(true, Ordering::Relaxed);
    assert!(pool.closed(&s).is_empty());
    assert_eq!(stats(&pool), (0, 1, 0, 0, 1));
}

#[test]
fn without_keep_alives_a_request_to_a_shared_key_gets_a_connection_of_its_own() {
    let pool = Pool::new(Limits {
        keep_alives: false,
        ..limits()
    });
    let (w, dial) = want_shared(&pool, "h");
    assert!(dial);
    let (r, dial) = want_shared(&pool, "h");
    let s = h2("h", 10);
    let acts = pool.dial_done(&w, Ok(s.clone()));
    assert_eq!(delivered(&w).conn.id, s.id);
    // `s` serves nobody else: r needs a dial of its own, at checkout or now.
    let answered = dial || dials_for(&acts, &[&r]) || !r.rx.is_empty();
    assert!(
        answered,
        "r rides on a dial whose connection will never serve it: {:?}",
        stats(&pool)
    );
}

/// A request that finds a shared connection waiting for its server's
/// SETTINGS (room, but one stream taken) waits for them: no dial.
#[test]
fn a_request_waits_for_the_settings_of_a_shared_connection_instead_of_dialling() {
    let pool = Pool::new(limits());
    let s = h2_unsettled("h", 10);
    let (w, _) = want(&pool, "h");
    assert!(pool.dial_done(&w, Ok(s.clone())).is_empty());
    assert_eq!(delivered(&w).conn.id, s.id);
    let (r, dial) = want(&pool, "h");
    assert!(!dial, "rides on s");
    assert!(r.rx.is_empty());
    s.streams_of().settled.store(true, Ordering::Relaxed);
    let (res, acts) = pool.try_put_idle(&s);
    assert!(res.is_ok() && acts.is_empty());
    assert_eq!(delivered(&r).conn.id, s.id);
}

/// Two shared connections to a key (a burst filled the first before the
/// second landed): the one whose last stream ends while the other has
/// room is closed, so the key keeps one connection and two threads.
#[test]
fn a_shared_connection_that_goes_idle_while_another_has_room_is_closed() {
    let pool = Pool::new(limits());
    let (w1, _) = want(&pool, "h");
    let (w2, _) = want(&pool, "h");
    let (w3, _) = want(&pool, "h");
    let a = h2("h", 2);
    assert!(pool.dial_done(&w1, Ok(a.clone())).is_empty());
    assert_eq!(delivered(&w1).conn.id, a.id);
    assert_eq!(delivered(&w2).conn.id, a.id);
    // a is full: w3 keeps the connection its own dial brings.
    let b = h2("h", 2);
    assert!(pool.dial_done(&w3, Ok(b.clone())).is_empty());
    assert_eq!(delivered(&w3).conn.id, b.id);
    // b goes idle while a is full: kept.
    assert!(free_stream(&pool, &b).is_empty());
    // a's streams end: one left, a has a stream (kept); none left, and b
    // has room: a goes.
    assert!(free_stream(&pool, &a).is_empty());
    let acts = free_stream(&pool, &a);
    assert_eq!(closes(&acts), vec![(a.id, CloseReason::NotInUse)]);
    assert_eq!(stats(&pool), (1, 0, 1, 0, 0), "b idle; w2's dial under way");
    // w2's own dial lands, unneeded: closed too.
    let c = h2("h", 2);
    let acts = pool.dial_done(&w2, Ok(c.clone()));
    assert_eq!(closes(&acts), vec![(c.id, CloseReason::NotInUse)]);
    assert_eq!(stats(&pool), (1, 0, 0, 0, 0), "b alone");
}

/// The hint says "likely shared" (HTTP/2 offered over TLS): once a
/// connection to the key comes back unshared (the server chose HTTP/1.1),
/// requests dial their own again instead of riding.
#[test]
fn a_key_whose_connection_came_back_unshared_is_not_ridden_any_more() {
    let pool = Pool::new(limits());
    let (w, dial) = want_shared(&pool, "h");
    assert!(dial);
    let (r, dial) = want_shared(&pool, "h");
    assert!(!dial, "likely shared: rides on w's dial");
    let c = conn("h");
    let acts = pool.dial_done(&w, Ok(c.clone()));
    assert_eq!(delivered(&w).conn.id, c.id);
    assert!(
        dials_for(&acts, &[&r]),
        "unshared: r gets a dial of its own"
    );
    let (_w2, d2) = want_shared(&pool, "h");
    let (_w3, d3) = want_shared(&pool, "h");
    assert!(d2 && d3, "known unshared now: each dials, hint or not");
}
