//! Who writes a request: its caller, for a request with nothing to stream
//! (no body, or a small one in memory), in one write that does not wait;
//! the connection's writer thread for streamed bodies and for whatever the
//! caller's write did not fit. Either way the bytes go out whole and in
//! order, over plain TCP and over TLS. The `wrote_request` hook runs on the
//! thread that finished the request, which is how these tests tell.

mod support;

use std::{
    io,
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use nethttp::{Body, Client, ClientTrace, GotConnInfo, Proxy, Transport};
use support::{
    LeakCheck, ScriptedServer, bounded, client,
    tls::{TlsServer, pki},
    wait_stats,
};

const LIMIT: Duration = Duration::from_secs(30);

/// Far more than a loopback socket's send buffer takes at once (the
/// kernel's default ceiling is 4 MiB): the caller's write cannot take it
/// all.
const HUGE: usize = 12 << 20;

/// Records the thread each `wrote_request` ran on, and each connection id.
#[derive(Default)]
struct Who {
    wrote_on: Mutex<Vec<String>>,
    conns: Mutex<Vec<u64>>,
}

impl ClientTrace for Who {
    fn got_conn(&self, info: &GotConnInfo) {
        self.conns.lock().unwrap().push(info.conn_id);
    }
    fn wrote_request(&self, _: Option<&nethttp::Error>) {
        let name = thread::current().name().unwrap_or("").to_string();
        self.wrote_on.lock().unwrap().push(name);
    }
}

impl Who {
    fn wrote_on(&self) -> Vec<String> {
        self.wrote_on.lock().unwrap().clone()
    }
}

/// The response to a request: what the server got, as text (the `x-big`
/// header's length and whether every byte of it is right, the body's
/// length and checksum).
fn answer(head: &str, body: &[u8]) -> String {
    let big = head
        .lines()
        .find_map(|l| l.strip_prefix("x-big: "))
        .unwrap_or("");
    let big_ok = big.bytes().enumerate().all(|(i, b)| b == pattern_char(i));
    let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
    let text = format!("big {} {big_ok}; body {} {sum}", big.len(), body.len());
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    )
}

fn pattern_char(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

fn big_value(len: usize) -> String {
    (0..len).map(|i| pattern_char(i) as char).collect()
}

/// Keep-alive servers that wait `delay` before they read each request (so
/// a big head fills the socket's buffers first), then [`answer`] it.
fn plain_server(delay: Duration) -> ScriptedServer {
    ScriptedServer::start(move |mut c| {
        thread::sleep(delay);
        while let Some((head, body)) = c.read_request() {
            c.write(answer(&head, &body));
            thread::sleep(delay);
        }
    })
}

fn tls_server(delay: Duration) -> TlsServer {
    TlsServer::start(pki().1.server_config(), move |mut c| {
        thread::sleep(delay);
        while let Some((head, body)) = c.read_request() {
            if c.write_all(answer(&head, &body).as_bytes()).is_err() {
                return;
            }
            thread::sleep(delay);
        }
    })
}

fn tls_transport() -> Transport {
    Transport::builder()
        .tls_config(pki().0.client_config())
        .proxy(Proxy::none())
        .build()
}

/// Sends the four kinds of request in turn on one keep-alive connection
/// and checks what the server got and which thread wrote each head.
fn run_all(c: Client, url: String) -> Arc<Who> {
    let who = Arc::new(Who::default());
    let send = |req: nethttp::RequestBuilder| {
        req.trace(who.clone())
            .send()
            .and_then(nethttp::Response::text)
            .expect("request")
    };
    // 1. No body: the caller writes it.
    assert_eq!(send(c.get(&url)), "big 0 true; body 0 0");
    // 2. A small body in memory goes with the head, from the caller.
    let small: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let small_sum: u64 = small.iter().map(|&b| u64::from(b)).sum();
    assert_eq!(
        send(c.post(&url).body(small)),
        format!("big 0 true; body 1000 {small_sum}")
    );
    // 3. A head the socket cannot take at once: the caller writes what
    // fits, the writer thread the rest.
    assert_eq!(
        send(c.get(&url).header("x-big", big_value(HUGE))),
        format!("big {HUGE} true; body 0 0")
    );
    // 4. A streamed body: the writer thread's.
    let streamed = Body::from_reader(io::Cursor::new(vec![7u8; 5000]), Some(5000));
    assert_eq!(
        send(c.post(&url).body(streamed)),
        format!("big 0 true; body 5000 {}", 7 * 5000)
    );
    // And the caller writes again once the writer is done.
    assert_eq!(send(c.get(&url)), "big 0 true; body 0 0");

    let conns = who.conns.lock().unwrap().clone();
    assert!(
        conns.windows(2).all(|w| w[0] == w[1]),
        "one connection for all: {conns:?}"
    );
    let on = who.wrote_on();
    let writer = format!("nethttp-w{}", conns[0]);
    let caller = thread::current().name().unwrap_or("").to_string();
    assert_eq!(
        on,
        vec![
            caller.clone(),
            caller.clone(),
            writer.clone(),
            writer,
            caller
        ],
        "the thread that finished each request"
    );
    who
}

#[test]
fn plain_requests_go_out_whole_whoever_writes_them() {
    bounded("plain write paths", LIMIT, || {
        let server = plain_server(Duration::from_millis(50));
        let t = Transport::new();
        let _leaks = LeakCheck::new(&t);
        run_all(client(&t), server.url("/echo"));
        wait_stats(&t, LIMIT, |s| s.idle == 1 && s.in_use == 0);
    });
}

#[test]
fn tls_requests_go_out_whole_whoever_writes_them() {
    bounded("tls write paths", LIMIT, || {
        let server = tls_server(Duration::from_millis(50));
        let t = tls_transport();
        let _leaks = LeakCheck::new(&t);
        run_all(client(&t), server.url("/echo"));
        wait_stats(&t, LIMIT, |s| s.idle == 1 && s.in_use == 0);
    });
}
