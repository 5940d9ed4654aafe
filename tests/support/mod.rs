//! Shared test support: bounded waits, the per-transport leak check, a
//! scripted raw-TCP server for exact fault bytes, a tiny_http server for
//! interop, and a trace recorder. Each test binary includes it with
//! `mod support;` and uses what it needs.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

pub mod blackbox;
pub mod h2;
pub mod peers;
pub mod tls;

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{Client, ClientTrace, ErrorKind, GotConnInfo, PoolStats, Response, Transport};

/// The `Accept-Encoding` this build sends: every enabled decoder, in the
/// order gzip, deflate, br, zstd.
pub fn accept_encoding() -> String {
    [
        (cfg!(feature = "gzip"), "gzip"),
        (cfg!(feature = "deflate"), "deflate"),
        (cfg!(feature = "brotli"), "br"),
        (cfg!(feature = "zstd"), "zstd"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(", ")
}

/// Runs `f` on its own thread and fails the test if it does not finish
/// within `limit`. A panic inside `f` is re-raised here.
pub fn bounded<T: Send + 'static>(
    name: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let h = thread::Builder::new()
        .name(format!("bounded-{name}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn bounded workload");
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = h.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("workload ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: workload did not finish within {limit:?} (deadlock?)")
        }
    }
}

/// A small fixed-seed xorshift64 PRNG.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A client that sends through `t` (so a test's LeakCheck sees its threads).
pub fn client(t: &Transport) -> Client {
    Client::builder()
        .transport(t.clone())
        .build()
        .expect("client")
}

/// Runs `f` on a new thread; the receiver yields its result.
pub fn spawn_result<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

/// GET `url` with a fresh trace recorder.
pub fn get_traced(c: &Client, url: &str) -> (Response, Arc<Recorder>) {
    let rec = Recorder::new();
    let resp = c.get(url).trace(rec.clone()).send().expect("request");
    (resp, rec)
}

/// A request [`spawn_traced_get`] runs: its body read to the end, and its
/// trace.
pub type TracedGet = mpsc::Receiver<(nethttp::Result<Vec<u8>>, Arc<Recorder>)>;

/// Sends a traced GET of `url` from another thread (to wait in the pool,
/// say) and reads its body to the end.
pub fn spawn_traced_get(c: &Client, url: &str) -> TracedGet {
    let (c, url) = (c.clone(), url.to_string());
    spawn_result(move || {
        let rec = Recorder::new();
        let res = c
            .get(&url)
            .trace(rec.clone())
            .send()
            .and_then(Response::bytes);
        (res, rec)
    })
}

/// Waits up to `limit` for a [`spawn_traced_get`] request to be served
/// `want`; returns how it got its connection.
#[track_caller]
pub fn traced_get_served(rx: &TracedGet, limit: Duration, want: &[u8]) -> GotConnInfo {
    let (res, rec) = rx.recv_timeout(limit).expect("the waiter is served");
    assert_eq!(res.expect("waiter's request"), want);
    rec.conns()[0].clone()
}

/// Times `send`, which must fail as a timeout (`ErrorKind::Timeout`,
/// `is_timeout`) after at least `min` and in less than `max`. `what` names
/// the case in failure messages.
#[track_caller]
pub fn assert_times_out<T>(
    what: &str,
    min: Duration,
    max: Duration,
    send: impl FnOnce() -> nethttp::Result<T>,
) -> nethttp::Error {
    let start = Instant::now();
    let Err(err) = send() else {
        panic!("{what}: succeeded, want a timeout");
    };
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{what}: {err}");
    assert!(err.is_timeout(), "{what}: {err}");
    assert!(took >= min, "{what}: after {took:?}");
    assert!(took < max, "{what}: after {took:?}");
    err
}

/// A keep-alive server that answers every request with `body`
/// (Content-Length framed; no body for HEAD).
pub fn ok_server(body: &'static str) -> ScriptedServer {
    ScriptedServer::start(move |mut c| {
        while let Some((head, _)) = c.read_request() {
            let payload = if head.starts_with("HEAD ") { "" } else { body };
            c.write(format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{payload}",
                body.len()
            ));
        }
    })
}

/// A server that reads the request and never answers; its script ends
/// when the client hangs up.
pub fn silent_server() -> ScriptedServer {
    ScriptedServer::start(|mut c| {
        let _ = c.read_head();
        let _ = c.read_head(); // blocks until the client closes
    })
}

/// Whether the real peer `program` (Debian package `package`) can run
/// (`program args` exits 0). When it cannot, a test that needs it fails
/// under CI (`CI` set: `.ci/run` installs it) and is skipped elsewhere,
/// with a message written straight to stderr: past the test harness's
/// output capture, so a plain `cargo test` shows it.
pub fn peer_available(program: &str, args: &[&str], package: &str, test: &str) -> bool {
    let found = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{program} is not installed, but CI runs {test} (.ci/run installs {package})");
    }
    let msg = format!(
        "\n*** SKIPPED {test}: {program} is not installed. \
         Install it (Debian: `apt-get install {package}`) to run it. ***\n\n"
    );
    let _ = io::stderr().write_all(msg.as_bytes());
    false
}

/// Polls `cond` every millisecond until it holds or `limit` passes.
/// Returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Asserts with a deadline that the transport's stats reach `want`.
#[track_caller]
pub fn wait_stats(t: &Transport, limit: Duration, want: impl Fn(&PoolStats) -> bool) -> PoolStats {
    let mut last = t.stats();
    let ok = wait_until(limit, || {
        last = t.stats();
        want(&last)
    });
    assert!(ok, "stats never reached the expected state; last: {last:?}");
    last
}

/// Go's `afterTest`, per transport: on drop, closes idle connections and
/// waits (bounded) for every thread the transport started to finish.
/// Safe with tests running in parallel, since it only counts its transport.
pub struct LeakCheck {
    transport: Transport,
}

impl LeakCheck {
    pub fn new(t: &Transport) -> LeakCheck {
        LeakCheck {
            transport: t.clone(),
        }
    }
}

impl Drop for LeakCheck {
    fn drop(&mut self) {
        self.transport.close_idle_connections();
        let mut last = self.transport.stats();
        let ok = wait_until(Duration::from_secs(10), || {
            last = self.transport.stats();
            last.threads == 0 && last.conns == 0 && last.dialing == 0
        });
        if !ok && !thread::panicking() {
            panic!("transport leaked: {last:?}");
        }
    }
}

/// Threads of this process whose name starts with `prefix`, from
/// `/proc/self/task/*/comm`.
pub fn proc_threads_named(prefix: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// All threads of this process.
pub fn proc_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// One accepted connection of a [`ScriptedServer`], with helpers for
/// reading requests and writing exact bytes.
pub struct ScriptConn {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
    /// 0 for the first connection the server accepted, 1 for the next, …
    pub index: usize,
}

impl ScriptConn {
    /// Reads one request head (up to and including the blank line); `None`
    /// at EOF. Header names are kept as sent.
    pub fn read_head(&mut self) -> Option<String> {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" || line == "\n" {
                return Some(head);
            }
        }
    }

    /// Reads `n` body bytes.
    pub fn read_body(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Reads a chunked request body to its end; returns the decoded bytes.
    pub fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                let mut end = String::new();
                self.reader.read_line(&mut end)?;
                return Ok(out);
            }
            let start = out.len();
            out.resize(start + size, 0);
            self.reader.read_exact(&mut out[start..])?;
            let mut crlf = [0; 2];
            self.reader.read_exact(&mut crlf)?;
        }
    }

    /// Reads a request and its body (Content-Length or chunked). Returns the
    /// head and body, or `None` at EOF.
    pub fn read_request(&mut self) -> Option<(String, Vec<u8>)> {
        let head = self.read_head()?;
        let lower = head.to_ascii_lowercase();
        let body = if let Some(len) = header_value(&lower, "content-length") {
            self.read_body(len.parse().ok()?).ok()?
        } else if header_value(&lower, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            self.read_chunked().ok()?
        } else {
            Vec::new()
        };
        Some((head, body))
    }

    pub fn write(&mut self, bytes: impl AsRef<[u8]>) {
        let _ = self.stream.write_all(bytes.as_ref());
        let _ = self.stream.flush();
    }

    /// Sends FIN after draining what the client still sends, so the close
    /// is orderly (no RST that could discard data in flight).
    pub fn close(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut r = self.reader;
        let _ = io::copy(&mut r, &mut io::sink());
    }
}

/// The value of header `name` (lowercase) in a lowercased head.
pub fn header_value<'a>(lower_head: &'a str, name: &str) -> Option<&'a str> {
    lower_head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        (n.trim() == name).then(|| v.trim())
    })
}

/// A raw TCP server on 127.0.0.1 that runs `script` on a thread per
/// accepted connection, for exact fault bytes. Dropping it stops accepting
/// (connections already running finish their script).
pub struct ScriptedServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl ScriptedServer {
    pub fn start<F>(script: F) -> ScriptedServer
    where
        F: Fn(ScriptConn) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(script);
        let (acc, st) = (accepted.clone(), stop.clone());
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let index = acc.fetch_add(1, Ordering::SeqCst);
                let script = script.clone();
                thread::spawn(move || {
                    // Bound every test read: a stuck client fails the test
                    // instead of hanging the server thread forever.
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                    let Ok(read) = stream.try_clone() else { return };
                    script(ScriptConn {
                        reader: BufReader::new(read),
                        stream,
                        index,
                    });
                });
            }
        });
        ScriptedServer {
            addr,
            accepted,
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the acceptor thread sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// A trace that records every hook call as a line, for assertions.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<String>>,
    pub conns: Mutex<Vec<GotConnInfo>>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    pub fn conns(&self) -> Vec<GotConnInfo> {
        self.conns.lock().unwrap().clone()
    }

    fn push(&self, s: String) {
        self.events.lock().unwrap().push(s);
    }
}

impl ClientTrace for Recorder {
    fn get_conn(&self, host_port: &str) {
        self.push(format!("get_conn {host_port}"));
    }
    fn got_conn(&self, info: &GotConnInfo) {
        self.push(format!(
            "got_conn reused={} was_idle={}",
            info.reused, info.was_idle
        ));
        self.conns.lock().unwrap().push(info.clone());
    }
    fn put_idle_conn(&self, err: Option<&nethttp::Error>) {
        self.push(format!(
            "put_idle_conn {}",
            err.map_or("ok".to_string(), |e| e.to_string())
        ));
    }
    fn got_first_response_byte(&self) {
        self.push("got_first_response_byte".into());
    }
    fn got_1xx_response(&self, status: nethttp::http::StatusCode, _: &nethttp::http::HeaderMap) {
        self.push(format!("got_1xx_response {}", status.as_u16()));
    }
    fn dns_start(&self, host: &str) {
        self.push(format!("dns_start {host}"));
    }
    fn dns_done(&self, addrs: &[SocketAddr]) {
        self.push(format!("dns_done {}", addrs.len()));
    }
    fn connect_start(&self, addr: SocketAddr) {
        self.push(format!("connect_start {addr}"));
    }
    fn connect_done(&self, addr: SocketAddr, err: Option<&io::Error>) {
        self.push(format!(
            "connect_done {addr} {}",
            if err.is_some() { "err" } else { "ok" }
        ));
    }
    fn wrote_headers(&self) {
        self.push("wrote_headers".into());
    }
    fn wait_100_continue(&self) {
        self.push("wait_100_continue".into());
    }
    fn got_100_continue(&self) {
        self.push("got_100_continue".into());
    }
    fn wrote_request(&self, err: Option<&nethttp::Error>) {
        self.push(format!(
            "wrote_request {}",
            if err.is_some() { "err" } else { "ok" }
        ));
    }
}

/// A tiny_http server (an HTTP/1.1 implementation nobody here wrote) with a
/// few routes, served by `workers` threads:
/// - `/hello` → `hello, world!` (13 bytes, Content-Length)
/// - `/bytes/N` → N bytes of a repeating pattern (Content-Length)
/// - `/chunked/N` → N bytes, chunked (no length given)
/// - `/echo` → the request body back
/// - `/status/N` → empty response with status N
pub struct InteropServer {
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    workers: Vec<thread::JoinHandle<()>>,
}

/// The byte at offset `i` of the `/bytes` and `/chunked` bodies.
pub fn pattern(i: usize) -> u8 {
    b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]
}

impl InteropServer {
    pub fn start(workers: usize) -> InteropServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("tiny_http bind"));
        let addr = server.server_addr().to_ip().expect("ip listener");
        let workers = (0..workers)
            .map(|_| {
                let s = server.clone();
                thread::spawn(move || {
                    while let Ok(req) = s.recv() {
                        serve(req);
                    }
                })
            })
            .collect();
        InteropServer {
            addr,
            server,
            workers,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

fn serve(mut req: tiny_http::Request) {
    let url = req.url().to_string();
    let parts: Vec<&str> = url.trim_start_matches('/').split('/').collect();
    let resp = match parts.as_slice() {
        ["hello"] => tiny_http::Response::from_string("hello, world!").boxed(),
        ["bytes", n] => {
            let n: usize = n.parse().unwrap_or(0);
            tiny_http::Response::from_data((0..n).map(pattern).collect::<Vec<u8>>()).boxed()
        }
        ["chunked", n] => {
            let n: usize = n.parse().unwrap_or(0);
            let data: Vec<u8> = (0..n).map(pattern).collect();
            // No length: tiny_http sends it chunked to an HTTP/1.1 client.
            tiny_http::Response::new(
                tiny_http::StatusCode(200),
                vec![],
                io::Cursor::new(data),
                None,
                None,
            )
            .boxed()
        }
        ["echo"] => {
            let mut body = Vec::new();
            let _ = req.as_reader().read_to_end(&mut body);
            tiny_http::Response::from_data(body).boxed()
        }
        ["status", n] => {
            tiny_http::Response::empty(tiny_http::StatusCode(n.parse().unwrap_or(500))).boxed()
        }
        _ => tiny_http::Response::empty(tiny_http::StatusCode(404)).boxed(),
    };
    let _ = req.respond(resp);
}

impl Drop for InteropServer {
    fn drop(&mut self) {
        self.server.unblock();
        for _ in 1..self.workers.len() {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A keep-alive server loop on a [`ScriptConn`]: `/bytes/N` answers N
/// pattern bytes with `Content-Length`, `/chunked/N` the same chunked (in
/// pieces of up to 7,000 bytes), `/status/N` an empty response with status
/// N. HEAD gets the head only. Serves until the client closes.
pub fn keep_alive_script(pat: Arc<Vec<u8>>) -> impl Fn(ScriptConn) + Send + Sync + 'static {
    move |mut c: ScriptConn| {
        let _ = c.stream.set_write_timeout(Some(Duration::from_secs(20)));
        let _ = c.stream.set_nodelay(true);
        while let Some((head, _)) = c.read_request() {
            let mut words = head.split_whitespace();
            let method = words.next().unwrap_or("").to_string();
            let path = words.next().unwrap_or("").to_string();
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let head_only = method == "HEAD";
            match parts.as_slice() {
                ["bytes", n] => {
                    let n: usize = n.parse().unwrap_or(0).min(pat.len());
                    let mut out =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").into_bytes();
                    if !head_only {
                        out.extend_from_slice(&pat[..n]);
                    }
                    c.write(out);
                }
                ["chunked", n] => {
                    let n: usize = n.parse().unwrap_or(0).min(pat.len());
                    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                    if !head_only {
                        let mut off = 0;
                        while off < n {
                            let k = (n - off).min(7000);
                            out.extend_from_slice(format!("{k:x}\r\n").as_bytes());
                            out.extend_from_slice(&pat[off..off + k]);
                            out.extend_from_slice(b"\r\n");
                            off += k;
                        }
                        out.extend_from_slice(b"0\r\n\r\n");
                    }
                    c.write(out);
                }
                ["status", n] => {
                    let code: u16 = n.parse().unwrap_or(500);
                    let len = if code == 204 || code == 304 {
                        ""
                    } else {
                        "Content-Length: 0\r\n"
                    };
                    c.write(format!("HTTP/1.1 {code} X\r\n{len}\r\n"));
                }
                _ => c.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            }
        }
    }
}

/// `len` bytes of [`pattern`].
pub fn pattern_vec(len: usize) -> Vec<u8> {
    (0..len).map(pattern).collect()
}
