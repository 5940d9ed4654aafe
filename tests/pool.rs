//! Connection pool behaviour: reuse order, idle limits, per-host connection
//! limits and their waiters, idle timeouts, `close_idle_connections`,
//! disabled keep-alives, transport-level timeouts and `PoolStats` exactness.

mod support;

use std::{
    io::Read,
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{ErrorKind, PoolStats, Response, Transport};
use support::{
    LeakCheck, Recorder, ScriptedServer, assert_times_out, client, get_traced, header_value,
    ok_server, pattern_vec, silent_server, spawn_result, spawn_traced_get, traced_get_served,
    wait_stats, wait_until,
};

const LIMIT: Duration = Duration::from_secs(5);

fn conn_id(rec: &Recorder) -> u64 {
    let conns = rec.conns();
    assert_eq!(
        conns.len(),
        1,
        "one got_conn per request: {:?}",
        rec.events()
    );
    conns[0].conn_id
}

fn read_all(mut resp: Response) -> Vec<u8> {
    let mut v = Vec::new();
    resp.read_to_end(&mut v).expect("read body");
    v
}

#[test]
fn most_recently_used_idle_conn_is_reused_first() {
    let server = ok_server("hello");
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    // Two connections, both held.
    let (a, rec_a) = get_traced(&c, &url);
    let (b, rec_b) = get_traced(&c, &url);
    let (id_a, id_b) = (conn_id(&rec_a), conn_id(&rec_b));
    assert_ne!(id_a, id_b);

    // Release b first, then a: a is the most recently used.
    assert_eq!(read_all(b), b"hello");
    assert_eq!(read_all(a), b"hello");
    assert_eq!(t.stats().idle, 2);
    let (r1, rec1) = get_traced(&c, &url);
    assert_eq!(
        conn_id(&rec1),
        id_a,
        "the connection released last is picked"
    );
    assert!(rec1.conns()[0].was_idle);
    let (r2, rec2) = get_traced(&c, &url);
    assert_eq!(conn_id(&rec2), id_b);

    // The other order: release a, then b → b is picked.
    assert_eq!(read_all(r1), b"hello");
    assert_eq!(read_all(r2), b"hello");
    let (r3, rec3) = get_traced(&c, &url);
    assert_eq!(
        conn_id(&rec3),
        id_b,
        "the connection released last is picked"
    );
    assert_eq!(read_all(r3), b"hello");
    assert_eq!(server.accepted(), 2);
}

#[test]
fn max_idle_conns_per_host_closes_the_surplus() {
    let server = ok_server("hello");
    let t = Transport::builder().max_idle_conns_per_host(2).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let held: Vec<Response> = (0..3)
        .map(|_| c.get(&url).send().expect("request"))
        .collect();
    let s = t.stats();
    assert_eq!((s.conns, s.in_use, s.idle), (3, 3, 0), "{s:?}");
    for r in held {
        assert_eq!(read_all(r), b"hello");
    }
    let s = t.stats();
    assert_eq!(
        (s.idle, s.in_use),
        (2, 0),
        "two idle, the third closed: {s:?}"
    );
    assert_eq!(s.conns, 2, "{s:?}");
    wait_stats(&t, LIMIT, |s| s.threads == 4 && s.conns == 2 && s.idle == 2);
    assert_eq!(server.accepted(), 3);
}

#[test]
fn max_idle_conns_evicts_least_recently_used_anywhere() {
    let s1 = ok_server("one");
    let s2 = ok_server("two");
    let s3 = ok_server("three");
    let t = Transport::builder().max_idle_conns(2).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let fetch = |url: &str| -> bool {
        let (r, rec) = get_traced(&c, url);
        let reused = rec.conns()[0].reused;
        read_all(r);
        reused
    };
    // Idle order after these: s2 (older), s1 (used again, newer).
    assert!(!fetch(&s1.url("/")));
    assert!(!fetch(&s2.url("/")));
    assert!(fetch(&s1.url("/")), "s1's idle connection is reused");
    assert_eq!(t.stats().idle, 2);
    // A third host's connection goes idle: s2's, the least recently used
    // anywhere, is evicted (not s1's, which was created first).
    assert!(!fetch(&s3.url("/")));
    let s = t.stats();
    assert_eq!((s.idle, s.conns), (2, 2), "{s:?}");
    wait_stats(&t, LIMIT, |s| s.threads == 4);

    assert!(fetch(&s1.url("/")), "s1 stayed idle");
    assert!(fetch(&s3.url("/")), "s3 stayed idle");
    assert!(!fetch(&s2.url("/")), "s2 was evicted");
    assert_eq!((s1.accepted(), s2.accepted(), s3.accepted()), (1, 2, 1));
}

#[test]
fn max_conns_per_host_wait_times_out_with_pool_timeout() {
    let server = ok_server("hello");
    let t = Transport::builder()
        .max_conns_per_host(2)
        .pool_wait_timeout(Some(Duration::from_millis(200)))
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let a = c.get(&url).send().expect("a");
    let b = c.get(&url).send().expect("b");
    let (c2, url2) = (c.clone(), url.clone());
    let rx = spawn_result(move || {
        let start = Instant::now();
        let res = c2.get(&url2).send();
        (res.map(drop), start.elapsed())
    });
    wait_stats(&t, LIMIT, |s| s.waiting == 1);
    let (res, took) = rx.recv_timeout(LIMIT).expect("the waiting request ends");
    let err = res.expect_err("no connection became free");
    assert_eq!(err.kind(), ErrorKind::PoolTimeout, "{err}");
    assert!(err.is_timeout());
    assert!(took >= Duration::from_millis(190), "gave up after {took:?}");
    assert!(took < Duration::from_secs(3), "gave up after {took:?}");
    let s = t.stats();
    assert_eq!((s.waiting, s.conns, s.in_use), (0, 2, 2), "{s:?}");
    assert_eq!(server.accepted(), 2);
    // The abandoned want does not swallow a released connection.
    read_all(a);
    read_all(b);
    let s = t.stats();
    assert_eq!((s.idle, s.in_use, s.waiting), (2, 0, 0), "{s:?}");
}

#[test]
fn waiter_gets_the_released_connection_directly() {
    let server = ok_server("hello");
    let t = Transport::builder().max_conns_per_host(2).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let (a, rec_a) = get_traced(&c, &url);
    let (b, _rec_b) = get_traced(&c, &url);
    let rx = spawn_traced_get(&c, &url);
    wait_stats(&t, LIMIT, |s| s.waiting == 1);
    let s = t.stats();
    assert_eq!(
        (s.conns, s.dialing),
        (2, 0),
        "the waiter does not dial: {s:?}"
    );

    assert_eq!(read_all(a), b"hello");
    let info = traced_get_served(&rx, LIMIT, b"hello");
    assert_eq!(
        info.conn_id,
        conn_id(&rec_a),
        "the released connection itself"
    );
    assert!(info.reused, "{info:?}");
    assert!(
        !info.was_idle,
        "delivered straight from the release: {info:?}"
    );
    assert_eq!(server.accepted(), 2);
    read_all(b);
}

#[test]
fn waiters_are_served_in_fifo_order() {
    let server = ok_server("hello");
    let t = Transport::builder().max_conns_per_host(1).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let first = c.get(&url).send().expect("first");
    let (got_tx, got_rx) = mpsc::channel::<usize>();
    let mut release = Vec::new();
    let mut done = Vec::new();
    for i in 1..=3 {
        let (c2, url2, got_tx) = (c.clone(), url.clone(), got_tx.clone());
        let (rel_tx, rel_rx) = mpsc::channel::<()>();
        release.push(rel_tx);
        done.push(spawn_result(move || {
            let resp = c2.get(&url2).send();
            let _ = got_tx.send(i);
            let _ = rel_rx.recv_timeout(Duration::from_secs(10));
            resp.map(read_all)
        }));
        // Queue them one at a time so their order is known.
        wait_stats(&t, LIMIT, |s| s.waiting == i);
    }

    read_all(first);
    for (i, rel) in release.iter().enumerate() {
        let got = got_rx.recv_timeout(LIMIT).expect("a waiter is served");
        assert_eq!(got, i + 1, "waiters are served oldest first");
        assert_eq!(t.stats().waiting, 2 - i);
        rel.send(()).expect("release");
    }
    for d in done {
        assert_eq!(
            d.recv_timeout(LIMIT)
                .expect("waiter ends")
                .expect("request"),
            b"hello"
        );
    }
    assert_eq!(server.accepted(), 1);
}

#[test]
fn dropping_a_held_response_frees_its_slot_for_a_new_dial() {
    let server = ok_server("hello");
    let t = Transport::builder().max_conns_per_host(1).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let (held, rec_held) = get_traced(&c, &url);
    let rx = spawn_traced_get(&c, &url);
    wait_stats(&t, LIMIT, |s| s.waiting == 1);
    drop(held); // early close: the slot is free
    let info = traced_get_served(&rx, LIMIT, b"hello");
    assert!(!info.reused, "a new connection was dialled: {info:?}");
    assert_ne!(info.conn_id, conn_id(&rec_held));
    assert_eq!(server.accepted(), 2);
}

#[test]
fn idle_conn_timeout_closes_an_idle_connection() {
    let server = ok_server("hello");
    let t = Transport::builder()
        .idle_conn_timeout(Some(Duration::from_millis(200)))
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    read_all(c.get(server.url("/")).send().expect("request"));
    let idle_since = Instant::now();
    let s = t.stats();
    assert_eq!((s.idle, s.conns), (1, 1), "{s:?}");
    wait_stats(&t, LIMIT, |s| s.conns == 0 && s.idle == 0 && s.threads == 0);
    let took = idle_since.elapsed();
    assert!(
        took >= Duration::from_millis(150),
        "closed after only {took:?}"
    );
}

#[test]
fn idle_conn_timeout_keeps_a_busy_connection() {
    let server = ok_server("hello");
    let t = Transport::builder()
        .idle_conn_timeout(Some(Duration::from_millis(200)))
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let mut ids = Vec::new();
    for i in 0..12 {
        let (r, rec) = get_traced(&c, &url);
        assert_eq!(
            rec.conns()[0].reused,
            i > 0,
            "request {i}: {:?}",
            rec.events()
        );
        ids.push(conn_id(&rec));
        read_all(r);
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        ids.iter().all(|&id| id == ids[0]),
        "one connection throughout: {ids:?}"
    );
    assert_eq!(server.accepted(), 1);
}

#[test]
fn close_idle_connections_closes_idle_now_and_in_use_on_release() {
    let server = ok_server("hello");
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    let a = c.get(&url).send().expect("a");
    let (b, rec_b) = get_traced(&c, &url);
    read_all(a);
    let s = t.stats();
    assert_eq!((s.idle, s.in_use, s.conns), (1, 1, 2), "{s:?}");

    t.close_idle_connections();
    let s = t.stats();
    assert_eq!(
        (s.idle, s.in_use, s.conns),
        (0, 1, 1),
        "idle closed now: {s:?}"
    );
    wait_stats(&t, LIMIT, |s| s.threads == 2);

    // The response in use when close_idle_connections ran: its connection
    // closes instead of going idle when it is read to its end.
    assert_eq!(read_all(b), b"hello");
    assert_eq!(t.stats().idle, 0, "not pooled: {:?}", t.stats());
    let put: Vec<String> = rec_b
        .events()
        .into_iter()
        .filter(|e| e.starts_with("put_idle_conn"))
        .collect();
    assert!(
        put.iter().all(|e| e != "put_idle_conn ok"),
        "the connection must not be reported as pooled: {put:?}"
    );
    wait_stats(&t, LIMIT, |s| s.conns == 0 && s.threads == 0);

    // A new request starts: pooling resumes.
    let (r, rec) = get_traced(&c, &url);
    assert!(!rec.conns()[0].reused);
    read_all(r);
    let s = t.stats();
    assert_eq!((s.idle, s.conns), (1, 1), "pooled again: {s:?}");
    assert_eq!(server.accepted(), 3);
}

#[test]
fn disable_keep_alives_uses_a_new_connection_per_request() {
    let heads = Arc::new(Mutex::new(Vec::<String>::new()));
    let h = heads.clone();
    let server = ScriptedServer::start(move |mut c| {
        while let Some((head, _)) = c.read_request() {
            h.lock().unwrap().push(head);
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        }
    });
    let t = Transport::builder().disable_keep_alives(true).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    for i in 0..3 {
        let (r, rec) = get_traced(&c, &server.url("/"));
        assert!(!rec.conns()[0].reused, "request {i} reused a connection");
        assert_eq!(read_all(r), b"hello");
        assert_eq!(t.stats().idle, 0);
    }
    assert_eq!(server.accepted(), 3);
    for head in heads.lock().unwrap().iter() {
        let lower = head.to_ascii_lowercase();
        assert_eq!(header_value(&lower, "connection"), Some("close"), "{head}");
    }
    // No close_idle_connections: nothing was pooled, so nothing stays.
    wait_stats(&t, LIMIT, |s| {
        s.threads == 0 && s.conns == 0 && s.dialing == 0
    });
}

#[test]
fn response_header_timeout_is_a_timeout() {
    let server = silent_server();
    let t = Transport::builder()
        .response_header_timeout(Some(Duration::from_millis(200)))
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    assert_times_out(
        "the server never answers",
        Duration::from_millis(190),
        Duration::from_secs(3),
        || c.get(server.url("/")).send(),
    );
    wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
}

#[test]
fn connection_refused_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let err = c
        .get(format!("http://{addr}/"))
        .send()
        .expect_err("nobody listens");
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(!err.is_timeout());
    let s = t.stats();
    assert_eq!((s.conns, s.waiting, s.dialing), (0, 0, 0), "{s:?}");
}

#[test]
fn pool_stats_are_exact() {
    let server = ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            if head.starts_with("GET /big ") {
                let body = vec![b'x'; 64 * 1024];
                c.write(format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                ));
                c.write(body);
            } else {
                c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
            }
        }
    });
    let t = Transport::builder().max_idle_conns_per_host(4).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    // Sample continuously while several threads read, drop and hold.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (t, stop, samples) = (t.clone(), stop.clone(), samples.clone());
        spawn_result(move || {
            let mut bad: Vec<PoolStats> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let s = t.stats();
                if s.conns != s.idle + s.in_use {
                    bad.push(s);
                }
                samples.fetch_add(1, Ordering::SeqCst);
            }
            bad
        })
    };
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (c, big, small) = (c.clone(), server.url("/big"), server.url("/small"));
            spawn_result(move || {
                for i in 0..12 {
                    match (w + i) % 3 {
                        0 => {
                            read_all(c.get(&small).send().expect("small"));
                        }
                        1 => {
                            let mut r = c.get(&big).send().expect("big");
                            let mut buf = [0; 100];
                            r.read_exact(&mut buf).expect("part of the body");
                            drop(r); // early close
                        }
                        _ => {
                            let r = c.get(&small).send().expect("held");
                            thread::sleep(Duration::from_millis(2));
                            read_all(r);
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.recv_timeout(Duration::from_secs(15))
            .expect("worker finishes");
    }
    // Let the sampler see at least a few quiescent samples too.
    let seen = samples.load(Ordering::SeqCst);
    assert!(wait_until(LIMIT, || samples.load(Ordering::SeqCst) > seen + 10));
    stop.store(true, Ordering::SeqCst);
    let bad = sampler.recv_timeout(LIMIT).expect("sampler ends");
    assert!(
        bad.is_empty(),
        "conns != idle + in_use in {} samples, e.g. {:?}",
        bad.len(),
        bad[0]
    );

    t.close_idle_connections();
    wait_stats(&t, LIMIT, |s| *s == PoolStats::default());

    // A held, unread response is in use.
    let held = c.get(server.url("/small")).send().expect("held");
    let s = t.stats();
    assert_eq!(
        (s.conns, s.in_use, s.idle, s.waiting),
        (1, 1, 0, 0),
        "{s:?}"
    );
    let s = wait_stats(&t, LIMIT, |s| s.dialing == 0 && s.threads == 2);
    assert_eq!(s.threads, 2 * s.conns);

    let more: Vec<Response> = (0..2)
        .map(|_| c.get(server.url("/small")).send().expect("held"))
        .collect();
    let s = t.stats();
    assert_eq!((s.conns, s.in_use, s.idle), (3, 3, 0), "{s:?}");
    wait_stats(&t, LIMIT, |s| s.dialing == 0 && s.threads == 6);

    read_all(held);
    let s = t.stats();
    assert_eq!((s.conns, s.in_use, s.idle), (3, 2, 1), "{s:?}");
    for r in more {
        read_all(r);
    }
    let s = t.stats();
    assert_eq!((s.conns, s.in_use, s.idle), (3, 0, 3), "{s:?}");
    assert_eq!(s.threads, 2 * s.conns, "{s:?}");
}

#[test]
fn response_header_timeout_does_not_limit_the_body() {
    let server = ScriptedServer::start(|mut c| {
        while c.read_request().is_some() {
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234");
            thread::sleep(Duration::from_millis(400));
            c.write("56789");
        }
    });
    let t = Transport::builder()
        .response_header_timeout(Some(Duration::from_millis(200)))
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let start = Instant::now();
    let r = c
        .get(server.url("/"))
        .send()
        .expect("the head arrives at once");
    assert_eq!(read_all(r), b"0123456789");
    assert!(start.elapsed() >= Duration::from_millis(390));
    assert_eq!(t.stats().idle, 1, "{:?}", t.stats());
}

/// A connection quiet for over a second gives its read buffer back (the
/// reader's idle wait) and is still reused: what comes next, a head in
/// pieces and bodies larger than the buffer, arrives intact.
#[test]
fn a_quiet_connection_is_reused_after_giving_its_buffer_back() {
    let pat = Arc::new(pattern_vec(40_000));
    let body = pat.clone();
    let server = ScriptedServer::start(move |mut c| {
        let mut n = 0;
        while let Some((head, _)) = c.read_request() {
            n += 1;
            if head.starts_with("GET /split ") {
                // The head and body in pieces, each its own read.
                for piece in ["HTTP/1.1 200 OK\r\nContent-Le", "ngth: 5\r\n\r\nhel", "lo"] {
                    c.write(piece);
                    thread::sleep(Duration::from_millis(20));
                }
            } else {
                let len = 9_000 * n;
                c.write(format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n"));
                c.write(&body[..len]);
            }
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let (r, rec) = get_traced(&c, &server.url("/"));
    assert_eq!(read_all(r), pat[..9_000]);
    let first = conn_id(&rec);
    for (path, want) in [("/split", &b"hello"[..]), ("/", &pat[..27_000])] {
        // Past the reader's one-second hold on its buffer.
        thread::sleep(Duration::from_millis(1_300));
        let (r, rec) = get_traced(&c, &server.url(path));
        assert!(rec.conns()[0].reused, "{path}: {:?}", rec.events());
        assert_eq!(conn_id(&rec), first, "{path}");
        assert_eq!(read_all(r), want, "{path}");
    }
    assert_eq!(server.accepted(), 1);
}

#[test]
fn idle_conn_timeout_does_not_close_a_connection_in_use() {
    let server = ok_server("hello");
    let t = Transport::builder()
        .idle_conn_timeout(Some(Duration::from_millis(100)))
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/");

    // Idle for a while, then taken just before it expires.
    read_all(c.get(&url).send().expect("first"));
    thread::sleep(Duration::from_millis(60));
    let (r, rec) = get_traced(&c, &url);
    assert!(rec.conns()[0].reused, "{:?}", rec.events());
    // Held (in use) for well past the idle timeout.
    thread::sleep(Duration::from_millis(300));
    let s = t.stats();
    assert_eq!((s.conns, s.in_use), (1, 1), "in use, not idle: {s:?}");
    assert_eq!(read_all(r), b"hello");
    let s = t.stats();
    assert_eq!((s.idle, s.conns), (1, 1), "pooled again: {s:?}");
    assert_eq!(server.accepted(), 1);
}
