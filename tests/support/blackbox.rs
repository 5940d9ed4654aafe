//! One exchange with a server that answers with exact bytes, and what
//! nethttp must keep whatever those bytes are. Shared by the seeded
//! black-box test (`tests/blackbox.rs`) and the end-to-end fuzz target
//! (`fuzz/fuzz_targets/exchange.rs`, which includes this file by path), so
//! it uses nothing else from `support`.
//!
//! The invariants, checked by [`exchange`]:
//! - no panic, and no hang: every wait is bounded (the client's timeout);
//! - a connection whose response ended in an error is never reused: after
//!   such a response the client sends a probe, and the server sees where
//!   it arrives;
//! - afterwards the transport's counts come back to zero (no connection,
//!   no thread left).
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{Client, RedirectPolicy, Transport};

/// The first response's bytes and the server's view of the exchange.
#[derive(Debug)]
pub struct Exchange {
    /// The first request's result: its body read to the end, or the error
    /// (from `send` or from the body).
    pub first: Result<Vec<u8>, nethttp::Error>,
    /// The probe's result, when one was sent (after an error).
    pub probe: Option<Result<Vec<u8>, nethttp::Error>>,
}

/// The probe's answer.
const PROBE_BODY: &[u8] = b"probe";

/// How long the server waits on its first connection for another request
/// (the probe of a client that wrongly kept it) before it closes it.
const LINGER: Duration = Duration::from_millis(40);

/// The client's bound on each request, so nothing hangs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads one request head; false at EOF, on a timeout or an error.
fn read_head(r: &mut BufReader<TcpStream>) -> bool {
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == b"\r\n" || line == b"\n" => return true,
            Ok(_) => {}
        }
    }
}

/// A loopback server for one exchange: its first connection gets
/// `response` to its first request, and any later request anywhere gets
/// the probe's answer. Records whether a request came again on the first
/// connection.
struct Server {
    url: String,
    reused_first: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(response: Vec<u8>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let reused_first = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (reused, st) = (reused_first.clone(), stop.clone());
        let acceptor = thread::spawn(move || {
            let mut first = Some(response);
            let mut workers = Vec::new();
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let response = first.take();
                let reused = reused.clone();
                workers.push(thread::spawn(move || serve(stream, response, &reused)));
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Server {
            url: format!("http://{addr}"),
            reused_first,
            stop,
            acceptor: Some(acceptor),
        }
    }
}

/// One connection: `response` (first connection only) to the first
/// request, then the probe's answer to every later one, until the client
/// closes or, on the first connection, `LINGER` passes without a request.
fn serve(stream: TcpStream, response: Option<Vec<u8>>, reused_first: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let Ok(read) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read);
    let mut w = &stream;
    let is_first = response.is_some();
    if let Some(response) = response {
        if !read_head(&mut reader) || w.write_all(&response).is_err() {
            return;
        }
        let _ = stream.set_read_timeout(Some(LINGER));
    }
    while read_head(&mut reader) {
        if is_first {
            reused_first.store(true, Ordering::SeqCst);
        }
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            PROBE_BODY.len()
        );
        let ok = w
            .write_all(answer.as_bytes())
            .and_then(|()| w.write_all(PROBE_BODY));
        if ok.is_err() {
            return;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the acceptor sees `stop`.
        let addr = self.url.trim_start_matches("http://").to_owned();
        if let Ok(addr) = addr.parse() {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// One GET of `path`, body read to the end (at most 1 MiB of it).
fn get(c: &Client, url: &str) -> Result<Vec<u8>, nethttp::Error> {
    let resp = c.get(url).timeout(REQUEST_TIMEOUT).send()?;
    let mut body = Vec::new();
    resp.limit(1 << 20).read_to_end(&mut body).map_err(|e| {
        match e.into_inner().map(|i| i.downcast::<nethttp::Error>()) {
            Some(Ok(err)) => *err,
            _ => panic!("a body read error without a nethttp::Error inside"),
        }
    })?;
    Ok(body)
}

/// Runs one exchange in which the server answers the first request with
/// `response`, and checks the invariants of the module doc. A broken
/// invariant panics with the response bytes in the message.
pub fn exchange(t: &Transport, response: &[u8]) -> Exchange {
    let server = Server::start(response.to_vec());
    // Redirects are the client's business; this is about the connection.
    let c = Client::builder()
        .transport(t.clone())
        .redirect(RedirectPolicy::none())
        .build()
        .expect("client");
    let first = get(&c, &format!("{}/first", server.url));
    let probe = first
        .is_err()
        .then(|| get(&c, &format!("{}/probe", server.url)));
    let reused = server.reused_first.load(Ordering::SeqCst);
    assert!(
        !(first.is_err() && reused),
        "a connection was reused after its response failed ({first:?}); response bytes: {:?}",
        String::from_utf8_lossy(response)
    );
    if let Some(Err(e)) = &probe {
        // The probe's server is well behaved: only our own bound may stop it.
        panic!(
            "the probe after a failed response failed too: {e}; response bytes: {:?}",
            String::from_utf8_lossy(response)
        );
    }
    drop(c);
    t.close_idle_connections();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = t.stats();
        if s.threads == 0 && s.conns == 0 && s.dialing == 0 && s.waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "counts never came back to zero: {s:?}; response bytes: {:?}",
            String::from_utf8_lossy(response)
        );
        thread::sleep(Duration::from_millis(1));
    }
    drop(server);
    Exchange { first, probe }
}

/// Valid responses to start from, each with the body a client must read
/// from it exactly: `Content-Length`, chunked with trailers, no body,
/// interim responses, gzip, HTTP/1.0, close-delimited.
pub fn seeds() -> Vec<(Vec<u8>, Vec<u8>)> {
    let gz: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
        0x07, 0x00, 0x86, 0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00,
    ];
    let mut gzip = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    gzip.extend_from_slice(gz);
    let s = |r: &str, body: &str| (r.as_bytes().to_vec(), body.as_bytes().to_vec());
    vec![
        s(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
            "hello",
        ),
        s(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
            "hello world",
        ),
        s("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", ""),
        s("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", ""),
        s(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "ok",
        ),
        (gzip, b"hello".to_vec()),
        s(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
            "abc",
        ),
        s(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close",
            "until the close",
        ),
        s(
            "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nSet-Cookie: a=b\r\n\r\n",
            "",
        ),
    ]
}

/// Whether `body` is what the client must read from seed response `r`
/// (used on unmutated seeds: decoded exactly).
pub fn check_seed(t: &Transport, response: &[u8], body: &[u8]) {
    let got = exchange(t, response);
    match &got.first {
        Ok(b) => assert_eq!(
            b,
            body,
            "seed decoded wrongly: {:?}",
            String::from_utf8_lossy(response)
        ),
        Err(e) => panic!(
            "seed failed: {e}; response: {:?}",
            String::from_utf8_lossy(response)
        ),
    }
}
