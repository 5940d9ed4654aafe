//! Response body lifecycle: early close on drop, reuse at EOF (including a
//! reader that never sees `Ok(0)`), the consuming helpers, bodiless
//! responses, `Send` and `Debug`.

mod support;

use std::{io::Read, sync::mpsc, thread, time::Duration};

use nethttp::{CancelToken, Client, Error, ErrorKind, Request, Response, ResponseBody, Transport};
use support::{LeakCheck, Recorder, ScriptedServer, client, get_traced, wait_stats};

const LIMIT: Duration = Duration::from_secs(5);

/// A keep-alive server with a few routes:
/// - `/big` → 256 KiB (Content-Length)
/// - `/ten` → `0123456789`
/// - `/204` → 204 No Content
/// - `/empty` → 200 with `Content-Length: 0`
/// - `/bytes/N` → N bytes `x`
/// - HEAD anything → 200 with `Content-Length: 100`, no body
/// - anything else → `hello`
fn routes_server() -> ScriptedServer {
    ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            let mut parts = head.split(' ');
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("").to_string();
            if method == "HEAD" {
                c.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
                continue;
            }
            match path.as_str() {
                "/big" => {
                    let body = vec![b'b'; 256 * 1024];
                    c.write(format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    ));
                    c.write(body);
                }
                "/ten" => c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"),
                "/204" => c.write("HTTP/1.1 204 No Content\r\n\r\n"),
                "/empty" => c.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
                p if p.starts_with("/bytes/") => {
                    let n: usize = p["/bytes/".len()..].parse().unwrap_or(0);
                    c.write(format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n"));
                    c.write(vec![b'x'; n]);
                }
                _ => c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
            }
        }
    })
}

fn reused(rec: &Recorder) -> bool {
    let conns = rec.conns();
    assert_eq!(conns.len(), 1, "{:?}", rec.events());
    conns[0].reused
}

#[test]
fn drop_before_eof_closes_the_connection() {
    let server = routes_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let mut r = c.get(server.url("/big")).send().expect("request");
    let mut buf = [0; 10];
    r.read_exact(&mut buf).expect("first bytes");
    wait_stats(&t, LIMIT, |s| s.threads == 2 && s.dialing == 0);
    drop(r);
    let s = t.stats();
    assert_eq!(
        (s.conns, s.idle, s.in_use),
        (0, 0, 0),
        "closed at the drop: {s:?}"
    );
    wait_stats(&t, LIMIT, |s| s.threads == 0);

    // The next request dials a new connection.
    let (r, rec) = get_traced(&c, &server.url("/"));
    assert!(!reused(&rec));
    assert_eq!(r.text().expect("text"), "hello");
    assert_eq!(server.accepted(), 2);
}

#[test]
fn read_to_eof_reuses_the_connection() {
    let server = routes_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let (mut r, rec) = get_traced(&c, &server.url("/big"));
    assert!(!reused(&rec));
    let mut body = Vec::new();
    r.read_to_end(&mut body).expect("body");
    assert_eq!(body.len(), 256 * 1024);
    let s = t.stats();
    assert_eq!((s.idle, s.in_use), (1, 0), "{s:?}");
    let first_id = rec.conns()[0].conn_id;

    let (r, rec) = get_traced(&c, &server.url("/"));
    assert!(reused(&rec));
    assert_eq!(rec.conns()[0].conn_id, first_id);
    assert_eq!(r.text().expect("text"), "hello");
    assert_eq!(server.accepted(), 1);
}

#[test]
fn read_exact_of_content_length_leaves_the_connection_idle() {
    let server = routes_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let mut r = c.get(server.url("/ten")).send().expect("request");
    assert_eq!(r.content_length(), Some(10));
    let mut buf = [0; 10];
    r.read_exact(&mut buf).expect("the whole body");
    assert_eq!(&buf, b"0123456789");
    // No Ok(0) seen, no waiting: the connection is idle already.
    let s = t.stats();
    assert_eq!((s.idle, s.in_use, s.conns), (1, 0, 1), "{s:?}");
    drop(r); // dropping after the last byte is not an early close
    let s = t.stats();
    assert_eq!((s.idle, s.conns), (1, 1), "{s:?}");

    let (r, rec) = get_traced(&c, &server.url("/ten"));
    assert!(reused(&rec));
    assert_eq!(r.bytes().expect("bytes"), b"0123456789");

    // Same with a larger body read in one read_exact.
    let mut r = c.get(server.url("/bytes/100000")).send().expect("request");
    let mut big = vec![0; 100_000];
    r.read_exact(&mut big).expect("the whole body");
    let s = t.stats();
    assert_eq!((s.idle, s.in_use), (1, 0), "{s:?}");
    assert_eq!(server.accepted(), 1);
}

#[test]
fn text_bytes_and_discard_reuse_the_connection() {
    let server = routes_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let (r, rec) = get_traced(&c, &server.url("/"));
    assert!(!reused(&rec));
    assert_eq!(r.text().expect("text"), "hello");
    assert_eq!(t.stats().idle, 1);

    let (r, rec) = get_traced(&c, &server.url("/"));
    assert!(reused(&rec));
    assert_eq!(r.bytes().expect("bytes"), b"hello");
    assert_eq!(t.stats().idle, 1);

    let (r, rec) = get_traced(&c, &server.url("/bytes/10000"));
    assert!(reused(&rec));
    assert_eq!(r.discard().expect("discard"), 10_000);
    assert_eq!(t.stats().idle, 1);

    let (r, rec) = get_traced(&c, &server.url("/ten"));
    assert!(reused(&rec));
    let mut body = r.into_body();
    let mut s = String::new();
    body.read_to_string(&mut s).expect("read");
    assert_eq!(s, "0123456789");
    assert_eq!(t.stats().idle, 1);

    let (r, rec) = get_traced(&c, &server.url("/"));
    assert!(reused(&rec));
    assert_eq!(r.discard().expect("discard"), 5);
    assert_eq!(server.accepted(), 1);
}

#[test]
fn into_body_dropped_early_closes() {
    let server = routes_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let r = c.get(server.url("/big")).send().expect("request");
    let mut body: ResponseBody = r.into_body();
    let mut buf = [0; 1];
    body.read_exact(&mut buf).expect("one byte");
    assert_eq!(t.stats().in_use, 1);
    drop(body);
    let s = t.stats();
    assert_eq!((s.conns, s.idle, s.in_use), (0, 0, 0), "{s:?}");
    wait_stats(&t, LIMIT, |s| s.threads == 0);
}

#[test]
fn bodiless_responses_are_idle_when_send_returns() {
    let server = routes_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let r = c.get(server.url("/204")).send().expect("204");
    assert_eq!(r.status().as_u16(), 204);
    let s = t.stats();
    assert_eq!((s.idle, s.in_use, s.conns), (1, 0, 1), "204: {s:?}");
    assert_eq!(r.bytes().expect("empty body"), b"");

    let (r, rec) = {
        let rec = Recorder::new();
        let r = c
            .head(server.url("/x"))
            .trace(rec.clone())
            .send()
            .expect("HEAD");
        (r, rec)
    };
    assert!(reused(&rec));
    let s = t.stats();
    assert_eq!((s.idle, s.in_use, s.conns), (1, 0, 1), "HEAD: {s:?}");
    assert_eq!(r.content_length(), Some(100));
    assert_eq!(r.bytes().expect("empty body"), b"");

    let (r, rec) = get_traced(&c, &server.url("/empty"));
    assert!(reused(&rec));
    let s = t.stats();
    assert_eq!(
        (s.idle, s.in_use, s.conns),
        (1, 0, 1),
        "Content-Length 0: {s:?}"
    );
    // Dropping a bodiless response closes nothing.
    drop(r);
    assert_eq!(t.stats().idle, 1);

    let (r, rec) = get_traced(&c, &server.url("/"));
    assert!(reused(&rec));
    assert_eq!(r.text().expect("text"), "hello");
    assert_eq!(server.accepted(), 1);
}

#[test]
fn response_is_send_and_readable_on_another_thread() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<Response>();
    assert_send::<ResponseBody>();
    assert_send::<Request>();
    assert_send_sync::<Client>();
    assert_send_sync::<Transport>();
    assert_send_sync::<Error>();
    assert_send_sync::<CancelToken>();

    let server = routes_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let r = c.get(server.url("/bytes/50000")).send().expect("request");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = r;
        let mut body = Vec::new();
        let res = r.read_to_end(&mut body).map(|_| body.len());
        let _ = tx.send(res);
    });
    let n = rx
        .recv_timeout(LIMIT)
        .expect("reader thread")
        .expect("read");
    assert_eq!(n, 50_000);
    assert_eq!(t.stats().idle, 1);
    let (r, rec) = get_traced(&c, &server.url("/"));
    assert!(reused(&rec));
    assert_eq!(r.text().expect("text"), "hello");
}

#[test]
fn debug_impls_exist() {
    let server = routes_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);

    let req = c.get(server.url("/")).build().expect("request");
    let resp = c.get(server.url("/")).send().expect("response");
    let err = c.get("not a url").send().expect_err("bad URL");
    assert_eq!(err.kind(), ErrorKind::InvalidUrl);
    for s in [
        format!("{c:?}"),
        format!("{t:?}"),
        format!("{req:?}"),
        format!("{resp:?}"),
        format!("{err:?}"),
    ] {
        assert!(!s.is_empty());
    }
    assert_eq!(resp.text().expect("text"), "hello");
}

/// `Request::builder(…).send()` compiles, so it must work: it runs on the
/// process-wide default client, as `nethttp::get` does.
#[test]
fn a_request_built_without_a_client_sends_on_the_default_client() {
    let server = routes_server();
    let resp = Request::builder(
        nethttp::http::Method::GET,
        format!("http://{}/ten", server.addr),
    )
    .header("X-From", "builder")
    .send()
    .expect("sent on the default client");
    assert_eq!(resp.text().unwrap(), "0123456789");
}
