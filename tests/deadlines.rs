//! Whole-exchange deadlines name the phase they interrupted (Go's
//! Client.Timeout, with ureq's habit of saying where the time went).

mod support;

use std::{io::Read, thread, time::Duration};

use nethttp::{Body, Client, ErrorKind, Transport};
use support::*;

fn client(t: &Transport, timeout: Duration) -> Client {
    Client::builder()
        .transport(t.clone())
        .timeout(timeout)
        .build()
        .unwrap()
}

#[track_caller]
fn assert_timeout_in(err: &nethttp::Error, phase: &str) {
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_timeout());
    assert!(
        err.to_string().contains(phase),
        "expected phase {phase:?} in: {err}"
    );
}

#[test]
fn each_phase_is_named() {
    // Headers never come.
    let silent = ScriptedServer::start(|mut c| {
        let _ = c.read_head();
        thread::sleep(Duration::from_secs(3));
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let err = client(&t, Duration::from_millis(200))
        .get(silent.url("/"))
        .send()
        .unwrap_err();
    assert_timeout_in(&err, "awaiting response headers");

    // The head trickles one byte every 50 ms: bytes keep arriving, but the
    // whole exchange is bounded, not each read.
    let trickle_head = ScriptedServer::start(|mut c| {
        let _ = c.read_head();
        for b in "HTTP/1.1 200 OK\r\nX-Slow: "
            .bytes()
            .chain(std::iter::repeat_n(b'x', 200))
        {
            c.write([b]);
            thread::sleep(Duration::from_millis(50));
        }
    });
    let err = client(&t, Duration::from_millis(300))
        .get(trickle_head.url("/"))
        .send()
        .unwrap_err();
    assert_timeout_in(&err, "awaiting response headers");

    // The body trickles one byte every 50 ms, past the deadline.
    let trickle = ScriptedServer::start(|mut c| {
        let _ = c.read_head();
        c.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        for _ in 0..100 {
            c.write("x");
            thread::sleep(Duration::from_millis(50));
        }
    });
    let mut resp = client(&t, Duration::from_millis(300))
        .get(trickle.url("/"))
        .send()
        .unwrap();
    let err = resp.read_to_end(&mut Vec::new()).unwrap_err();
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<nethttp::Error>())
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert_timeout_in(inner, "reading the response body");
    drop(resp);

    // The request body is still being written: the server never reads it.
    let deaf = ScriptedServer::start(|c| {
        thread::sleep(Duration::from_secs(3));
        drop(c);
    });
    let endless = Body::from_reader(std::io::repeat(b'x').take(1 << 30), Some(1 << 30));
    let err = client(&t, Duration::from_millis(300))
        .post(deaf.url("/"))
        .body(endless)
        .send()
        .unwrap_err();
    assert_timeout_in(&err, "writing the request");
}

#[test]
fn pool_wait_phase_is_named() {
    let server = ScriptedServer::start(|mut c| {
        while c.read_head().is_some() {
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        }
    });
    let t = Transport::builder().max_conns_per_host(1).build();
    let _leaks = LeakCheck::new(&t);
    let held = client(&t, Duration::from_secs(5))
        .get(server.url("/"))
        .send()
        .unwrap();
    let err = client(&t, Duration::from_millis(200))
        .get(server.url("/"))
        .send()
        .unwrap_err();
    assert_timeout_in(&err, "waiting for a free connection to 127.0.0.1:");
    drop(held);
}

#[test]
fn the_earlier_of_the_deadline_and_the_header_timeout_fires() {
    let silent = ScriptedServer::start(|mut c| {
        let _ = c.read_head();
        thread::sleep(Duration::from_secs(3));
    });
    let short_header_timeout = Transport::builder()
        .response_header_timeout(Some(Duration::from_millis(150)))
        .build();
    let long_header_timeout = Transport::builder()
        .response_header_timeout(Some(Duration::from_secs(5)))
        .build();
    let _leaks = (
        LeakCheck::new(&short_header_timeout),
        LeakCheck::new(&long_header_timeout),
    );

    // The header timer (started once the request is written) comes first.
    let err = client(&short_header_timeout, Duration::from_secs(5))
        .get(silent.url("/a"))
        .send()
        .unwrap_err();
    assert_timeout_in(&err, "timeout awaiting response headers");

    // The whole-exchange deadline comes first.
    let err = client(&long_header_timeout, Duration::from_millis(150))
        .get(silent.url("/b"))
        .send()
        .unwrap_err();
    assert_timeout_in(&err, "deadline exceeded while awaiting response headers");
}
