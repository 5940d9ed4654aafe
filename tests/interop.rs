//! Interop against tiny_http, an HTTP/1.1 server nobody here wrote:
//! keep-alive reuse, chunked bodies of awkward sizes, a large body streamed
//! and checked byte by byte, uploads (replayable, chunked, streamed with a
//! length) echoed back, and many threads sharing one `Client`.

mod support;

use std::{
    io::{self, Read},
    thread,
    time::{Duration, Instant},
};

use nethttp::{Body, Client, Response, Transport};
use support::{
    InteropServer, LeakCheck, Recorder, XorShift, bounded, client, pattern, pattern_vec, wait_stats,
};

/// Reads `r` to its end in pieces, checking every byte against
/// `pattern(offset)` without keeping the body. Returns the byte count.
fn check_stream(r: &mut impl Read, what: &str) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off: usize = 0;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return off as u64,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("{what}: read error at offset {off}: {e:?}"),
        };
        for (j, &b) in buf[..n].iter().enumerate() {
            if b != pattern(off + j) {
                panic!(
                    "{what}: byte {} is {b:#04x}, want {:#04x}",
                    off + j,
                    pattern(off + j)
                );
            }
        }
        off += n;
    }
}

/// Checks a whole body held in memory against the pattern.
fn assert_pattern(body: &[u8], want_len: usize, what: &str) {
    assert_eq!(body.len(), want_len, "{what}: length");
    if let Some(i) = (0..body.len()).find(|&i| body[i] != pattern(i)) {
        panic!(
            "{what}: byte {i} is {:#04x}, want {:#04x}",
            body[i],
            pattern(i)
        );
    }
}

/// A request body reader that yields `len` pattern bytes in pieces of
/// varying size (1 byte up to 70,000), as a real streamed source might.
struct PatternReader {
    pos: usize,
    len: usize,
    rng: XorShift,
}

impl PatternReader {
    fn new(len: usize, seed: u64) -> PatternReader {
        PatternReader {
            pos: 0,
            len,
            rng: XorShift::new(seed),
        }
    }
}

impl Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let step = 1 + self.rng.below(70_000) as usize;
        let n = buf.len().min(self.len - self.pos).min(step);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(self.pos + i);
        }
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn keep_alive_reuse_100_sequential_gets() {
    let server = InteropServer::start(2);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);
    let url = server.url("/hello");
    let rec = Recorder::new();
    let (t2, rec2) = (t.clone(), rec.clone());
    bounded("keep-alive", Duration::from_secs(30), move || {
        for i in 0..100 {
            let resp = client
                .get(&url)
                .trace(rec2.clone())
                .send()
                .unwrap_or_else(|e| panic!("GET #{i}: {e:?}"));
            assert_eq!(resp.status().as_u16(), 200, "GET #{i}");
            assert_eq!(resp.content_length(), Some(13), "GET #{i}");
            assert_eq!(resp.text().expect("body"), "hello, world!", "GET #{i}");
            // The body was read to its end: the connection is back in the
            // pool before the last byte was returned.
            let s = t2.stats();
            assert_eq!(
                (s.conns, s.idle, s.in_use),
                (1, 1, 0),
                "after GET #{i}: {s:?}"
            );
        }
    });
    let conns = rec.conns();
    assert_eq!(conns.len(), 100, "one got_conn per request");
    assert!(!conns[0].reused, "first request must dial: {:?}", conns[0]);
    let first_id = conns[0].conn_id;
    for (i, c) in conns.iter().enumerate().skip(1) {
        assert!(c.reused, "request {i} did not reuse the connection: {c:?}");
        assert!(
            c.was_idle,
            "request {i} reused a connection that was not idle: {c:?}"
        );
        assert_eq!(c.conn_id, first_id, "request {i} used another connection");
        assert_eq!(c.remote_addr, server.addr);
    }
    let s = t.stats();
    assert_eq!(s.conns, 1, "{s:?}");
    assert_eq!(s.idle, 1, "{s:?}");
    // Two threads for the one connection, once the dial thread is gone.
    wait_stats(&t, Duration::from_secs(5), |s| {
        s.threads == 2 && s.dialing == 0
    });
}

#[test]
fn chunked_responses_exact_sizes() {
    let server = InteropServer::start(2);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);
    let base = server.url("/chunked/");
    let t2 = t.clone();
    bounded("chunked", Duration::from_secs(30), move || {
        for size in [0usize, 1, 4095, 4096, 65537, 1_000_003] {
            let mut resp = client
                .get(format!("{base}{size}"))
                .send()
                .unwrap_or_else(|e| panic!("GET /chunked/{size}: {e:?}"));
            assert_eq!(resp.status().as_u16(), 200, "size {size}");
            let te = resp
                .headers()
                .get("transfer-encoding")
                .map(|v| v.to_str().unwrap_or("").to_string());
            assert_eq!(
                te.as_deref(),
                Some("chunked"),
                "size {size}: tiny_http should send it chunked"
            );
            assert_eq!(resp.content_length(), None, "size {size}");
            let mut body = Vec::new();
            resp.read_to_end(&mut body)
                .unwrap_or_else(|e| panic!("size {size}: {e:?}"));
            assert_pattern(&body, size, &format!("/chunked/{size}"));
            drop(resp);
            // Chunked bodies read to their end reuse the one connection.
            let s = t2.stats();
            assert_eq!((s.conns, s.idle), (1, 1), "after /chunked/{size}: {s:?}");
        }
    });
}

/// Sends the request `send` makes for `path` to a tiny_http server
/// (bounded by 60 s); checks a 200 whose body, read in pieces, is `len`
/// pattern bytes, after which the connection is idle. Returns the
/// response's Content-Length. `name` names the case in failure messages.
fn streamed_roundtrip(
    name: &'static str,
    path: &str,
    len: usize,
    send: impl FnOnce(&Client, &str) -> nethttp::Result<Response> + Send + 'static,
) -> Option<u64> {
    let server = InteropServer::start(1);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);
    let url = server.url(path);
    let t2 = t.clone();
    let start = Instant::now();
    let content_length = bounded(name, Duration::from_secs(60), move || {
        let mut resp = send(&client, &url).unwrap_or_else(|e| panic!("{name}: send: {e:?}"));
        assert_eq!(resp.status().as_u16(), 200, "{name}");
        let content_length = resp.content_length();
        assert_eq!(
            check_stream(&mut resp, name),
            len as u64,
            "{name}: body length"
        );
        drop(resp);
        assert_eq!(
            t2.stats().idle,
            1,
            "{name}: read to its end, the connection is idle"
        );
        content_length
    });
    eprintln!("{name}: {:?}", start.elapsed());
    content_length
}

const BIG: usize = 64 << 20;

#[test]
fn large_body_64mib_streamed_chunked() {
    let name = "64 MiB chunked";
    let path = format!("/bytes/{BIG}");
    let content_length = streamed_roundtrip(name, &path, BIG, |c, url| c.get(url).send());
    // tiny_http frames bodies of 32 KiB and more as chunked.
    assert_eq!(content_length, None, "{name}");
}

#[test]
fn large_body_64mib_streamed_content_length() {
    let name = "64 MiB with length";
    let path = format!("/bytes/{BIG}");
    // `TE: identity` makes tiny_http frame the body with Content-Length.
    let content_length = streamed_roundtrip(name, &path, BIG, |c, url| {
        c.get(url).header("te", "identity").send()
    });
    assert_eq!(content_length, Some(BIG as u64), "{name}");
}

const ECHO_LEN: usize = 8 << 20;

/// POSTs the body `make_body` makes to `/echo` and checks it comes back.
fn echo_roundtrip(name: &'static str, make_body: impl FnOnce() -> Body + Send + 'static) {
    streamed_roundtrip(name, "/echo", ECHO_LEN, |c, url| {
        c.post(url).body(make_body()).send()
    });
}

#[test]
fn post_echo_8mib_replayable_vec() {
    echo_roundtrip("echo Vec", || Body::from(pattern_vec(ECHO_LEN)));
}

#[test]
fn post_echo_8mib_streamed_chunked() {
    echo_roundtrip("echo chunked", || {
        Body::from_reader(PatternReader::new(ECHO_LEN, 0x9e37_79b9), None)
    });
}

#[test]
fn post_echo_8mib_streamed_with_length() {
    echo_roundtrip("echo streamed+length", || {
        Body::from_reader(
            PatternReader::new(ECHO_LEN, 0x1234_5678),
            Some(ECHO_LEN as u64),
        )
    });
}

#[test]
fn concurrent_16_threads_x_50_gets_one_client() {
    let server = InteropServer::start(8);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);
    let base = server.url("");
    let start = Instant::now();
    bounded("concurrent", Duration::from_secs(60), move || {
        let workers: Vec<_> = (0..16u64)
            .map(|w| {
                let client = client.clone();
                let base = base.clone();
                thread::spawn(move || {
                    let mut rng = XorShift::new(0xC0FFEE + w);
                    for i in 0..50 {
                        let what = format!("thread {w} request {i}");
                        match rng.below(3) {
                            0 => {
                                let resp = client
                                    .get(format!("{base}/hello"))
                                    .send()
                                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                                assert_eq!(resp.status().as_u16(), 200, "{what}");
                                assert_eq!(resp.text().expect("body"), "hello, world!", "{what}");
                            }
                            kind => {
                                let n = rng.below(100_000) as usize;
                                let path = if kind == 1 { "bytes" } else { "chunked" };
                                let resp = client
                                    .get(format!("{base}/{path}/{n}"))
                                    .send()
                                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                                assert_eq!(resp.status().as_u16(), 200, "{what}");
                                let body = resp.bytes().unwrap_or_else(|e| panic!("{what}: {e:?}"));
                                assert_pattern(&body, n, &format!("{what} /{path}/{n}"));
                            }
                        }
                    }
                })
            })
            .collect();
        for (i, w) in workers.into_iter().enumerate() {
            if let Err(p) = w.join() {
                eprintln!("worker {i} panicked");
                std::panic::resume_unwind(p);
            }
        }
    });
    eprintln!("16 x 50 concurrent GETs: {:?}", start.elapsed());
    let s = t.stats();
    assert_eq!(s.in_use, 0, "every body was read to its end: {s:?}");
    assert!(s.idle <= 2, "max_idle_conns_per_host defaults to 2: {s:?}");
    t.close_idle_connections();
    wait_stats(&t, Duration::from_secs(10), |s| {
        s.threads == 0 && s.conns == 0 && s.dialing == 0
    });
}
