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
use support::{LeakCheck, Recorder, ScriptedServer, client, wait_stats, wait_until};

const LIMIT: Duration = Duration::from_secs(5);

fn ok_server() -> ScriptedServer {
    ScriptedServer::start(|mut c| {
        while c.read_request().is_some() {
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        }
    })
}

/// Reads the request, never answers; ends when the client hangs up.
fn silent_server() -> ScriptedServer {
    ScriptedServer::start(|mut c| {
        let _ = c.read_head();
        let _ = c.read_head();
    })
}

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

fn spawn_result<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
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

#[test]
fn cancel_in_the_pool_wait() {
    let server = ok_server();
    let t = Transport::builder().max_conns_per_host(1).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let held = c.get(&url).send().expect("held");
    let token = CancelToken::new();
    let rx = {
        let (c, url, token) = (c.clone(), url.clone(), token.clone());
        spawn_result(move || c.get(&url).cancel(token).send().map(drop))
    };
    wait_stats(&t, LIMIT, |s| s.waiting == 1);
    token.cancel();
    let err = rx
        .recv_timeout(LIMIT)
        .expect("request ends")
        .expect_err("canceled");
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    assert!(!err.is_timeout());
    let s = t.stats();
    assert_eq!((s.waiting, s.conns, s.dialing), (0, 1, 0), "{s:?}");

    // The pool is intact: the held connection is reused afterwards.
    assert_eq!(held.text().expect("text"), "hello");
    let rec = Recorder::new();
    let r = c.get(&url).trace(rec.clone()).send().expect("after");
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
    let err = rx
        .recv_timeout(LIMIT)
        .expect("request ends")
        .expect_err("canceled");
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
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
    let server = ok_server();
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

    let start = Instant::now();
    let err = c
        .get(server.url("/"))
        .timeout(Duration::from_millis(300))
        .send()
        .expect_err("timeout");
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_timeout());
    assert!(took >= Duration::from_millis(290), "after {took:?}");
    assert!(took < Duration::from_secs(2), "after {took:?}");
    wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
}

/// GETs from the trickling server with `c` (and `req_timeout` if given) and
/// reads the body until it fails; returns the error and the time since the
/// request started.
fn trickle_read(c: &Client, url: &str, req_timeout: Option<Duration>) -> (io::Error, Duration) {
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
    (err, start.elapsed())
}

#[test]
fn request_timeout_in_the_body_read() {
    let server = trickle_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let (err, took) = trickle_read(&c, &server.url("/"), Some(Duration::from_millis(300)));
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err:?}");
    assert_eq!(inner_kind(&err), ErrorKind::Timeout, "{err:?}");
    assert!(took >= Duration::from_millis(290), "after {took:?}");
    assert!(took < Duration::from_millis(1300), "after {took:?}");
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

    // Body read.
    let (err, took) = trickle_read(&c, &trickle.url("/"), None);
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err:?}");
    assert_eq!(inner_kind(&err), ErrorKind::Timeout, "{err:?}");
    assert!(took >= Duration::from_millis(290), "after {took:?}");
    assert!(took < Duration::from_millis(1300), "after {took:?}");

    // Header wait.
    let start = Instant::now();
    let err = c.get(silent.url("/")).send().expect_err("timeout");
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_timeout());
    assert!(took >= Duration::from_millis(290), "after {took:?}");
    assert!(took < Duration::from_secs(2), "after {took:?}");
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
        let start = Instant::now();
        let err = c
            .get(silent.url("/"))
            .timeout(req_timeout)
            .send()
            .expect_err("timeout");
        let took = start.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{what}: {err}");
        assert!(took >= Duration::from_millis(290), "{what}: after {took:?}");
        assert!(
            took < Duration::from_secs(2),
            "{what} timeout (300 ms) must win: after {took:?}"
        );

        let (err, took) = trickle_read(c, &trickle.url("/"), Some(req_timeout));
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{what}: {err:?}");
        assert_eq!(inner_kind(&err), ErrorKind::Timeout, "{what}: {err:?}");
        assert!(
            took < Duration::from_millis(1300),
            "{what} timeout must win: after {took:?}"
        );
    }
    wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
}

#[test]
fn canceled_waiter_is_skipped_when_a_connection_is_released() {
    let server = ok_server();
    let t = Transport::builder().max_conns_per_host(1).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let held = c.get(&url).send().expect("held");
    let token = CancelToken::new();
    let first = {
        let (c, url, token) = (c.clone(), url.clone(), token.clone());
        spawn_result(move || c.get(&url).cancel(token).send().map(drop))
    };
    wait_stats(&t, LIMIT, |s| s.waiting == 1);
    let second = {
        let (c, url) = (c.clone(), url.clone());
        spawn_result(move || {
            let rec = Recorder::new();
            let res = c
                .get(&url)
                .trace(rec.clone())
                .send()
                .and_then(Response::text);
            (res, rec)
        })
    };
    wait_stats(&t, LIMIT, |s| s.waiting == 2);
    token.cancel();
    let err = first
        .recv_timeout(LIMIT)
        .expect("first ends")
        .expect_err("canceled");
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    assert_eq!(t.stats().waiting, 1);

    assert_eq!(held.text().expect("text"), "hello");
    let (res, rec) = second
        .recv_timeout(LIMIT)
        .expect("the second waiter is served");
    assert_eq!(res.expect("second"), "hello");
    let info = &rec.conns()[0];
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
    let server = ok_server();
    let t = Transport::builder().max_conns_per_host(1).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let held = c.get(&url).send().expect("held");
    let start = Instant::now();
    let err = c
        .get(&url)
        .timeout(Duration::from_millis(200))
        .send()
        .expect_err("no connection in time");
    let took = start.elapsed();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout,
        "the request deadline, not the pool's: {err}"
    );
    assert!(err.is_timeout());
    assert!(took >= Duration::from_millis(190), "after {took:?}");
    assert!(took < Duration::from_secs(2), "after {took:?}");
    assert_eq!(t.stats().waiting, 0);
    assert_eq!(held.text().expect("text"), "hello");
    assert_eq!(t.stats().idle, 1);
}

#[test]
fn cancel_or_deadline_after_eof_leaves_the_pooled_connection_alone() {
    let server = ok_server();
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

    let rec = Recorder::new();
    let r = c.get(&url).trace(rec.clone()).send().expect("request");
    assert!(rec.conns()[0].reused, "{:?}", rec.events());
    assert_eq!(r.text().expect("text"), "hello");
    assert_eq!(server.accepted(), 1);
}
