//! HTTP/2 against a scripted peer nobody here wrote the protocol of:
//! `tests/support/h2peer.py`, over the python `h2` library (hyper-h2), on
//! 127.0.0.1 with prior knowledge (h2c). Each scenario is a fault or a rule
//! of API.md's "HTTP/2" section; every test ends with the leak check (two
//! threads per connection while it is open, none after).

mod support;

use std::{
    io::{Read, Write},
    process::{Command, Stdio},
    sync::Arc,
    thread,
    time::Duration,
};

use nethttp::{
    Body, CancelToken, Client, ErrorKind, Response, Transport, TransportBuilder,
    http::{StatusCode, Version},
};
use support::{
    LeakCheck, Recorder, bounded,
    h2::{H2Peer, is_pattern, pattern},
    wait_stats,
};

const LIMIT: Duration = Duration::from_secs(60);

fn h2c() -> TransportBuilder {
    Transport::builder()
        .http2_prior_knowledge()
        .proxy(nethttp::Proxy::none())
}

fn client(t: &Transport) -> Client {
    support::client(t)
}

/// A header's value as text ("" when missing).
fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Starts the peer, or skips the test (None) when python3 or its h2
/// module is missing (a failure in CI: see `support::h2`).
macro_rules! peer {
    ($scenario:expr) => {
        match H2Peer::start($scenario) {
            Some(p) => p,
            None => return,
        }
    };
}

#[test]
fn requests_go_out_as_http2_with_the_fields_section_8_wants() {
    let peer = peer!("echo");
    bounded("echo", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let resp = c
            .post(peer.url("/echo?q=1"))
            .header("connection", "keep-alive")
            .header("keep-alive", "timeout=5")
            .header("proxy-connection", "keep-alive")
            .header("upgrade", "websocket")
            .header("x-custom", "yes")
            .body("hello h2")
            .send()
            .expect("post");
        assert_eq!(resp.version(), Version::HTTP_2);
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "x-method"), "POST");
        assert_eq!(header(&resp, "x-path"), "/echo?q=1");
        assert_eq!(header(&resp, "x-content-length"), "8");
        let saw = header(&resp, "x-saw-headers");
        assert!(
            saw.starts_with(":method,:scheme,:authority,:path,"),
            "pseudo-header fields first: {saw}"
        );
        for dropped in ["connection", "keep-alive", "proxy-connection", "upgrade"] {
            assert!(
                !saw.split(',').any(|n| n == dropped),
                "{dropped} must not be sent: {saw}"
            );
        }
        assert!(saw.split(',').any(|n| n == "x-custom"), "{saw}");
        assert_eq!(resp.text().expect("body"), "hello h2");
        let s = t.stats();
        assert_eq!((s.conns, s.threads, s.streams), (1, 2, 0), "{s:?}");
    });
}

#[test]
fn bodies_of_every_size_arrive_byte_exact_on_one_connection() {
    let peer = peer!("echo");
    bounded("bodies", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        for n in [
            0usize,
            1,
            16_383,
            16_384,
            16_385,
            65_535,
            65_536,
            1 << 20,
            3 << 20,
        ] {
            let resp = c.get(peer.url(&format!("/bytes/{n}"))).send().expect("get");
            assert_eq!(resp.content_length(), Some(n as u64));
            let body = resp.bytes().expect("body");
            assert_eq!(body.len(), n);
            assert!(is_pattern(&body), "bytes/{n}");
        }
        // Uploads: known length and unknown, bigger than any window.
        let data = pattern(2 << 20);
        let resp = c
            .post(peer.url("/echo"))
            .body(data.clone())
            .send()
            .expect("post bytes");
        assert_eq!(header(&resp, "x-body-len"), (2 << 20).to_string());
        assert!(resp.bytes().expect("echo") == data, "echo differs");
        let resp = c
            .post(peer.url("/echo"))
            .body(Body::from_reader(std::io::Cursor::new(data.clone()), None))
            .send()
            .expect("post reader");
        assert_eq!(header(&resp, "x-content-length"), "none");
        assert!(resp.bytes().expect("echo") == data, "echo differs");
        let s = t.stats();
        assert_eq!((s.conns, s.threads), (1, 2), "{s:?}");
    });
}

#[test]
fn trailers_head_and_bodyless_statuses() {
    let peer = peer!("echo");
    bounded("trailers", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let mut resp = c.get(peer.url("/trailers")).send().expect("trailers");
        let mut body = String::new();
        resp.read_to_string(&mut body).expect("body");
        assert_eq!(body, "hello");
        let trailers = resp.trailers().expect("trailers after the end");
        assert_eq!(trailers["x-trailer"], "done");

        let resp = c.head(peer.url("/bytes/1000")).send().expect("head");
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.bytes().expect("head body").is_empty());

        for status in [204u16, 404, 500] {
            let resp = c
                .get(peer.url(&format!("/status/{status}")))
                .send()
                .expect("status");
            assert_eq!(resp.status().as_u16(), status);
            assert!(resp.bytes().expect("body").is_empty());
        }
        assert_eq!(t.stats().conns, 1);
    });
}

#[test]
fn expect_100_continue_waits_for_the_interim_response() {
    let peer = peer!("echo");
    bounded("continue", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let rec = Recorder::new();
        let resp = client(&t)
            .post(peer.url("/continue"))
            .header("expect", "100-continue")
            .trace(rec.clone())
            .body(vec![1u8; 10_000])
            .send()
            .expect("continue");
        assert_eq!(header(&resp, "x-body-len"), "10000");
        let events = rec.events();
        let pos = |e: &str| {
            events
                .iter()
                .position(|x| x == e)
                .unwrap_or_else(|| panic!("{e} missing in {events:?}"))
        };
        assert!(pos("wait_100_continue") < pos("got_100_continue"));
        assert!(pos("got_1xx_response 100") < pos("wrote_request ok"));
        drop(resp);
    });
}

#[test]
fn every_stream_after_the_first_is_reused_and_says_http2() {
    let peer = peer!("echo");
    bounded("reused", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let rec = Recorder::new();
        for _ in 0..3 {
            let r = c.get(peer.url("/hello")).trace(rec.clone()).send();
            r.expect("get").bytes().expect("body");
        }
        let conns = rec.conns();
        assert_eq!(conns.len(), 3);
        assert!(conns.iter().all(|i| i.version == Version::HTTP_2));
        assert!(conns.iter().all(|i| i.conn_id == conns[0].conn_id));
        let reused: Vec<bool> = conns.iter().map(|i| i.reused).collect();
        assert_eq!(reused, [false, true, true]);
    });
}

/// 48 requests at once over one connection (`max_conns_per_host(1)`):
/// still two threads, one connection, and the stream count seen by the
/// pool while bodies are held.
#[test]
fn many_concurrent_requests_share_one_connection_and_two_threads() {
    let peer = Arc::new(peer!("echo"));
    bounded("concurrent", LIMIT, move || {
        let t = h2c().max_conns_per_host(1).build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        // Held bodies count as streams.
        let held: Vec<Response> = (0..3)
            .map(|_| c.get(peer.url("/bytes/100000")).send().expect("held"))
            .collect();
        let s = t.stats();
        assert_eq!(
            (s.conns, s.in_use, s.streams, s.threads),
            (1, 1, 3, 2),
            "{s:?}"
        );
        drop(held);
        let s = wait_stats(&t, Duration::from_secs(5), |s| {
            s.streams == 0 && s.idle == 1
        });
        assert_eq!(
            (s.conns, s.idle, s.in_use, s.streams),
            (1, 1, 0, 0),
            "{s:?}"
        );

        let workers: Vec<_> = (0..48)
            .map(|i| {
                let c = c.clone();
                let url = peer.url(&format!("/bytes/{}", 1000 + i));
                thread::spawn(move || {
                    let r = c.get(url).send().expect("get");
                    let conn = header(&r, "x-peer-conn");
                    let body = r.bytes().expect("body");
                    assert_eq!(body.len(), 1000 + i);
                    assert!(is_pattern(&body));
                    conn
                })
            })
            .collect();
        for w in workers {
            assert_eq!(
                w.join().expect("worker"),
                "0",
                "all on the first connection"
            );
        }
        let s = t.stats();
        assert_eq!((s.conns, s.threads, s.streams), (1, 2, 0), "{s:?}");
    });
}

/// The server allows two streams at a time: never more are open on a
/// connection, including before its SETTINGS arrive (streams refused then
/// are retried), and the rest are served as streams end.
#[test]
fn max_concurrent_streams_is_respected_and_waiters_get_freed_streams() {
    let peer = Arc::new(peer!("max_streams_2"));
    bounded("max streams", LIMIT, move || {
        let t = h2c().max_conns_per_host(1).build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        // One request first, so the server's SETTINGS are known.
        c.get(peer.url("/"))
            .send()
            .expect("first")
            .bytes()
            .expect("body");
        let workers: Vec<_> = (0..6)
            .map(|_| {
                let c = c.clone();
                let url = peer.url("/");
                thread::spawn(move || {
                    let r = c.get(url).send().expect("get");
                    let peak = header(&r, "x-peak-streams");
                    r.bytes().expect("body");
                    peak
                })
            })
            .collect();
        for w in workers {
            let peak: usize = w.join().expect("worker").parse().expect("peak");
            assert!(
                peak <= 2,
                "peak {peak} streams on a connection limited to 2"
            );
        }
        let s = t.stats();
        assert_eq!((s.conns, s.threads, s.waiting), (1, 2, 0), "{s:?}");
    });
}

/// Without a per-host limit, a full connection makes the pool dial
/// another (Go's default): every connection stays within the server's
/// limit. Once the burst is over, a connection that goes idle while
/// another has room closes: one is left.
#[test]
fn a_full_connection_makes_the_pool_dial_another() {
    let peer = Arc::new(peer!("max_streams_2"));
    bounded("dial another", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        c.get(peer.url("/"))
            .send()
            .expect("first")
            .bytes()
            .expect("body");
        let workers: Vec<_> = (0..6)
            .map(|_| {
                let c = c.clone();
                let url = peer.url("/");
                thread::spawn(move || {
                    let r = c.get(url).send().expect("get");
                    let peak = header(&r, "x-peak-streams");
                    let conn = header(&r, "x-peer-conn");
                    r.bytes().expect("body");
                    (peak, conn)
                })
            })
            .collect();
        let mut conns = std::collections::HashSet::new();
        for w in workers {
            let (peak, conn) = w.join().expect("worker");
            let peak: usize = peak.parse().expect("peak");
            assert!(peak <= 2, "peak {peak}");
            conns.insert(conn);
        }
        assert!(
            conns.len() >= 2,
            "six concurrent requests need a second connection"
        );
        let s = wait_stats(&t, Duration::from_secs(5), |s| s.threads == 2);
        assert_eq!((s.conns, s.idle), (1, 1), "{s:?}");
    });
}

/// GOAWAY(last stream 1) after the first response: the next request goes
/// to a new connection (retried there if it was sent on the old one).
#[test]
fn goaway_sends_later_requests_to_a_new_connection() {
    let peer = peer!("goaway_after_1");
    bounded("goaway", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let first = c.get(peer.url("/one")).send().expect("first");
        assert_eq!(header(&first, "x-peer-conn"), "0");
        first.bytes().expect("body");
        let second = c
            .post(peer.url("/two"))
            .body("replayable")
            .send()
            .expect("second");
        assert_eq!(header(&second, "x-peer-conn"), "1");
        assert_eq!(second.text().expect("echo"), "replayable");
    });
}

/// REFUSED_STREAM: not processed, so retried, even for a POST with a
/// replayable body; a body that cannot be replayed fails with the code.
#[test]
fn refused_streams_are_retried_when_the_body_can_be_replayed() {
    let peer = peer!("refuse_first");
    bounded("refused", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let r = c
            .post(peer.url("/a"))
            .body("again")
            .send()
            .expect("retried");
        assert_eq!(r.text().expect("echo"), "again");

        let t2 = h2c().build();
        let _leak2 = LeakCheck::new(&t2);
        let err = client(&t2)
            .post(peer.url("/b"))
            .body(Body::from_reader(
                std::io::Cursor::new(b"once".to_vec()),
                None,
            ))
            .send()
            .expect_err("a streamed body cannot be sent twice");
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        assert!(err.to_string().contains("REFUSED_STREAM"), "{err}");
    });
}

/// RST_STREAM(INTERNAL_ERROR) mid-body: the read fails with kind
/// Protocol naming the code; the connection serves the next request.
#[test]
fn a_reset_mid_body_fails_that_body_only() {
    let peer = peer!("rst_mid_body");
    bounded("rst", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let mut resp = c.get(peer.url("/bytes/100001")).send().expect("head");
        let mut got = Vec::new();
        let err = resp.read_to_end(&mut got).expect_err("reset mid-body");
        assert_eq!(got.len(), 50_000);
        assert!(is_pattern(&got));
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<nethttp::Error>())
            .expect("a nethttp error inside");
        assert_eq!(inner.kind(), ErrorKind::Protocol, "{inner}");
        assert!(inner.to_string().contains("INTERNAL_ERROR"), "{inner}");
        drop(resp);
        let next = c.get(peer.url("/hello")).send().expect("next");
        assert_eq!(header(&next, "x-peer-conn"), "0", "same connection");
        next.bytes().expect("body");
        assert_eq!(t.stats().threads, 2);
    });
}

/// GOAWAY with PROTOCOL_ERROR on every connection: retried a bounded
/// number of times, then kind Protocol with the code and the debug data.
#[test]
fn a_goaway_with_an_error_fails_with_its_code() {
    let peer = peer!("goaway_error");
    bounded("goaway error", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let err = client(&t)
            .get(peer.url("/"))
            .send()
            .expect_err("every connection says GOAWAY");
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("PROTOCOL_ERROR") && msg.contains("test says no"),
            "{msg}"
        );
    });
}

/// A 10-byte stream window: the upload goes out in flow-controlled
/// pieces and arrives whole.
#[test]
fn uploads_honour_a_tiny_stream_window() {
    let peer = peer!("tiny_window");
    bounded("tiny window", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let data = pattern(100_000);
        let resp = client(&t)
            .post(peer.url("/upload"))
            .body(data.clone())
            .send()
            .expect("upload");
        assert_eq!(header(&resp, "x-body-len"), "100000");
        assert_eq!(header(&resp, "x-body-sha256"), sha256_hex(&data));
    });
}

/// The server's PINGs are answered; our own PING, unanswered, closes the
/// connection with a timeout.
#[test]
fn pings_are_answered_and_an_unanswered_ping_closes_the_connection() {
    let peer = peer!("ping");
    let silent = peer!("silent_after_settings");
    bounded("ping", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        c.get(peer.url("/"))
            .send()
            .expect("first")
            .bytes()
            .expect("body");
        let r = c.get(peer.url("/")).send().expect("second");
        let acked: u32 = header(&r, "x-pings-acked").parse().expect("count");
        assert!(acked >= 1, "the server's PINGs were not acknowledged");
        drop(r);

        let t = h2c()
            .http2_ping_interval(Some(Duration::from_millis(100)))
            .http2_ping_timeout(Duration::from_millis(300))
            .build();
        let _leak = LeakCheck::new(&t);
        let started = std::time::Instant::now();
        let err = client(&t)
            .get(silent.url("/"))
            .send()
            .expect_err("a silent server");
        assert!(err.to_string().contains("PING"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    });
}

/// A body dropped early resets its stream; DATA the server sends after
/// that still gives the connection window back, so the connection keeps
/// working at full size.
#[test]
fn a_dropped_body_resets_only_its_stream() {
    let peer = peer!("data_after_reset");
    bounded("reset", LIMIT, move || {
        let t = h2c().http2_initial_connection_window(200_000).build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let mut resp = c.get(peer.url("/bytes/1000000")).send().expect("head");
        let mut first = [0u8; 1000];
        resp.read_exact(&mut first).expect("some");
        drop(resp);
        for _ in 0..3 {
            let r = c.get(peer.url("/bytes/100000")).send().expect("next");
            assert_eq!(header(&r, "x-peer-conn"), "0");
            let body = r.bytes().expect("body");
            assert_eq!(body.len(), 100_000);
            assert!(is_pattern(&body));
        }
        let s = t.stats();
        assert_eq!((s.conns, s.threads, s.streams), (1, 2, 0), "{s:?}");
    });
}

/// A cancel or a deadline ends its own stream; the connection and its
/// other streams go on.
#[test]
fn cancel_and_deadline_end_one_stream_not_the_connection() {
    let peer = peer!("echo");
    bounded("cancel", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        c.get(peer.url("/hello"))
            .send()
            .expect("warm")
            .bytes()
            .expect("body");

        let token = CancelToken::new();
        let t2 = token.clone();
        let canceler = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            t2.cancel();
        });
        let err = c
            .get(peer.url("/slow/3000"))
            .cancel(token)
            .send()
            .expect_err("canceled");
        canceler.join().expect("canceler");
        assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");

        let err = c
            .get(peer.url("/slow/3000"))
            .timeout(Duration::from_millis(150))
            .send()
            .expect_err("deadline");
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");

        let r = c.get(peer.url("/hello")).send().expect("after");
        assert_eq!(header(&r, "x-peer-conn"), "0", "the same connection");
        r.bytes().expect("body");
        let s = wait_stats(&t, Duration::from_secs(5), |s| s.streams == 0);
        assert_eq!((s.conns, s.threads), (1, 2), "{s:?}");
    });
}

/// A header list above `max_response_header_bytes` fails its request
/// with kind HeaderTooLarge; HPACK stays in step, so the connection goes
/// on.
#[test]
fn a_header_list_too_large_fails_only_its_stream() {
    let peer = peer!("echo");
    bounded("big headers", LIMIT, move || {
        let t = h2c().max_response_header_bytes(8 * 1024).build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let err = c
            .get(peer.url("/big-headers/20000"))
            .send()
            .expect_err("too large");
        assert_eq!(err.kind(), ErrorKind::HeaderTooLarge, "{err}");
        let r = c.get(peer.url("/big-headers/1000")).send().expect("small");
        assert_eq!(header(&r, "x-big").len(), 1000);
        assert_eq!(header(&r, "x-peer-conn"), "0");
    });
}

/// Over TLS, the default transport offers `h2, http/1.1` and the peer
/// picks h2; `http1_only()` offers only http/1.1, which this peer refuses.
#[test]
fn tls_negotiates_h2_by_alpn() {
    let Some(peer) = H2Peer::start_tls_pki("echo") else {
        return;
    };
    bounded("tls", LIMIT, move || {
        let t = support::h2::tls_transport_builder().build();
        let _leak = LeakCheck::new(&t);
        let rec = Recorder::new();
        let r = client(&t)
            .get(peer.tls_url("/bytes/70000"))
            .trace(rec.clone())
            .send()
            .expect("tls h2");
        assert_eq!(r.version(), Version::HTTP_2);
        assert_eq!(rec.conns()[0].version, Version::HTTP_2);
        assert!(is_pattern(&r.bytes().expect("body")));
    });
}

/// Threads: two per connection whatever the number of streams, none
/// after `close_idle_connections`.
#[test]
fn threads_are_two_per_connection_and_none_after_close_idle() {
    let peer = Arc::new(peer!("echo"));
    bounded("threads", LIMIT, move || {
        let t = h2c().build();
        let c = client(&t);
        let bodies: Vec<Response> = (0..20)
            .map(|_| c.get(peer.url("/bytes/200000")).send().expect("get"))
            .collect();
        let s = t.stats();
        assert_eq!((s.conns, s.threads, s.streams), (1, 2, 20), "{s:?}");
        for b in bodies {
            assert_eq!(b.bytes().expect("body").len(), 200_000);
        }
        t.close_idle_connections();
        let s = wait_stats(&t, Duration::from_secs(5), |s| s.threads == 0);
        assert_eq!((s.conns, s.threads), (0, 0), "{s:?}");
    });
}

/// The peer's hash of what it received, to compare with ours (python is
/// there whenever the peer is).
fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    let out = child.wait_with_output().expect("sha256");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Prior knowledge to a server that speaks only HTTP/1.1 (it answers the
/// preface's `PRI * HTTP/2.0` with an HTTP/1.1 response): kind Protocol,
/// no fallback, nothing left behind.
#[test]
fn prior_knowledge_to_an_http1_server_fails_without_fallback() {
    bounded("no fallback", LIMIT, || {
        let srv = support::ok_server("hello");
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let err = client(&t)
            .get(srv.url("/hello"))
            .send()
            .expect_err("an HTTP/1.1 server");
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    });
}

/// Without keep-alives, an HTTP/2 connection serves one request (Go's
/// single-use connections) and closes after it.
#[test]
fn without_keep_alives_each_request_gets_its_own_connection() {
    let peer = peer!("echo");
    bounded("no keep-alives", LIMIT, move || {
        let t = h2c().disable_keep_alives(true).build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        for want in ["0", "1", "2"] {
            let r = c
                .get(peer.url("/hello"))
                .send()
                .unwrap_or_else(|e| panic!("request {want}: {e}"));
            assert_eq!(header(&r, "x-peer-conn"), want);
            r.bytes().expect("body");
        }
        let s = wait_stats(&t, Duration::from_secs(5), |s| s.threads == 0);
        assert_eq!(s.conns, 0, "{s:?}");
    });
}

/// The trace hooks fire as for HTTP/1.1, in order, `put_idle_conn` at the
/// body's end included.
#[test]
fn trace_hooks_fire_in_order() {
    let peer = peer!("echo");
    bounded("trace", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let rec = Recorder::new();
        let r = client(&t)
            .post(peer.url("/echo"))
            .trace(rec.clone())
            .body("x")
            .send()
            .expect("post");
        r.bytes().expect("body");
        let events: Vec<String> = rec
            .events()
            .into_iter()
            .filter(|e| !e.starts_with("connect_") && !e.starts_with("dns_"))
            .collect();
        assert_eq!(
            events,
            [
                "get_conn 127.0.0.1:".to_string() + &peer.port.to_string(),
                "got_conn reused=false was_idle=false".into(),
                "wrote_headers".into(),
                "wrote_request ok".into(),
                "got_first_response_byte".into(),
                "put_idle_conn ok".into(),
            ]
        );
    });
}

/// An HTTP/2 connection with no stream for `idle_conn_timeout` closes
/// (GOAWAY, then both threads exit); one with a stream does not.
#[test]
fn an_idle_connection_times_out_and_a_busy_one_does_not() {
    let peer = peer!("echo");
    bounded("idle timeout", LIMIT, move || {
        let t = h2c()
            .idle_conn_timeout(Some(Duration::from_millis(300)))
            .build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        // A held body keeps the connection busy past the timeout.
        let held = c.get(peer.url("/bytes/100")).send().expect("held");
        thread::sleep(Duration::from_millis(600));
        let s = t.stats();
        assert_eq!((s.conns, s.in_use, s.threads), (1, 1, 2), "{s:?}");
        assert_eq!(held.bytes().expect("body").len(), 100);
        let s = wait_stats(&t, Duration::from_secs(5), |s| s.threads == 0);
        assert_eq!(s.conns, 0, "{s:?}");
    });
}

/// `close_idle_connections` closes an HTTP/2 connection at once when it
/// has no stream, and when its last stream ends otherwise.
#[test]
fn close_idle_connections_waits_for_the_last_stream() {
    let peer = peer!("echo");
    bounded("close idle", LIMIT, move || {
        let t = h2c().build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let held = c.get(peer.url("/bytes/100")).send().expect("held");
        t.close_idle_connections();
        let s = t.stats();
        assert_eq!((s.conns, s.threads, s.streams), (1, 2, 1), "{s:?}");
        assert_eq!(held.bytes().expect("body").len(), 100);
        let s = wait_stats(&t, Duration::from_secs(5), |s| s.threads == 0);
        assert_eq!(s.conns, 0, "{s:?}");
    });
}

/// `Expect: 100-continue` answered by a final response instead: the body
/// is not sent, the response (and its body) arrives whole, and the
/// connection serves the next request.
#[test]
fn a_final_answer_instead_of_100_continue_is_read_whole() {
    let peer = peer!("echo");
    bounded("no continue", LIMIT, move || {
        let t = h2c()
            .expect_continue_timeout(Duration::from_secs(30))
            .build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        // The peer answers /bytes/N at once, without reading the body.
        for (path, len) in [("/bytes/0", 0usize), ("/bytes/5000", 5000)] {
            let r = c
                .put(peer.url(path))
                .header("expect", "100-continue")
                .body(vec![9u8; 10_000])
                .send()
                .expect("final answer");
            let body = r.bytes().expect("body");
            assert_eq!(body.len(), len, "{path}");
            assert!(is_pattern(&body));
        }
        let r = c.get(peer.url("/hello")).send().expect("next");
        assert_eq!(header(&r, "x-peer-conn"), "0");
        r.bytes().expect("body");
        let s = wait_stats(&t, Duration::from_secs(5), |s| s.streams == 0);
        assert_eq!((s.conns, s.threads), (1, 2), "{s:?}");
    });
}
