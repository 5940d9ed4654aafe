//! The pool's rules, one test each, over fake connections: no socket, no
//! thread, no timing. Every mutation also runs the debug invariant check.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use super::*;
use crate::ErrorKind;

/// A connection as the pool sees it: an id, a key, and two flags the test
/// flips.
#[derive(Clone, Debug)]
struct Fake {
    id: u64,
    key: &'static str,
    closed: Arc<AtomicBool>,
    reused: Arc<AtomicBool>,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

fn conn(key: &'static str) -> Fake {
    Fake {
        id: NEXT.fetch_add(1, Ordering::Relaxed),
        key,
        closed: Arc::new(AtomicBool::new(false)),
        reused: Arc::new(AtomicBool::new(false)),
    }
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
