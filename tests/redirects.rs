//! Redirect chains end to end on 127.0.0.1, with `localhost` standing in
//! for a second host.

mod support;

use std::sync::{Arc, Mutex};

use nethttp::{Body, Client, ErrorKind, RedirectAction, RedirectPolicy, Transport};
use support::*;

/// Requests as the server saw them: (head, body).
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A keep-alive server: `/r/<code>/<n>?to=<url>` answers `<code>` with
/// `Location` = `to` (or `/r/<code>/<n-1>` while n > 0, then `/done`); any
/// other path answers 200 with the request line as body.
fn redirect_server() -> (ScriptedServer, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let server = ScriptedServer::start(move |mut c| {
        while let Some((head, body)) = c.read_request() {
            s.lock().unwrap().push((head.clone(), body));
            let line = head.lines().next().unwrap_or("").to_string();
            let target = line.split(' ').nth(1).unwrap_or("/").to_string();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            if let ["r", code, n] = parts.as_slice() {
                let n: u32 = n.parse().unwrap();
                let loc = match query.strip_prefix("to=") {
                    Some(to) => to.to_string(),
                    None if n > 0 => format!("/r/{code}/{}", n - 1),
                    None => "/done".to_string(),
                };
                // A small body that the client drains so the connection is
                // reused (none for HEAD, whose response never has one).
                let body = if line.starts_with("HEAD ") {
                    ""
                } else {
                    "moved"
                };
                c.write(format!(
                    "HTTP/1.1 {code} Redirect\r\nLocation: {loc}\r\nContent-Length: 5\r\n\r\n{body}"
                ));
            } else {
                let body = if line.starts_with("HEAD ") { "" } else { &line };
                c.write(format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    line.len()
                ));
            }
        }
    });
    (server, seen)
}

fn client(t: &Transport, policy: Option<RedirectPolicy>) -> Client {
    let b = Client::builder().transport(t.clone());
    match policy {
        Some(p) => b.redirect(p),
        None => b,
    }
    .build()
    .unwrap()
}

#[test]
fn follows_a_chain_reusing_one_connection() {
    let (server, seen) = redirect_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let resp = client(&t, None).get(server.url("/r/302/3")).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.url().path(), "/done");
    assert_eq!(resp.text().unwrap(), "GET /done HTTP/1.1");
    assert_eq!(seen.lock().unwrap().len(), 5);
    assert_eq!(
        server.accepted(),
        1,
        "drained redirect bodies free their connection"
    );
    let referer = &seen.lock().unwrap()[1].0;
    assert!(
        referer.contains(&format!("referer: {}", server.url("/r/302/3"))),
        "{referer}"
    );
}

#[test]
fn limits_none_and_custom() {
    let (server, _) = redirect_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    // limited(n): n redirects are followed, the next one is an error.
    let ok = client(&t, Some(RedirectPolicy::limited(3)))
        .get(server.url("/r/301/2"))
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    ok.discard().unwrap();
    let err = client(&t, Some(RedirectPolicy::limited(3)))
        .get(server.url("/r/301/3"))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects, "{err}");
    // The default is 10.
    let err = client(&t, None)
        .get(server.url("/r/302/10"))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    assert_eq!(
        client(&t, None)
            .get(server.url("/r/302/9"))
            .send()
            .unwrap()
            .status(),
        200
    );
    // none(): the 3xx itself.
    let r = client(&t, Some(RedirectPolicy::none()))
        .get(server.url("/r/302/1"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.text().unwrap(), "moved");
    // custom: stop returns the 3xx, error is kind Redirect; it sees the chain.
    let stop = RedirectPolicy::custom(|r| {
        if r.previous().len() >= 2 {
            RedirectAction::Stop
        } else {
            RedirectAction::Follow
        }
    });
    let r = client(&t, Some(stop))
        .get(server.url("/r/307/5"))
        .send()
        .unwrap();
    assert_eq!((r.status().as_u16(), r.url().path()), (307, "/r/307/4"));
    drop(r);
    let fail =
        RedirectPolicy::custom(|r| RedirectAction::Error(format!("no thanks: {}", r.status())));
    let err = client(&t, Some(fail))
        .get(server.url("/r/308/1"))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert!(err.to_string().contains("no thanks: 308"), "{err}");
}

#[test]
fn method_and_body_rules() {
    let (server, seen) = redirect_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t, None);
    // 303: POST becomes GET without body or content headers.
    let r = c
        .post(server.url("/r/303/0"))
        .header("Content-Type", "text/plain")
        .body("payload")
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "GET /done HTTP/1.1");
    let (head, body) = seen.lock().unwrap()[1].clone();
    assert!(
        body.is_empty() && !head.to_ascii_lowercase().contains("content-type"),
        "{head}"
    );
    // 307 with a replayable body: same method, same body.
    seen.lock().unwrap().clear();
    let r = c.put(server.url("/r/307/0")).body("again").send().unwrap();
    assert_eq!(r.text().unwrap(), "PUT /done HTTP/1.1");
    assert_eq!(seen.lock().unwrap()[1].1, b"again");
    // 308 with a streamed body: cannot resend, so the 308 is returned.
    let r = c
        .post(server.url("/r/308/0"))
        .body(Body::from_reader(&b"once"[..], Some(4)))
        .send()
        .unwrap();
    assert_eq!(r.status(), 308);
    // HEAD stays HEAD on 302.
    let r = c.head(server.url("/r/302/0")).send().unwrap();
    assert_eq!((r.status().as_u16(), r.url().path()), (200, "/done"));
}

#[test]
fn credentials_are_dropped_when_leaving_the_host() {
    let (a, seen_a) = redirect_server();
    let (b, seen_b) = redirect_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t, None);
    // Same host:port keeps Authorization and Cookie.
    let r = c
        .get(a.url("/r/302/0"))
        .header("Authorization", "Bearer x")
        .header("Cookie", "k=v")
        .send()
        .unwrap();
    r.discard().unwrap();
    let kept = seen_a.lock().unwrap()[1].0.to_ascii_lowercase();
    assert!(
        kept.contains("authorization: bearer x") && kept.contains("cookie: k=v"),
        "{kept}"
    );
    // localhost:<b> is another host: both dropped, other headers kept.
    let to = format!("http://localhost:{}/done", b.addr.port());
    let r = c
        .get(a.url(&format!("/r/302/0?to={to}")))
        .header("Authorization", "Bearer x")
        .header("Cookie", "k=v")
        .header("X-Other", "1")
        .send()
        .unwrap();
    assert_eq!(r.url().as_str(), to);
    r.discard().unwrap();
    let moved = seen_b.lock().unwrap()[0].0.to_ascii_lowercase();
    assert!(
        !moved.contains("authorization") && !moved.contains("cookie"),
        "{moved}"
    );
    assert!(moved.contains("x-other: 1"), "{moved}");
}

#[test]
fn bad_location_is_a_redirect_error() {
    let server = ScriptedServer::start(|mut c| {
        while c.read_head().is_some() {
            c.write("HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let err = client(&t, None).get(server.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect, "{err}");
    assert_eq!(err.url().map(|u| u.path()), Some("/"));
}

#[test]
fn raw_utf8_location_is_encoded_and_followed_and_an_empty_one_returns_the_3xx() {
    let server = ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            let mut out: Vec<u8> = Vec::new();
            match target.as_str() {
                "/utf8" => {
                    out.extend_from_slice(b"HTTP/1.1 302 Found\r\nLocation: /caf");
                    out.extend_from_slice("\u{e9}?q=\u{fc}".as_bytes());
                    out.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
                }
                "/empty" => out.extend_from_slice(
                    b"HTTP/1.1 301 Moved\r\nLocation: \r\nContent-Length: 0\r\n\r\n",
                ),
                other => out.extend_from_slice(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{other}",
                        other.len()
                    )
                    .as_bytes(),
                ),
            }
            c.write(out);
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t, None);
    let resp = c.get(server.url("/utf8")).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.url().path(), "/caf%C3%A9");
    assert_eq!(resp.text().unwrap(), "/caf%C3%A9?q=%C3%BC");
    let resp = c.get(server.url("/empty")).send().unwrap();
    assert_eq!(resp.status(), 301);
}
