//! Cancellation from another thread and deadlines, at every stage: the pool
//! wait, the header wait and the body read. After each the transport's
//! threads return to zero.

mod support;

use std::{
    io::{self, Read, Write},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{CancelToken, Client, ErrorKind, Response, Transport};
use support::{
    LeakCheck, Recorder, ScriptedServer, assert_times_out, client, get_traced, ok_server,
    silent_server, spawn_result, spawn_traced_get, traced_get_served, wait_stats, wait_until,
};

const LIMIT: Duration = Duration::from_secs(5);

/// Sends a head promising 1000 bytes, then one byte every 50 ms.
fn trickle_server() -> ScriptedServer {
    ScriptedServer::start(|mut c| {
        if c.read_head().is_none() {
            return;
        }
        c.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        for _ in 0..200 {
            if c.stream
                .write_all(b"x")
                .and_then(|()| c.stream.flush())
                .is_err()
            {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    })
}

/// Reads `resp` until an error (or EOF), counting bytes into `n`.
fn read_until_error(mut resp: Response, n: &AtomicUsize) -> io::Result<usize> {
    let mut buf = [0; 64];
    loop {
        match resp.read(&mut buf) {
            Ok(0) => return Ok(n.load(Ordering::SeqCst)),
            Ok(k) => {
                n.fetch_add(k, Ordering::SeqCst);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The `nethttp::Error` inside a body read error.
fn inner_kind(e: &io::Error) -> ErrorKind {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<nethttp::Error>())
        .unwrap_or_else(|| panic!("io error without a nethttp::Error inside: {e:?}"))
        .kind()
}

/// A transport allowing one connection per host, its client, and an unread
/// response to `url` holding that connection: the next request waits in
/// the pool.
fn one_conn_held(url: &str) -> (Transport, LeakCheck, Client, Response) {
    let t = Transport::builder().max_conns_per_host(1).build();
    let leaks = LeakCheck::new(&t);
    let c = client(&t);
    let held = c.get(url).send().expect("held");
    (t, leaks, c, held)
}

/// Sends a GET of `url` with `token` from another thread and returns once
/// it waits in `t`'s pool.
fn spawn_pool_waiter(
    t: &Transport,
    c: &Client,
    url: &str,
    token: &CancelToken,
) -> mpsc::Receiver<nethttp::Result<()>> {
    let (c, url, token) = (c.clone(), url.to_string(), token.clone());
    let rx = spawn_result(move || c.get(&url).cancel(token).send().map(drop));
    wait_stats(t, LIMIT, |s| s.waiting == 1);
    rx
}

/// Waits for the request on `rx` to end and asserts it was canceled.
#[track_caller]
fn recv_canceled(rx: &mpsc::Receiver<nethttp::Result<()>>) -> nethttp::Error {
    let err = rx
        .recv_timeout(LIMIT)
        .expect("request ends")
        .expect_err("canceled");
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    err
}

#[test]
fn cancel_in_the_pool_wait() {
    let server = ok_server("hello");
    let url = server.url("/");
    let (t, _leaks, c, held) = one_conn_held(&url);

    let token = CancelToken::new();
    let rx = spawn_pool_waiter(&t, &c, &url, &token);
    token.cancel();
    let err = recv_canceled(&rx);
    assert!(!err.is_timeout());
    let s = t.stats();
    assert_eq!((s.waiting, s.conns, s.dialing), (0, 1, 0), "{s:?}");

    // The pool is intact: the held connection is reused afterwards.
    assert_eq!(held.text().expect("text"), "hello");
    let (r, rec) = get_traced(&c, &url);
    assert!(rec.conns()[0].reused);
    assert_eq!(r.text().expect("text"), "hello");
    assert_eq!(server.accepted(), 1);
}

#[test]
fn cancel_in_the_header_wait_closes_the_connection() {
    let server = silent_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let token = CancelToken::new();
    let rec = Recorder::new();
    let rx = {
        let (c, url, token, rec) = (c.clone(), server.url("/"), token.clone(), rec.clone());
        spawn_result(move || c.get(&url).cancel(token).trace(rec).send().map(drop))
    };
    assert!(
        wait_until(LIMIT, || rec
            .events()
            .iter()
            .any(|e| e == "wrote_request ok")),
        "request never written: {:?}",
        rec.events()
    );
    let start = Instant::now();
    token.cancel();
    recv_canceled(&rx);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
}

#[test]
fn cancel_during_the_body_read() {
    let server = trickle_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let token = CancelToken::new();
    let resp = c
        .get(server.url("/"))
        .cancel(token.clone())
        .send()
        .expect("head");
    let n = Arc::new(AtomicUsize::new(0));
    let rx = {
        let n = n.clone();
        spawn_result(move || read_until_error(resp, &n))
    };
    assert!(
        wait_until(LIMIT, || n.load(Ordering::SeqCst) >= 2),
        "no body bytes"
    );
    let start = Instant::now();
    token.cancel();
    let err = rx
        .recv_timeout(LIMIT)
        .expect("the blocked read returns")
        .expect_err("canceled");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(err.kind(), io::ErrorKind::Other, "{err:?}");
    assert_eq!(inner_kind(&err), ErrorKind::Canceled, "{err:?}");
    wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
}

#[test]
fn already_canceled_token_does_not_connect() {
    let server = ok_server("hello");
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let token = CancelToken::new();
    token.cancel();
    let err = c
        .get(server.url("/"))
        .cancel(token)
        .send()
        .expect_err("canceled");
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    let s = t.stats();
    assert_eq!(
        (s.dialing, s.threads, s.conns, s.waiting),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert_eq!(server.accepted(), 0);
}

#[test]
fn request_timeout_in_the_header_wait() {
    let server = silent_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    assert_times_out(
        "header wait",
        Duration::from_millis(290),
        Duration::from_secs(2),
        || {
            c.get(server.url("/"))
                .timeout(Duration::from_millis(300))
                .send()
        },
    );
    wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
}

/// GETs from the trickling server with `c` (and `req_timeout` if given),
/// reads the body until it fails, and asserts that a deadline of 300 ms
/// ended the read. `what` names the case in failure messages.
#[track_caller]
fn trickle_read_times_out(what: &str, c: &Client, url: &str, req_timeout: Option<Duration>) {
    let start = Instant::now();
    let mut b = c.get(url);
    if let Some(d) = req_timeout {
        b = b.timeout(d);
    }
    let resp = b.send().expect("the head arrives in time");
    let n = Arc::new(AtomicUsize::new(0));
    let rx = spawn_result(move || read_until_error(resp, &n));
    let err = rx
        .recv_timeout(LIMIT)
        .expect("the deadline ends the read")
        .expect_err("the body cannot finish in time");
    let took = start.elapsed();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{what}: {err:?}");
    assert_eq!(inner_kind(&err), ErrorKind::Timeout, "{what}: {err:?}");
    assert!(took >= Duration::from_millis(290), "{what}: after {took:?}");
    assert!(took < Duration::from_millis(1300), "{what}: after {took:?}");
}

#[test]
fn request_timeout_in_the_body_read() {
    let server = trickle_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    trickle_read_times_out(
        "body read",
        &c,
        &server.url("/"),
        Some(Duration::from_millis(300)),
    );
    wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
}

#[test]
fn client_timeout_bounds_the_whole_exchange() {
    let trickle = trickle_server();
    let silent = silent_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = Client::builder()
        .transport(t.clone())
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");

    trickle_read_times_out("body read", &c, &trickle.url("/"), None);
    assert_times_out(
        "header wait",
        Duration::from_millis(290),
        Duration::from_secs(2),
        || c.get(silent.url("/")).send(),
    );
    wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
}

#[test]
fn earlier_of_client_and_request_timeouts_wins() {
    let silent = silent_server();
    let trickle = trickle_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let short = Duration::from_millis(300);
    let long = Duration::from_secs(10);
    let build = |d: Duration| {
        Client::builder()
            .transport(t.clone())
            .timeout(d)
            .build()
            .expect("client")
    };
    let long_client = build(long);
    let short_client = build(short);

    for (c, req_timeout, what) in [
        (&long_client, short, "request"),
        (&short_client, long, "client"),
    ] {
        let case = format!("{what} timeout (300 ms) must win");
        assert_times_out(
            &format!("header wait: {case}"),
            Duration::from_millis(290),
            Duration::from_secs(2),
            || c.get(silent.url("/")).timeout(req_timeout).send(),
        );
        trickle_read_times_out(
            &format!("body read: {case}"),
            c,
            &trickle.url("/"),
            Some(req_timeout),
        );
    }
    wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
}

#[test]
fn canceled_waiter_is_skipped_when_a_connection_is_released() {
    let server = ok_server("hello");
    let url = server.url("/");
    let (t, _leaks, c, held) = one_conn_held(&url);

    let token = CancelToken::new();
    let first = spawn_pool_waiter(&t, &c, &url, &token);
    let second = spawn_traced_get(&c, &url);
    wait_stats(&t, LIMIT, |s| s.waiting == 2);
    token.cancel();
    recv_canceled(&first);
    assert_eq!(t.stats().waiting, 1);

    assert_eq!(held.text().expect("text"), "hello");
    let info = traced_get_served(&second, LIMIT, b"hello");
    assert!(
        info.reused && !info.was_idle,
        "handed over from the release: {info:?}"
    );
    let s = t.stats();
    assert_eq!((s.waiting, s.idle, s.conns), (0, 1, 1), "{s:?}");
    assert_eq!(server.accepted(), 1);
}

#[test]
fn request_timeout_in_the_pool_wait_is_timeout() {
    let server = ok_server("hello");
    let url = server.url("/");
    let (t, _leaks, c, held) = one_conn_held(&url);

    assert_times_out(
        "pool wait: the request deadline, not the pool's",
        Duration::from_millis(190),
        Duration::from_secs(2),
        || c.get(&url).timeout(Duration::from_millis(200)).send(),
    );
    assert_eq!(t.stats().waiting, 0);
    assert_eq!(held.text().expect("text"), "hello");
    assert_eq!(t.stats().idle, 1);
}

#[test]
fn cancel_or_deadline_after_eof_leaves_the_pooled_connection_alone() {
    let server = ok_server("hello");
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let token = CancelToken::new();
    let r = c.get(&url).cancel(token.clone()).send().expect("request");
    assert_eq!(r.text().expect("text"), "hello");
    let r = c
        .get(&url)
        .timeout(Duration::from_millis(100))
        .send()
        .expect("request");
    assert_eq!(r.text().expect("text"), "hello");
    token.cancel();
    // Past the second request's deadline.
    thread::sleep(Duration::from_millis(250));
    let s = t.stats();
    assert_eq!((s.idle, s.conns, s.threads), (1, 1, 2), "{s:?}");

    let (r, rec) = get_traced(&c, &url);
    assert!(rec.conns()[0].reused, "{:?}", rec.events());
    assert_eq!(r.text().expect("text"), "hello");
    assert_eq!(server.accepted(), 1);
}

/// A token nobody cancels may be dropped at any time: only `cancel()`
/// cancels (API.md, "Safety rules"). Here the request owns the only clone,
/// so it is gone once `send` returns, and the body is read afterwards: a
/// large one streamed, and a small one read after a pause.
#[test]
fn a_dropped_token_that_was_never_canceled_cancels_nothing() {
    let server = ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            let n = if head.contains("/big") { 1 << 20 } else { 5 };
            c.write(format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n"));
            c.write(vec![b'x'; n]);
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let big = c.get(server.url("/big")).cancel(CancelToken::new()).send();
    let big = big.expect("send").bytes().expect("1 MiB body");
    assert_eq!(big.len(), 1 << 20);

    let small = c
        .get(server.url("/small"))
        .cancel(CancelToken::new())
        .send();
    let small = small.expect("send");
    thread::sleep(Duration::from_millis(100));
    assert_eq!(small.bytes().expect("small body after a pause"), b"xxxxx");

    // A token kept (but never canceled) by the caller, dropped mid-body.
    let token = CancelToken::new();
    let mut resp = c
        .get(server.url("/big"))
        .cancel(token.clone())
        .send()
        .unwrap();
    let mut first = [0; 1000];
    resp.read_exact(&mut first).unwrap();
    drop(token);
    thread::sleep(Duration::from_millis(50));
    let mut rest = Vec::new();
    resp.read_to_end(&mut rest).expect("rest of the body");
    assert_eq!(first.len() + rest.len(), 1 << 20);
}
