//! Process-wide thread census. `nethttp::live_threads()` and
//! `/proc/self/task` count every thread of the process, so the checks here
//! must not overlap: they all run, in order, inside ONE `#[test]`, and this
//! file is its own test binary.
//!
//! The server is a [`ScriptedServer`] (a thread per connection that ends
//! when the client closes), not tiny_http, whose worker pool grows and
//! shrinks on its own clock and would blur the process thread count.

mod support;

use std::{
    io::Read,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use nethttp::{Transport, live_threads};
use support::{
    LeakCheck, ScriptedServer, XorShift, bounded, client, keep_alive_script, pattern, pattern_vec,
    proc_threads, proc_threads_named, wait_until,
};

const DEADLINE: Duration = Duration::from_secs(10);

const MAX_BODY: usize = 300_000;

/// Waits (bounded) until the crate's threads number `want` by its own count
/// and by `/proc` names, with no dial thread left. Fails with a census.
#[track_caller]
fn wait_crate_threads(want: usize, what: &str) {
    let ok = wait_until(DEADLINE, || {
        live_threads() == want
            && proc_threads_named("nethttp-") == want
            && proc_threads_named("nethttp-d") == 0
    });
    assert!(ok, "{what}: want {want} crate threads; {}", census());
}

fn census() -> String {
    format!(
        "live_threads()={}, /proc nethttp-r*={} nethttp-w*={} nethttp-d*={} nethttp-*={}, all threads={}",
        live_threads(),
        proc_threads_named("nethttp-r"),
        proc_threads_named("nethttp-w"),
        proc_threads_named("nethttp-d"),
        proc_threads_named("nethttp-"),
        proc_threads()
    )
}

/// One step of the census: runs against the server at `base`.
type Step = fn(&str);

#[test]
fn process_thread_census() {
    // 0. A process that has made no request has no crate thread.
    assert_eq!(live_threads(), 0, "at start: {}", census());
    assert_eq!(proc_threads_named("nethttp-"), 0, "at start: {}", census());

    let pat = Arc::new(pattern_vec(MAX_BODY));
    let server = ScriptedServer::start(keep_alive_script(pat));
    let base = server.url("");

    let steps: [(&str, Step); 6] = [
        ("goroutine puzzle", goroutine_puzzle),
        ("dropped unread", dropped_unread_no_growth),
        ("1000 mixed", mixed_1000_back_to_baseline),
        ("transport drop", dropping_last_transport_clone_closes_idle),
        ("held response", held_response_outlives_transport),
        ("file descriptors", one_fd_per_plain_connection),
    ];
    for (name, step) in steps {
        let started = Instant::now();
        let b = base.clone();
        bounded(name, Duration::from_secs(60), move || step(&b));
        eprintln!("{name}: {:?}", started.elapsed());
        // Every step leaves nothing behind.
        wait_crate_threads(0, &format!("after step {name:?}"));
    }
}

/// File descriptors of this process that are the client side of a TCP
/// connection to `port` on 127.0.0.1 (the scripted server's own sockets, in
/// this process too, are told apart by their local port).
fn client_fds_to(port: u16) -> usize {
    // Socket inodes whose remote end is the server (/proc/net/tcp: local
    // and remote address as hex "IP:PORT", inode in column 10).
    let table = std::fs::read_to_string("/proc/self/net/tcp").unwrap_or_default();
    let remote = format!(":{port:04X}");
    let inodes: std::collections::HashSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[2].ends_with(&remote)).then(|| f[9].to_string())
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| {
                    let t = target.to_string_lossy();
                    t.strip_prefix("socket:[")
                        .and_then(|s| s.strip_suffix(']'))
                        .is_some_and(|inode| inodes.contains(inode))
                })
                .count()
        })
        .unwrap_or(0)
}

/// A plain connection holds one file descriptor, held or idle, and gives it
/// back when it closes.
fn one_fd_per_plain_connection(base: &str) {
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("server port");
    assert_eq!(client_fds_to(port), 0, "before any request");
    let t = Transport::builder().max_idle_conns_per_host(4).build();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);
    let held: Vec<_> = (0..4)
        .map(|i| {
            client
                .get(format!("{base}/bytes/{}", 100 + i))
                .send()
                .expect("GET")
        })
        .collect();
    assert_eq!(t.stats().in_use, 4);
    assert_eq!(client_fds_to(port), 4, "four held responses");
    for (i, resp) in held.into_iter().enumerate() {
        assert_eq!(resp.bytes().expect("body"), pattern_vec(100 + i));
    }
    assert_eq!(t.stats().idle, 4);
    assert_eq!(client_fds_to(port), 4, "four idle connections");
    t.close_idle_connections();
    let closed = wait_until(DEADLINE, || client_fds_to(port) == 0);
    assert!(closed, "{} descriptors left", client_fds_to(port));
}

/// Go's "how many goroutines does this leave?": six sequential GETs, each
/// body read to EOF, leave exactly one pooled connection: two threads, a
/// reader and a writer, and no dial thread.
fn goroutine_puzzle(base: &str) {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);
    for i in 0..6 {
        let kind = if i % 2 == 0 { "bytes" } else { "chunked" };
        let body = client
            .get(format!("{base}/{kind}/{}", 1000 * i + 13))
            .send()
            .unwrap_or_else(|e| panic!("GET #{i}: {e:?}"))
            .bytes()
            .unwrap_or_else(|e| panic!("GET #{i} body: {e:?}"));
        assert_eq!(body, pattern_vec(1000 * i + 13), "GET #{i}");
    }
    wait_crate_threads(2, "after six sequential GETs read to EOF");
    assert_eq!(live_threads(), 2, "{}", census());
    assert_eq!(proc_threads_named("nethttp-r"), 1, "{}", census());
    assert_eq!(proc_threads_named("nethttp-w"), 1, "{}", census());
    let s = t.stats();
    assert_eq!(
        (s.conns, s.idle, s.in_use, s.dialing, s.threads),
        (1, 1, 0, 0, 2),
        "{s:?}"
    );
    t.close_idle_connections();
    wait_crate_threads(0, "after close_idle_connections");
    assert_eq!(t.stats().conns, 0);
}

/// Responses dropped unread close their connections: the thread count stays
/// bounded (it does not grow with the number of requests) and returns to 0.
fn dropped_unread_no_growth(base: &str) {
    const N: usize = 200;
    const BOUND: usize = 24;
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);
    let mut max_live = 0;
    for i in 0..N {
        let size = if i % 2 == 0 { 200_000 } else { 50 };
        let resp = client
            .get(format!("{base}/bytes/{size}"))
            .send()
            .unwrap_or_else(|e| panic!("GET #{i}: {e:?}"));
        assert_eq!(resp.status().as_u16(), 200);
        drop(resp);
        let live = live_threads();
        max_live = max_live.max(live);
        assert!(
            live <= BOUND,
            "after {} dropped responses: {}",
            i + 1,
            census()
        );
    }
    eprintln!("dropped unread: {N} requests, at most {max_live} crate threads alive");
    // Dropped before EOF: no connection is pooled.
    let ok = wait_until(DEADLINE, || t.stats().conns == 0);
    assert!(ok, "dropped responses left connections: {:?}", t.stats());
    t.close_idle_connections();
    wait_crate_threads(0, "after dropping every response unread");
}

/// 1,000 mixed requests: read fully, dropped early, dropped unread, HEAD,
/// 204. Afterwards the crate's and the process's thread counts return to
/// where they started.
fn mixed_1000_back_to_baseline(base: &str) {
    const BOUND: usize = 40;
    let base_live = live_threads();
    let base_proc = proc_threads();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);
    let mut rng = XorShift::new(0xDEC0DE);
    let mut max_live = 0;
    let mut kinds = [0usize; 5];
    for i in 0..1000 {
        let size = match rng.below(4) {
            0 => 0,
            1 => rng.below(100) as usize,
            2 => rng.below(20_000) as usize,
            _ => 100_000 + rng.below(100_000) as usize,
        };
        let frame = if rng.below(2) == 0 {
            "bytes"
        } else {
            "chunked"
        };
        let choice = rng.below(5) as usize;
        kinds[choice] += 1;
        let what = format!("request {i} choice {choice} /{frame}/{size}");
        match choice {
            0 => {
                let body = client
                    .get(format!("{base}/{frame}/{size}"))
                    .send()
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"))
                    .bytes()
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert!(
                    body.len() == size && body.iter().enumerate().all(|(j, &b)| b == pattern(j)),
                    "{what}: wrong body"
                );
            }
            1 => {
                let mut resp = client
                    .get(format!("{base}/{frame}/{size}"))
                    .send()
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                let mut some = vec![0u8; size.min(1 + rng.below(64) as usize)];
                resp.read_exact(&mut some)
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(some, pattern_vec(some.len()), "{what}");
                drop(resp);
            }
            2 => {
                let resp = client
                    .get(format!("{base}/{frame}/{size}"))
                    .send()
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(resp.status().as_u16(), 200, "{what}");
                drop(resp);
            }
            3 => {
                let resp = client
                    .head(format!("{base}/bytes/{size}"))
                    .send()
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(resp.status().as_u16(), 200, "{what}");
                assert_eq!(
                    resp.content_length(),
                    Some(size as u64),
                    "{what}: HEAD length"
                );
                // Dropped without reading: a HEAD response has no body, so
                // its connection was pooled already.
                drop(resp);
            }
            _ => {
                let resp = client
                    .get(format!("{base}/status/204"))
                    .send()
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(resp.status().as_u16(), 204, "{what}");
                drop(resp);
            }
        }
        let live = live_threads();
        max_live = max_live.max(live);
        assert!(live <= BOUND, "after {what}: {}", census());
    }
    eprintln!("1000 mixed {kinds:?}: at most {max_live} crate threads alive");
    t.close_idle_connections();
    // The process count may have held a scripted-server thread of the step
    // before that was still ending: back to it or below.
    let ok = wait_until(DEADLINE, || {
        live_threads() == base_live && proc_threads() <= base_proc
    });
    assert!(
        ok,
        "after 1000 mixed requests: want live_threads()={base_live} and at most {base_proc} process threads; {}",
        census()
    );
}

/// Dropping the last clone of a `Transport` closes its idle connections,
/// without `close_idle_connections`. (No `LeakCheck` here: it would hold a
/// clone and keep the transport alive.)
fn dropping_last_transport_clone_closes_idle(base: &str) {
    let t = Transport::builder().max_idle_conns_per_host(4).build();
    let client = client(&t);
    // Three responses held at once: three connections.
    let held: Vec<_> = (0..3)
        .map(|i| {
            client
                .get(format!("{base}/bytes/{}", 10 + i))
                .send()
                .unwrap_or_else(|e| panic!("GET #{i}: {e:?}"))
        })
        .collect();
    for (i, r) in held.into_iter().enumerate() {
        assert_eq!(r.bytes().expect("body"), pattern_vec(10 + i));
    }
    let s = t.stats();
    assert_eq!((s.conns, s.idle), (3, 3), "{s:?}");
    wait_crate_threads(6, "three idle connections");
    drop(client);
    drop(t);
    wait_crate_threads(
        0,
        "after dropping the last Transport clone with 3 idle connections",
    );
}

/// A response still held when its `Transport` is dropped keeps its
/// connection (and two threads) until released; idle ones close at once.
fn held_response_outlives_transport(base: &str) {
    let t = Transport::new();
    let client = client(&t);
    // A: held, to be read to its end later. B: held, to be dropped unread.
    let mut a = client
        .get(format!("{base}/bytes/200000"))
        .send()
        .expect("GET A");
    let b = client
        .get(format!("{base}/chunked/200000"))
        .send()
        .expect("GET B");
    // C: read to its end at once, so its connection is idle.
    let c = client
        .get(format!("{base}/bytes/100"))
        .send()
        .expect("GET C");
    assert_eq!(c.bytes().expect("body C"), pattern_vec(100));
    let s = t.stats();
    assert_eq!((s.conns, s.idle, s.in_use), (3, 1, 2), "{s:?}");
    wait_crate_threads(6, "two held responses and one idle connection");

    drop(client);
    drop(t);
    // The idle connection closes; the two held ones stay open.
    wait_crate_threads(
        4,
        "after dropping the Transport: only the held connections remain",
    );
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        live_threads(),
        4,
        "held connections must stay open: {}",
        census()
    );

    // A is still readable to its end, byte for byte.
    let mut got = Vec::new();
    a.read_to_end(&mut got)
        .expect("read A after the transport was dropped");
    assert_eq!(got.len(), 200_000);
    assert!(
        got.iter().enumerate().all(|(j, &x)| x == pattern(j)),
        "A: wrong body"
    );
    // Read to its end with no transport to go back to: it closes.
    wait_crate_threads(2, "after A was read to its end (no pool to return to)");
    drop(a);
    wait_crate_threads(2, "after dropping A");

    drop(b);
    wait_crate_threads(0, "after dropping B unread");
}
