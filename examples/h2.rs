//! `cargo run --example h2`: 100 concurrent GETs over one HTTP/2
//! connection served by two `nethttp` threads, next to the same 100 GETs
//! over HTTP/1.1 (100 connections, 200 threads).
//!
//! Everything runs in this process, on `127.0.0.1`: no network, nothing to
//! install. Two small servers answer every request after the same fixed
//! delay (250 ms):
//!
//! - HTTP/1.1: `tiny_http` (a dev-dependency), one keep-alive connection
//!   per concurrent request, as HTTP/1.1 requires;
//! - HTTP/2 cleartext (h2c, prior knowledge): a demo responder written
//!   below in plain `std`, which speaks just enough of the framing layer to
//!   answer GETs. It is not an HTTP/2 server.
//!
//! For each protocol the example builds its own `Transport`, starts 100 std
//! threads that each send one GET at the same moment, and watches the pool
//! with `Transport::stats()`, `nethttp::live_threads()` and the names of
//! this process's threads in `/proc/self/task` (`nethttp-*`). It then
//! closes the idle connections and waits (with a deadline) for every
//! `nethttp` thread to finish, prints a table, and panics if `nethttp` did
//! not behave as it promises (HTTP/2: one connection, two threads at peak).

use std::{
    collections::BTreeSet,
    error::Error as StdError,
    io::{self, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Barrier, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use nethttp::{Client, PoolStats, Transport, http::Version};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Concurrent requests per protocol.
const N: usize = 100;
/// Both servers answer every request this long after it arrived.
const DELAY: Duration = Duration::from_millis(250);
/// Bound on every single exchange, so a misbehaving library cannot hang
/// the demo.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on every "wait until the threads are gone" poll.
const SETTLE: Duration = Duration::from_secs(5);
/// The whole demo is killed (exit 2) if it runs longer than this.
const WATCHDOG: Duration = Duration::from_secs(60);

fn main() -> Result<(), BoxError> {
    thread::Builder::new().name("watchdog".into()).spawn(|| {
        thread::sleep(WATCHDOG);
        eprintln!("h2: still running after {WATCHDOG:?}: a request or a wait is stuck");
        std::process::exit(2);
    })?;

    let h1_server = H1Server::start()?;
    let h2_server = H2Server::start()?;
    println!(
        "nethttp h2 demo: {N} concurrent GETs, each answered after {} ms by a server in this process",
        DELAY.as_millis()
    );
    println!(
        "  HTTP/1.1 server (tiny_http):          http://{}/",
        h1_server.addr
    );
    println!(
        "  HTTP/2 h2c demo responder (std only): http://{}/",
        h2_server.addr
    );
    println!("  (the servers' threads are named srv-* or unnamed, never nethttp-*)");

    // HTTP/1.1: the default transport. One request per connection at a
    // time, so 100 concurrent requests need 100 connections.
    let h1 = run(
        "HTTP/1.1",
        Version::HTTP_11,
        Transport::builder().build(),
        &format!("http://{}/", h1_server.addr),
    )?;
    // HTTP/2 by prior knowledge: every request is a stream of one shared
    // connection.
    let h2 = run(
        "HTTP/2",
        Version::HTTP_2,
        Transport::builder().http2_prior_knowledge().build(),
        &format!("http://{}/", h2_server.addr),
    )?;
    let h2_accepted = h2_server.accepted.load(Ordering::SeqCst);
    println!("  the h2c responder accepted {h2_accepted} connection(s) in all");

    println!();
    println!(
        "{N} concurrent GETs, each answered after {} ms",
        DELAY.as_millis()
    );
    println!("protocol   time     connections  nethttp threads (peak)");
    for r in [&h1, &h2] {
        println!(
            "{:<10} {:<8} {:<12} {}",
            r.protocol,
            format!("{:.2} s", r.took.as_secs_f64()),
            r.peak.conns,
            r.peak.threads
        );
    }
    println!();

    // What nethttp promises, checked. Any failure here is a library bug.
    for r in [&h1, &h2] {
        let p = r.protocol;
        assert!(r.settled, "{p}: threads did not reach 0 within {SETTLE:?}");
        let full = r
            .full
            .as_ref()
            .unwrap_or_else(|| panic!("{p}: never saw all {N} requests in flight at once"));
        assert_eq!(
            full.stats.threads,
            2 * full.stats.conns,
            "{p}: stats().threads is not two per connection with all requests in flight"
        );
        // Spare threads (parked for the next connection) count in
        // live_threads() and keep their last nethttp-r*/w* name.
        let counted = full.stats.threads + full.stats.spare_threads;
        assert_eq!(
            full.live, counted,
            "{p}: live_threads() and stats().threads + spare_threads disagree"
        );
        if let Some(proc) = &full.proc {
            assert_eq!(
                proc.conn, counted,
                "{p}: nethttp-r*/w* threads in /proc/self/task and stats().threads + spare_threads disagree"
            );
        }
    }
    // HTTP/1.1: one connection per request in flight, each seen by the server.
    assert_eq!(h1.peak.conns, N, "HTTP/1.1: peak connections");
    assert_eq!(
        h1.full.as_ref().map(|s| s.stats.threads),
        Some(2 * N),
        "HTTP/1.1: threads with all requests in flight"
    );
    assert_eq!(h1.server_conns, N, "HTTP/1.1: connections the server saw");
    // HTTP/2: one connection, its two threads, 100 streams.
    assert_eq!(h2_accepted, 1, "HTTP/2: connections the responder accepted");
    assert_eq!(h2.peak.conns, 1, "HTTP/2: peak connections");
    assert_eq!(h2.peak.threads, 2, "HTTP/2: peak threads");
    assert_eq!(h2.peak.streams, N, "HTTP/2: peak open streams");
    assert_eq!(h2.server_conns, 1, "HTTP/2: connections the server saw");
    assert!(
        h2.took < h1.took,
        "HTTP/2 ({:?}) was not faster than HTTP/1.1 ({:?})",
        h2.took,
        h1.took
    );
    assert_eq!(
        nethttp::live_threads(),
        0,
        "nethttp threads left at the end"
    );
    assert!(
        proc_nethttp_threads().is_none_or(|n| n == 0),
        "nethttp-* threads left in /proc/self/task at the end"
    );
    println!("all checks passed; nethttp threads left: 0");

    h1_server.stop();
    h2_server.stop();
    Ok(())
}

// ---------------------------------------------------------------------------
// The client side.

/// What one protocol's run measured.
struct RunResult {
    protocol: &'static str,
    took: Duration,
    /// Largest values `stats()` reported during the run.
    peak: PoolStats,
    /// A snapshot taken while all `N` requests were in flight.
    full: Option<Snapshot>,
    /// Distinct connections the server says it answered on.
    server_conns: usize,
    /// Threads reached 0 after `close_idle_connections()`.
    settled: bool,
}

/// The three thread counts, taken together while the pool did not change.
struct Snapshot {
    stats: PoolStats,
    live: usize,
    proc: Option<ProcThreads>,
}

impl Snapshot {
    /// `None` if `stats()` changed while `/proc` was read (a response
    /// came back meanwhile): the counts would not belong together.
    fn take(t: &Transport) -> Option<Snapshot> {
        let stats = t.stats();
        let live = nethttp::live_threads();
        let proc = ProcThreads::now();
        (t.stats() == stats).then_some(Snapshot { stats, live, proc })
    }
}

/// Sends `N` GETs to `url` at once from `N` threads over a client on `t`,
/// checks every response, and watches the pool meanwhile.
fn run(
    protocol: &'static str,
    version: Version,
    t: Transport,
    url: &str,
) -> Result<RunResult, BoxError> {
    println!();
    println!("== {protocol}: {N} GETs at once ==");
    let client = Client::builder()
        .transport(t.clone())
        .timeout(REQUEST_TIMEOUT)
        .build()?;

    // Every worker waits at the gate, so that all requests start together.
    let gate = Arc::new(Barrier::new(N + 1));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (t, done) = (t.clone(), done.clone());
        thread::Builder::new()
            .name("sampler".into())
            .spawn(move || sample(&t, &done, version))?
    };
    let mut workers = Vec::with_capacity(N);
    for i in 0..N {
        let (client, gate, url) = (client.clone(), gate.clone(), url.to_string());
        workers.push(
            thread::Builder::new()
                .name(format!("req-{i}"))
                .spawn(move || {
                    gate.wait();
                    let resp = client.get(url).send()?;
                    let version = resp.version();
                    Ok::<_, nethttp::Error>((version, resp.text()?))
                })?,
        );
    }
    gate.wait();
    let start = Instant::now();
    let results: Vec<_> = workers
        .into_iter()
        .map(|w| w.join().expect("a request thread panicked"))
        .collect();
    let took = start.elapsed();
    done.store(true, Ordering::SeqCst);
    let (peak, full) = sampler.join().expect("the sampler thread panicked");

    // Every response: the right version, the server's body.
    let mut server_conns = BTreeSet::new();
    for res in results {
        let (v, body) = res?;
        assert_eq!(v, version, "{protocol}: a response came over {v:?}");
        let conn = body
            .strip_prefix(&format!("{version:?} reply on connection "))
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("{protocol}: unexpected body {body:?}"));
        server_conns.insert(conn.to_string());
    }
    println!(
        "  {N} responses in {:.0} ms, all {version:?}, from {} server connection(s)",
        took.as_secs_f64() * 1000.0,
        server_conns.len()
    );
    match &full {
        Some(s) => {
            println!("  with all {N} in flight: {}", show(&s.stats));
            let proc = match &s.proc {
                None => "n/a".to_string(),
                Some(p) if p.dial == 0 => format!("{} nethttp-r*/w* threads", p.conn),
                // A dial thread stops counting at its last statement, and is
                // listed until it has exited.
                Some(p) => format!(
                    "{} nethttp-r*/w* threads (+{} nethttp-d* exiting)",
                    p.conn, p.dial
                ),
            };
            println!(
                "    nethttp::live_threads() = {}, /proc/self/task: {proc}",
                s.live
            );
        }
        None => println!("  !! never saw all {N} requests in flight at once"),
    }
    println!("  peak during the run:    {}", show(&peak));

    // The bodies were read to their end: the connections are back in the
    // pool (HTTP/1.1 keeps `max_idle_conns_per_host` = 2 of them and closes
    // the rest). Close them and wait for every thread to finish.
    let before = t.stats();
    let closing = Instant::now();
    t.close_idle_connections();
    let settled = wait_until(SETTLE, || {
        let s = t.stats();
        s.threads == 0
            && s.conns == 0
            && nethttp::live_threads() == 0
            && proc_nethttp_threads().is_none_or(|n| n == 0)
    });
    println!("  after the run:          {}", show(&before));
    println!(
        "  close_idle_connections(): threads {} -> {} in {:.1} ms (live_threads() = {}, /proc nethttp-* = {})",
        before.threads,
        t.stats().threads,
        closing.elapsed().as_secs_f64() * 1000.0,
        nethttp::live_threads(),
        proc_nethttp_threads().map_or("n/a".into(), |n| n.to_string()),
    );

    Ok(RunResult {
        protocol,
        took,
        peak,
        full,
        server_conns: server_conns.len(),
        settled,
    })
}

/// Polls `t.stats()` until `done`: the largest value of each field, and one
/// snapshot taken when all `N` requests were in flight (HTTP/1.1: `N`
/// connections in use; HTTP/2: `N` open streams) and no dial thread was
/// left.
fn sample(t: &Transport, done: &AtomicBool, version: Version) -> (PoolStats, Option<Snapshot>) {
    let mut peak = PoolStats::default();
    let mut full = None;
    while !done.load(Ordering::SeqCst) {
        let s = t.stats();
        peak.conns = peak.conns.max(s.conns);
        peak.idle = peak.idle.max(s.idle);
        peak.in_use = peak.in_use.max(s.in_use);
        peak.dialing = peak.dialing.max(s.dialing);
        peak.waiting = peak.waiting.max(s.waiting);
        peak.threads = peak.threads.max(s.threads);
        peak.streams = peak.streams.max(s.streams);
        let in_flight = if version == Version::HTTP_2 {
            s.streams
        } else {
            s.in_use
        };
        if full.is_none() && in_flight == N && s.dialing == 0 && s.threads == 2 * s.conns {
            full = Snapshot::take(t);
        }
        thread::sleep(Duration::from_micros(200));
    }
    (peak, full)
}

fn show(s: &PoolStats) -> String {
    format!(
        "conns={} idle={} in_use={} dialing={} waiting={} threads={} spare_threads={} streams={}",
        s.conns, s.idle, s.in_use, s.dialing, s.waiting, s.threads, s.spare_threads, s.streams
    )
}

/// Polls `cond` every millisecond until it holds (true) or `limit` passes
/// (false).
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
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

/// `nethttp-*` threads listed in `/proc/self/task`, by kind.
struct ProcThreads {
    /// Connection threads: `nethttp-r<id>` (reader), `nethttp-w<id>` (writer).
    conn: usize,
    /// The others: dial threads, `nethttp-d<id>`.
    dial: usize,
}

impl ProcThreads {
    fn now() -> Option<ProcThreads> {
        let names = proc_nethttp_names()?;
        let conn = names
            .iter()
            .filter(|n| n.starts_with("nethttp-r") || n.starts_with("nethttp-w"))
            .count();
        Some(ProcThreads {
            conn,
            dial: names.len() - conn,
        })
    }
}

/// How many threads of this process have a name starting with `nethttp-`
/// (`None` without `/proc`).
fn proc_nethttp_threads() -> Option<usize> {
    proc_nethttp_names().map(|n| n.len())
}

/// Names of this process's threads that start with `nethttp-`, from
/// `/proc/self/task/*/comm` (Linux; `None` elsewhere).
fn proc_nethttp_names() -> Option<Vec<String>> {
    let dir = std::fs::read_dir("/proc/self/task").ok()?;
    let names = dir
        .flatten()
        // A thread that ends while we look has no comm to read: skipped.
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| name.starts_with("nethttp-"))
        .collect();
    Some(names)
}

// ---------------------------------------------------------------------------
// The HTTP/1.1 server: tiny_http, each request answered after DELAY from a
// thread of its own, with a body naming the connection (the client's port).

struct H1Server {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    accept: JoinHandle<()>,
}

impl H1Server {
    fn start() -> Result<H1Server, BoxError> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0")?);
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or("tiny_http is not listening on TCP")?;
        let srv = server.clone();
        let accept = thread::Builder::new()
            .name("srv-h1".into())
            .spawn(move || h1_loop(&srv))?;
        Ok(H1Server {
            addr,
            server,
            accept,
        })
    }

    fn stop(self) {
        self.server.unblock();
        let _ = self.accept.join();
    }
}

/// Takes requests from tiny_http (which reads them on its own connection
/// threads) until `stop` unblocks the server; each is answered after DELAY
/// from a thread of its own.
fn h1_loop(server: &tiny_http::Server) {
    for req in server.incoming_requests() {
        let due = Instant::now() + DELAY;
        let answer = move || {
            thread::sleep(due.saturating_duration_since(Instant::now()));
            let port = req.remote_addr().map_or(0, |a| a.port());
            let body = format!("HTTP/1.1 reply on connection {port}, via tiny_http\n");
            // The client may be gone; nothing to do then.
            let _ = req.respond(tiny_http::Response::from_string(body));
        };
        if let Err(e) = thread::Builder::new()
            .name("srv-h1-answer".into())
            .spawn(answer)
        {
            eprintln!("h1 server: cannot spawn an answer thread: {e}");
        }
    }
}

// ---------------------------------------------------------------------------
// The HTTP/2 responder (h2c, prior knowledge; RFC 9113).
//
// A demo responder, not an HTTP/2 server: it never decodes HPACK (its
// answer does not depend on the request), never reads request bodies, and
// keeps every frame it sends far below 16 KiB, so it needs no flow control
// of its own. Per connection: a reader thread that walks the frames, and an
// answer thread that sends each stream's response once DELAY has passed,
// both writing to the socket under one mutex.

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frame types (RFC 9113 §6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
/// Frame flags.
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// SETTINGS_MAX_CONCURRENT_STREAMS, and the value we announce.
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const STREAM_LIMIT: u32 = 250;
/// The largest frame payload a client may send us: SETTINGS_MAX_FRAME_SIZE,
/// left at its default.
const MAX_FRAME: usize = 16 * 1024;
/// A header block of one field, `:status: 200`: the HPACK static table's
/// entry 8, sent as an indexed field (RFC 7541 §6.1, Appendix A).
const STATUS_200: u8 = 0x80 | 8;

struct H2Server {
    addr: SocketAddr,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

impl H2Server {
    fn start() -> io::Result<H2Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stopping, count) = (stop.clone(), accepted.clone());
        let accept = thread::Builder::new()
            .name("srv-h2".into())
            .spawn(move || h2_accept_loop(&listener, &stopping, &count))?;
        Ok(H2Server {
            addr,
            accepted,
            stop,
            accept,
        })
    }

    /// Raises the stop flag and connects once, so that `accept` returns and
    /// sees it.
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        let _ = self.accept.join();
    }
}

/// Accepts connections, numbered from 1 (the count in `accepted`), each
/// served by a thread of its own, until `stop` is raised.
fn h2_accept_loop(listener: &TcpListener, stop: &AtomicBool, accepted: &AtomicUsize) {
    for sock in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(sock) = sock else { continue };
        let conn_no = accepted.fetch_add(1, Ordering::SeqCst) + 1;
        let serve = move || {
            match h2_serve(sock, conn_no) {
                Ok(()) => {}
                // The client closed the connection while we wrote: normal.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => eprintln!("h2 responder: connection {conn_no}: {e}"),
            }
        };
        if let Err(e) = thread::Builder::new()
            .name("srv-h2-read".into())
            .spawn(serve)
        {
            eprintln!("h2 responder: cannot spawn a connection thread: {e}");
        }
    }
}

/// One client connection: preface, our SETTINGS, then frames until the
/// client goes away.
fn h2_serve(sock: TcpStream, conn_no: usize) -> io::Result<()> {
    sock.set_nodelay(true)?;
    let mut rd = BufReader::new(sock.try_clone()?);
    let wr = Arc::new(Mutex::new(sock));

    let mut preface = [0u8; 24];
    rd.read_exact(&mut preface)?;
    if &preface != PREFACE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an HTTP/2 client preface",
        ));
    }
    // Our SETTINGS: one setting, 6 bytes (16-bit id, 32-bit value).
    let mut settings = MAX_CONCURRENT_STREAMS.to_be_bytes().to_vec();
    settings.extend_from_slice(&STREAM_LIMIT.to_be_bytes());
    send(&wr, &frame(SETTINGS, 0, 0, &settings))?;

    // The answer thread: streams arrive in order with the same delay, so
    // their due times are in order too; it ends when the reader drops `tx`.
    let (tx, rx) = mpsc::channel::<(u32, Instant)>();
    let answers = wr.clone();
    thread::Builder::new()
        .name("srv-h2-answer".into())
        .spawn(move || {
            for (stream, due) in rx {
                thread::sleep(due.saturating_duration_since(Instant::now()));
                let body = format!("HTTP/2.0 reply on connection {conn_no}, stream {stream}\n");
                let mut out = frame(HEADERS, END_HEADERS, stream, &[STATUS_200]);
                out.extend(frame(DATA, END_STREAM, stream, body.as_bytes()));
                if send(&answers, &out).is_err() {
                    return; // the client closed the connection
                }
            }
        })?;

    let mut last_stream = 0;
    loop {
        let Some(Frame {
            kind,
            flags,
            stream,
            payload,
        }) = read_frame(&mut rd)?
        else {
            return Ok(()); // the client closed the connection
        };
        match kind {
            SETTINGS if flags & ACK == 0 => send(&wr, &frame(SETTINGS, ACK, 0, &[]))?,
            PING if flags & ACK == 0 => send(&wr, &frame(PING, ACK, 0, &payload))?,
            // A new request (client streams are odd and increasing). What
            // it asks for does not matter: every answer is the same. A
            // header block too large for one frame would continue in
            // CONTINUATION frames, ignored below with everything else.
            HEADERS if stream % 2 == 1 && stream > last_stream => {
                last_stream = stream;
                let _ = tx.send((stream, Instant::now() + DELAY));
            }
            GOAWAY => return Ok(()),
            // SETTINGS and PING acks, WINDOW_UPDATE (the client sends one
            // on stream 0 at its start), PRIORITY, RST_STREAM, DATA,
            // CONTINUATION: nothing to do for this responder.
            _ => {}
        }
    }
}

/// One frame as read: its header fields and payload.
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// Reads one frame: 9-byte header (24-bit length, type, flags, reserved
/// bit + 31-bit stream id), then the payload. `None` on a clean end of
/// stream between frames.
fn read_frame(rd: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 9];
    match rd.read_exact(&mut head) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame larger than SETTINGS_MAX_FRAME_SIZE",
        ));
    }
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0; len];
    rd.read_exact(&mut payload)?;
    Ok(Some(Frame {
        kind: head[3],
        flags: head[4],
        stream,
        payload,
    }))
}

/// One frame's bytes: header, then `payload`.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("demo frames are small");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Writes whole frames under the socket's mutex, so that frames from the
/// reader and the answer thread never interleave.
fn send(wr: &Mutex<TcpStream>, bytes: &[u8]) -> io::Result<()> {
    let mut sock = wr.lock().unwrap_or_else(|e| e.into_inner());
    sock.write_all(bytes)
}
