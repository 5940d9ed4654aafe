//! HTTP/2 interop against two servers nobody here wrote: nginx 1.22
//! (`support::h2::Nginx`: TLS with ALPN, and h2c by prior knowledge) and
//! Go 1.19's net/http server over TLS (`tests/peers/h2server.go`, built
//! with `go build` into cargo's test temp dir). Negotiation (ALPN h2,
//! `http1_only`, prior knowledge), bodies of every size byte-exact, one
//! connection with two threads under 64 threads' load, a body dropped
//! half-read resetting only its stream, flow control with small windows
//! both ways, uploads of known and unknown length, trailers, and
//! connection-specific headers.
//!
//! Every test holds [`exclusive`] (the process's thread counts are
//! asserted exactly, so tests in this binary run one at a time), ends with
//! a [`LeakCheck`] on its transport, and then, once the transport is
//! dropped, with [`ProcessClean`]: no nethttp thread left in the process.
//! Everything listens on 127.0.0.1 only; every wait is bounded.

mod support;

use std::{
    collections::HashSet,
    io::{self, Read},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc, Barrier, Mutex, OnceLock, PoisonError, RwLock, RwLockWriteGuard,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{
    Body, Client, GotConnInfo, PoolStats, Proxy, Response, Transport, TransportBuilder,
    http::{StatusCode, Version},
};
use support::{
    LeakCheck, Recorder, XorShift, bounded, client,
    h2::{NGINX_FILES, Nginx, PATTERN_PERIOD, is_pattern, read_port, tls_transport_builder},
    peer_available, proc_threads_named,
    tls::pki,
    wait_stats, wait_until,
};

/// Bound on one wait for a state (stats, threads).
const LIMIT: Duration = Duration::from_secs(10);
/// Bound on an ordinary test's workload.
const TEST_LIMIT: Duration = Duration::from_secs(60);
/// Bound on a heavy workload (10 MB transfers, 64 threads).
const HEAVY_LIMIT: Duration = Duration::from_secs(180);

/// Size of the uploads.
const UPLOAD: usize = 3 << 20;

// ---------------------------------------------------------------------
// Process-wide discipline
// ---------------------------------------------------------------------

/// Held by every test for its whole run: the tests assert the process's
/// nethttp thread count (`/proc/self/task`, `live_threads`), so no other
/// test of this binary may run meanwhile.
fn exclusive() -> RwLockWriteGuard<'static, ()> {
    static PROCESS: RwLock<()> = RwLock::new(());
    PROCESS.write().unwrap_or_else(PoisonError::into_inner)
}

/// Declared after the peer and before the transport, so it drops after
/// the transport (and its `LeakCheck`) and before the peer stops: then no
/// thread nethttp started may be left in the process
/// (`nethttp::live_threads()` and the `nethttp-*` threads in
/// `/proc/self/task`), though the server is still there to keep a leaked
/// connection open.
struct ProcessClean;

impl Drop for ProcessClean {
    fn drop(&mut self) {
        let ok = wait_until(LIMIT, || {
            nethttp::live_threads() == 0 && proc_threads_named("nethttp-") == 0
        });
        if !ok && !thread::panicking() {
            panic!(
                "threads left after the transport dropped: live_threads {}, nethttp-* threads {}",
                nethttp::live_threads(),
                proc_threads_named("nethttp-")
            );
        }
    }
}

/// Starts nginx, or skips the test (returns) when it is not installed
/// (a failure under CI).
macro_rules! nginx {
    () => {
        match Nginx::start_h2() {
            Some(n) => n,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------

/// h2c by prior knowledge, no proxy.
fn h2c_builder() -> TransportBuilder {
    Transport::builder()
        .http2_prior_knowledge()
        .proxy(Proxy::none())
}

/// The index of the first byte of `body` that is not the pattern.
fn first_bad(body: &[u8]) -> Option<usize> {
    (0..body.len()).find(|&i| body[i] != (i % PATTERN_PERIOD) as u8)
}

/// Asserts `body` is the pattern, `len` bytes long.
#[track_caller]
fn assert_pattern(body: &[u8], len: usize, what: &str) {
    assert_eq!(body.len(), len, "{what}: body length");
    if !is_pattern(body) {
        panic!(
            "{what}: not the pattern from byte {:?}",
            first_bad(body).unwrap_or(0)
        );
    }
}

/// Reads `r` to its end in 64 KiB pieces, checking every byte against the
/// pattern without keeping the body. Returns the byte count.
#[track_caller]
fn check_stream(r: &mut impl Read, what: &str) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0usize;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return off,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("{what}: read error at offset {off}: {e}"),
        };
        for (j, &b) in buf[..n].iter().enumerate() {
            let want = ((off + j) % PATTERN_PERIOD) as u8;
            assert_eq!(b, want, "{what}: byte {}", off + j);
        }
        off += n;
    }
}

/// A header's value as text ("" when missing).
fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// GETs `url` with a trace; checks status 200, `version`, and that the
/// body is `len` bytes of the pattern. Returns how it got its connection.
#[track_caller]
fn get_pattern(c: &Client, url: &str, len: usize, version: Version) -> GotConnInfo {
    let rec = Recorder::new();
    let resp = c
        .get(url)
        .trace(rec.clone())
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
    assert_eq!(resp.version(), version, "GET {url}: response version");
    assert_eq!(
        resp.content_length(),
        Some(len as u64),
        "GET {url}: content-length"
    );
    let body = resp
        .bytes()
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
    assert_pattern(&body, len, &format!("GET {url}"));
    let conns = rec.conns();
    assert_eq!(
        conns.len(),
        1,
        "GET {url}: one got_conn: {:?}",
        rec.events()
    );
    assert_eq!(conns[0].version, version, "GET {url}: GotConnInfo.version");
    conns[0].clone()
}

/// GETs `url` and returns its body (status 200, `version`).
#[track_caller]
fn get_bytes(c: &Client, url: &str, version: Version) -> Vec<u8> {
    let resp = c
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
    assert_eq!(resp.version(), version, "GET {url}: response version");
    resp.bytes()
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"))
}

/// Every size nginx serves, in order, over one client: each body
/// byte-exact and `version`; the first request dials, every later one
/// reuses that connection. Returns the connection's id.
#[track_caller]
fn all_sizes_on_one_connection(c: &Client, url: impl Fn(&str) -> String, version: Version) -> u64 {
    let mut first: Option<u64> = None;
    for round in 0..2 {
        for &(name, size) in NGINX_FILES {
            let u = url(&format!("/data/{name}"));
            let got = get_pattern(c, &u, size, version);
            match first {
                None => {
                    assert!(!got.reused, "the first request must dial: {got:?}");
                    first = Some(got.conn_id);
                }
                Some(id) => {
                    assert!(got.reused, "round {round}, {u}: not reused: {got:?}");
                    assert_eq!(got.conn_id, id, "round {round}, {u}: another connection");
                }
            }
        }
        for &(_, size) in NGINX_FILES {
            let got = get_pattern(c, &url(&format!("/bytes/{size}")), size, version);
            assert!(got.reused, "/bytes/{size}: {got:?}");
            assert_eq!(Some(got.conn_id), first, "/bytes/{size}");
        }
    }
    first.expect("at least one request")
}

/// Waits until `t` has one idle connection with two threads (no dial,
/// no stream), and the process has exactly two nethttp threads.
#[track_caller]
fn assert_one_idle_connection(t: &Transport) -> PoolStats {
    let s = wait_stats(t, LIMIT, |s| {
        s.conns == 1
            && s.idle == 1
            && s.in_use == 0
            && s.dialing == 0
            && s.waiting == 0
            && s.streams == 0
            && s.threads == 2
    });
    assert!(
        wait_until(LIMIT, || proc_threads_named("nethttp-") == 2),
        "nethttp-* threads in the process: {}, want 2 ({s:?})",
        proc_threads_named("nethttp-")
    );
    assert_eq!(nethttp::live_threads(), 2, "live_threads ({s:?})");
    s
}

/// nginx's `/echo` for a GET (status 200 over `version`): its body and its
/// `x-http2` header (`h2`, `h2c`, or empty over HTTP/1.1).
fn nginx_echo(c: &Client, url: &str, version: Version) -> (String, String) {
    let resp = c
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
    assert_eq!(resp.version(), version, "GET {url}");
    let x_http2 = header(&resp, "x-http2");
    (resp.text().expect("echo body"), x_http2)
}

/// Random bytes from a fixed seed.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A request body reader yielding `len` bytes of the pattern in pieces of
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
            *b = ((self.pos + i) % PATTERN_PERIOD) as u8;
        }
        self.pos += n;
        Ok(n)
    }
}

/// PUTs `body` to `url` (nginx WebDAV): 201 for a new file, 204 over an
/// existing one; over `version`.
#[track_caller]
fn put(c: &Client, url: &str, body: Body, want: StatusCode, version: Version) {
    let resp = c
        .put(url)
        .body(body)
        .send()
        .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
    assert_eq!(resp.version(), version, "PUT {url}");
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    assert_eq!(status, want, "PUT {url}: {text}");
}

/// Uploads to nginx's `/put/` three ways (a `Vec`, a reader of unknown
/// length, a reader with its length), overwrites one, and reads each back
/// byte-exact. `tag` keeps the names of one call apart from another's.
fn uploads_round_trip(c: &Client, url: &dyn Fn(&str) -> String, tag: &str) {
    let v = Version::HTTP_2;
    let data = random_bytes(UPLOAD, 0x5eed_0001);
    let vec_url = url(&format!("/put/{tag}-vec"));
    put(
        c,
        &vec_url,
        Body::from(data.clone()),
        StatusCode::CREATED,
        v,
    );
    let back = get_bytes(c, &vec_url, v);
    assert_eq!(back.len(), data.len(), "{vec_url}: length read back");
    assert!(back == data, "{vec_url}: bytes read back differ");

    let unknown_url = url(&format!("/put/{tag}-unknown"));
    let body = Body::from_reader(PatternReader::new(UPLOAD, 7), None);
    put(c, &unknown_url, body, StatusCode::CREATED, v);
    assert_pattern(&get_bytes(c, &unknown_url, v), UPLOAD, &unknown_url);

    let known_url = url(&format!("/put/{tag}-known"));
    let body = Body::from_reader(PatternReader::new(UPLOAD, 11), Some(UPLOAD as u64));
    put(c, &known_url, body, StatusCode::CREATED, v);
    assert_pattern(&get_bytes(c, &known_url, v), UPLOAD, &known_url);

    // Over an existing file: 204, and the new content.
    let smaller = UPLOAD / 3 + 1;
    let body = Body::from_reader(PatternReader::new(smaller, 13), None);
    put(c, &vec_url, body, StatusCode::NO_CONTENT, v);
    assert_pattern(&get_bytes(c, &vec_url, v), smaller, &vec_url);
}

// ---------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------

/// https with ALPN `h2, http/1.1` (a caller's configuration offering both,
/// and nethttp's own default configuration) negotiates h2 with nginx:
/// every body byte-exact over one connection, reused from the second
/// request on, GotConnInfo.version HTTP/2, nginx's `$http2` is `h2`.
#[test]
fn https_alpn_negotiates_h2_and_bodies_arrive_byte_exact() {
    let _x = exclusive();
    let nginx = nginx!();
    let _clean = ProcessClean;
    let transports = [
        (
            "caller config offering h2, http/1.1",
            nginx.transport_builder(),
        ),
        (
            "nethttp's default config (danger_accept_invalid_certs)",
            Transport::builder()
                .danger_accept_invalid_certs(true)
                .proxy(Proxy::none()),
        ),
    ];
    for (what, builder) in transports {
        let t = builder.build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let base = nginx.tls_url("");
        let t2 = t.clone();
        bounded(what, HEAVY_LIMIT, move || {
            let id = all_sizes_on_one_connection(&c, |p| format!("{base}{p}"), Version::HTTP_2);
            let (echo, x_http2) = nginx_echo(&c, &format!("{base}/echo"), Version::HTTP_2);
            assert_eq!(echo, "GET HTTP/2.0 h2\n");
            assert_eq!(x_http2, "h2");
            let s = assert_one_idle_connection(&t2);
            let got = get_pattern(&c, &format!("{base}/data/1k"), 1024, Version::HTTP_2);
            assert_eq!(got.conn_id, id, "{s:?}");
        });
    }
}

/// h2c by prior knowledge to nginx's cleartext port, and prior knowledge
/// over https (ALPN `h2` alone): the same checks.
#[test]
fn prior_knowledge_h2c_and_https_bodies_arrive_byte_exact() {
    let _x = exclusive();
    let nginx = nginx!();
    let _clean = ProcessClean;
    let cases = [
        ("h2c", h2c_builder(), nginx.url(""), "h2c"),
        (
            "https prior knowledge",
            nginx.transport_builder().http2_prior_knowledge(),
            nginx.tls_url(""),
            "h2",
        ),
    ];
    for (what, builder, base, proto) in cases {
        let t = builder.build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let t2 = t.clone();
        bounded(what, HEAVY_LIMIT, move || {
            all_sizes_on_one_connection(&c, |p| format!("{base}{p}"), Version::HTTP_2);
            let (echo, x_http2) = nginx_echo(&c, &format!("{base}/echo"), Version::HTTP_2);
            assert_eq!(echo, format!("GET HTTP/2.0 {proto}\n"));
            assert_eq!(x_http2, proto);
            assert_one_idle_connection(&t2);
        });
    }
}

/// `http1_only()` offers ALPN `http/1.1` alone (on a copy of a config
/// offering h2 too): nginx speaks HTTP/1.1. A caller's config offering only
/// `http/1.1` does the same by itself.
#[test]
fn http1_only_speaks_http11_over_tls() {
    let _x = exclusive();
    let nginx = nginx!();
    let _clean = ProcessClean;
    let cases = [
        ("http1_only", nginx.transport_builder().http1_only()),
        (
            "caller config offering http/1.1",
            Transport::builder()
                .tls_config(pki().0.client_config())
                .proxy(Proxy::none()),
        ),
    ];
    for (what, builder) in cases {
        let t = builder.build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let base = nginx.tls_url("");
        let t2 = t.clone();
        bounded(what, TEST_LIMIT, move || {
            let first = get_pattern(&c, &format!("{base}/data/1m"), 1 << 20, Version::HTTP_11);
            assert!(!first.reused, "{first:?}");
            let again = get_pattern(&c, &format!("{base}/data/64k"), 64 << 10, Version::HTTP_11);
            assert!(again.reused, "{again:?}");
            assert_eq!(again.conn_id, first.conn_id);
            let (echo, x_http2) = nginx_echo(&c, &format!("{base}/echo"), Version::HTTP_11);
            assert_eq!(echo, "GET HTTP/1.1 \n");
            assert_eq!(x_http2, "");
            let s = wait_stats(&t2, LIMIT, |s| {
                s.conns == 1 && s.idle == 1 && s.threads == 2 && s.dialing == 0
            });
            assert_eq!(s.streams, 0, "no HTTP/2 stream on HTTP/1.1: {s:?}");
        });
    }
}

/// 64 threads, 8 GETs of /data/64k each, over one https transport whose
/// h2 connection is already up: every request rides that connection (one
/// connection, two threads all along, several streams at once); idle
/// afterwards with exactly two nethttp threads in the process; none after
/// `close_idle_connections`.
#[test]
fn sixty_four_threads_share_one_connection_and_two_threads() {
    const THREADS: usize = 64;
    const EACH: usize = 8;
    let _x = exclusive();
    let nginx = nginx!();
    let _clean = ProcessClean;
    let t = nginx.transport_builder().build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = nginx.tls_url("/data/64k");
    let t2 = t.clone();
    bounded("64 threads", HEAVY_LIMIT, move || {
        let warm = get_pattern(&c, &url, 64 << 10, Version::HTTP_2);
        assert_one_idle_connection(&t2);

        // Samples the pool while the threads run.
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(Mutex::new((0usize, 0usize, 0usize, 0usize)));
        let sampler = {
            let (t, stop, peak) = (t2.clone(), stop.clone(), peak.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let s = t.stats();
                    let procs = proc_threads_named("nethttp-");
                    let mut p = peak.lock().unwrap();
                    p.0 = p.0.max(s.conns);
                    p.1 = p.1.max(s.threads);
                    p.2 = p.2.max(s.streams);
                    p.3 = p.3.max(procs);
                    drop(p);
                    thread::sleep(Duration::from_micros(200));
                }
            })
        };
        let barrier = Arc::new(Barrier::new(THREADS));
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let (c, url, barrier) = (c.clone(), url.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    (0..EACH)
                        .map(|j| {
                            let what = format!("thread {i} GET {j}");
                            let rec = Recorder::new();
                            let resp = c
                                .get(&url)
                                .trace(rec.clone())
                                .send()
                                .unwrap_or_else(|e| panic!("{what}: {e}"));
                            assert_eq!(resp.version(), Version::HTTP_2, "{what}");
                            let body = resp.bytes().unwrap_or_else(|e| panic!("{what}: {e}"));
                            assert_pattern(&body, 64 << 10, &what);
                            let got = rec.conns()[0].clone();
                            assert!(got.reused, "{what}: {got:?}");
                            assert_eq!(got.version, Version::HTTP_2, "{what}");
                            got.conn_id
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut ids = HashSet::new();
        let mut panics = Vec::new();
        for w in workers {
            match w.join() {
                Ok(v) => ids.extend(v),
                Err(p) => panics.push(p),
            }
        }
        stop.store(true, Ordering::SeqCst);
        sampler.join().expect("sampler");
        if let Some(p) = panics.into_iter().next() {
            std::panic::resume_unwind(p);
        }
        let (conns, threads, streams, procs) = *peak.lock().unwrap();
        assert_eq!(
            ids,
            HashSet::from([warm.conn_id]),
            "every request on the first connection"
        );
        assert_eq!(conns, 1, "peak connections during the run");
        assert_eq!(threads, 2, "peak transport threads during the run");
        assert!(procs <= 2, "peak nethttp-* threads during the run: {procs}");
        assert!(
            streams > 1,
            "peak streams during the run: {streams} (no multiplexing?)"
        );

        assert_one_idle_connection(&t2);
        t2.close_idle_connections();
        wait_stats(&t2, LIMIT, |s| {
            s.threads == 0 && s.conns == 0 && s.streams == 0
        });
        assert!(
            wait_until(LIMIT, || proc_threads_named("nethttp-") == 0),
            "nethttp-* threads after close_idle_connections: {}",
            proc_threads_named("nethttp-")
        );
    });
}

/// The same load with no connection up yet: 64 threads start at once on
/// a fresh transport. Every request succeeds over HTTP/2 byte-exact, and
/// whatever was dialled in the rush, the pool settles on one connection
/// with two threads.
#[test]
fn sixty_four_threads_from_cold_all_get_h2_and_the_pool_settles() {
    const THREADS: usize = 64;
    let _x = exclusive();
    let nginx = nginx!();
    let _clean = ProcessClean;
    let t = nginx.transport_builder().build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = nginx.tls_url("/data/64k");
    let t2 = t.clone();
    let kept = bounded("64 threads cold", HEAVY_LIMIT, move || {
        let barrier = Arc::new(Barrier::new(THREADS));
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (c, url, barrier) = (c.clone(), url.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    (0..4)
                        .map(|_| get_pattern(&c, &url, 64 << 10, Version::HTTP_2).conn_id)
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut ids = HashSet::new();
        for w in workers {
            ids.extend(w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        let s = wait_stats(&t2, LIMIT, |s| {
            s.dialing == 0 && s.in_use == 0 && s.streams == 0 && s.threads == 2 * s.conns
        });
        assert!(s.conns >= 1 && s.conns <= ids.len(), "{s:?}, used {ids:?}");
        s.conns
    });
    // As Go 1.19 (`http2clientConnPool.addConnIfNeeded`): a connection
    // dialled in the rush while another to the key could take the request
    // (or awaits its SETTINGS) is closed and the request rides on the
    // other, so one connection is kept.
    assert_eq!(kept, 1, "cold burst of {THREADS} threads: connections kept");
}

/// A body dropped after 10 KB of /data/10m resets only its stream (h2
/// over TLS, and h2c): the next request rides the same connection, which
/// kept its two threads. Also with nothing read, and repeatedly.
#[test]
fn a_body_dropped_half_read_resets_only_its_stream() {
    let _x = exclusive();
    let nginx = nginx!();
    let _clean = ProcessClean;
    let cases = [
        ("https", nginx.transport_builder(), nginx.tls_url("")),
        ("h2c", h2c_builder(), nginx.url("")),
    ];
    for (what, builder, base) in cases {
        let t = builder.build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let t2 = t.clone();
        bounded(what, TEST_LIMIT, move || {
            let first = get_pattern(&c, &format!("{base}/data/1k"), 1024, Version::HTTP_2);
            for round in 0..4 {
                let rec = Recorder::new();
                let mut resp = c
                    .get(format!("{base}/data/10m"))
                    .trace(rec.clone())
                    .send()
                    .unwrap_or_else(|e| panic!("{what} round {round}: {e}"));
                assert_eq!(resp.version(), Version::HTTP_2);
                assert_eq!(rec.conns()[0].conn_id, first.conn_id, "round {round}");
                let read = if round % 2 == 0 { 10 * 1024 } else { 0 };
                let mut buf = vec![0u8; read];
                resp.read_exact(&mut buf)
                    .unwrap_or_else(|e| panic!("{what} round {round}: read: {e}"));
                assert_pattern(&buf, read, "the part read");
                assert_eq!(
                    t2.stats().streams,
                    1,
                    "round {round}: the held body's stream"
                );
                drop(resp);

                let s = wait_stats(&t2, LIMIT, |s| s.streams == 0 && s.in_use == 0);
                assert_eq!((s.conns, s.threads), (1, 2), "round {round}: {s:?}");
                assert!(
                    wait_until(LIMIT, || proc_threads_named("nethttp-") == 2),
                    "round {round}: nethttp-* threads {}",
                    proc_threads_named("nethttp-")
                );
                let next = get_pattern(&c, &format!("{base}/data/64k"), 64 << 10, Version::HTTP_2);
                assert_eq!(next.conn_id, first.conn_id, "round {round}: {next:?}");
                assert!(next.reused, "round {round}: {next:?}");
            }
            assert_one_idle_connection(&t2);
        });
    }
}

/// Flow control both ways with small windows: 10 MB down with a 65,535
/// byte stream window (and, over h2c, a 65,535 byte connection window
/// too), four 1 MB downloads at once sharing the connection window, and
/// 3 MB up against nginx's own (64 KiB) windows, all byte-exact.
#[test]
fn small_windows_carry_10mb_down_and_3mb_up_byte_exact() {
    let _x = exclusive();
    let nginx = nginx!();
    let _clean = ProcessClean;
    let cases = [
        (
            "https, stream window 65535",
            nginx
                .transport_builder()
                .http2_initial_stream_window(65_535),
            nginx.tls_url(""),
        ),
        (
            "h2c, stream and connection windows 65535",
            h2c_builder()
                .http2_initial_stream_window(65_535)
                .http2_initial_connection_window(65_535),
            nginx.url(""),
        ),
    ];
    for (i, (what, builder, base)) in cases.into_iter().enumerate() {
        let t = builder.build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let t2 = t.clone();
        bounded(what, HEAVY_LIMIT, move || {
            let url = format!("{base}/data/10m");
            let mut resp = c
                .get(&url)
                .send()
                .unwrap_or_else(|e| panic!("{what}: GET {url}: {e}"));
            assert_eq!(resp.version(), Version::HTTP_2, "{what}");
            assert_eq!(check_stream(&mut resp, what), 10 << 20, "{what}: length");
            drop(resp);

            let readers: Vec<_> = (0..4)
                .map(|k| {
                    let (c, url) = (c.clone(), format!("{base}/data/1m"));
                    thread::spawn(move || {
                        let mut resp = c.get(&url).send().unwrap_or_else(|e| panic!("#{k}: {e}"));
                        assert_eq!(resp.version(), Version::HTTP_2);
                        // Slow at first, so the streams' windows fill.
                        let mut head = vec![0u8; 1000];
                        resp.read_exact(&mut head).expect("first bytes");
                        thread::sleep(Duration::from_millis(50));
                        assert_pattern(&head, 1000, "first bytes");
                        let mut rest = Vec::new();
                        resp.read_to_end(&mut rest).expect("rest");
                        head.extend_from_slice(&rest);
                        head
                    })
                })
                .collect();
            for (k, r) in readers.into_iter().enumerate() {
                let body = r.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                assert_pattern(&body, 1 << 20, &format!("{what}: concurrent #{k}"));
            }

            let data = random_bytes(UPLOAD, 0xf10e);
            let up = format!("{base}/put/window-{i}");
            put(
                &c,
                &up,
                Body::from(data.clone()),
                StatusCode::CREATED,
                Version::HTTP_2,
            );
            let back = get_bytes(&c, &up, Version::HTTP_2);
            assert!(back == data, "{what}: upload read back differs");
            assert_one_idle_connection(&t2);
        });
    }
}

/// PUT 3 MB to nginx over h2 (TLS and h2c): from a `Vec`, from a reader of
/// unknown length (the stream's END_STREAM ends it), from a reader with
/// its length; then over an existing file. Each read back byte-exact.
#[test]
fn uploads_of_known_and_unknown_length_round_trip() {
    let _x = exclusive();
    let nginx = nginx!();
    let _clean = ProcessClean;
    let cases = [
        ("https", nginx.transport_builder(), nginx.tls_url("")),
        ("h2c", h2c_builder(), nginx.url("")),
    ];
    for (what, builder, base) in cases {
        let t = builder.build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let t2 = t.clone();
        bounded(what, HEAVY_LIMIT, move || {
            uploads_round_trip(&c, &|p| format!("{base}{p}"), what);
            assert_one_idle_connection(&t2);
        });
    }
}

/// Dropping the last clone of a transport (no `close_idle_connections`)
/// with an idle h2 connection ends both its threads. (No `LeakCheck`
/// here: it holds a clone, and closes idle connections itself; the check
/// is the process's thread count once the transport is gone.)
#[test]
fn dropping_the_transport_ends_an_idle_h2_connection() {
    let _x = exclusive();
    let nginx = nginx!();
    let _clean = ProcessClean;
    for (what, builder, base) in [
        ("https", nginx.transport_builder(), nginx.tls_url("")),
        ("h2c", h2c_builder(), nginx.url("")),
    ] {
        let t = builder.build();
        let c = client(&t);
        get_pattern(&c, &format!("{base}/data/64k"), 64 << 10, Version::HTTP_2);
        assert_one_idle_connection(&t);
        drop(c);
        drop(t);
        assert!(
            wait_until(LIMIT, || nethttp::live_threads() == 0
                && proc_threads_named("nethttp-") == 0),
            "{what}: after the transport dropped: live_threads {}, nethttp-* threads {}",
            nethttp::live_threads(),
            proc_threads_named("nethttp-")
        );
    }
}

// ---------------------------------------------------------------------
// Go 1.19 net/http
// ---------------------------------------------------------------------

/// How long the Go server may take to start listening.
const GO_START_LIMIT: Duration = Duration::from_secs(10);
/// How long it may take to exit once its stdin closes.
const GO_STOP_LIMIT: Duration = Duration::from_secs(3);

/// The name of the running test (libtest names its thread after it).
fn test_name() -> String {
    match thread::current().name() {
        Some(n) if n != "main" => n.to_string(),
        _ => "this test".to_string(),
    }
}

/// The go command: `go` on PATH, else Debian's `/usr/lib/go-1.19/bin/go`.
/// `None` after a skip message when neither runs (a failure under CI).
fn go_command() -> Option<String> {
    for go in ["go", "/usr/lib/go-1.19/bin/go"] {
        let runs = Command::new(go)
            .arg("version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if runs {
            return Some(go.to_string());
        }
    }
    // Prints the skip message (or panics under CI).
    peer_available("go", &["version"], "golang-1.19-go", &test_name());
    None
}

/// Builds `tests/peers/h2server.go` once per test binary into cargo's
/// temp dir for integration tests (`target/tmp`), with its own build
/// cache there (nothing written to `$HOME`, which may be read-only), no
/// cgo and no module proxy (standard library only). Returns the binary.
fn go_server_binary(go: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/h2server.go");
        let out = tmp.join("nethttp-h2server");
        // Built under a name of its own, then renamed into place: another
        // process may be running the old one.
        let partial = tmp.join(format!("nethttp-h2server.{}.partial", std::process::id()));
        let res = Command::new(go)
            .arg("build")
            .arg("-o")
            .arg(&partial)
            .arg(&src)
            .current_dir(tmp)
            .env("GOCACHE", tmp.join("go-build-cache"))
            .env("GOFLAGS", "")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0")
            .stdin(Stdio::null())
            .output();
        match res {
            Ok(o) if o.status.success() => std::fs::rename(&partial, &out)
                .map(|()| out)
                .map_err(|e| format!("rename {}: {e}", partial.display())),
            Ok(o) => {
                let _ = std::fs::remove_file(&partial);
                Err(format!(
                    "{go} build {}: {}\n{}",
                    src.display(),
                    o.status,
                    String::from_utf8_lossy(&o.stderr)
                ))
            }
            Err(e) => Err(format!("run {go}: {e}")),
        }
    });
    match built {
        Ok(p) => p.clone(),
        Err(e) => panic!("building the Go peer failed: {e}"),
    }
}

/// Go's net/http HTTP/2 server (`tests/peers/h2server.go`) over TLS with
/// the shared test leaf (`localhost`, `127.0.0.1`) that
/// [`tls_transport_builder`] trusts. Dropping it closes its stdin (it
/// exits), kills it if it lingers, and removes its certificate files.
struct GoPeer {
    port: u16,
    child: Child,
    stdin: Option<ChildStdin>,
    dir: PathBuf,
}

impl GoPeer {
    /// Starts it, or `None` (skip) when Go is not installed.
    fn start() -> Option<GoPeer> {
        let go = go_command()?;
        let bin = go_server_binary(&go);
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nethttp-go-h2server-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let leaf = &pki().1;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &leaf.cert_pem).expect("write cert.pem");
        std::fs::write(&key, &leaf.key_pem).expect("write key.pem");
        let mut child = Command::new(&bin)
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdin = child.stdin.take();
        let port = read_port(child.stdout.take().expect("stdout"), GO_START_LIMIT);
        let mut peer = GoPeer {
            port: 0,
            child,
            stdin,
            dir,
        };
        match port {
            Some(p) => peer.port = p,
            None => panic!("the Go peer did not print its port within {GO_START_LIMIT:?}"),
        }
        Some(peer)
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for GoPeer {
    fn drop(&mut self) {
        drop(self.stdin.take()); // it exits on EOF...
        let deadline = Instant::now() + GO_STOP_LIMIT;
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill(); // ...or now
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts the Go peer, or skips the test (returns) when Go is missing (a
/// failure under CI).
macro_rules! go_peer {
    () => {
        match GoPeer::start() {
            Some(p) => p,
            None => return,
        }
    };
}

/// Go's server negotiates h2: 1 MB and 0 bytes byte-exact, 1 MB echoed
/// (from a `Vec` and from a reader of unknown length), and trailers read
/// with `Response::trailers()` once the body ends.
#[test]
fn go_server_bodies_echo_and_trailers() {
    let _x = exclusive();
    let go = go_peer!();
    let _clean = ProcessClean;
    let t = tls_transport_builder().build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let base = go.url("");
    let t2 = t.clone();
    bounded("go", TEST_LIMIT, move || {
        let first = get_pattern(
            &c,
            &format!("{base}/bytes/1048576"),
            1 << 20,
            Version::HTTP_2,
        );
        assert!(!first.reused, "{first:?}");
        let again = get_pattern(&c, &format!("{base}/bytes/0"), 0, Version::HTTP_2);
        assert!(again.reused && again.conn_id == first.conn_id, "{again:?}");
        let resp = c
            .get(format!("{base}/bytes/1"))
            .send()
            .expect("GET /bytes/1");
        assert_eq!(header(&resp, "x-proto"), "HTTP/2.0", "the server's view");
        resp.discard().expect("discard");

        let data = random_bytes(1 << 20, 0x60);
        for (how, body) in [
            ("Vec", Body::from(data.clone())),
            (
                "reader, unknown length",
                Body::from_reader(io::Cursor::new(data.clone()), None),
            ),
        ] {
            let resp = c
                .post(format!("{base}/echo"))
                .body(body)
                .send()
                .unwrap_or_else(|e| panic!("echo ({how}): {e}"));
            assert_eq!(resp.status(), StatusCode::OK, "echo ({how})");
            assert_eq!(resp.version(), Version::HTTP_2, "echo ({how})");
            assert_eq!(header(&resp, "x-body-len"), "1048576", "echo ({how})");
            let back = resp.bytes().unwrap_or_else(|e| panic!("echo ({how}): {e}"));
            assert_eq!(back.len(), data.len(), "echo ({how}): length");
            assert!(back == data, "echo ({how}): bytes differ");
        }

        let mut resp = c
            .get(format!("{base}/trailers"))
            .send()
            .expect("GET /trailers");
        assert_eq!(resp.version(), Version::HTTP_2);
        let mut text = String::new();
        resp.read_to_string(&mut text).expect("trailers body");
        assert_eq!(text, "hello, trailers\n");
        let trailers = resp.trailers().expect("trailers after the body's end");
        assert_eq!(
            trailers.get("x-trailer").and_then(|v| v.to_str().ok()),
            Some("done"),
            "{trailers:?}"
        );
        assert_eq!(
            trailers.get("x-body-len").and_then(|v| v.to_str().ok()),
            Some("16"),
            "{trailers:?}"
        );
        drop(resp);
        assert_one_idle_connection(&t2);
    });
}

/// 32 threads at once against Go's server, each a 64 KiB download and a
/// 64 KiB echo, over the one connection already up: nethttp's trace and
/// Go's view (`x-remote`, the client address) agree there is one
/// connection; two threads.
#[test]
fn go_server_32_concurrent_requests_over_one_connection() {
    const THREADS: usize = 32;
    let _x = exclusive();
    let go = go_peer!();
    let _clean = ProcessClean;
    let t = tls_transport_builder().build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let base = go.url("");
    let t2 = t.clone();
    bounded("go 32", HEAVY_LIMIT, move || {
        let warm = c.get(format!("{base}/bytes/16")).send().expect("warm-up");
        let remote = header(&warm, "x-remote");
        assert!(!remote.is_empty());
        warm.discard().expect("discard");
        assert_one_idle_connection(&t2);

        let barrier = Arc::new(Barrier::new(THREADS));
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let (c, base, barrier) = (c.clone(), base.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    let mut seen = Vec::new();
                    let got =
                        get_pattern(&c, &format!("{base}/bytes/65536"), 65536, Version::HTTP_2);
                    seen.push(got.conn_id);
                    let data = random_bytes(65536, 100 + i as u64);
                    let rec = Recorder::new();
                    let resp = c
                        .post(format!("{base}/echo"))
                        .body(data.clone())
                        .trace(rec.clone())
                        .send()
                        .unwrap_or_else(|e| panic!("thread {i} echo: {e}"));
                    assert_eq!(resp.version(), Version::HTTP_2);
                    let remote = header(&resp, "x-remote");
                    let back = resp.bytes().expect("echo body");
                    assert!(back == data, "thread {i}: echo differs");
                    seen.push(rec.conns()[0].conn_id);
                    (seen, remote)
                })
            })
            .collect();
        let mut ids = HashSet::new();
        let mut remotes = HashSet::new();
        for w in workers {
            let (seen, r) = w.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            ids.extend(seen);
            remotes.insert(r);
        }
        assert_eq!(ids.len(), 1, "connections used: {ids:?}");
        assert_eq!(remotes, HashSet::from([remote]), "Go saw these clients");
        assert_one_idle_connection(&t2);
    });
}

/// Connection-specific request headers (`Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `Upgrade`) are dropped on HTTP/2: Go's server
/// refuses a request carrying any of them (RFC 9113 §8.2.2, a stream
/// error), so the request succeeds only if they are not sent; the other
/// headers arrive.
#[test]
fn go_server_connection_specific_headers_are_dropped() {
    let _x = exclusive();
    let go = go_peer!();
    let _clean = ProcessClean;
    let t = tls_transport_builder().build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = go.url("/headers");
    let t2 = t.clone();
    bounded("go headers", TEST_LIMIT, move || {
        let resp = c
            .get(&url)
            .header("connection", "keep-alive")
            .header("keep-alive", "timeout=5")
            .header("proxy-connection", "keep-alive")
            .header("upgrade", "websocket")
            .header("x-custom", "kept")
            .send()
            .unwrap_or_else(|e| panic!("GET /headers: {e}"));
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.version(), Version::HTTP_2);
        let text = resp.text().expect("headers body");
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once(':').map(|(n, _)| n))
            .collect();
        for dropped in ["connection", "keep-alive", "proxy-connection", "upgrade"] {
            assert!(!names.contains(&dropped), "{dropped} was sent:\n{text}");
        }
        assert!(text.lines().any(|l| l == "x-custom: kept"), "{text}");
        assert_one_idle_connection(&t2);
    });
}
