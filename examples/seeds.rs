//! `cargo run --example seeds`: the experiments from the Go articles about
//! `net/http` connection reuse and leaks, replayed against `nethttp`.
//!
//! The example starts its own small keep-alive HTTP/1.1 server on
//! `127.0.0.1:0` (plain `std::net`, a thread per connection, so it is not
//! counted by `nethttp`'s thread counters), then runs five experiments, each
//! with its own `Transport`, printing what Go's `httptrace` would print:
//!
//! 1. responses dropped unread: a new connection every time;
//! 2. bodies read to EOF: one connection, reused;
//! 3. `max_conns_per_host(2)` with two responses held: the third request
//!    waits, times out with `PoolTimeout`, and succeeds once a held response
//!    is dropped;
//! 4. "how many goroutines?": six GETs read to EOF leave two connection
//!    threads (plus `main`);
//! 5. a leak loop of 1,000 mixed requests: the thread count comes back to
//!    where it started.
//!
//! It ends with a summary table and exits non-zero if any experiment did not
//! behave as expected.

use std::{
    error::Error as StdError,
    fmt,
    io::{self, BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{Client, ClientTrace, Error, ErrorKind, GotConnInfo, Response, Transport};

type BoxError = Box<dyn StdError + Send + Sync>;
/// One experiment: runs against the server, returns its summary row.
type Experiment = fn(&Server) -> Result<Row, BoxError>;

/// Body of `GET /`: 13 bytes.
const HELLO: &[u8] = b"Hello, world\n";
/// Size of the body of `GET /big`: large enough that dropping it early
/// leaves bytes on the wire.
const BIG_LEN: usize = 64 * 1024;
/// Body of `GET /big`.
static BIG: [u8; BIG_LEN] = [b'x'; BIG_LEN];
/// Bound on every single exchange, so a misbehaving library cannot hang the demo.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on every "wait until the threads are gone" poll.
const SETTLE: Duration = Duration::from_secs(5);
/// The whole demo is killed (exit 2) if it runs longer than this.
const WATCHDOG: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let started = Instant::now();
    thread::Builder::new()
        .name("watchdog".into())
        .spawn(|| {
            thread::sleep(WATCHDOG);
            eprintln!("seeds: still running after {WATCHDOG:?}: a request or a wait is stuck");
            std::process::exit(2);
        })
        .expect("spawn the watchdog thread");

    let srv = match Server::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("seeds: cannot start the local server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "nethttp seeds: Go's net/http experiments, replayed against a local server at {}",
        srv.addr
    );
    println!(
        "(the server is this process's own std::thread code: its threads are named srv-*, never nethttp-*)"
    );

    let experiments: [(&str, Experiment); 5] = [
        ("1 dropped unread", dropped_unread),
        ("2 read to EOF", read_to_eof),
        ("3 max_conns_per_host", max_conns_per_host),
        ("4 how many threads?", how_many_threads),
        ("5 leak loop x1000", leak_loop),
    ];
    let mut rows = Vec::new();
    for (name, run) in experiments {
        let row = match run(&srv) {
            Ok(row) => row,
            Err(e) => Row::fail(&format!("error: {e}")),
        };
        rows.push((name, row));
    }

    print_summary(&rows, started.elapsed());
    if rows.iter().all(|(_, r)| r.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------
// The experiments.

/// (1) Go: a body nobody reads or closes keeps its connection busy forever
/// (with its two goroutines), so every request dials a new one.
/// nethttp: `Drop` closes the connection early, so the new dial is the only
/// cost, and nothing is left behind.
fn dropped_unread(srv: &Server) -> Result<Row, BoxError> {
    heading(
        "1. Responses dropped unread",
        &[
            "Go: a body never read nor closed pins its connection; every request dials again",
            "and the readLoop/writeLoop goroutines leak. nethttp: Drop closes the connection.",
        ],
    );
    let (t, client) = transport_and_client(Transport::builder())?;
    let (got, dialled) = four_gets(srv, &client, |resp| {
        println!("  -> {}; response dropped unread", resp.status());
        drop(resp);
        Ok(())
    })?;
    let settled = settle(&t);
    let threads = t.stats().threads;
    println!(
        "result: {} requests, {} connections dialled (server accepted {dialled}), threads left: {threads}",
        got.len(),
        distinct_conns(&got),
    );

    let none_reused = got.len() == 4 && got.iter().all(|g| !g.reused);
    let ok = none_reused && distinct_conns(&got) == 4 && dialled == 4 && settled;
    Ok(Row {
        expected: "4 conns (server: 4), none reused, 0 threads".into(),
        observed: format!(
            "{} (server: {dialled}), {} reused, {threads} threads",
            plural(distinct_conns(&got), "conn"),
            got.iter().filter(|g| g.reused).count()
        ),
        ok,
    })
}

/// (2) Bodies read to EOF: the connection goes back to the pool before the
/// last byte is returned, and the next request finds it idle.
fn read_to_eof(srv: &Server) -> Result<Row, BoxError> {
    heading(
        "2. Bodies read to EOF",
        &["The connection goes back to the pool at EOF; the next request takes it from there."],
    );
    let (t, client) = transport_and_client(Transport::builder())?;
    let (got, dialled) = four_gets(srv, &client, |resp| {
        let body = resp.text()?;
        println!("  -> read {} bytes: {:?}", body.len(), body);
        Ok(())
    })?;
    let settled = settle(&t);
    let reused = got.iter().filter(|g| g.reused && g.was_idle).count();
    println!(
        "result: {} requests over {} (server accepted {dialled}); {reused} came from the idle pool",
        got.len(),
        plural(distinct_conns(&got), "connection")
    );

    let ok = got.len() == 4
        && !got[0].reused
        && got[1..].iter().all(|g| g.reused && g.was_idle)
        && distinct_conns(&got) == 1
        && dialled == 1
        && settled;
    Ok(Row {
        expected: "1 conn (server: 1), reused idle 3 times".into(),
        observed: format!(
            "{} (server: {dialled}), reused idle {reused} times",
            plural(distinct_conns(&got), "conn")
        ),
        ok,
    })
}

/// (3) `max_conns_per_host(2)`: with two responses held, a third request
/// waits for a connection. With `pool_wait_timeout` it gives up
/// (`PoolTimeout`); once a held response is dropped, its slot frees and the
/// waiter dials. A response read to EOF is handed straight to a waiter.
fn max_conns_per_host(srv: &Server) -> Result<Row, BoxError> {
    const POOL_WAIT: Duration = Duration::from_millis(300);
    heading(
        "3. max_conns_per_host(2), two responses held",
        &[
            "A third request waits for a connection: it times out after pool_wait_timeout (300ms),",
            "and gets one as soon as a held response is dropped (its slot frees, the waiter dials).",
        ],
    );
    let (t, client) = transport_and_client(
        Transport::builder()
            .max_conns_per_host(2)
            .pool_wait_timeout(Some(POOL_WAIT)),
    )?;

    let mut held = Vec::new();
    for i in 1..=2 {
        println!("request {i}: GET /  (response held, body unread)");
        let resp = client.get(srv.url("/")).trace(Trace::tagged(i)).send()?;
        println!("  -> {}", resp.status());
        held.push(resp);
    }
    println!("  {}", t.stats().show());

    // (a) The third request waits, then gives up.
    println!("request 3: GET /  (both connections busy)");
    let start = Instant::now();
    let res = client.get(srv.url("/")).trace(Trace::tagged(3)).send();
    let waited = start.elapsed();
    let timed_out = match &res {
        Err(e) => {
            println!("  -> error after {}: {e}", ms(waited));
            e.kind() == ErrorKind::PoolTimeout && e.is_timeout()
        }
        Ok(r) => {
            println!("  -> unexpectedly got {} after {}", r.status(), ms(waited));
            false
        }
    };
    drop(res);
    let timeout_ok = timed_out && waited >= POOL_WAIT && waited < POOL_WAIT * 5;

    // (b) The same request again, from another thread; drop a held response
    // while it waits.
    println!("request 4: GET /  (from another thread; one held response will be dropped)");
    let (waiter, queued) = spawn_queued(&t, &client, srv.url("/"), 4);
    thread::sleep(Duration::from_millis(50));
    println!("  dropping held response 1 (early close: its connection and 2 threads go)");
    drop(held.remove(0));
    let (b_got, b_res) = join(waiter)?;
    let b_ok = match &b_res {
        Ok(body) => {
            println!("  -> read {} bytes after the drop", body.len());
            b_got.as_ref().is_some_and(|g| !g.reused)
        }
        Err(e) => {
            println!("  -> error: {e}");
            false
        }
    };

    // (c) Late binding: a request waiting for a connection gets one straight
    // from a response that reaches EOF, without passing through the idle list.
    println!("request 5: GET /  (takes the idle connection; response held)");
    let fifth = client.get(srv.url("/")).trace(Trace::tagged(5)).send()?;
    println!("request 6: GET /  (from another thread; held response 2 will be read to EOF)");
    let (waiter, queued_again) = spawn_queued(&t, &client, srv.url("/"), 6);
    println!("  reading held response 2 to EOF (its connection goes straight to request 6)");
    let body2 = held.remove(0).text()?;
    println!("  -> held response 2: read {} bytes", body2.len());
    let (c_got, c_res) = join(waiter)?;
    let c_ok = c_res.is_ok() && c_got.as_ref().is_some_and(|g| g.reused && !g.was_idle);
    if let Err(e) = &c_res {
        println!("  -> request 6 error: {e}");
    }
    drop(fifth);

    let settled = settle(&t);
    println!(
        "result: PoolTimeout after {}; after the drop request 4 {}; request 6 {}",
        ms(waited),
        if b_ok {
            "dialled and succeeded"
        } else {
            "did NOT succeed as expected"
        },
        if c_ok {
            "got the released connection directly (was_idle=false)"
        } else {
            "did NOT get the released connection"
        },
    );

    let ok = timeout_ok && queued && b_ok && queued_again && c_ok && settled;
    Ok(Row {
        expected: "wait, PoolTimeout ~300ms; ok after drop".into(),
        observed: format!(
            "{} after {}; {}",
            if timed_out {
                "PoolTimeout"
            } else {
                "no PoolTimeout"
            },
            ms(waited),
            if b_ok && c_ok {
                "ok after drop/EOF"
            } else {
                "waiter failed"
            }
        ),
        ok,
    })
}

/// (4) The puzzle from the Go articles: after six GETs, each body read to
/// EOF, how many goroutines are there? Go: 3 (main, readLoop, writeLoop).
/// nethttp: 2 connection threads plus main.
fn how_many_threads(srv: &Server) -> Result<Row, BoxError> {
    heading(
        "4. How many threads after six GETs?",
        &[
            "Go's puzzle: six http.Get calls, bodies read and closed; answer: 3 goroutines",
            "(main, readLoop, writeLoop). nethttp: nethttp-r<id> + nethttp-w<id> + main.",
        ],
    );
    let (t, client) = transport_and_client(Transport::builder())?;
    let before = Threads::now();
    for i in 1..=6 {
        let trace = Trace::quiet();
        let body = client
            .get(srv.url("/"))
            .trace(trace.clone())
            .send()?
            .text()?;
        if let Some(g) = trace.got_conns().first() {
            println!(
                "request {i}: GET / -> {} bytes   got_conn: {}",
                body.len(),
                ConnLine(g)
            );
        }
    }
    // The dial thread (nethttp-d<id>) finishes a moment after its
    // connection is handed over: wait for it, with a deadline.
    let settled = wait_until(SETTLE, || Threads::now() == before.plus(2));

    let live = nethttp::live_threads() - before.live;
    let names = proc_thread_names();
    let (ours, others): (Vec<&String>, Vec<&String>) = names
        .iter()
        .flatten()
        .partition(|n| n.starts_with("nethttp-"));
    println!("  {}", t.stats().show());
    println!("  nethttp::live_threads() = {live}");
    match &names {
        Some(_) => {
            println!(
                "  /proc/self/task: {} nethttp-* threads: {}",
                ours.len(),
                join_names(&ours)
            );
            println!(
                "  not counted: {} (plain std threads of this demo)",
                summarize_names(&others)
            );
        }
        None => println!("  /proc/self/task is not available here: skipped"),
    }
    let proc_delta = proc_nethttp_threads()
        .zip(before.proc)
        .map(|(now, before)| now - before);
    println!("result: {live} connection threads + main (Go: readLoop + writeLoop + main)");

    let ok = settled && live == 2 && t.stats().threads == 2 && proc_delta.is_none_or(|d| d == 2);
    let observed = match proc_delta {
        Some(d) => format!("{live} nethttp ({d} in /proc) + main"),
        None => format!("{live} nethttp + main (no /proc)"),
    };
    let cleaned = settle(&t);
    Ok(Row {
        expected: "2 nethttp threads + main".into(),
        observed,
        ok: ok && cleaned,
    })
}

/// (5) Go's leak loop: many requests, some bodies read, some abandoned
/// half-way, some never touched. Afterwards the thread count must be back
/// where it started.
fn leak_loop(srv: &Server) -> Result<Row, BoxError> {
    const N: usize = 1000;
    heading(
        "5. Leak loop: 1,000 mixed requests",
        &[
            "Each third request: body read to EOF / 1 KiB of 64 KiB read then dropped / dropped unread.",
            "Afterwards (close_idle_connections, then a bounded wait) the thread count is back to its start.",
        ],
    );
    let (t, client) = transport_and_client(Transport::builder())?;
    let before = Threads::now();
    let accepted = srv.accepted();
    let trace = Trace::quiet();
    let start = Instant::now();
    let mut peak = before.live;
    let mut kinds = [0usize; 3];
    for i in 0..N {
        match i % 3 {
            0 => {
                client
                    .get(srv.url("/"))
                    .trace(trace.clone())
                    .send()?
                    .text()?;
            }
            1 => {
                let mut resp = client.get(srv.url("/big")).trace(trace.clone()).send()?;
                let mut buf = [0u8; 1024];
                resp.read_exact(&mut buf)?;
                drop(resp);
            }
            _ => {
                drop(client.get(srv.url("/big")).trace(trace.clone()).send()?);
            }
        }
        kinds[i % 3] += 1;
        peak = peak.max(nethttp::live_threads());
    }
    let took = start.elapsed();
    let got = trace.got_conns();
    let dials = got.iter().filter(|g| !g.reused).count();
    println!(
        "  {N} requests in {} ({} read to EOF, {} dropped early, {} dropped unread)",
        ms(took),
        kinds[0],
        kinds[1],
        kinds[2]
    );
    println!(
        "  connections: {dials} dialled, {} reused (server accepted {})",
        got.len() - dials,
        srv.accepted() - accepted
    );
    println!("  before close_idle_connections: {}", t.stats().show());
    t.close_idle_connections();
    let settled = wait_until(SETTLE, || {
        Threads::now() == before && t.stats().threads == 0
    });
    let after = Threads::now();
    println!("  after:  {}", t.stats().show());
    println!(
        "result: live_threads {} -> peak {peak} -> {}; /proc nethttp-* {} -> {}",
        before.live,
        after.live,
        opt(before.proc),
        opt(after.proc)
    );

    let ok = settled && got.len() == N && after == before;
    Ok(Row {
        expected: "threads back to start".into(),
        observed: format!(
            "{} -> peak {peak} -> {} (/proc {} -> {})",
            before.live,
            after.live,
            opt(before.proc),
            opt(after.proc)
        ),
        ok,
    })
}

// ---------------------------------------------------------------------------
// Tracing in the style of Go's httptrace output.

/// Records every `got_conn`, and prints the hooks that tell the reuse story
/// when verbose.
#[derive(Default)]
struct Trace {
    verbose: bool,
    /// Printed before each hook line, to tell concurrent requests apart.
    tag: String,
    got: Mutex<Vec<GotConnInfo>>,
}

impl Trace {
    fn verbose() -> Arc<Trace> {
        Arc::new(Trace {
            verbose: true,
            ..Trace::default()
        })
    }

    /// Verbose, with hook lines tagged `[req n]`.
    fn tagged(n: usize) -> Arc<Trace> {
        Arc::new(Trace {
            verbose: true,
            tag: format!("[req {n}] "),
            ..Trace::default()
        })
    }

    fn quiet() -> Arc<Trace> {
        Arc::new(Trace::default())
    }

    fn got_conns(&self) -> Vec<GotConnInfo> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Prints one hook line, indented and tagged, when verbose.
    fn say(&self, line: fmt::Arguments<'_>) {
        if self.verbose {
            println!("  {}{line}", self.tag);
        }
    }
}

impl ClientTrace for Trace {
    fn get_conn(&self, host_port: &str) {
        self.say(format_args!("get_conn: {host_port}"));
    }

    fn connect_done(&self, addr: SocketAddr, err: Option<&io::Error>) {
        match err {
            None => self.say(format_args!("connect_done: {addr}")),
            Some(e) => self.say(format_args!("connect_done: {addr} err={e}")),
        }
    }

    fn got_conn(&self, info: &GotConnInfo) {
        self.say(format_args!("got_conn: {}", ConnLine(info)));
        if let Ok(mut got) = self.got.lock() {
            got.push(info.clone());
        }
    }

    fn put_idle_conn(&self, err: Option<&Error>) {
        match err {
            None => self.say(format_args!("put_idle_conn: ok")),
            Some(e) => self.say(format_args!("put_idle_conn: err={e}")),
        }
    }
}

/// `conn=3 reused=true was_idle=true idle_time=1.2ms`
struct ConnLine<'a>(&'a GotConnInfo);

impl fmt::Display for ConnLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.0;
        write!(
            f,
            "conn={} reused={} was_idle={} idle_time=",
            g.conn_id, g.reused, g.was_idle
        )?;
        if g.idle_time.is_zero() {
            f.write_str("0s")
        } else {
            write!(f, "{:.1?}", g.idle_time)
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers.

/// One line of the summary table.
struct Row {
    expected: String,
    observed: String,
    ok: bool,
}

impl Row {
    fn fail(observed: &str) -> Row {
        Row {
            expected: "(see above)".into(),
            observed: observed.into(),
            ok: false,
        }
    }
}

fn print_summary(rows: &[(&str, Row)], took: Duration) {
    let w0 = width("experiment", rows.iter().map(|(n, _)| *n));
    let w1 = width("expected", rows.iter().map(|(_, r)| r.expected.as_str()));
    let w2 = width("observed", rows.iter().map(|(_, r)| r.observed.as_str()));
    println!();
    println!("== Summary ({}) ==", ms(took));
    println!(
        "{:w0$}  {:w1$}  {:w2$}  result",
        "experiment", "expected", "observed"
    );
    println!("{}", "-".repeat(w0 + w1 + w2 + 12));
    for (name, r) in rows {
        let verdict = if r.ok { "OK" } else { "FAIL" };
        println!(
            "{name:w0$}  {:w1$}  {:w2$}  {verdict}",
            r.expected, r.observed
        );
    }
    let failed = rows.iter().filter(|(_, r)| !r.ok).count();
    if failed == 0 {
        println!("all {} experiments behaved as expected", rows.len());
    } else {
        println!(
            "{failed} of {} experiments did NOT behave as expected",
            rows.len()
        );
    }
}

/// A summary column: as wide as its widest cell, or its header.
fn width<'a>(header: &str, cells: impl Iterator<Item = &'a str>) -> usize {
    cells.map(str::len).fold(header.len(), usize::max)
}

fn heading(title: &str, lines: &[&str]) {
    println!();
    println!("== {title} ==");
    for l in lines {
        println!("{l}");
    }
}

fn transport_and_client(b: nethttp::TransportBuilder) -> Result<(Transport, Client), Error> {
    let t = b.build();
    let client = Client::builder()
        .transport(t.clone())
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    Ok((t, client))
}

/// Experiments 1 and 2: `GET /` four times, one after the other, each with
/// a verbose trace; `done` reads or drops the response and prints its line.
/// Returns what `got_conn` reported and how many connections the server
/// accepted meanwhile.
fn four_gets(
    srv: &Server,
    client: &Client,
    mut done: impl FnMut(Response) -> Result<(), BoxError>,
) -> Result<(Vec<GotConnInfo>, usize), BoxError> {
    let accepted = srv.accepted();
    let mut got = Vec::new();
    for i in 1..=4 {
        println!("request {i}: GET /");
        let trace = Trace::verbose();
        done(client.get(srv.url("/")).trace(trace.clone()).send()?)?;
        got.extend(trace.got_conns());
    }
    Ok((got, srv.accepted() - accepted))
}

/// Closes the idle connections and waits (bounded) until every thread the
/// transport started has finished, so the next experiment starts clean.
fn settle(t: &Transport) -> bool {
    t.close_idle_connections();
    let ok = wait_until(SETTLE, || {
        let s = t.stats();
        s.threads == 0 && s.conns == 0 && s.dialing == 0
    });
    if !ok {
        println!("  !! transport did not settle: {}", t.stats().show());
    }
    ok
}

type Outcome = (Option<GotConnInfo>, Result<String, Error>);

/// Sends `GET url` as request `n` on another thread, reads the body to EOF,
/// and returns what `got_conn` reported with the outcome. Meanwhile waits
/// (bounded) until the request queues for a connection, prints the pool's
/// stats, and says whether it queued.
fn spawn_queued(
    t: &Transport,
    client: &Client,
    url: String,
    n: usize,
) -> (thread::JoinHandle<Outcome>, bool) {
    let client = client.clone();
    let waiter = thread::spawn(move || {
        let trace = Trace::tagged(n);
        let res = client
            .get(url)
            .trace(trace.clone())
            .send()
            .and_then(Response::text);
        (trace.got_conns().first().cloned(), res)
    });
    let queued = wait_until(Duration::from_secs(2), || t.stats().waiting == 1);
    println!("  {}", t.stats().show());
    (waiter, queued)
}

fn join(h: thread::JoinHandle<Outcome>) -> Result<Outcome, BoxError> {
    h.join().map_err(|_| "request thread panicked".into())
}

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

fn distinct_conns(got: &[GotConnInfo]) -> usize {
    let mut ids: Vec<u64> = got.iter().map(|g| g.conn_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// Names of this process's threads, from `/proc/self/task/*/comm` (Linux).
/// The main thread (task id = process id) is listed first, as `<name> (main)`.
fn proc_thread_names() -> Option<Vec<String>> {
    let dir = std::fs::read_dir("/proc/self/task").ok()?;
    let main_tid = std::process::id().to_string();
    let mut main = Vec::new();
    let mut names = Vec::new();
    for entry in dir.flatten() {
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue; // the thread ended while we looked
        };
        let name = comm.trim_end().to_string();
        if entry.file_name().to_string_lossy() == main_tid {
            main.push(format!("{name} (main)"));
        } else {
            names.push(name);
        }
    }
    names.sort();
    main.extend(names);
    Some(main)
}

/// nethttp's threads, counted twice: by `nethttp::live_threads()` and, where
/// `/proc` exists, by name.
#[derive(Clone, Copy, PartialEq)]
struct Threads {
    live: usize,
    proc: Option<usize>,
}

impl Threads {
    fn now() -> Threads {
        Threads {
            live: nethttp::live_threads(),
            proc: proc_nethttp_threads(),
        }
    }

    /// `n` more threads on both counts.
    fn plus(self, n: usize) -> Threads {
        Threads {
            live: self.live + n,
            proc: self.proc.map(|p| p + n),
        }
    }
}

/// Threads of this process whose name starts with `nethttp-`.
fn proc_nethttp_threads() -> Option<usize> {
    proc_thread_names().map(|n| n.iter().filter(|n| n.starts_with("nethttp-")).count())
}

fn join_names(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `seeds, srv-accept, srv-conn x2, watchdog`
fn summarize_names(names: &[&String]) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for n in names {
        match out.iter_mut().find(|(m, _)| m == *n) {
            Some((_, c)) => *c += 1,
            None => out.push(((*n).clone(), 1)),
        }
    }
    out.iter()
        .map(|(n, c)| {
            if *c == 1 {
                n.clone()
            } else {
                format!("{n} x{c}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0}ms", d.as_secs_f64() * 1000.0)
}

fn opt(n: Option<usize>) -> String {
    n.map_or_else(|| "n/a".into(), |n| n.to_string())
}

trait Show {
    fn show(&self) -> String;
}

impl Show for nethttp::PoolStats {
    fn show(&self) -> String {
        format!(
            "stats: conns={} idle={} in_use={} dialing={} waiting={} threads={} spare_threads={}",
            self.conns,
            self.idle,
            self.in_use,
            self.dialing,
            self.waiting,
            self.threads,
            self.spare_threads
        )
    }
}

// ---------------------------------------------------------------------------
// The local server: HTTP/1.1 keep-alive, a std thread per connection.
// Robust rather than complete: bounded heads, read and write timeouts,
// `GET /` (13 bytes) and `GET /big` (64 KiB); anything odd gets a 400 and
// the connection closes.

/// Request heads larger than this are refused.
const MAX_HEAD: u64 = 16 * 1024;
/// Request bodies (unused by the demo) larger than this are refused.
const MAX_BODY: u64 = 1 << 20;
/// A keep-alive connection with no request for this long is closed.
const SERVER_IDLE: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Server {
    fn start() -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        thread::Builder::new()
            .name("srv-accept".into())
            .spawn(move || accept_loop(listener, count))?;
        Ok(Server { addr, accepted })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn accept_loop(listener: TcpListener, accepted: Arc<AtomicUsize>) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                accepted.fetch_add(1, Ordering::SeqCst);
                let spawned = thread::Builder::new()
                    .name("srv-conn".into())
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        // A client that goes away mid-response is normal here
                        // (experiments drop responses unread).
                        let _ = serve(stream);
                    });
                if let Err(e) = spawned {
                    eprintln!("server: cannot spawn a connection thread: {e}");
                }
            }
            Err(e) => {
                eprintln!("server: accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

struct RequestHead {
    path: String,
    close: bool,
    content_length: u64,
}

fn serve(stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(SERVER_IDLE))?;
    stream.set_write_timeout(Some(SERVER_IDLE))?;
    stream.set_nodelay(true)?;
    let mut rd = BufReader::with_capacity(8 * 1024, stream.try_clone()?);
    let mut w = stream;
    loop {
        let head = match read_head(&mut rd) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(()), // the client closed between requests
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let msg = format!("{e}\n");
                write!(
                    w,
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                    msg.len()
                )?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        // Drain a request body, bounded.
        io::copy(&mut (&mut rd).take(head.content_length), &mut io::sink())?;
        let (status, body): (&str, &[u8]) = match head.path.as_str() {
            "/" => ("200 OK", HELLO),
            "/big" => ("200 OK", &BIG),
            _ => ("404 Not Found", b"not found\n"),
        };
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if head.close {
                "Connection: close\r\n"
            } else {
                ""
            }
        )
        .into_bytes();
        out.extend_from_slice(body);
        w.write_all(&out)?;
        if head.close {
            return Ok(());
        }
    }
}

/// Reads one request head, at most `MAX_HEAD` bytes. `Ok(None)` on a clean
/// EOF before the first byte; `InvalidData` for anything malformed.
fn read_head(rd: &mut BufReader<TcpStream>) -> io::Result<Option<RequestHead>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut budget = MAX_HEAD;
    let mut line = Vec::new();
    let mut read_line = |rd: &mut BufReader<TcpStream>, line: &mut Vec<u8>| -> io::Result<usize> {
        line.clear();
        let n = rd.take(budget).read_until(b'\n', line)?;
        budget -= n as u64;
        if n > 0 && !line.ends_with(b"\n") {
            return Err(if budget == 0 {
                bad("request head too large")
            } else {
                io::Error::new(io::ErrorKind::UnexpectedEof, "request head cut short")
            });
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        Ok(n)
    };

    if read_line(rd, &mut line)? == 0 {
        return Ok(None);
    }
    let request_line =
        String::from_utf8(line.clone()).map_err(|_| bad("request line is not UTF-8"))?;
    let mut parts = request_line.split(' ');
    let (Some(_method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    let mut close = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(bad("unsupported HTTP version")),
    };
    let mut content_length = 0;
    loop {
        if read_line(rd, &mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "request head cut short",
            ));
        }
        if line.is_empty() {
            break;
        }
        let text = std::str::from_utf8(&line).map_err(|_| bad("header is not UTF-8"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| bad("malformed header"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| bad("bad Content-Length"))?;
            if content_length > MAX_BODY {
                return Err(bad("request body too large"));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad(
                "chunked request bodies are not supported by this demo server",
            ));
        }
    }
    Ok(Some(RequestHead {
        path: path.to_string(),
        close,
        content_length,
    }))
}
