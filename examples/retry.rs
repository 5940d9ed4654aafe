//! A retrying middleware: a `RoundTripper` that wraps a `Transport` and
//! sends a request again, with a doubling backoff, when the server answers
//! 503 or 429 (honouring a `Retry-After` of a few seconds) or a fresh
//! connection fails to connect. It sits under the client, so redirects,
//! cookies and the client's deadline still apply to the whole exchange.
//!
//! Run: `cargo run --example retry`. It starts a flaky server on
//! 127.0.0.1 that answers 503 twice, then 200, and prints each attempt.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    sync::atomic::{AtomicUsize, Ordering},
    thread,
    time::{Duration, Instant},
};

use nethttp::{
    Client, Error, ErrorKind, Request, Response, RoundTripper, Transport, http::StatusCode,
};

/// Retries what is safe to retry: idempotent methods with a body that can
/// be sent again.
struct Retry {
    inner: Transport,
    max_attempts: u32,
    first_backoff: Duration,
    attempts: AtomicUsize,
}

impl Retry {
    /// A copy of `req` for the next attempt, if it can be sent again.
    fn again(req: &Request) -> Option<Request> {
        req.method().is_idempotent().then(|| req.try_clone())?
    }
}

impl RoundTripper for Retry {
    fn round_trip(&self, req: Request) -> nethttp::Result<Response> {
        let mut backoff = self.first_backoff;
        let mut req = req;
        for attempt in 1..=self.max_attempts {
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let next = if attempt < self.max_attempts {
                Retry::again(&req)
            } else {
                None
            };
            let result = self.inner.round_trip(req);
            let wait = match &result {
                Ok(resp)
                    if matches!(
                        resp.status(),
                        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
                    ) =>
                {
                    // Retry-After in seconds, when it is short; else ours.
                    resp.headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .filter(|s| *s <= 5)
                        .map_or(backoff, Duration::from_secs)
                }
                Err(e) if e.kind() == ErrorKind::Connect => backoff,
                _ => return result,
            };
            let Some(n) = next else {
                return result;
            };
            println!(
                "  attempt {attempt}: {}; again in {wait:?}",
                describe(&result)
            );
            if let Ok(resp) = result {
                // Read to the end so its connection is reused.
                resp.discard()?;
            }
            thread::sleep(wait);
            backoff *= 2;
            req = n;
        }
        Err(Error::new(ErrorKind::Io, "retry: no attempts allowed"))
    }
}

fn describe(result: &nethttp::Result<Response>) -> String {
    match result {
        Ok(resp) => format!("status {}", resp.status()),
        Err(e) => format!("error {e}"),
    }
}

/// A server that answers 503 to its first `fails` requests, then 200.
fn flaky_server(fails: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        let served = AtomicUsize::new(0);
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut stream = stream;
            loop {
                let mut line = String::new();
                let mut head_done = false;
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    if line.ends_with("\r\n\r\n") {
                        head_done = true;
                        break;
                    }
                }
                if !head_done {
                    break;
                }
                let n = served.fetch_add(1, Ordering::SeqCst);
                let reply: &[u8] = if n < fails {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                };
                if stream.write_all(reply).is_err() {
                    break;
                }
            }
            let _ = reader.read(&mut [0; 1]);
        }
    });
    addr
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = flaky_server(2);
    let transport = Transport::new();
    let retry = std::sync::Arc::new(Retry {
        inner: transport.clone(),
        max_attempts: 4,
        first_backoff: Duration::from_millis(50),
        attempts: AtomicUsize::new(0),
    });
    let client = Client::builder()
        .round_tripper(retry.clone())
        .timeout(Duration::from_secs(10))
        .build()?;
    let started = Instant::now();
    println!("GET http://{addr}/ through the retrying middleware:");
    let resp = client.get(format!("http://{addr}/")).send()?;
    let status = resp.status();
    let body = resp.text()?;
    println!(
        "  attempt {}: status {status}, body {body:?} after {:?}",
        retry.attempts.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello"));
    assert_eq!(retry.attempts.load(Ordering::Relaxed), 3);
    let stats = transport.stats();
    println!("  one connection served all three: {stats:?}");
    assert_eq!(stats.conns, 1);
    Ok(())
}
