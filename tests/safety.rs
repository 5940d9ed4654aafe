//! API.md's "Safety rules": passwords never leave in text, callbacks that
//! panic leak nothing, body size limits, the thread stack floor.

mod support;
use support::*;

use std::time::Duration;

use nethttp::{Client, ErrorKind, Redirect, RedirectAction, RedirectPolicy, Request, Transport};

/// Asserts that `text` shows the user but never the password.
#[track_caller]
fn assert_redacted(what: &str, text: &str) {
    assert!(
        !text.contains("s3cret"),
        "{what} leaks the password: {text}"
    );
    assert!(text.contains("ann:***@"), "{what} hides the URL: {text}");
}

#[test]
fn passwords_never_show_in_errors_requests_or_responses() {
    // A port nothing listens on: a connect error that names the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://ann:s3cret@127.0.0.1:{port}/x");
    let err = Client::new().get(&url).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_redacted("Error's Display", &err.to_string());
    assert_redacted("Error's Debug", &format!("{err:?}"));
    // The URL itself is given back as it was.
    assert_eq!(err.url().map(|u| u.password()), Some(Some("s3cret")));

    let req = Request::builder(nethttp::http::Method::GET, &url)
        .build()
        .unwrap();
    assert_redacted("Request's Debug", &format!("{req:?}"));

    let server = ok_server("hi");
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let url = format!("http://ann:s3cret@{}/y", server.addr);
    let resp = client(&t).get(&url).send().unwrap();
    assert_redacted("Response's Debug", &format!("{resp:?}"));
    resp.discard().unwrap();

    // A URL that does not parse is quoted without its password.
    let err = Client::new()
        .get("http://ann:s3cret@[::1/")
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUrl);
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
}

#[test]
fn passwords_never_show_in_redirects() {
    let server = ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            if head.starts_with("GET /from ") {
                c.write("HTTP/1.1 302 Found\r\nLocation: /to\r\nContent-Length: 0\r\n\r\n");
            } else {
                c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        }
    });
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let s = seen.clone();
    let policy = RedirectPolicy::custom(move |r: &Redirect| {
        *s.lock().unwrap() = format!("{r:?}");
        RedirectAction::Error(format!("stop at {}", r.status()))
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = Client::builder()
        .transport(t.clone())
        .redirect(policy)
        .build()
        .unwrap();
    let url = format!("http://ann:s3cret@{}/from", server.addr);
    let err = c.get(&url).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert_redacted("Redirect's Debug", &seen.lock().unwrap());
    assert_redacted("redirect error", &err.to_string());
}

/// Serves `/len/N` (N bytes, Content-Length), `/chunked/N` (N bytes in
/// chunks of 7) and `/bomb` (10 MiB of zeros, gzipped) on a keep-alive
/// connection.
fn sized_server() -> ScriptedServer {
    use std::io::Write;
    let bomb = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0; 10 << 20]).unwrap();
        enc.finish().unwrap()
    };
    ScriptedServer::start(move |mut c| {
        while let Some((head, _)) = c.read_request() {
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match parts.as_slice() {
                ["len", n] => {
                    let n: usize = n.parse().unwrap();
                    c.write(format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n"));
                    c.write(vec![b'x'; n]);
                }
                ["chunked", n] => {
                    let n: usize = n.parse().unwrap();
                    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                    for start in (0..n).step_by(7) {
                        let k = (n - start).min(7);
                        out.extend_from_slice(format!("{k:x}\r\n{}\r\n", "y".repeat(k)).as_bytes());
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                    c.write(out);
                }
                _ => {
                    c.write(format!(
                        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                        bomb.len()
                    ));
                    c.write(&bomb);
                }
            }
        }
    })
}

/// Reads `resp` to its end; the error must be `BodyTooLarge` (io kind
/// `InvalidData`) after exactly `max` bytes, and stay so.
#[track_caller]
fn assert_too_large(mut resp: nethttp::Response, max: u64) {
    use std::io::Read;
    let mut got = 0u64;
    let mut buf = [0; 4096];
    let err = loop {
        match resp.read(&mut buf) {
            Ok(0) => panic!("read to the end past the limit ({got} bytes)"),
            Ok(n) => got += n as u64,
            Err(e) => break e,
        }
    };
    assert_eq!(got, max, "bytes delivered before the error");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<nethttp::Error>())
        .unwrap();
    assert_eq!(inner.kind(), ErrorKind::BodyTooLarge, "{inner}");
    let again = resp.read(&mut buf).unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::InvalidData, "sticky");
}

#[test]
fn a_body_limit_fails_the_read_past_it_and_closes_the_connection() {
    let server = sized_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    for (path, max) in [("/len/11", 10), ("/chunked/100", 50), ("/bomb", 1 << 20)] {
        let before = server.accepted();
        let resp = c.get(server.url(path)).send().unwrap().limit(max);
        assert_too_large(resp, max);
        wait_stats(&t, Duration::from_secs(5), |s| s.conns == 0);
        // The connection that exceeded the limit was not reused: the
        // next request made a second one.
        c.get(server.url("/len/1")).send().unwrap().bytes().unwrap();
        assert_eq!(server.accepted(), before + 2, "{path}");
        t.close_idle_connections();
    }
}

#[test]
fn a_body_within_its_limit_reads_and_reuses_as_usual() {
    use std::io::Read;
    let server = sized_server();
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    // Exactly at the limit, whatever the framing.
    let body = c
        .get(server.url("/chunked/50"))
        .send()
        .unwrap()
        .limit(50)
        .bytes();
    assert_eq!(body.unwrap().len(), 50);
    let body = c
        .get(server.url("/len/10"))
        .send()
        .unwrap()
        .limit(10)
        .bytes();
    assert_eq!(body.unwrap().len(), 10);
    // Content-Length within the limit: the connection is back as soon as
    // its last byte is read, without waiting for Ok(0).
    let mut resp = c.get(server.url("/len/10")).send().unwrap().limit(100);
    let mut ten = [0; 10];
    resp.read_exact(&mut ten).unwrap();
    assert_eq!(t.stats().idle, 1, "{:?}", t.stats());
    drop(resp);
    assert_eq!(server.accepted(), 1);
}

// ---------------------------------------------------------------------------
// Panicking callbacks (API.md, "Safety rules")

/// Where a [`Bomb`] goes off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    ConnectStart,
    GotConn,
    WroteHeaders,
    WroteRequest,
    FirstByte,
    PutIdle,
}

/// A trace that panics in one hook.
struct Bomb(Hook);

const BOMB: &str = "test bomb went off";

impl Bomb {
    fn boom(&self, at: Hook) {
        if self.0 == at {
            panic!("{BOMB} in {at:?}");
        }
    }
}

impl nethttp::ClientTrace for Bomb {
    fn connect_start(&self, _: std::net::SocketAddr) {
        self.boom(Hook::ConnectStart);
    }
    fn got_conn(&self, _: &nethttp::GotConnInfo) {
        self.boom(Hook::GotConn);
    }
    fn wrote_headers(&self) {
        self.boom(Hook::WroteHeaders);
    }
    fn wrote_request(&self, _: Option<&nethttp::Error>) {
        self.boom(Hook::WroteRequest);
    }
    fn got_first_response_byte(&self) {
        self.boom(Hook::FirstByte);
    }
    fn put_idle_conn(&self, _: Option<&nethttp::Error>) {
        self.boom(Hook::PutIdle);
    }
}

/// Keeps the test output readable: the bombs' panics are expected, so the
/// default hook prints only the others.
fn quiet_bombs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !msg.contains(BOMB) {
                default(info);
            }
        }));
    });
}

/// How a request whose callback panicked ended.
#[derive(Debug)]
enum Outcome {
    /// The panic unwound to the caller (a callback on the caller's thread).
    Unwound,
    /// An error (a callback on one of the crate's threads).
    Failed(nethttp::Error),
    /// It worked (the callback ran after the response was complete).
    Ok,
}

/// Sends one GET of `url` with `trace` (and `cancel`, which forces the dial
/// onto a dial thread), or a POST of a streamed body (`upload`, which the
/// writer thread writes), reading the response's body; bounded.
fn outcome(c: &Client, url: String, trace: Bomb, cancel: bool, upload: bool) -> Outcome {
    let c = c.clone();
    bounded("bombed request", Duration::from_secs(10), move || {
        let run = std::panic::AssertUnwindSafe(|| {
            let mut req = if upload {
                let body = std::io::Cursor::new(b"hello".to_vec());
                c.post(&url).body(nethttp::Body::from_reader(body, Some(5)))
            } else {
                c.get(&url)
            };
            req = req.trace(std::sync::Arc::new(trace));
            if cancel {
                req = req.cancel(nethttp::CancelToken::new());
            }
            req.send().and_then(nethttp::Response::bytes)
        });
        match std::panic::catch_unwind(run) {
            Err(_) => Outcome::Unwound,
            Ok(Err(e)) => Outcome::Failed(e),
            Ok(Ok(_)) => Outcome::Ok,
        }
    })
}

#[test]
fn a_panicking_trace_hook_leaks_nothing_and_hangs_nobody() {
    quiet_bombs();
    // `/slow` answers after 100 ms, so that a hook that panics on the
    // writer thread after the request went out surely closes the
    // connection before the response arrives. (A response that wins that
    // race is delivered: the request is not waiting any more.)
    let server = ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            if head.contains(" /slow ") {
                std::thread::sleep(Duration::from_millis(100));
            }
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        }
    });
    // One connection per host: a slot that leaked would hang the next
    // request for good.
    let t = Transport::builder().max_conns_per_host(1).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let cases = [
        // (hook, dial on a dial thread, streamed upload, where it runs)
        (Hook::ConnectStart, true, false, "dial thread"),
        (Hook::ConnectStart, false, false, "caller (inline dial)"),
        (Hook::GotConn, false, false, "caller"),
        (
            Hook::WroteHeaders,
            false,
            false,
            "caller (wrote its GET itself)",
        ),
        (
            Hook::WroteRequest,
            false,
            false,
            "caller (wrote its GET itself)",
        ),
        (Hook::WroteHeaders, false, true, "writer thread"),
        (Hook::WroteRequest, false, true, "writer thread"),
        (Hook::FirstByte, false, false, "reader thread"),
        (Hook::PutIdle, false, false, "caller (body end)"),
    ];
    for (hook, dial_thread, upload, thread) in cases {
        t.close_idle_connections();
        let got = outcome(&c, server.url("/slow"), Bomb(hook), dial_thread, upload);
        match (thread, &got) {
            (t, Outcome::Unwound) if t.starts_with("caller") => {}
            (t, Outcome::Failed(e)) if !t.starts_with("caller") => {
                assert_eq!(e.kind(), ErrorKind::Io, "{hook:?}: {e}");
                assert!(e.to_string().contains("panicked"), "{hook:?}: {e}");
            }
            _ => panic!("{hook:?} on the {thread}: {got:?}"),
        }
        wait_stats(&t, Duration::from_secs(5), |s| {
            s.in_use == 0 && s.dialing == 0 && s.waiting == 0 && s.threads == 2 * s.conns
        });
        // The pool still serves: the one slot per host is free.
        let body = bounded("next request", Duration::from_secs(10), {
            let (c, url) = (c.clone(), server.url("/"));
            move || c.get(&url).send().and_then(nethttp::Response::text)
        });
        assert_eq!(
            body.expect("the request after the panic"),
            "hello",
            "{hook:?}"
        );
    }
}

/// `put_idle_conn` also hears of a refusal: the pool would not keep the
/// connection (here `close_idle_connections` came between the response
/// and its body's end). A hook that panics then must find the connection
/// closed already, or it would stay in use, with its two threads, until
/// the server hung up.
#[test]
fn a_put_idle_hook_that_panics_on_a_refusal_still_closes_the_connection() {
    quiet_bombs();
    let server = ScriptedServer::start(|mut c| {
        while c.read_head().is_some() {
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        }
    });
    let t = Transport::builder().max_conns_per_host(1).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let resp = c
        .get(server.url("/"))
        .trace(std::sync::Arc::new(Bomb(Hook::PutIdle)))
        .send()
        .expect("response");
    t.close_idle_connections();
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || resp.bytes()));
    assert!(read.is_err(), "the hook's panic reaches the body's reader");
    wait_stats(&t, Duration::from_secs(5), |s| {
        s.in_use == 0 && s.conns == 0 && s.threads == 0
    });
    // The one slot per host is free.
    let body = bounded("next request", Duration::from_secs(10), {
        let (c, url) = (c.clone(), server.url("/"));
        move || c.get(&url).send().and_then(nethttp::Response::text)
    });
    assert_eq!(body.expect("the request after the panic"), "hello");
}

#[test]
fn a_panicking_body_reader_or_redirect_policy_leaks_nothing() {
    quiet_bombs();
    struct Exploding;
    impl std::io::Read for Exploding {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            panic!("{BOMB} in a body reader");
        }
    }
    let server = ScriptedServer::start(|mut c| {
        while let Some(head) = c.read_head() {
            if head.starts_with("GET /redirect") {
                c.write("HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n");
            } else if head.starts_with("POST") {
                // The body never comes: wait for the client to give up.
                let _ = std::io::copy(&mut c.reader, &mut std::io::sink());
                return;
            } else {
                c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        }
    });
    let t = Transport::builder().max_conns_per_host(1).build();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let url = server.url("/upload");
    let err = bounded("exploding body", Duration::from_secs(10), {
        let c = c.clone();
        move || {
            c.post(&url)
                .body(nethttp::Body::from_reader(Exploding, None))
                .send()
        }
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("panicked"), "{err}");

    let policy = RedirectPolicy::custom(|_| panic!("{BOMB} in a redirect policy"));
    let redirecting = Client::builder()
        .transport(t.clone())
        .redirect(policy)
        .build()
        .unwrap();
    let url = server.url("/redirect");
    let unwound = bounded("exploding policy", Duration::from_secs(10), move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            redirecting.get(&url).send()
        }))
        .is_err()
    });
    assert!(unwound, "the policy's panic reaches the caller");
    wait_stats(&t, Duration::from_secs(5), |s| {
        s.in_use == 0 && s.dialing == 0 && s.waiting == 0
    });
    let ok = bounded("next request", Duration::from_secs(10), {
        let (c, url) = (c.clone(), server.url("/"));
        move || c.get(&url).send().and_then(nethttp::Response::text)
    });
    assert_eq!(ok.unwrap(), "ok");
}
