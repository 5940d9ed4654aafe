//! Proxies: scripted proxies for exact bytes, and tinyproxy (a forward
//! proxy nobody here wrote) for the real thing. `.ci/run` installs
//! tinyproxy; outside CI a missing binary skips that test loudly.

mod support;

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use nethttp::{Client, ErrorKind, Proxy, Transport};
use support::*;

/// A scripted HTTP proxy that answers every request itself with `reply`
/// and records the request heads it saw.
fn recording_proxy(reply: &'static str) -> (ScriptedServer, Arc<Mutex<Vec<String>>>) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let h = heads.clone();
    let server = ScriptedServer::start(move |mut c| {
        while let Some(head) = c.read_head() {
            h.lock().unwrap().push(head);
            c.write(reply);
        }
    });
    (server, heads)
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[test]
fn plain_http_goes_in_absolute_form_over_one_shared_connection() {
    let (proxy, heads) = recording_proxy(OK);
    let t = Transport::builder()
        .proxy(Proxy::http(format!("http://user:p%40ss@{}", proxy.addr)).unwrap())
        .build();
    let _leaks = LeakCheck::new(&t);
    let rec = Recorder::new();
    let c = client(&t);
    // Hosts that do not resolve: only the proxy is ever dialled.
    for url in [
        "http://a.invalid/x?q=1#frag",
        "http://b.invalid:8080/y",
        "http://a.invalid/z",
    ] {
        let r = c.get(url).trace(rec.clone()).send().unwrap();
        assert_eq!(r.text().unwrap(), "ok");
    }
    assert_eq!(
        proxy.accepted(),
        1,
        "one connection per proxy, shared by every target"
    );
    let heads = heads.lock().unwrap();
    assert!(
        heads[0].starts_with("GET http://a.invalid/x?q=1 HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    assert!(
        heads[1].starts_with("GET http://b.invalid:8080/y HTTP/1.1\r\n"),
        "{}",
        heads[1]
    );
    assert!(heads[0].contains("Host: a.invalid\r\n"), "{}", heads[0]);
    // Basic base64("user:p@ss"): the proxy URL's userinfo, percent-decoded.
    assert!(
        heads[0].contains("proxy-authorization: Basic dXNlcjpwQHNz\r\n"),
        "{}",
        heads[0]
    );
    let events = rec.events();
    assert!(
        events.iter().all(|e| !e.starts_with("dns_start")),
        "{events:?}"
    );
    assert_eq!(rec.conns()[0].remote_addr, proxy.addr);
}

#[test]
fn https_tunnels_with_connect_and_a_refusal_is_a_proxy_error() {
    let (proxy, heads) =
        recording_proxy("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
    let t = Transport::builder()
        .proxy(Proxy::all(format!("http://u:p@{}", proxy.addr)).unwrap())
        .build();
    let _leaks = LeakCheck::new(&t);
    let err = client(&t)
        .get("https://secure.invalid/path")
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy, "{err}");
    assert!(err.to_string().contains("407"), "{err}");
    let head = heads.lock().unwrap()[0].clone();
    assert!(
        head.starts_with("CONNECT secure.invalid:443 HTTP/1.1\r\nHost: secure.invalid:443\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Proxy-Authorization: Basic dTpw\r\n"),
        "{head}"
    );
    assert!(
        !head.contains("/path"),
        "the path never reaches the proxy: {head}"
    );
}

#[test]
fn proxy_scope_by_target_scheme_and_none() {
    let (proxy, heads) = recording_proxy(OK);
    let direct = ScriptedServer::start(|mut c| {
        while c.read_head().is_some() {
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ndirect");
        }
    });
    // An https-only proxy leaves plain http direct.
    let t = Transport::builder()
        .proxy(Proxy::https(format!("http://{}", proxy.addr)).unwrap())
        .build();
    let _leaks = LeakCheck::new(&t);
    let t2 = Transport::builder().proxy(Proxy::none()).build();
    let _leaks2 = LeakCheck::new(&t2);
    for (what, t) in [("https-only proxy", &t), ("Proxy::none", &t2)] {
        let body = client(t)
            .get(direct.url("/"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(body, "direct", "{what}");
    }
    assert!(heads.lock().unwrap().is_empty());
    // Unsupported proxy schemes are refused clearly.
    let t3 = Transport::builder()
        .proxy(Proxy::all("socks5://127.0.0.1:1").unwrap())
        .build();
    let err = client(&t3).get(direct.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy, "{err}");
}

/// tinyproxy on a free loopback port (`support::peers`), stopped on drop.
fn start_tinyproxy() -> Option<support::peers::Tinyproxy> {
    support::peers::Tinyproxy::start()
}

#[test]
fn through_tinyproxy() {
    let Some(proxy) = start_tinyproxy() else {
        return;
    };
    let target = InteropServer::start(2);
    let t = Transport::builder()
        .proxy(Proxy::http(format!("http://127.0.0.1:{}", proxy.port)).unwrap())
        .build();
    let _leaks = LeakCheck::new(&t);
    let rec = Recorder::new();
    let c = client(&t);
    for _ in 0..3 {
        let r = c
            .get(target.url("/hello"))
            .trace(rec.clone())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().unwrap(), "hello, world!");
    }
    let big = c
        .get(target.url("/bytes/300000"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(big.len(), 300_000);
    assert!(big.iter().enumerate().all(|(i, b)| *b == pattern(i)));
    // Every connection went to the proxy, never to the target directly.
    assert!(
        rec.conns()
            .iter()
            .all(|c| c.remote_addr.port() == proxy.port),
        "{:?}",
        rec.conns()
    );
    drop(proxy);
}

#[test]
fn https_tunnels_through_tinyproxy() {
    let Some(proxy) = start_tinyproxy() else {
        return;
    };
    let (ca, leaf) = support::tls::pki();
    let target = support::tls::TlsServer::start(leaf.server_config(), |mut c| {
        while c.read_head().is_some() {
            if c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\ntunnelled!")
                .is_err()
            {
                return;
            }
        }
    });
    let t = Transport::builder()
        .proxy(Proxy::all(format!("http://127.0.0.1:{}", proxy.port)).unwrap())
        .tls_config(ca.client_config())
        .build();
    let _leaks = LeakCheck::new(&t);
    let rec = Recorder::new();
    let c = client(&t);
    for _ in 0..3 {
        let r = c.get(target.url("/")).trace(rec.clone()).send().unwrap();
        assert_eq!(r.text().unwrap(), "tunnelled!");
    }
    // One tunnel, reused; its TCP peer is the proxy.
    assert_eq!(target.accepted(), 1);
    let conns = rec.conns();
    assert_eq!(
        conns.iter().map(|c| c.reused).collect::<Vec<_>>(),
        [false, true, true]
    );
    assert_eq!(conns[0].remote_addr.port(), proxy.port);
}

#[test]
fn a_silent_proxy_is_a_timeout_not_a_proxy_error() {
    let proxy = ScriptedServer::start(|mut c| {
        let _ = c.read_head();
        std::thread::sleep(Duration::from_secs(3));
    });
    let t = Transport::builder()
        .proxy(Proxy::all(format!("http://{}", proxy.addr)).unwrap())
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = Client::builder()
        .transport(t.clone())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = c.get("https://secure.invalid/").send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

#[test]
fn an_unreachable_proxy_is_a_proxy_error_that_names_it() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let t = Transport::builder()
        .proxy(Proxy::all(format!("http://ann:s3cret@{addr}")).unwrap())
        .build();
    let _leaks = LeakCheck::new(&t);
    for url in ["http://target.invalid/", "https://target.invalid/"] {
        let err = client(&t).get(url).send().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "{url}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(&addr.to_string()), "{url}: {msg}");
        assert!(!msg.contains("s3cret"), "{url}: {msg}");
    }
}
