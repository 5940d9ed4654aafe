//! Trace hooks: their order for a fresh and a reused connection, DNS hooks
//! only for names, `GotConnInfo` addresses, and `put_idle_conn` firing
//! before the read that delivered the last byte returns.

mod support;

use std::{
    io::Read,
    net::SocketAddr,
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use nethttp::{Client, Transport};
use support::{LeakCheck, Recorder, ScriptedServer, client, get_traced};

/// Keep-alive server answering `0123456789` (Content-Length 10). It waits
/// 30 ms before answering so the client's writer has surely reported
/// `wrote_request` before the first response byte exists (the two hooks
/// run on different threads). Records each connection's (peer, local)
/// addresses.
struct Server {
    inner: ScriptedServer,
    addrs: Arc<Mutex<Vec<(SocketAddr, SocketAddr)>>>,
}

fn server() -> Server {
    let addrs = Arc::new(Mutex::new(Vec::new()));
    let a = addrs.clone();
    let inner = ScriptedServer::start(move |mut c| {
        if let (Ok(peer), Ok(local)) = (c.stream.peer_addr(), c.stream.local_addr()) {
            a.lock().unwrap().push((peer, local));
        }
        while c.read_request().is_some() {
            thread::sleep(Duration::from_millis(30));
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
        }
    });
    Server { inner, addrs }
}

fn traced_text(c: &Client, url: &str) -> Arc<Recorder> {
    let (r, rec) = get_traced(c, url);
    assert_eq!(r.text().expect("text"), "0123456789");
    rec
}

#[test]
fn hook_order_for_a_fresh_connection() {
    let s = server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let addr = s.inner.addr;

    let rec = traced_text(&c, &s.inner.url("/"));
    assert_eq!(
        rec.events(),
        vec![
            format!("get_conn {addr}"),
            format!("connect_start {addr}"),
            format!("connect_done {addr} ok"),
            "got_conn reused=false was_idle=false".to_string(),
            "wrote_headers".to_string(),
            "wrote_request ok".to_string(),
            "got_first_response_byte".to_string(),
            "put_idle_conn ok".to_string(),
        ]
    );
    let info = &rec.conns()[0];
    assert!(!info.reused && !info.was_idle, "{info:?}");
    assert_eq!(info.idle_time, Duration::ZERO);
}

#[test]
fn dns_hooks_fire_for_names_only() {
    let s = server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let port = s.inner.addr.port();

    // IP literal: no DNS hooks.
    let rec = traced_text(&c, &s.inner.url("/"));
    assert!(
        rec.events().iter().all(|e| !e.starts_with("dns_")),
        "DNS hooks for an IP literal: {:?}",
        rec.events()
    );

    // A name: dns_start, dns_done, then the connect hooks (a separate pool
    // key, so a new connection).
    let rec = traced_text(&c, &format!("http://localhost:{port}/"));
    let ev = rec.events();
    let pos = |p: &str| ev.iter().position(|e| e.starts_with(p));
    let start = pos("dns_start").unwrap_or_else(|| panic!("no dns_start: {ev:?}"));
    let done = pos("dns_done").unwrap_or_else(|| panic!("no dns_done: {ev:?}"));
    let connect = pos("connect_start").unwrap_or_else(|| panic!("no connect_start: {ev:?}"));
    let got = pos("got_conn").unwrap_or_else(|| panic!("no got_conn: {ev:?}"));
    assert_eq!(pos("get_conn"), Some(0), "{ev:?}");
    assert_eq!(ev[0], format!("get_conn localhost:{port}"));
    assert_eq!(ev[start], "dns_start localhost");
    assert!(start < done && done < connect && connect < got, "{ev:?}");
    assert_eq!(
        ev.iter().filter(|e| e.starts_with("dns_start")).count(),
        1,
        "{ev:?}"
    );
    assert_ne!(ev[done], "dns_done 0", "localhost resolves: {ev:?}");
    assert!(
        ev.iter()
            .any(|e| *e == format!("connect_done 127.0.0.1:{port} ok")),
        "{ev:?}"
    );
    assert_eq!(ev[got], "got_conn reused=false was_idle=false");
    assert_eq!(s.inner.accepted(), 2);
}

#[test]
fn second_request_reuses_the_idle_connection() {
    let s = server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let addr = s.inner.addr;

    let first = traced_text(&c, &s.inner.url("/"));
    thread::sleep(Duration::from_millis(5));
    let second = traced_text(&c, &s.inner.url("/"));
    assert_eq!(
        second.events(),
        vec![
            format!("get_conn {addr}"),
            "got_conn reused=true was_idle=true".to_string(),
            "wrote_headers".to_string(),
            "wrote_request ok".to_string(),
            "got_first_response_byte".to_string(),
            "put_idle_conn ok".to_string(),
        ]
    );
    let (a, b) = (&first.conns()[0], &second.conns()[0]);
    assert_eq!(a.conn_id, b.conn_id);
    assert!(
        b.idle_time >= Duration::from_millis(5),
        "idle_time {:?}",
        b.idle_time
    );
    assert!(
        b.idle_time < Duration::from_secs(5),
        "idle_time {:?}",
        b.idle_time
    );
    assert_eq!((a.local_addr, a.remote_addr), (b.local_addr, b.remote_addr));
    assert_eq!(s.inner.accepted(), 1);
}

#[test]
fn got_conn_addresses_match_the_servers_view() {
    let s = server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let rec = traced_text(&c, &s.inner.url("/"));
    let info = &rec.conns()[0];
    let seen = s.addrs.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (peer, local) = seen[0];
    assert_eq!(
        info.local_addr, peer,
        "the server sees our local address as its peer"
    );
    assert_eq!(info.remote_addr, local);
    assert_eq!(info.remote_addr, s.inner.addr);
}

#[test]
fn put_idle_conn_fires_before_the_last_read_returns() {
    let s = server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let rec = Recorder::new();
    let mut r = c
        .get(s.inner.url("/"))
        .trace(rec.clone())
        .send()
        .expect("request");
    assert!(
        rec.events().iter().all(|e| !e.starts_with("put_idle_conn")),
        "{:?}",
        rec.events()
    );
    let mut buf = [0; 10];
    r.read_exact(&mut buf)
        .expect("exactly Content-Length bytes");
    assert_eq!(
        rec.events().last().map(String::as_str),
        Some("put_idle_conn ok")
    );
    assert_eq!(t.stats().idle, 1);
    drop(r);
    let n = rec
        .events()
        .iter()
        .filter(|e| e.starts_with("put_idle_conn"))
        .count();
    assert_eq!(n, 1, "{:?}", rec.events());
}
