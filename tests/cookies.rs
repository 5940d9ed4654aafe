//! The cookie jar end to end: across requests, across a redirect, and
//! never to another host.

mod support;

use std::sync::{Arc, Mutex};

use nethttp::{Client, Transport};
use support::*;

/// `/set?k=v` sets cookie k=v; `/hop` sets `hop=1` and redirects to
/// `/show`; `/go?to=URL` redirects there; everything else echoes the
/// Cookie header it got (or "-").
fn cookie_server() -> (ScriptedServer, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = ScriptedServer::start(move |mut c| {
        while let Some(head) = c.read_head() {
            let target = head.split(' ').nth(1).unwrap_or("/").to_string();
            let cookie = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("cookie: ")
                        .or_else(|| l.strip_prefix("Cookie: "))
                })
                .unwrap_or("-")
                .to_string();
            s.lock().unwrap().push(format!("{target} {cookie}"));
            if let Some(kv) = target.strip_prefix("/set?") {
                c.write(format!(
                    "HTTP/1.1 200 OK\r\nSet-Cookie: {kv}; Path=/\r\nContent-Length: 0\r\n\r\n"
                ));
            } else if target == "/hop" {
                c.write("HTTP/1.1 302 Found\r\nSet-Cookie: hop=1; Path=/\r\nLocation: /show\r\nContent-Length: 0\r\n\r\n");
            } else if let Some(to) = target.strip_prefix("/go?to=") {
                c.write(format!(
                    "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n"
                ));
            } else {
                c.write(format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{cookie}",
                    cookie.len()
                ));
            }
        }
    });
    (server, seen)
}

fn client(t: &Transport, jar: bool) -> Client {
    Client::builder()
        .transport(t.clone())
        .cookie_store(jar)
        .build()
        .unwrap()
}

#[test]
fn cookies_come_back_on_later_requests() {
    let (server, _) = cookie_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t, true);
    c.get(server.url("/set?a=1")).send().unwrap();
    c.get(server.url("/set?b=2")).send().unwrap();
    assert_eq!(
        c.get(server.url("/show")).send().unwrap().text().unwrap(),
        "a=1; b=2"
    );
    // Clones share the jar.
    assert_eq!(
        c.clone()
            .get(server.url("/show"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "a=1; b=2"
    );
    // A cookie the caller sets joins the jar's.
    let r = c
        .get(server.url("/show"))
        .header("Cookie", "own=0")
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "own=0; a=1; b=2");
    // Without a jar nothing is kept.
    let plain = client(&t, false);
    plain.get(server.url("/set?a=1")).send().unwrap();
    assert_eq!(
        plain
            .get(server.url("/show"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "-"
    );
}

#[test]
fn a_cookie_set_on_a_redirect_is_sent_on_the_next_hop() {
    let (server, seen) = cookie_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let r = client(&t, true).get(server.url("/hop")).send().unwrap();
    assert_eq!(r.url().path(), "/show");
    assert_eq!(r.text().unwrap(), "hop=1");
    assert_eq!(seen.lock().unwrap().as_slice(), ["/hop -", "/show hop=1"]);
}

#[test]
fn cookies_never_go_to_another_host() {
    let (a, _) = cookie_server();
    let (b, seen_b) = cookie_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t, true);
    c.get(a.url("/set?secret=1")).send().unwrap();
    // `localhost` is another host than 127.0.0.1, directly and via redirect.
    let other = format!("http://localhost:{}/show", b.addr.port());
    assert_eq!(c.get(&other).send().unwrap().text().unwrap(), "-");
    let r = c.get(a.url(&format!("/go?to={other}"))).send().unwrap();
    assert_eq!(r.text().unwrap(), "-");
    assert!(seen_b.lock().unwrap().iter().all(|s| s.ends_with(" -")));
}
