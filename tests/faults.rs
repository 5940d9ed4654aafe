//! Fault injection over raw TCP: scripted servers send exact (often broken)
//! bytes and the tests check what the client reports and whether the
//! connection is reused, closed or retried.

mod support;
use support::*;

use std::{
    io::{self, BufRead, Read},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{
    Body, Client, ErrorKind, Request, RequestBuilder, Response, Transport, http::Method,
};

// ---------------------------------------------------------------------------
// helpers

const SEC: Duration = Duration::from_secs(1);

fn ok_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        body
    )
}

/// Answers every request on the connection with `body` until EOF.
fn serve_ok(mut c: ScriptConn, body: &str) {
    while c.read_request().is_some() {
        c.write(ok_response(body));
    }
}

/// Keeps the connection open (no FIN from us) until the client closes it,
/// bounded by a read timeout.
fn hold(mut c: ScriptConn) {
    let _ = c.stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = io::copy(&mut c.reader, &mut io::sink());
}

/// Answers the one request of each connection with `respond(head)`, then
/// ends the connection with `end` (`ScriptConn::close` or [`hold`]).
fn answer_once<R: AsRef<[u8]>>(
    respond: impl Fn(&str) -> R + Send + Sync + 'static,
    end: fn(ScriptConn),
) -> ScriptedServer {
    ScriptedServer::start(move |mut c| {
        if let Some((head, _)) = c.read_request() {
            c.write(respond(&head));
            end(c);
        }
    })
}

/// The request target of a request head.
fn path_of(head: &str) -> String {
    head.split_whitespace().nth(1).unwrap_or("").to_string()
}

/// The `nethttp::Error` kind inside an `io::Error` from a body read.
#[track_caller]
fn inner_kind(e: &io::Error) -> ErrorKind {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<nethttp::Error>())
        .unwrap_or_else(|| panic!("io::Error without a nethttp::Error inside: {e:?}"))
        .kind()
}

/// Asserts that `rec` saw `n` events starting with `prefix`.
#[track_caller]
fn assert_events(rec: &Recorder, prefix: &str, n: usize) {
    let events = rec.events();
    let seen = events.iter().filter(|e| e.starts_with(prefix)).count();
    assert_eq!(seen, n, "{prefix}: {events:?}");
}

fn reused_flags(rec: &Recorder) -> Vec<bool> {
    rec.conns().iter().map(|c| c.reused).collect()
}

/// A request body reader that yields `left` bytes and counts what it produced.
struct Gen {
    left: u64,
    produced: Arc<AtomicU64>,
}

impl Read for Gen {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(b'x');
        self.left -= n as u64;
        self.produced.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

fn gen_body(n: u64, declared: Option<u64>) -> (Body, Arc<AtomicU64>) {
    let produced = Arc::new(AtomicU64::new(0));
    let g = Gen {
        left: n,
        produced: produced.clone(),
    };
    (Body::from_reader(g, declared), produced)
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(pattern).collect()
}

/// The body of a GET to `url`; both must succeed.
#[track_caller]
fn get_text(client: &Client, url: String) -> String {
    client.get(url).send().unwrap().text().unwrap()
}

/// A GET to `url` traced by `rec`, which must succeed.
#[track_caller]
fn traced_get(client: &Client, url: String, rec: &Arc<Recorder>) -> Response {
    client.get(url).trace(rec.clone()).send().unwrap()
}

/// Waits until the transport has no connection and no thread left.
#[track_caller]
fn assert_all_closed(t: &Transport) {
    wait_stats(t, 2 * SEC, |s| s.conns == 0 && s.threads == 0);
}

/// Conn 0 reads one request and hands the connection to `first`; later
/// connections answer every request with "second".
fn first_conn_scripted(first: impl Fn(ScriptConn) + Send + Sync + 'static) -> ScriptedServer {
    ScriptedServer::start(move |mut c| {
        if c.index != 0 {
            serve_ok(c, "second");
        } else if c.read_request().is_some() {
            first(c);
        }
    })
}

/// After the first connection is gone: the next request (`/b`) dials a new
/// one, and gets its own answer, "second", not bytes left by the old one.
fn next_request_redials(client: &Client, server: &ScriptedServer) {
    let rec = Recorder::new();
    let resp = traced_get(client, server.url("/b"), &rec);
    assert_eq!(
        resp.status(),
        200,
        "an old connection's bytes must not answer a later request"
    );
    assert_eq!(resp.text().unwrap(), "second");
    assert_eq!(reused_flags(&rec), vec![false]);
    assert_eq!(server.accepted(), 2);
}

// ---------------------------------------------------------------------------
// 1, 2: the server closes (or misbehaves on) an idle connection

#[test]
fn idle_conn_closed_by_server_is_dropped_and_next_request_redials() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let (close_tx, close_rx) = mpsc::channel::<()>();
    let close_rx = Mutex::new(close_rx);
    let server = first_conn_scripted(move |mut c| {
        c.write(ok_response("first"));
        let _ = close_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(5));
        c.close();
    });
    let client = client(&t);

    assert_eq!(get_text(&client, server.url("/a")), "first");
    wait_stats(&t, 2 * SEC, |s| {
        s.idle == 1 && s.conns == 1 && s.threads == 2
    });

    // FIN on the idle connection: the pool notices without any new request.
    close_tx.send(()).unwrap();
    wait_stats(&t, 2 * SEC, |s| {
        s.idle == 0 && s.conns == 0 && s.threads == 0
    });

    next_request_redials(&client, &server);
}

#[test]
fn unsolicited_408_on_idle_conn_is_ignored_and_next_request_redials() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let server = first_conn_scripted(move |mut c| {
        c.write(ok_response("first"));
        let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(5));
        c.write("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        c.close();
    });
    let client = client(&t);

    assert_eq!(get_text(&client, server.url("/a")), "first");
    wait_stats(&t, 2 * SEC, |s| s.idle == 1 && s.conns == 1);
    go_tx.send(()).unwrap();
    assert_all_closed(&t);

    next_request_redials(&client, &server);
}

#[test]
fn bytes_after_the_body_close_the_conn_instead_of_answering_the_next_request() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = first_conn_scripted(|mut c| {
        // One write: the response, then a stray response nobody asked
        // for. Both land in the client's read buffer together.
        c.write(format!(
            "{}HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray",
            ok_response("first")
        ));
        hold(c);
    });
    let client = client(&t);

    assert_eq!(get_text(&client, server.url("/a")), "first");
    // Not pooled: the bytes read past the body would answer the next request.
    assert_all_closed(&t);

    next_request_redials(&client, &server);
}

// ---------------------------------------------------------------------------
// 3: the server closes before any response byte

/// Conn 0 answers its first request with "one", reads the second request
/// (head and body) and closes without answering; later connections answer
/// with "retried" and report the bodies they got. Returns the server and a
/// client through `t` whose first GET ("one") left conn 0 idle in the pool.
fn pooled_conn_dies_on_second_request(
    t: &Transport,
    bodies: mpsc::Sender<Vec<u8>>,
) -> (ScriptedServer, Client) {
    let server = ScriptedServer::start(move |mut c| {
        if c.index == 0 {
            if c.read_request().is_none() {
                return;
            }
            c.write(ok_response("one"));
            if c.read_request().is_none() {
                return;
            }
            c.close();
        } else {
            while let Some((_, body)) = c.read_request() {
                let _ = bodies.send(body);
                c.write(ok_response("retried"));
            }
        }
    });
    let client = client(t);
    assert_eq!(get_text(&client, server.url("/1")), "one");
    wait_stats(t, 2 * SEC, |s| s.idle == 1);
    (server, client)
}

#[test]
fn reused_conn_closed_before_response_retries_idempotent_get() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let (tx, _rx) = mpsc::channel();
    let (server, client) = pooled_conn_dies_on_second_request(&t, tx);

    let rec = Recorder::new();
    let resp = traced_get(&client, server.url("/2"), &rec);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "retried");
    assert_events(&rec, "got_conn", 2);
    assert_eq!(reused_flags(&rec), vec![true, false]);
    assert_eq!(server.accepted(), 2);
}

#[test]
fn reused_conn_closed_before_response_does_not_retry_post() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let (tx, _rx) = mpsc::channel();
    let (server, client) = pooled_conn_dies_on_second_request(&t, tx);

    let rec = Recorder::new();
    let err = client
        .post(server.url("/2"))
        .body("payload")
        .trace(rec.clone())
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert_eq!(reused_flags(&rec), vec![true], "a POST must not be retried");
    assert_eq!(server.accepted(), 1);
    assert_all_closed(&t);
}

#[test]
fn reused_conn_closed_before_response_retries_post_with_idempotency_key() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let (tx, rx) = mpsc::channel();
    let (server, client) = pooled_conn_dies_on_second_request(&t, tx);

    let rec = Recorder::new();
    let resp = client
        .post(server.url("/2"))
        .header("Idempotency-Key", "abc-123")
        .body("payload")
        .trace(rec.clone())
        .send()
        .unwrap();
    assert_eq!(resp.text().unwrap(), "retried");
    assert_eq!(reused_flags(&rec), vec![true, false]);
    assert_eq!(rx.recv_timeout(2 * SEC).unwrap(), b"payload");
    assert_eq!(server.accepted(), 2);
}

#[test]
fn fresh_conn_closed_before_response_is_io_error() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = ScriptedServer::start(|mut c| {
        if c.read_request().is_some() {
            c.close();
        }
    });
    let client = client(&t);

    let rec = Recorder::new();
    let err = client
        .get(server.url("/x"))
        .trace(rec.clone())
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(
        err.to_string().contains("closed"),
        "message should say the server closed: {err}"
    );
    assert_eq!(
        reused_flags(&rec),
        vec![false],
        "a fresh connection's failure is not retried"
    );
    assert_eq!(server.accepted(), 1);
    assert_all_closed(&t);
}

// ---------------------------------------------------------------------------
// 4: truncated bodies

#[test]
fn truncated_bodies_are_unexpected_eof_and_conn_not_reused() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = answer_once(
        |head| match path_of(head).as_str() {
            "/length" => "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
            "/mid-chunk" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234",
            "/before-last" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        },
        ScriptConn::close,
    );
    let client = client(&t);

    for (path, got) in [
        ("/length", "0123456789"),
        ("/mid-chunk", "01234"),
        ("/before-last", "hello"),
    ] {
        let mut resp = client.get(server.url(path)).send().unwrap();
        assert_eq!(resp.status(), 200);
        let mut buf = Vec::new();
        let err = resp.read_to_end(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{path}: {err:?}");
        assert_eq!(inner_kind(&err), ErrorKind::BodyRead, "{path}");
        assert_eq!(buf, got.as_bytes(), "{path}: bytes before the error");
        drop(resp);
        assert_all_closed(&t);
    }

    // The same through Response::bytes.
    let err = client
        .get(server.url("/length"))
        .send()
        .unwrap()
        .bytes()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyRead, "{err}");
    assert_all_closed(&t);
    assert_eq!(server.accepted(), 4);
}

// ---------------------------------------------------------------------------
// 5, 6: malformed heads, oversized heads, bad chunk sizes

#[test]
fn malformed_and_oversized_heads() {
    let t = Transport::builder().max_response_header_bytes(1024).build();
    let _leaks = LeakCheck::new(&t);
    // No FIN from the server: the client must close a connection that saw
    // a protocol error by itself.
    let server = answer_once(
        |head| match path_of(head).as_str() {
            "/status" => "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n".to_string(),
            // A line without a colon is dropped (see the quirks test); a
            // NUL is never accepted.
            "/header" => "HTTP/1.1 200 OK\r\nX-Nul: a\0b\r\nContent-Length: 0\r\n\r\n".to_string(),
            "/big" => format!(
                "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
                "a".repeat(4096)
            ),
            _ => ok_response("fine"),
        },
        hold,
    );
    let client = client(&t);

    for (path, kind) in [
        ("/status", ErrorKind::Protocol),
        ("/header", ErrorKind::Protocol),
        ("/big", ErrorKind::HeaderTooLarge),
    ] {
        let err = client.get(server.url(path)).send().unwrap_err();
        assert_eq!(err.kind(), kind, "{path}: {err}");
    }
    assert_all_closed(&t);
    assert_eq!(server.accepted(), 3);

    // A head under the limit is fine on the same transport.
    assert_eq!(get_text(&client, server.url("/ok")), "fine");
}

#[test]
fn bad_chunk_size_is_invalid_data() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = answer_once(
        |_| "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        hold,
    );
    let client = client(&t);

    let mut resp = client.get(server.url("/")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let mut buf = Vec::new();
    let err = resp.read_to_end(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err:?}");
    assert_eq!(inner_kind(&err), ErrorKind::BodyRead);
    assert!(buf.is_empty());
    drop(resp);
    assert_all_closed(&t);
}

// ---------------------------------------------------------------------------
// 7: the server answers while a large upload is still being written

#[test]
fn early_response_during_large_upload() {
    const TOTAL: u64 = 100 << 20;
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = ScriptedServer::start(|mut c| {
        if c.read_head().is_none() {
            return;
        }
        c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly");
        // Keep draining, slowly, until the client gives up the connection.
        let _ = c.stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = vec![0; 64 * 1024];
        loop {
            match c.reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    let client = client(&t);

    let (body, produced) = gen_body(TOTAL, Some(TOTAL));
    let started = Instant::now();
    let mut resp = client
        .post(server.url("/upload"))
        .body(body)
        .send()
        .unwrap();
    let at_response = produced.load(Ordering::SeqCst);
    assert!(
        at_response < TOTAL / 4,
        "the response should arrive while the upload is still going; produced {at_response} bytes by then \
         ({:?} after send)",
        started.elapsed()
    );
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    resp.read_to_string(&mut text).unwrap();
    assert_eq!(text, "early");
    drop(resp);
    drop(client);

    // The upload never finished, so the connection must close by itself
    // (no close_idle_connections here) and both its threads exit.
    wait_stats(&t, 5 * SEC, |s| s.conns == 0 && s.threads == 0);
    assert!(
        produced.load(Ordering::SeqCst) < TOTAL,
        "the whole upload should not have been sent"
    );
    assert_eq!(server.accepted(), 1);
}

/// The server answers before it reads the upload, then reads all of it. The
/// writer's success report (sent because a response header timer runs)
/// then comes after the response it belongs to, and is still in the
/// connection's reply channel when the next request goes out on it: that
/// request and the one after it get their own responses.
#[test]
fn early_response_then_the_upload_completes_and_the_connection_serves_on() {
    // More than the socket buffers on both sides hold.
    const TOTAL: u64 = 48 << 20;
    let (drained_tx, drained_rx) = std::sync::mpsc::channel();
    let server = ScriptedServer::start(move |mut c| {
        if c.read_head().is_none() {
            return;
        }
        c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly");
        let got = io::copy(&mut (&mut c.reader).take(TOTAL), &mut io::sink());
        let _ = drained_tx.send(got.unwrap_or(0));
        for body in ["second", "third!"] {
            if c.read_request().is_none() {
                return;
            }
            c.write(format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n{body}"
            ));
        }
        c.close();
    });
    let t = Transport::builder()
        .response_header_timeout(Some(5 * SEC))
        .build();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);

    let (body, produced) = gen_body(TOTAL, Some(TOTAL));
    let resp = client
        .post(server.url("/upload"))
        .body(body)
        .send()
        .unwrap();
    assert!(
        produced.load(Ordering::SeqCst) < TOTAL,
        "the response should come before the whole upload was produced"
    );
    // Let the upload finish before the body ends, so the writer's verdict
    // is in when the connection goes back.
    let drained = drained_rx
        .recv_timeout(10 * SEC)
        .expect("the server read the upload");
    assert_eq!(drained, TOTAL);
    assert_eq!(resp.text().unwrap(), "early");
    assert_eq!(t.stats().idle, 1, "{:?}", t.stats());

    assert_eq!(get_text(&client, server.url("/2")), "second");
    assert_eq!(get_text(&client, server.url("/3")), "third!");
    assert_eq!(server.accepted(), 1, "one connection served all three");
}

// ---------------------------------------------------------------------------
// 8: Expect: 100-continue

/// Reads the body that `head` declares with Content-Length (none: empty).
fn read_declared_body(c: &mut ScriptConn, head: &str) -> Vec<u8> {
    let len: usize = header_value(&head.to_ascii_lowercase(), "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    c.read_body(len).unwrap_or_default()
}

/// Sends `req` with `Expect: 100-continue` and `body`, traced by `rec`.
#[track_caller]
fn send_expecting_100(req: RequestBuilder, body: Vec<u8>, rec: &Arc<Recorder>) -> Response {
    req.header("Expect", "100-continue")
        .body(body)
        .trace(rec.clone())
        .send()
        .unwrap()
}

/// `rec` saw the client wait for a 100 Continue that never came.
#[track_caller]
fn assert_waited_without_100(rec: &Recorder) {
    assert_events(rec, "wait_100_continue", 1);
    assert_events(rec, "got_100_continue", 0);
}

#[test]
fn expect_continue_server_sends_100() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let (tx, rx) = mpsc::channel::<(String, bool, Vec<u8>)>();
    let server = ScriptedServer::start(move |mut c| {
        let Some(head) = c.read_head() else { return };
        // Did any body byte arrive before our 100 Continue?
        let mut early = !c.reader.buffer().is_empty();
        if !early {
            let _ = c.stream.set_read_timeout(Some(Duration::from_millis(100)));
            early = matches!(c.reader.fill_buf(), Ok(b) if !b.is_empty());
            let _ = c.stream.set_read_timeout(Some(Duration::from_secs(5)));
        }
        c.write("HTTP/1.1 100 Continue\r\n\r\n");
        let body = read_declared_body(&mut c, &head);
        c.write(ok_response("done"));
        let _ = tx.send((head, early, body));
        hold(c);
    });
    let client = client(&t);
    let data = payload(10_000);

    let rec = Recorder::new();
    let started = Instant::now();
    let resp = send_expecting_100(client.put(server.url("/upload")), data.clone(), &rec);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "done");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "should not wait for the 1 s timeout"
    );

    let (head, early, body) = rx.recv_timeout(2 * SEC).unwrap();
    assert!(
        head.to_ascii_lowercase().contains("expect: 100-continue"),
        "{head}"
    );
    assert!(!early, "the body was sent before 100 Continue");
    assert_eq!(body, data);
    let events = rec.events();
    let pos = |name: &str| events.iter().position(|e| e == name);
    let wait =
        pos("wait_100_continue").unwrap_or_else(|| panic!("no wait_100_continue: {events:?}"));
    let got = pos("got_100_continue").unwrap_or_else(|| panic!("no got_100_continue: {events:?}"));
    assert!(wait < got, "{events:?}");
}

#[test]
fn expect_continue_final_status_without_100_skips_body_and_closes() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let (tx, rx) = mpsc::channel::<usize>();
    let server = ScriptedServer::start(move |mut c| {
        if c.read_head().is_none() {
            return;
        }
        c.write("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n");
        // Any body bytes within a short while? EOF (client closed) is fine.
        let mut got = c.reader.buffer().len();
        let _ = c.stream.set_read_timeout(Some(Duration::from_millis(300)));
        let mut buf = [0; 4096];
        if let Ok(n) = c.reader.read(&mut buf) {
            got += n;
        }
        let _ = tx.send(got);
        hold(c);
    });
    let client = client(&t);

    let rec = Recorder::new();
    let resp = send_expecting_100(client.post(server.url("/upload")), payload(5000), &rec);
    assert_eq!(resp.status(), 417);
    assert_eq!(resp.bytes().unwrap(), b"");
    assert_eq!(
        rx.recv_timeout(2 * SEC).unwrap(),
        0,
        "the server received body bytes"
    );
    assert_waited_without_100(&rec);
    // The body announced by Content-Length was never sent: the connection
    // cannot be reused and must close by itself.
    assert_all_closed(&t);
}

#[test]
fn expect_continue_timeout_sends_body_anyway() {
    let t = Transport::builder()
        .expect_continue_timeout(Duration::from_millis(200))
        .build();
    let _leaks = LeakCheck::new(&t);
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let server = ScriptedServer::start(move |mut c| {
        let Some(head) = c.read_head() else { return };
        let body = read_declared_body(&mut c, &head);
        c.write(ok_response("late"));
        let _ = tx.send(body);
        hold(c);
    });
    let client = client(&t);
    let data = payload(3000);

    let rec = Recorder::new();
    let started = Instant::now();
    let resp = send_expecting_100(client.post(server.url("/upload")), data.clone(), &rec);
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "late");
    assert!(
        elapsed >= Duration::from_millis(180),
        "body sent before the timeout: {elapsed:?}"
    );
    assert!(elapsed < 2 * SEC, "{elapsed:?}");
    assert_eq!(rx.recv_timeout(2 * SEC).unwrap(), data);
    assert_waited_without_100(&rec);
}

// ---------------------------------------------------------------------------
// 9: interim 1xx responses

#[test]
fn too_many_interim_responses() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            let n = if path_of(&head) == "/six" { 6 } else { 5 };
            let mut out = String::new();
            for _ in 0..n {
                out.push_str("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n");
            }
            out.push_str(&ok_response("ok"));
            c.write(out);
        }
    });
    let client = client(&t);

    let err = client.get(server.url("/six")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert_all_closed(&t);

    let rec = Recorder::new();
    let resp = traced_get(&client, server.url("/five"), &rec);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "ok");
    assert_events(&rec, "got_1xx_response 103", 5);
}

// ---------------------------------------------------------------------------
// 10, 11: bad requests

#[test]
fn streamed_body_length_mismatch_is_invalid_request() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    // Never answers: the client must fail on its own.
    let server = ScriptedServer::start(hold);
    let client = client(&t);

    for (path, sent, declared) in [("/short", 5, 10), ("/long", 10, 5)] {
        let (body, _) = gen_body(sent, Some(declared));
        let err = client
            .post(server.url(path))
            .body(body)
            .timeout(3 * SEC)
            .send()
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidRequest,
            "declared {declared}, sent {sent}: {err}"
        );
    }

    assert_all_closed(&t);
}

#[test]
fn header_with_crlf_is_rejected_before_connecting() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = ScriptedServer::start(|c| serve_ok(c, "never"));
    let client = client(&t);

    // (name, value, whether to fail at `build` rather than at `send`)
    for (name, value, at_build) in [
        ("X-Bad", "a\r\nInjected: yes", false),
        ("X-Bad", "a\nb", false),
        ("Bad Name", "v", false),
        ("X-Bad", "a\rb", true),
    ] {
        let req = client.get(server.url("/")).header(name, value);
        let err = if at_build {
            req.build().unwrap_err()
        } else {
            req.send().unwrap_err()
        };
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidRequest,
            "{name:?}: {value:?}: {err}"
        );
    }

    assert!(
        !wait_until(Duration::from_millis(100), || server.accepted() > 0),
        "a connection was made for an invalid request"
    );
    assert_eq!(t.stats(), nethttp::PoolStats::default());
}

// ---------------------------------------------------------------------------
// 12: responses without a body

#[test]
fn bodyless_responses_are_pooled_before_send_returns() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            let method = head.split(' ').next().unwrap_or("").to_string();
            let out = match (method.as_str(), path_of(&head).as_str()) {
                ("HEAD", _) => {
                    "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n"
                        .to_string()
                }
                (_, "/204") => "HTTP/1.1 204 No Content\r\n\r\n".to_string(),
                (_, "/304") => "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n".to_string(),
                _ => ok_response("next"),
            };
            c.write(out);
        }
    });
    let client = client(&t);
    let rec = Recorder::new();
    // Sends `req`; its connection must be idle again when `send` returns.
    let send_pooled = |req: RequestBuilder, what: &str| {
        let resp = req.trace(rec.clone()).send().unwrap();
        let s = t.stats();
        assert_eq!(
            (s.idle, s.in_use, s.conns),
            (1, 0, 1),
            "{what}: not idle at return: {s:?}"
        );
        resp
    };

    let resp = send_pooled(client.head(server.url("/h")), "HEAD");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(1234));
    assert_eq!(resp.bytes().unwrap(), b"");

    for (path, status) in [("/204", 204), ("/304", 304)] {
        let resp = send_pooled(client.get(server.url(path)), path);
        assert_eq!(resp.status(), status);
        assert_eq!(resp.bytes().unwrap(), b"", "{path}");
    }

    let resp = traced_get(&client, server.url("/next"), &rec);
    assert_eq!(resp.text().unwrap(), "next");
    assert_eq!(reused_flags(&rec), vec![false, true, true, true]);
    assert_eq!(server.accepted(), 1);
}

// ---------------------------------------------------------------------------
// 13: responses that end the connection

#[test]
fn non_persistent_responses_are_not_reused() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = ScriptedServer::start(|mut c| {
        while let Some((head, _)) = c.read_request() {
            match path_of(&head).as_str() {
                "/http10" => {
                    c.write("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi");
                    return hold(c);
                }
                "/close" => {
                    c.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi");
                    return hold(c);
                }
                "/eof" => {
                    c.write("HTTP/1.1 200 OK\r\n\r\nhello, close-delimited");
                    return c.close();
                }
                "/http10-keep-alive" => {
                    c.write(
                        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
                    );
                }
                _ => c.write(ok_response("?")),
            }
        }
    });
    let client = client(&t);

    for (i, (path, want)) in [
        ("/http10", "hi"),
        ("/close", "hi"),
        ("/eof", "hello, close-delimited"),
    ]
    .into_iter()
    .enumerate()
    {
        let rec = Recorder::new();
        let resp = traced_get(&client, server.url(path), &rec);
        assert_eq!(resp.text().unwrap(), want, "{path}");
        assert_eq!(reused_flags(&rec), vec![false], "{path}");
        // Closed by the client itself: no close_idle_connections here.
        assert_all_closed(&t);
        assert_eq!(server.accepted(), i + 1);
    }

    // HTTP/1.0 with an explicit keep-alive may be reused (Go's shouldClose).
    let rec = Recorder::new();
    for _ in 0..2 {
        let resp = traced_get(&client, server.url("/http10-keep-alive"), &rec);
        assert_eq!(resp.text().unwrap(), "hi");
    }
    assert_eq!(reused_flags(&rec), vec![false, true]);
    assert_eq!(server.accepted(), 4);
}

/// A response without a body on a connection that cannot be reused must
/// still reach the caller (Go sends the response, then closes). Repeated,
/// since a wrong order (close first) only loses the race sometimes.
#[test]
fn bodyless_response_on_closing_conn_is_delivered() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = answer_once(
        |head| {
            if head.starts_with("HEAD ") {
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\n"
            } else {
                "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
            }
        },
        hold,
    );
    let client = client(&t);

    for i in 0..20 {
        let resp = client.get(server.url("/204")).send();
        let resp = resp.unwrap_or_else(|e| panic!("204 + Connection: close, round {i}: {e}"));
        assert_eq!(resp.status(), 204);
        let resp = client.head(server.url("/head")).send();
        let resp = resp.unwrap_or_else(|e| panic!("HEAD + Connection: close, round {i}: {e}"));
        assert_eq!(resp.content_length(), Some(10));
    }
    assert_all_closed(&t);
    assert_eq!(server.accepted(), 40);
}

// ---------------------------------------------------------------------------
// 14: trailers

#[test]
fn chunked_trailers_after_eof() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let server = ScriptedServer::start(|mut c| {
        while c.read_request().is_some() {
            c.write(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
                 5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
            );
        }
    });
    let client = client(&t);

    let mut resp = client.get(server.url("/t")).send().unwrap();
    assert!(
        resp.trailers().is_none(),
        "trailers before the body was read"
    );
    let mut text = String::new();
    resp.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello world");
    let trailers = resp.trailers().expect("trailers after EOF");
    assert_eq!(
        trailers.get("x-sum").map(|v| v.as_bytes()),
        Some(&b"42"[..])
    );
    let s = t.stats();
    assert_eq!(
        (s.idle, s.in_use),
        (1, 0),
        "connection back in the pool at EOF: {s:?}"
    );
    drop(resp);

    let rec = Recorder::new();
    let resp = traced_get(&client, server.url("/t"), &rec);
    assert_eq!(resp.text().unwrap(), "hello world");
    assert_eq!(reused_flags(&rec), vec![true]);
}

// ---------------------------------------------------------------------------
// 15: exact request bytes

#[test]
fn exact_request_bytes() {
    let t = Transport::builder().disable_compression(true).build();
    let _leaks = LeakCheck::new(&t);
    let (tx, rx) = mpsc::channel::<(String, Vec<u8>)>();
    let server = ScriptedServer::start(move |mut c| {
        while let Some(req) = c.read_request() {
            let _ = tx.send(req);
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let client = client(&t);
    let addr = server.addr;
    // Sends `req`, drains the answer; returns what the server received.
    let exchange = |req: RequestBuilder| {
        req.send().unwrap().discard().unwrap();
        rx.recv_timeout(2 * SEC).unwrap()
    };

    let (head, body) = exchange(client.get(server.url("/path?q=1")));
    assert_eq!(
        head,
        format!("GET /path?q=1 HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: nethttp/0.1.0\r\n\r\n")
    );
    assert!(body.is_empty());

    let (head, _) = exchange(client.post(server.url("/p")));
    assert_eq!(
        head,
        format!(
            "POST /p HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: nethttp/0.1.0\r\nContent-Length: 0\r\n\r\n"
        )
    );

    let data = payload(5000);
    let (head, body) = exchange(
        client
            .post(server.url("/stream"))
            .body(Body::from_reader(io::Cursor::new(data.clone()), None)),
    );
    assert!(head.starts_with("POST /stream HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    assert_eq!(body, data);

    let (head, _) = exchange(client.get(format!("http://user:pa%20ss@{addr}/auth")));
    assert!(
        head.starts_with(&format!("GET /auth HTTP/1.1\r\nHost: {addr}\r\n")),
        "{head}"
    );
    let auth: Vec<&str> = head
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .collect();
    // base64("user:pa ss")
    assert_eq!(auth.len(), 1, "{head}");
    assert_eq!(
        auth[0].split_once(':').unwrap().1.trim(),
        "Basic dXNlcjpwYSBzcw==",
        "{head}"
    );
    assert_eq!(server.accepted(), 1);

    // With compression on, the only addition allowed is Accept-Encoding.
    let t2 = Transport::new();
    let _leaks2 = LeakCheck::new(&t2);
    let client2 = support::client(&t2);
    let (head, _) = exchange(client2.get(server.url("/path?q=1")));
    let prefix = format!("GET /path?q=1 HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: nethttp/0.1.0\r\n");
    assert!(
        head.starts_with(&prefix) && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    for line in head[prefix.len()..].lines().filter(|l| !l.is_empty()) {
        assert_eq!(
            line.to_ascii_lowercase(),
            format!("accept-encoding: {}", accept_encoding()),
            "unexpected header in {head}"
        );
    }
}

// ---------------------------------------------------------------------------
// 16: bad URLs

#[test]
fn bad_urls_are_invalid_url() {
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let client = client(&t);

    for url in [
        "ftp://127.0.0.1/file",
        "http://[::1",
        "not a url",
        "http://",
        "http://exa mple.com/",
        "",
    ] {
        let err = client.get(url).send().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{url:?}: {err}");
        match Request::builder(Method::GET, url).build() {
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidUrl, "{url:?}: {e}"),
            Ok(req) => {
                let e = t.round_trip(req).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::InvalidUrl, "{url:?}: {e}");
            }
        }
    }
    let err = nethttp::get("ftp://127.0.0.1/file").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{err}");
    assert_eq!(t.stats(), nethttp::PoolStats::default());
}

/// The quirks Go, curl and hyper all accept (API.md, "Framing where RFC
/// 9112 and Go 1.19 differ"), over a real socket: each response is read
/// whole and its connection serves the next request.
#[test]
fn quirks_that_go_curl_and_hyper_accept() {
    let cases: &[(&str, &str)] = &[
        (
            "/fold",
            "HTTP/1.1 200 OK\r\nX-Fold: a\r\n\tb\r\n   c\r\nContent-Length: 2\r\n\r\nok",
        ),
        ("/v12", "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        (
            "/spaces",
            "HTTP/1.1  200  OK\r\nContent-Length: 2\r\n\r\nok",
        ),
        (
            "/colon",
            "HTTP/1.1 200 OK\r\nX-Bad : 1\r\nContent-Length: 2\r\n\r\nok",
        ),
    ];
    let replies: Vec<(String, String)> = cases
        .iter()
        .map(|(p, r)| (p.to_string(), r.to_string()))
        .collect();
    let server = ScriptedServer::start(move |mut c| {
        while let Some((head, _)) = c.read_request() {
            let path = path_of(&head);
            let reply = replies.iter().find(|(p, _)| *p == path).map(|(_, r)| r);
            c.write(reply.map_or("HTTP/1.1 404 X\r\nContent-Length: 0\r\n\r\n", |r| r));
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    for (path, _) in cases {
        let resp = c.get(server.url(path)).send().unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.version(), nethttp::http::Version::HTTP_11, "{path}");
        match *path {
            "/fold" => assert_eq!(resp.headers()["x-fold"], "a b c"),
            "/colon" => assert!(resp.headers().get("x-bad").is_none()),
            _ => {}
        }
        assert_eq!(resp.text().unwrap(), "ok", "{path}");
    }
    assert_eq!(server.accepted(), 1, "one connection for every quirk");
}

/// A server that sends a whole keep-alive response and then closes (no
/// `Connection: close`; tinyproxy does this). Once its FIN has arrived,
/// the body's end must not pool the connection: nothing else looks at the
/// socket before the next request would be written onto it.
#[test]
fn a_connection_the_server_closed_after_its_response_is_not_pooled() {
    let (closed_tx, closed_rx) = mpsc::channel();
    let closed_tx = Mutex::new(closed_tx);
    let server = ScriptedServer::start(move |mut c| {
        if c.read_request().is_some() {
            c.write(ok_response("hello"));
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
            let _ = closed_tx.lock().unwrap().send(());
        }
    });
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    for path in ["/small", "/again"] {
        let rec = Recorder::new();
        let resp = traced_get(&c, server.url(path), &rec);
        closed_rx.recv_timeout(5 * SEC).expect("the server closed");
        // The FIN travels over loopback: give it a moment to land.
        thread::sleep(Duration::from_millis(50));
        assert_eq!(resp.text().unwrap(), "hello");
        let events = rec.events();
        let put = events.iter().find(|e| e.starts_with("put_idle_conn"));
        assert!(
            put.is_some_and(|e| e != "put_idle_conn ok"),
            "{path}: the closed connection went idle: {events:?}"
        );
        assert_eq!(t.stats().idle, 0, "{path}");
    }
    assert_eq!(server.accepted(), 2);
}
