//! The cookie jar end to end: across requests, across a redirect, never to
//! another host; a `CookieJar` shared between clients, filled by hand, and
//! saved and loaded across "runs".

mod support;

use std::sync::{Arc, Mutex};

use nethttp::{Client, CookieJar, Transport, Url};
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

/// A client on `t` that keeps its cookies in `jar`.
fn client_with(t: &Transport, jar: &CookieJar) -> Client {
    Client::builder()
        .transport(t.clone())
        .cookie_jar(jar.clone())
        .build()
        .unwrap()
}

fn show(c: &Client, server: &ScriptedServer) -> String {
    c.get(server.url("/show")).send().unwrap().text().unwrap()
}

#[test]
fn two_clients_share_one_jar() {
    let (server, seen) = cookie_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let jar = CookieJar::new();
    let a = client_with(&t, &jar);
    let b = client_with(&t, &jar);
    // A cookie a response to A sets is sent by B.
    a.get(server.url("/set?from_a=1")).send().unwrap();
    assert_eq!(show(&b, &server), "from_a=1");
    b.get(server.url("/set?from_b=2")).send().unwrap();
    assert_eq!(show(&a, &server), "from_a=1; from_b=2");
    // The caller's handle sees the same jar.
    let url = Url::parse(&server.url("/")).unwrap();
    assert_eq!(jar.cookies(&url).unwrap(), "from_a=1; from_b=2");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [
            "/set?from_a=1 -",
            "/show from_a=1",
            "/set?from_b=2 from_a=1",
            "/show from_a=1; from_b=2",
        ]
    );
    // cookie_store(true) makes a jar of its own, empty.
    assert_eq!(show(&client(&t, true), &server), "-");
    // An explicit jar wins over cookie_store, whatever the order.
    for c in [
        Client::builder()
            .transport(t.clone())
            .cookie_store(true)
            .cookie_jar(jar.clone())
            .build()
            .unwrap(),
        Client::builder()
            .transport(t.clone())
            .cookie_jar(jar.clone())
            .cookie_store(false)
            .build()
            .unwrap(),
    ] {
        assert_eq!(show(&c, &server), "from_a=1; from_b=2");
    }
}

#[test]
fn a_jar_filled_with_add_is_sent_on_the_first_request() {
    let (server, seen) = cookie_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let url = Url::parse(&server.url("/login")).unwrap();
    let jar = CookieJar::new();
    jar.add("sid=abc; Path=/; HttpOnly", &url).unwrap();
    // Secure: not for this http server.
    jar.add("tls_only=1; Path=/; Secure", &url).unwrap();
    // Another path.
    jar.add("admin=1; Path=/admin", &url).unwrap();
    let c = client_with(&t, &jar);
    assert_eq!(show(&c, &server), "sid=abc");
    assert_eq!(seen.lock().unwrap().as_slice(), ["/show sid=abc"]);
    assert_eq!(
        c.get(server.url("/admin/x"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "admin=1; sid=abc"
    );
    // A refused cookie changes nothing.
    let err = jar.add("wide=1; Domain=com", &url).unwrap_err();
    assert_eq!(err.kind(), nethttp::ErrorKind::InvalidRequest);
    assert_eq!(show(&c, &server), "sid=abc");
}

#[test]
fn client_cookie_jar_sees_cookies_from_responses() {
    let (server, _) = cookie_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    assert!(client(&t, false).cookie_jar().is_none());
    let c = client(&t, true);
    let jar = c.cookie_jar().expect("cookie_store(true) makes a jar");
    let url = Url::parse(&server.url("/")).unwrap();
    assert!(jar.cookies(&url).is_none());
    c.get(server.url("/set?r=1")).send().unwrap();
    // Set on a redirect, too.
    c.get(server.url("/hop")).send().unwrap().text().unwrap();
    assert_eq!(jar.cookies(&url).unwrap(), "r=1; hop=1");
    // Clones of the client share it; a cookie added to it is sent.
    let clone = c.clone();
    clone.cookie_jar().unwrap().add("extra=1", &url).unwrap();
    assert_eq!(show(&c, &server), "r=1; hop=1; extra=1");
    assert_eq!(
        format!("{:?}", c.cookie_jar().unwrap()),
        "CookieJar { cookies: 3 }"
    );
}

#[test]
fn a_saved_jar_loaded_into_a_new_client_sends_persistent_cookies_only() {
    let (server, seen) = cookie_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let path = std::env::temp_dir().join(format!(
        "nethttp-cookies-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));

    // First run: a persistent and a session cookie from responses.
    {
        let c = client(&t, true);
        c.get(server.url("/set?keep=1;Max-Age=3600"))
            .send()
            .unwrap();
        c.get(server.url("/set?temp=2")).send().unwrap();
        assert_eq!(show(&c, &server), "keep=1; temp=2");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        c.cookie_jar().unwrap().save_json(&mut file).unwrap();
    }

    // Second run: a new client with the loaded jar.
    let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let jar = CookieJar::load_json(file).unwrap();
    std::fs::remove_file(&path).unwrap();
    let c = client_with(&t, &jar);
    seen.lock().unwrap().clear();
    assert_eq!(show(&c, &server), "keep=1");
    assert_eq!(seen.lock().unwrap().as_slice(), ["/show keep=1"]);
    // The loaded jar keeps taking cookies.
    c.get(server.url("/set?next=3")).send().unwrap();
    assert_eq!(show(&c, &server), "keep=1; next=3");
}
