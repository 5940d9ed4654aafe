//! `TransportBuilder::read_timeout`: the wait for a response head once the
//! request is written, and each body read, may stall that long; then kind
//! `Timeout`, the phase named. A stall timer, not a deadline: a slow but
//! steady response succeeds. HTTP/1 closes the connection after such a
//! timeout; HTTP/2 resets the stream and keeps the connection.
//!
//! Scripted servers on 127.0.0.1 stall where each case needs; the time
//! bounds are loose (at least the timeout, at most five seconds more).

mod support;

use std::{
    io::{self, Read},
    sync::{Arc, mpsc},
    thread,
    time::{Duration, Instant},
};

use nethttp::{Body, ErrorKind, Proxy, Response, Transport, TransportBuilder};
use support::{
    LeakCheck, ScriptedServer, assert_times_out, bounded, client,
    tls::{TlsConn, TlsServer, pki},
    wait_stats,
};

const RT: Duration = Duration::from_millis(400);
const SLACK: Duration = Duration::from_secs(5);
const LIMIT: Duration = Duration::from_secs(10);
const TEST_LIMIT: Duration = Duration::from_secs(40);

fn builder() -> TransportBuilder {
    Transport::builder()
        .proxy(Proxy::none())
        .read_timeout(Some(RT))
}

/// How long a stalling server waits before it gives up on the client (the
/// client must not need it to: it times out long before).
const STALL: Duration = Duration::from_secs(15);

/// Waits until the client closes the connection (or `STALL` passes).
fn until_client_closes(c: &mut support::ScriptConn) {
    let _ = c.stream.set_read_timeout(Some(STALL));
    let mut sink = Vec::new();
    let _ = c.reader.read_to_end(&mut sink);
}

/// The nethttp error inside a body read's `io::Error`.
#[track_caller]
fn inner(e: &io::Error) -> &nethttp::Error {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<nethttp::Error>())
        .unwrap_or_else(|| panic!("not a nethttp error: {e:?}"))
}

#[test]
fn a_server_silent_after_the_request_times_out_awaiting_the_head() {
    bounded("rt_head_silent", TEST_LIMIT, || {
        let server = ScriptedServer::start(|mut c| {
            let _ = c.read_request();
            until_client_closes(&mut c);
        });
        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let err = assert_times_out("silent server", RT, RT + SLACK, || {
            c.get(server.url("/")).send()
        });
        assert!(
            err.to_string().contains("awaiting response headers"),
            "{err}"
        );
        assert!(err.to_string().contains("read timeout"), "{err}");
        // Closed, never reused.
        wait_stats(&t, LIMIT, |s| s.conns == 0 && s.threads == 0);
    });
}

#[test]
fn a_head_that_stalls_midway_times_out() {
    bounded("rt_head_midway", TEST_LIMIT, || {
        let server = ScriptedServer::start(|mut c| {
            let _ = c.read_request();
            c.write("HTTP/1.1 200 OK\r\nContent-");
            until_client_closes(&mut c);
        });
        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let err = assert_times_out("head midway", RT, RT + SLACK, || {
            c.get(server.url("/")).send()
        });
        assert!(
            err.to_string().contains("awaiting response headers"),
            "{err}"
        );
        wait_stats(&t, LIMIT, |s| s.conns == 0 && s.threads == 0);
    });
}

#[test]
fn a_body_that_stalls_midway_times_out_and_the_connection_is_not_reused() {
    bounded("rt_body_midway", TEST_LIMIT, || {
        let server = ScriptedServer::start(|mut c| {
            while let Some((head, _)) = c.read_request() {
                if head.starts_with("GET /stall ") {
                    c.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
                    until_client_closes(&mut c);
                    return;
                }
                c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        });
        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        // A first exchange leaves the connection idle, to be reused.
        assert_eq!(c.get(server.url("/")).send().unwrap().text().unwrap(), "ok");
        let mut resp = c.get(server.url("/stall")).send().expect("head");
        let mut buf = [0; 64];
        assert_eq!(resp.read(&mut buf).expect("the first bytes"), 10);
        let start = Instant::now();
        let err = resp.read(&mut buf).expect_err("the body stalls");
        let took = start.elapsed();
        assert!(took >= RT && took < RT + SLACK, "after {took:?}");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let e = inner(&err);
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(e.is_timeout());
        assert!(e.to_string().contains("reading the response body"), "{e}");
        // Sticky, and the connection is gone at once.
        assert_eq!(
            resp.read(&mut buf).expect_err("again").kind(),
            io::ErrorKind::TimedOut
        );
        let s = t.stats();
        assert_eq!((s.conns, s.in_use), (0, 0), "{s:?}");
        drop(resp);
        wait_stats(&t, LIMIT, |s| s.threads == 0);
        // The next request dials anew.
        assert_eq!(c.get(server.url("/")).send().unwrap().text().unwrap(), "ok");
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn the_body_helpers_report_the_timeout() {
    bounded("rt_body_bytes", TEST_LIMIT, || {
        let server = ScriptedServer::start(|mut c| {
            let _ = c.read_request();
            c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
            until_client_closes(&mut c);
        });
        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let err = assert_times_out("chunked body", RT, RT + SLACK, || {
            c.get(server.url("/")).send()?.bytes()
        });
        assert!(
            err.to_string().contains("reading the response body"),
            "{err}"
        );
    });
}

#[test]
fn a_slow_but_steady_response_succeeds() {
    bounded("rt_steady", TEST_LIMIT, || {
        const PIECES: usize = 12;
        let every = RT / 3;
        let server = ScriptedServer::start(move |mut c| {
            while c.read_request().is_some() {
                // The head within the timeout, then a piece every third
                // of it: 4 × the timeout in all.
                thread::sleep(every);
                c.write(format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    PIECES * 10
                ));
                for i in 0..PIECES {
                    thread::sleep(every);
                    c.write(format!("piece-{i:03}|"));
                }
            }
        });
        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        for _ in 0..2 {
            let start = Instant::now();
            let body = c
                .get(server.url("/"))
                .send()
                .and_then(Response::text)
                .expect("a steady response");
            assert!(start.elapsed() > RT * 3, "{:?}", start.elapsed());
            assert_eq!(body.len(), PIECES * 10);
            assert!(body.starts_with("piece-000|") && body.ends_with("piece-011|"));
        }
        assert_eq!(server.accepted(), 1, "kept alive and reused");
    });
}

/// A request body that trickles: `pieces` of 1 KiB, `every` apart.
struct Trickle {
    pieces: usize,
    every: Duration,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pieces == 0 {
            return Ok(0);
        }
        thread::sleep(self.every);
        self.pieces -= 1;
        let n = buf.len().min(1024);
        buf[..n].fill(b'u');
        Ok(n)
    }
}

#[test]
fn the_head_wait_starts_once_the_request_is_written() {
    bounded("rt_slow_upload", TEST_LIMIT, || {
        let server = ScriptedServer::start(|mut c| {
            while let Some((_, body)) = c.read_request() {
                c.write(format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    body.len().to_string().len()
                ));
                c.write(body.len().to_string());
            }
        });
        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        // An upload three times as long as the timeout; the server answers
        // once it has the whole body.
        let upload = Trickle {
            pieces: 6,
            every: RT / 2,
        };
        let text = c
            .post(server.url("/"))
            .body(Body::from_reader(upload, None))
            .send()
            .and_then(Response::text)
            .expect("a slow upload");
        assert_eq!(text, "6144");
    });
}

#[test]
fn a_tls_body_that_stalls_times_out() {
    bounded("rt_tls_body", TEST_LIMIT, || {
        let server = TlsServer::start(pki().1.server_config(), |mut c: TlsConn| {
            if c.read_head().is_none() {
                return;
            }
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello");
            // TLS 1.3 tickets went out with the handshake; a key update now
            // is a record without plaintext: it must not count as data.
            let _ = c.key_update();
            let _ = c.flush();
            c.wait_client_close(STALL);
        });
        let t = builder().tls_config(pki().0.client_config()).build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let mut resp = c.get(server.url("/")).send().expect("head");
        let mut buf = [0; 64];
        let mut got = 0;
        let start = Instant::now();
        let err = loop {
            match resp.read(&mut buf) {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(got, 5);
        let took = start.elapsed();
        assert!(took >= RT && took < RT + SLACK, "after {took:?}");
        assert_eq!(inner(&err).kind(), ErrorKind::Timeout, "{err}");
        drop(resp);
        wait_stats(&t, LIMIT, |s| s.conns == 0 && s.threads == 0);
    });
}

#[test]
fn an_http2_stream_that_stalls_is_reset_and_the_connection_stays() {
    let Some(peer) = support::h2::H2Peer::start("echo") else {
        return;
    };
    let peer = Arc::new(peer);
    bounded("rt_h2", TEST_LIMIT, move || {
        let t = builder().http2_prior_knowledge().build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        // `/slow/MS`: the peer sleeps before it answers.
        let err = assert_times_out("h2 head", RT, RT + SLACK, || {
            c.get(peer.url("/slow/3000")).send()
        });
        assert!(
            err.to_string().contains("awaiting response headers"),
            "{err}"
        );
        let s = t.stats();
        assert_eq!((s.conns, s.streams), (1, 0), "the stream was reset: {s:?}");
        // The same connection serves the next request.
        let resp = c.get(peer.url("/status/200")).send().expect("next");
        let conn = resp.headers().get("x-peer-conn").cloned();
        assert_eq!(conn.as_ref().map(|v| v.as_bytes()), Some(&b"0"[..]));
        drop(resp);
        // A slow but steady h2 response (under the timeout) is fine.
        let (tx, rx) = mpsc::channel();
        let c2 = c.clone();
        let url = peer.url("/slow/100");
        thread::spawn(move || {
            let _ = tx.send(c2.get(url).send().map(|r| r.status()));
        });
        assert_eq!(rx.recv_timeout(LIMIT).expect("answered").expect("ok"), 200);
        t.close_idle_connections();
    });
}
