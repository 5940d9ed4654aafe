//! HTTPS over real sockets on 127.0.0.1, with certificates made at test
//! time: keep-alive reuse, idle connections that receive TLS 1.3 session
//! tickets and key updates, full-duplex transfers (an early answer during a
//! 100 MB upload, a 200 MB echo, an echo with hundreds of key updates),
//! early close, handshake errors, truncation rules, and interop with
//! `openssl s_server`.

mod support;

use std::{
    io::{self, Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{
    Body, Client, ErrorKind, GotConnInfo, Proxy, RequestBuilder, Transport, TransportBuilder,
    http::Version,
};
use rustls::ClientConfig;
use support::{
    LeakCheck, client, peer_available,
    tls::{
        Ca, Leaf, PatternReader, PeerEnd, TlsConn, TlsServer, TlsTrace, content_length, ok, path,
        pki, serve_keep_alive, verify_pattern, within, within_status,
    },
    wait_stats, wait_until,
};

const LIMIT: Duration = Duration::from_secs(10);
/// Bound on a whole ordinary test.
const TEST_LIMIT: Duration = Duration::from_secs(60);
/// Bound on a whole heavy transfer test.
const HEAVY_LIMIT: Duration = Duration::from_secs(120);

const MB: u64 = 1 << 20;

fn transport_with(config: Arc<ClientConfig>) -> Transport {
    Transport::builder()
        .tls_config(config)
        .proxy(Proxy::none())
        .build()
}

/// A transport builder that trusts the test CA and uses no proxy.
fn tls_builder() -> TransportBuilder {
    Transport::builder()
        .tls_config(pki().0.client_config())
        .proxy(Proxy::none())
}

/// A transport that trusts the test CA.
fn transport() -> Transport {
    tls_builder().build()
}

/// Waits until the transport has no connection and no thread left.
#[track_caller]
fn assert_all_closed(t: &Transport) {
    wait_stats(t, LIMIT, |s| {
        s.threads == 0 && s.conns == 0 && s.dialing == 0
    });
}

/// A server that reads one request head on each connection, then hands
/// the connection to `script`.
fn on_request_head(script: impl Fn(TlsConn) + Send + Sync + 'static) -> TlsServer {
    TlsServer::start(pki().1.server_config(), move |mut c| {
        if c.read_head().is_some() {
            script(c);
        }
    })
}

/// A keep-alive server answering every request with `body`.
fn fixed_server(config: rustls::ServerConfig, body: &'static [u8]) -> TlsServer {
    TlsServer::start(config, move |c| serve_keep_alive(c, |c, _, _| ok(c, body)))
}

/// Sends `req` and reads the body as text; panics naming `what` if either
/// fails.
#[track_caller]
fn fetch_text(req: RequestBuilder, what: &str) -> String {
    req.send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// A GET of `url` whose body must be "after" (the answer to a request
/// after a transfer); returns how it got its connection.
#[track_caller]
fn get_after(c: &Client, url: String) -> GotConnInfo {
    let trace = TlsTrace::new();
    assert_eq!(
        fetch_text(c.get(url).trace(trace.clone()), "after"),
        "after"
    );
    trace.rec.conns()[0].clone()
}

/// Waits until `trace` has seen the whole request written.
#[track_caller]
fn assert_request_written(trace: &TlsTrace) {
    assert!(
        wait_until(LIMIT, || trace
            .rec
            .events()
            .iter()
            .any(|e| e == "wrote_request ok")),
        "{:?}",
        trace.rec.events()
    );
}

// ---------------------------------------------------------------------
// 1. Keep-alive reuse
// ---------------------------------------------------------------------

#[test]
fn keep_alive_reuses_one_tls_connection_for_100_requests() {
    within(TEST_LIMIT, "keep-alive reuse", || {
        let srv = fixed_server(pki().1.server_config(), b"hello over tls");
        let t = transport();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let trace = TlsTrace::new();
        for i in 0..100 {
            let body = fetch_text(
                c.get(srv.url(&format!("/n/{i}"))).trace(trace.clone()),
                "request",
            );
            assert_eq!(body, "hello over tls");
        }
        let conns = trace.rec.conns();
        assert_eq!(conns.len(), 100, "{:?}", trace.rec.events());
        assert!(!conns[0].reused, "first request used a fresh connection");
        let reused = conns.iter().filter(|c| c.reused).count();
        assert_eq!(reused, 99, "requests 2..100 reuse the connection");
        assert!(
            conns.iter().all(|c| c.conn_id == conns[0].conn_id),
            "one connection for all"
        );
        assert_eq!(trace.starts(), 1, "tls_handshake_start fires once");
        assert_eq!(
            trace.dones(),
            vec![None],
            "tls_handshake_done fires once, ok"
        );
        let st = wait_stats(&t, LIMIT, |s| {
            s.idle == 1 && s.dialing == 0 && s.threads <= 2
        });
        assert_eq!(st.conns, 1, "{st:?}");
        assert_eq!(st.threads, 2, "a reader and a writer thread: {st:?}");
        assert_eq!(srv.accepted(), 1, "the server saw one TCP connection");
    });
}

#[test]
fn tls12_keep_alive_reuse() {
    within(TEST_LIMIT, "tls 1.2 reuse", || {
        let config = pki().1.server_config_versions(&[&rustls::version::TLS12]);
        let srv = TlsServer::start(config, |c| {
            assert_eq!(
                c.tls.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_2)
            );
            serve_keep_alive(c, |c, _, _| ok(c, b"twelve"));
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let trace = TlsTrace::new();
        for _ in 0..5 {
            let body = fetch_text(c.get(srv.url("/")).trace(trace.clone()), "request");
            assert_eq!(body, "twelve");
        }
        let conns = trace.rec.conns();
        assert_eq!(conns.iter().filter(|c| c.reused).count(), 4);
        assert_eq!(trace.starts(), 1);
        assert_eq!(srv.accepted(), 1);
    });
}

// ---------------------------------------------------------------------
// 2. Idle connections and records without plaintext
// ---------------------------------------------------------------------

/// Connects with a bare rustls client, sends one request and reads the
/// answer; returns how many TLS 1.3 session tickets arrived.
fn tickets_received(srv: &TlsServer, ca: &Ca) -> u32 {
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(ca.client_config(), name).expect("client conn");
    let mut sock = TcpStream::connect(srv.addr).expect("connect");
    sock.set_read_timeout(Some(LIMIT)).expect("timeout");
    let mut s = rustls::Stream::new(&mut conn, &mut sock);
    s.write_all(b"GET /probe HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"tick") {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "probe: early EOF");
        got.extend_from_slice(&buf[..n]);
    }
    conn.send_close_notify();
    let _ = conn.write_tls(&mut sock);
    conn.tls13_tickets_received()
}

/// Also: an idle TLS connection quiet for over a second gives its read
/// buffer back (the reader's idle wait) and is still reused.
#[test]
fn idle_connection_that_received_session_tickets_stays_pooled() {
    within(TEST_LIMIT, "session tickets", || {
        let (ca, leaf) = pki();
        let config = leaf.server_config();
        assert!(
            config.send_tls13_tickets > 0,
            "the server must send TLS 1.3 tickets"
        );
        let want_tickets = config.send_tls13_tickets;
        let srv = fixed_server(config, b"tick");
        // The server really sends them (seen by a bare rustls client).
        let probe = tickets_received(&srv, ca);
        eprintln!("session tickets: the server sends {probe} per handshake");
        assert_eq!(probe as usize, want_tickets);

        let t = transport();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let trace = TlsTrace::new();
        let get = || fetch_text(c.get(srv.url("/")).trace(trace.clone()), "request");
        assert_eq!(get(), "tick");
        wait_stats(&t, LIMIT, |s| s.idle == 1);
        // Tickets that had not been read yet arrive on the idle socket;
        // past one second the reader gives its buffer back.
        thread::sleep(Duration::from_millis(1_300));
        let st = t.stats();
        assert_eq!((st.idle, st.conns, st.threads), (1, 1, 2), "{st:?}");
        assert_eq!(get(), "tick");
        let conns = trace.rec.conns();
        assert_eq!(conns.len(), 2);
        assert!(conns[1].reused && conns[1].was_idle, "{conns:?}");
        assert_eq!(conns[0].conn_id, conns[1].conn_id);
        assert_eq!(trace.starts(), 1);
        assert_eq!(srv.accepted(), 2, "the probe and one nethttp connection");
    });
}

/// A connection dialled for a request that another connection served goes
/// to the idle list straight from the handshake, so its session tickets
/// arrive while it is idle and was never used. It must stay and be reused.
#[test]
fn fresh_idle_connection_survives_its_session_tickets() {
    within(TEST_LIMIT, "fresh idle connection", || {
        let slow_seen = Arc::new(AtomicUsize::new(0));
        let seen = slow_seen.clone();
        let srv = TlsServer::start_raw(pki().1.server_config(), move |a| {
            if a.index >= 1 {
                // The second dial's handshake finishes well after the
                // first connection has served its waiter.
                thread::sleep(Duration::from_millis(700));
            }
            let Ok(c) = a.handshake() else { return };
            let seen = seen.clone();
            serve_keep_alive(c, move |c, head, _| {
                if path(head) == "/slow" {
                    seen.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(300));
                }
                ok(c, b"fresh");
            });
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let trace = TlsTrace::new();
        let fetch = |p: &str| {
            let (c, tr, url) = (c.clone(), trace.clone(), srv.url(p));
            thread::spawn(move || fetch_text(c.get(url).trace(tr), "request"))
        };
        let a = fetch("/slow");
        assert!(wait_until(LIMIT, || slow_seen.load(Ordering::SeqCst) == 1));
        // Finds the only connection busy: starts a dial and waits; the
        // first connection comes free first and serves it.
        let b = fetch("/fast");
        assert_eq!(a.join().expect("a"), "fresh");
        assert_eq!(b.join().expect("b"), "fresh");
        let conns = trace.rec.conns();
        assert_eq!(conns.len(), 2);
        assert_eq!(
            conns[0].conn_id, conns[1].conn_id,
            "b was served by a's conn"
        );

        // The late dial lands in the idle list; its tickets follow.
        wait_stats(&t, LIMIT, |s| s.idle == 2 && s.dialing == 0);
        thread::sleep(Duration::from_millis(250));
        let st = t.stats();
        assert_eq!(
            (st.idle, st.conns, st.threads),
            (2, 2, 4),
            "both connections still pooled: {st:?}"
        );
        assert_eq!(trace.starts(), 2);
        assert_eq!(trace.dones(), vec![None, None]);

        // Take both idle connections at once: no new dial.
        let trace2 = TlsTrace::new();
        let r1 = c
            .get(srv.url("/"))
            .trace(trace2.clone())
            .send()
            .expect("r1");
        let r2 = c
            .get(srv.url("/"))
            .trace(trace2.clone())
            .send()
            .expect("r2");
        let conns2 = trace2.rec.conns();
        assert_eq!(conns2.len(), 2);
        assert!(conns2.iter().all(|c| c.was_idle), "{conns2:?}");
        // `reused` means it served a request before: the late dial never
        // did (Go reports true for any pooled connection; its doc says
        // "previously used for another HTTP request", as ours does).
        for c in &conns2 {
            assert_eq!(c.reused, c.conn_id == conns[0].conn_id, "{conns2:?}");
        }
        assert_ne!(conns2[0].conn_id, conns2[1].conn_id);
        assert!(conns2.iter().any(|c| c.conn_id == conns[0].conn_id));
        assert_eq!(trace2.starts(), 0, "no new handshake");
        assert_eq!(r1.text().expect("body"), "fresh");
        assert_eq!(r2.text().expect("body"), "fresh");
        assert_eq!(srv.accepted(), 2);
    });
}

/// Key updates sent to an idle connection carry no plaintext either: the
/// connection stays pooled, and its next request (preceded by the
/// client's own KeyUpdate) works.
#[test]
fn idle_connection_survives_key_updates() {
    within(TEST_LIMIT, "idle key update", || {
        let sent = Arc::new(AtomicBool::new(false));
        let s2 = sent.clone();
        let srv = TlsServer::start(pki().1.server_config(), move |mut c| {
            let mut n = 0;
            while let Some(_req) = c.read_request() {
                n += 1;
                ok(&mut c, format!("reply {n}").as_bytes());
                if n == 1 {
                    thread::sleep(Duration::from_millis(50));
                    for _ in 0..3 {
                        c.key_update().expect("key update");
                    }
                    c.flush().expect("flush");
                    s2.store(true, Ordering::SeqCst);
                }
            }
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let trace = TlsTrace::new();
        let get = || fetch_text(c.get(srv.url("/")).trace(trace.clone()), "request");
        assert_eq!(get(), "reply 1");
        assert!(wait_until(LIMIT, || sent.load(Ordering::SeqCst)));
        thread::sleep(Duration::from_millis(200));
        let st = t.stats();
        assert_eq!((st.idle, st.conns, st.threads), (1, 1, 2), "{st:?}");
        assert_eq!(get(), "reply 2");
        assert_eq!(get(), "reply 3");
        let conns = trace.rec.conns();
        assert!(conns[1..].iter().all(|c| c.reused), "{conns:?}");
        assert!(conns.iter().all(|c| c.conn_id == conns[0].conn_id));
        assert_eq!(srv.accepted(), 1);
    });
}

// ---------------------------------------------------------------------
// 3. Full duplex
// ---------------------------------------------------------------------

/// Echoes `n` bytes: read a chunk, write it back; with `key_every`, asks
/// for a key update after every that many bytes. Returns the bytes echoed
/// and the key updates sent.
fn echo(c: &mut TlsConn, n: u64, key_every: Option<u64>) -> io::Result<(u64, usize)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    let mut since = 0u64;
    while done < n {
        let want = (n - done).min(buf.len() as u64) as usize;
        let got = c.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("client stopped after {done} of {n} bytes"),
            ));
        }
        c.write_all(&buf[..got])?;
        done += got as u64;
        since += got as u64;
        if let Some(every) = key_every {
            if since >= every && done < n {
                since = 0;
                c.key_update()?;
            }
        }
    }
    c.flush()?;
    Ok((done, c.key_updates))
}

/// An echo server: reads a request head with `Content-Length: N`, sends a
/// response head with the same length at once, then echoes the body as it
/// comes. Reports (bytes, key updates, server time) on `report`; then
/// serves further requests with `after`.
fn echo_server(key_every: Option<u64>) -> (TlsServer, mpsc::Receiver<io::Result<(u64, usize)>>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let srv = TlsServer::start(pki().1.server_config(), move |mut c| {
        assert_eq!(
            c.tls.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        let Some(head) = c.read_head() else { return };
        let n = content_length(&head).unwrap_or(0);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
        let res = c
            .write_all(head.as_bytes())
            .and_then(|()| echo(&mut c, n, key_every));
        let _ = tx.lock().unwrap().send(res);
        serve_keep_alive(c, |c, _, _| ok(c, b"after"));
    });
    (srv, rx)
}

/// Runs one echo of `n` bytes through a new transport against an
/// [`echo_server`] with `key_every`, comparing every byte, then checks the
/// connection with [`after_echo`]. Returns the elapsed time and the key
/// updates the server sent.
fn run_echo(what: &'static str, n: u64, key_every: Option<u64>) -> (Duration, usize) {
    let (srv, report) = echo_server(key_every);
    let t = transport();
    let _leak = LeakCheck::new(&t);
    let produced = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let (p, r) = (produced.clone(), received.clone());
    let c = client(&t);
    let url = srv.url("/echo");
    let start = Instant::now();
    let got = within_status(
        HEAVY_LIMIT,
        what,
        move || {
            format!(
                "client wrote {} and read {} of {n} bytes",
                produced.load(Ordering::SeqCst),
                received.load(Ordering::SeqCst)
            )
        },
        move || {
            let body = Body::from_reader(PatternReader::new(n, p), Some(n));
            let mut resp = c.post(url).body(body).send().expect("echo request");
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.content_length(), Some(n));
            verify_pattern(&mut resp, &r)
        },
    );
    let elapsed = start.elapsed();
    assert_eq!(got, Ok(n), "{what}: echoed bytes");
    let (bytes, updates) = report
        .recv_timeout(LIMIT)
        .expect("server report")
        .expect("server echo");
    assert_eq!(bytes, n, "{what}: bytes the server echoed");
    after_echo(&t, &srv);
    (elapsed, updates)
}

/// A server that answers an upload before reading its body: `answer`
/// writes the answer (and whatever else it likes) while the upload waits.
/// Then it reads no more until the test says go on the returned sender:
/// the client's upload is stuck in a full socket meanwhile, which is the
/// point. Then it reads the rest of the upload, reports (bytes read, key
/// updates sent) on the returned receiver and answers further requests
/// with "after".
fn answers_before_reading(
    what: &'static str,
    answer: impl Fn(&mut TlsConn) + Send + Sync + 'static,
) -> (TlsServer, mpsc::Sender<()>, mpsc::Receiver<(u64, usize)>) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(Some(go_rx));
    let (got_tx, got_rx) = mpsc::channel();
    let got_tx = Mutex::new(got_tx);
    let srv = TlsServer::start(pki().1.server_config(), move |mut c| {
        let Some(head) = c.read_head() else { return };
        let n = content_length(&head).unwrap_or(0);
        answer(&mut c);
        let go = go_rx.lock().unwrap().take();
        if let Some(go) = go {
            let _ = go.recv_timeout(HEAVY_LIMIT);
        }
        let start = Instant::now();
        let got = c.discard(n);
        eprintln!(
            "{what}: server read the rest of the upload in {:?}",
            start.elapsed()
        );
        let _ = got_tx.lock().unwrap().send((got, c.key_updates));
        serve_keep_alive(c, |c, _, _| ok(c, b"after"));
    });
    (srv, go_tx, got_rx)
}

#[test]
fn server_answers_early_while_a_100mb_upload_is_being_written() {
    const UPLOAD: u64 = 100 * MB;
    let (srv, go_tx, got_rx) = answers_before_reading("early answer", |c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly");
    });
    let t = transport();
    let _leak = LeakCheck::new(&t);
    let c = client(&t);
    let produced = Arc::new(AtomicU64::new(0));
    let p = produced.clone();
    within_status(
        HEAVY_LIMIT,
        "early answer",
        move || format!("client produced {} bytes", p.load(Ordering::SeqCst)),
        move || {
            let trace = TlsTrace::new();
            let start = Instant::now();
            let body =
                Body::from_reader(PatternReader::new(UPLOAD, produced.clone()), Some(UPLOAD));
            let resp = c
                .post(srv.url("/upload"))
                .body(body)
                .trace(trace.clone())
                .send()
                .expect("early answer");
            let at_answer = produced.load(Ordering::SeqCst);
            let t_answer = start.elapsed();
            assert_eq!(resp.status(), 200);
            assert!(
                at_answer < UPLOAD,
                "the answer came only after the whole upload ({at_answer} bytes)"
            );
            go_tx.send(()).expect("server gone");
            let (got, _) = got_rx
                .recv_timeout(HEAVY_LIMIT)
                .expect("server never finished reading the upload");
            let t_upload = start.elapsed();
            assert_eq!(got, UPLOAD, "server received the whole upload");
            eprintln!(
                "early answer: upload {} MB; answer after {t_answer:?} with {:.1} MB \
                 produced; upload done after {t_upload:?}",
                UPLOAD / MB,
                at_answer as f64 / MB as f64
            );
            assert_request_written(&trace);
            assert_eq!(resp.text().expect("body"), "early");
            // Upload written and answer read: the connection is reusable.
            let after = get_after(&c, srv.url("/after"));
            assert!(after.reused, "{after:?}");
            assert_eq!(trace.rec.conns()[0].conn_id, after.conn_id);
        },
    );
}

#[test]
fn echo_200mb_in_both_directions_at_once() {
    const N: u64 = 200 * MB;
    let (elapsed, _) = run_echo("200 MB echo", N, None);
    eprintln!(
        "full duplex echo: {} MB each way in {elapsed:?} ({:.0} MB/s each way)",
        N / MB,
        N as f64 / MB as f64 / elapsed.as_secs_f64()
    );
}

#[test]
fn echo_with_hundreds_of_key_updates_mid_transfer() {
    const N: u64 = 50 * MB;
    const EVERY: u64 = 32 * 1024;
    let (elapsed, updates) = run_echo("key update echo", N, Some(EVERY));
    assert!(updates >= 1000, "only {updates} key updates");
    eprintln!(
        "key update echo: {} MB each way, {updates} server KeyUpdates (update_requested), \
         {elapsed:?}",
        N / MB
    );
}

/// After an echo: the connection still works (its keys agree with the
/// server's after every update). Reuse is reported, not required: it
/// depends on the writer's verdict arriving within 50 ms of the last
/// response byte.
fn after_echo(t: &Transport, srv: &TlsServer) {
    let c = client(t);
    let url = srv.url("/after");
    within(LIMIT, "request after echo", move || {
        let conn = get_after(&c, url);
        eprintln!(
            "  request after the echo reused the connection: {}",
            conn.reused
        );
    });
}

// ---------------------------------------------------------------------
// 4. Early drop
// ---------------------------------------------------------------------

#[test]
fn dropping_a_tls_body_early_closes_the_connection() {
    within(TEST_LIMIT, "early drop", || {
        const SIZE: usize = 10 * 1024 * 1024;
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let srv = on_request_head(move |mut c| {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n");
            let chunk = vec![b'z'; 64 * 1024];
            let mut sent = 0;
            let mut res = c.write_all(head.as_bytes());
            while res.is_ok() && sent < SIZE {
                res = c.write_all(&chunk);
                sent += chunk.len();
            }
            let closed = res.is_err() || c.wait_client_close(LIMIT);
            let _ = tx.lock().unwrap().send(closed);
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let mut resp = c.get(srv.url("/big")).send().expect("request");
        let mut ten = [0u8; 10];
        resp.read_exact(&mut ten).expect("first bytes");
        assert_eq!(&ten, b"zzzzzzzzzz");
        assert_eq!(t.stats().threads, 2);
        drop(resp);
        let st = wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
        assert_eq!(st.idle, 0);
        assert_eq!(
            rx.recv_timeout(LIMIT),
            Ok(true),
            "the server saw the connection close"
        );
    });
}

// ---------------------------------------------------------------------
// 5. Handshake errors
// ---------------------------------------------------------------------

/// The trace saw one handshake, which failed with `kind`.
#[track_caller]
fn assert_handshake_failed(what: &str, trace: &TlsTrace, kind: ErrorKind) {
    assert_eq!(trace.starts(), 1, "{what}: tls_handshake_start");
    let dones = trace.dones();
    assert_eq!(dones.len(), 1, "{what}: tls_handshake_done: {dones:?}");
    let (k, _) = dones[0]
        .clone()
        .unwrap_or_else(|| panic!("{what}: tls_handshake_done received the error"));
    assert_eq!(k, kind, "{what}: {dones:?}");
}

/// One GET of `url` through `t` that must fail in the handshake with kind
/// `Tls` (`tls_handshake_done` gets the error too) and leave nothing
/// behind. `what` names the case. Returns the error's text.
#[track_caller]
fn assert_tls_error(what: &str, t: &Transport, url: String) -> String {
    let trace = TlsTrace::new();
    let err = client(t)
        .get(url)
        .trace(trace.clone())
        .send()
        .expect_err(&format!("{what}: the request must fail"));
    let msg = err.to_string();
    eprintln!("{what}: {msg}");
    assert_eq!(err.kind(), ErrorKind::Tls, "{what}: {msg}");
    assert_handshake_failed(what, &trace, ErrorKind::Tls);
    assert_all_closed(t);
    msg
}

/// A server with `leaf`, which a client that trusts the test CA must
/// refuse as [`assert_tls_error`] says. Returns the error's text.
#[track_caller]
fn assert_leaf_refused(what: &str, leaf: &Leaf) -> String {
    let srv = fixed_server(leaf.server_config(), b"x");
    let t = transport();
    let _leak = LeakCheck::new(&t);
    assert_tls_error(what, &t, srv.url("/"))
}

#[test]
fn untrusted_ca_is_a_tls_error() {
    within(TEST_LIMIT, "untrusted ca", || {
        let srv = fixed_server(pki().1.server_config(), b"x");
        for (what, t, url) in [
            // The crate's default configuration: webpki roots, not our CA.
            (
                "untrusted CA (default roots)",
                Transport::builder().proxy(Proxy::none()).build(),
                srv.url("/"),
            ),
            // A configuration that trusts another CA.
            (
                "untrusted CA (other root)",
                transport_with(Ca::new("some other CA").client_config()),
                srv.url_localhost("/"),
            ),
        ] {
            let _leak = LeakCheck::new(&t);
            let msg = assert_tls_error(what, &t, url);
            assert!(msg.to_lowercase().contains("certificate"), "{what}: {msg}");
        }
    });
}

#[test]
fn wrong_name_is_a_tls_error() {
    within(TEST_LIMIT, "wrong name", || {
        let leaf = pki().0.leaf(&["other.example"], false);
        let msg = assert_leaf_refused("wrong name", &leaf);
        assert!(
            msg.to_lowercase().contains("certificate"),
            "wrong name: {msg}"
        );
    });
}

#[test]
fn expired_certificate_is_a_tls_error() {
    within(TEST_LIMIT, "expired", || {
        let leaf = pki().0.leaf(&["localhost", "127.0.0.1"], true);
        let msg = assert_leaf_refused("expired", &leaf);
        assert!(msg.to_lowercase().contains("expired"), "expired: {msg}");
    });
}

#[test]
fn silent_server_hits_the_tls_handshake_timeout() {
    within(TEST_LIMIT, "handshake timeout", || {
        // Accepts TCP, reads the ClientHello, never answers.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().expect("accept");
            sock.set_read_timeout(Some(LIMIT)).expect("timeout");
            let mut sink = Vec::new();
            // Ends when the client gives up and closes.
            let _ = sock.read_to_end(&mut sink);
            !sink.is_empty()
        });
        let t = tls_builder()
            .tls_handshake_timeout(Some(Duration::from_millis(300)))
            .build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let trace = TlsTrace::new();
        let start = Instant::now();
        let err = c
            .get(format!("https://{addr}/"))
            .trace(trace.clone())
            .send()
            .expect_err("must time out");
        let elapsed = start.elapsed();
        eprintln!("handshake timeout: {err} after {elapsed:?}");
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.is_timeout());
        assert!(
            elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
        assert_handshake_failed("handshake timeout", &trace, ErrorKind::Timeout);
        assert_all_closed(&t);
        assert!(
            server.join().expect("server"),
            "the server saw a ClientHello"
        );
    });
}

#[test]
fn danger_accept_invalid_certs_accepts_untrusted_expired_and_misnamed() {
    within(TEST_LIMIT, "danger accept", || {
        let (ca, leaf) = pki();
        let expired = ca.leaf(&["localhost"], true);
        let misnamed = ca.leaf(&["other.example"], false);
        let t = Transport::builder()
            .danger_accept_invalid_certs(true)
            .proxy(Proxy::none())
            .build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        for (what, cert) in [
            ("untrusted", leaf),
            ("expired", &expired),
            ("misnamed", &misnamed),
        ] {
            let srv = fixed_server(cert.server_config(), b"accepted");
            let trace = TlsTrace::new();
            let body = fetch_text(c.get(srv.url("/")).trace(trace.clone()), what);
            assert_eq!(body, "accepted", "{what}");
            assert_eq!(trace.dones(), vec![None], "{what}");
            t.close_idle_connections();
            assert_all_closed(&t);
        }
    });
}

// ---------------------------------------------------------------------
// 6. Truncation rules
// ---------------------------------------------------------------------

/// How the server ends its side after the bytes.
#[derive(Clone, Copy, Debug)]
enum End {
    /// TCP FIN with no `close_notify`.
    Fin,
    /// `close_notify`, then FIN.
    CloseNotify,
}

impl End {
    /// Ends the server's side of `c` this way.
    fn end(self, c: TlsConn) {
        match self {
            End::Fin => c.fin(),
            End::CloseNotify => c.close_notify(),
        }
    }
}

/// A server that answers one request with `bytes` and ends with `end`.
fn truncating_server(bytes: Vec<u8>, end: End) -> TlsServer {
    on_request_head(move |mut c| {
        let _ = c.write_all(&bytes);
        end.end(c);
    })
}

/// For each [`End`]: a [`truncating_server`] answers with `bytes`, `check`
/// gets the end and the result of reading the body with `Read`, and then
/// the connection must be gone.
fn read_with_each_end(bytes: &[u8], check: impl Fn(End, io::Result<Vec<u8>>)) {
    let t = transport();
    let _leak = LeakCheck::new(&t);
    for end in [End::Fin, End::CloseNotify] {
        let srv = truncating_server(bytes.to_vec(), end);
        check(end, read_body(&t, srv.url("/")));
        assert_all_closed(&t);
    }
}

/// Reads the body with `Read`; returns the bytes or the error.
fn read_body(t: &Transport, url: String) -> io::Result<Vec<u8>> {
    let c = client(t);
    let mut resp = c.get(url).send().expect("response head");
    let mut body = Vec::new();
    resp.read_to_end(&mut body).map(|_| body)
}

#[track_caller]
fn assert_truncated(res: io::Result<Vec<u8>>, what: &str) {
    let err = match res {
        Ok(b) => panic!("{what}: the body ended cleanly with {} bytes", b.len()),
        Err(e) => e,
    };
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{what}: {err}");
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<nethttp::Error>())
        .unwrap_or_else(|| panic!("{what}: no nethttp::Error inside: {err:?}"));
    assert_eq!(inner.kind(), ErrorKind::BodyRead, "{what}: {inner}");
}

#[test]
fn length_body_cut_short_is_unexpected_eof_with_or_without_close_notify() {
    within(TEST_LIMIT, "truncated length body", || {
        let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
        bytes.extend_from_slice(&[b'a'; 50]);
        read_with_each_end(&bytes, |end, res| {
            assert_truncated(res, &format!("length, {end:?}"));
        });
    });
}

#[test]
fn chunked_body_cut_short_is_unexpected_eof_with_or_without_close_notify() {
    within(TEST_LIMIT, "truncated chunked body", || {
        let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
        read_with_each_end(bytes, |end, res| {
            assert_truncated(res, &format!("chunked, {end:?}"));
        });
    });
}

#[test]
fn close_delimited_body_ends_cleanly_with_or_without_close_notify() {
    within(TEST_LIMIT, "close-delimited body", || {
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 97) as u8 + b' ').collect();
        let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        bytes.extend_from_slice(&payload);
        read_with_each_end(&bytes, |end, res| {
            let body = res.unwrap_or_else(|e| panic!("close-delimited, {end:?}: {e}"));
            assert!(body == payload, "close-delimited, {end:?}: body differs");
        });
    });
}

// ---------------------------------------------------------------------
// 7. Interop: openssl s_server
// ---------------------------------------------------------------------

/// An `openssl s_server -www` child, killed (and its files removed) on drop.
struct SServer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `openssl s_server -www` with the test leaf and waits (bounded)
/// until it accepts.
fn start_s_server(extra: &[&str]) -> SServer {
    static N: AtomicUsize = AtomicUsize::new(0);
    let leaf = &pki().1;
    let dir = std::env::temp_dir().join(format!(
        "nethttp-tls-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &leaf.cert_pem).expect("cert.pem");
    std::fs::write(&key, &leaf.key_pem).expect("key.pem");
    for _attempt in 0..3 {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let mut child = Command::new("openssl")
            .arg("s_server")
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .arg("-www")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn openssl s_server");
        // It prints ACCEPT once it listens.
        let mut out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            let mut told = false;
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                if !told && seen.windows(6).any(|w| w == b"ACCEPT") {
                    told = true;
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(LIMIT).is_ok() {
            return SServer { child, dir, port };
        }
        // Port taken in the meantime, or it died: try another port.
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    panic!("openssl s_server never started listening");
}

fn s_server_get(extra: &[&str], want_version: &str) {
    if !peer_available(
        "openssl",
        &["version"],
        "openssl",
        "the openssl s_server tests",
    ) {
        return;
    }
    let s = start_s_server(extra);
    let t = transport();
    let _leak = LeakCheck::new(&t);
    let c = client(&t);
    let trace = TlsTrace::new();
    let resp = c
        .get(format!("https://localhost:{}/", s.port))
        .trace(trace.clone())
        .send()
        .expect("GET from openssl s_server");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), Version::HTTP_10);
    let body = resp.text().expect("body");
    assert!(!body.is_empty());
    assert!(body.contains(want_version), "{body}");
    assert_eq!(trace.dones(), vec![None]);
    eprintln!(
        "openssl s_server {extra:?}: 200, {} body bytes, mentions {want_version}",
        body.len()
    );
    // HTTP/1.0 without keep-alive: never pooled.
    assert_all_closed(&t);
}

#[test]
fn interop_with_openssl_s_server_tls13() {
    within(TEST_LIMIT, "openssl s_server", || {
        s_server_get(&[], "TLSv1.3");
    });
}

#[test]
fn interop_with_openssl_s_server_tls12() {
    within(TEST_LIMIT, "openssl s_server tls1.2", || {
        s_server_get(&["-tls1_2"], "TLSv1.2");
    });
}

// ---------------------------------------------------------------------
// More: records after close_notify, corrupted records, key updates while
// the writer is blocked
// ---------------------------------------------------------------------

/// RFC 8446 §6.1: "Any data received after a closure alert has been
/// received MUST be ignored." A server that sends its answer,
/// `close_notify` and then more bytes in one write: the body ends cleanly
/// after `close_notify`, and the connection's threads exit.
#[test]
fn bytes_after_close_notify_are_ignored() {
    within(Duration::from_secs(10), "bytes after close_notify", || {
        let srv = on_request_head(|mut c| {
            let mut wire = Vec::new();
            let _ = c
                .tls
                .writer()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello");
            c.tls.send_close_notify();
            while c.tls.wants_write() {
                let _ = c.tls.write_tls(&mut wire);
            }
            // Trailing bytes, well past rustls' 4 KiB read_tls step.
            wire.extend_from_slice(&[0x17; 8 * 1024]);
            let _ = c.sock.write_all(&wire);
            c.fin();
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        let body = read_body(&t, srv.url("/")).expect("body ends at close_notify");
        assert_eq!(body, b"hello");
        assert_all_closed(&t);
    });
}

/// An application-data record header and 64 bytes of noise: a record that
/// fails to decrypt.
fn corrupt_record() -> Vec<u8> {
    let mut junk = vec![0x17, 0x03, 0x03, 0x00, 0x40];
    junk.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    junk
}

/// Encrypts `plain` into records without sending them.
fn records(c: &mut TlsConn, plain: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    c.tls.writer().write_all(plain).expect("encrypt");
    while c.tls.wants_write() {
        c.tls.write_tls(&mut wire).expect("records");
    }
    wire
}

/// A TCP FIN in the middle of a TLS record loses data for sure, even on a
/// close-delimited body: Go's crypto/tls accepts a FIN without
/// `close_notify` "if and only if at the record boundary" and reports
/// `io.ErrUnexpectedEOF` otherwise. The body must not end cleanly.
#[test]
fn close_delimited_body_cut_inside_a_record_is_an_error() {
    within(TEST_LIMIT, "fin inside a record", || {
        let srv = on_request_head(|mut c| {
            let mut plain = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
            plain.extend_from_slice(&[b'r'; 40_000]);
            let wire = records(&mut c, &plain);
            // All but the last 100 bytes of the last record.
            let _ = c.sock.write_all(&wire[..wire.len() - 100]);
            c.fin();
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        match read_body(&t, srv.url("/")) {
            Ok(b) => panic!(
                "a FIN inside a TLS record must fail the read, but the body ended cleanly \
                 with {} of 40000 bytes (the rest was lost)",
                b.len()
            ),
            Err(e) => {
                eprintln!("fin inside a record: {e}");
                assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
            }
        }
        assert_all_closed(&t);
    });
}

/// A record that fails to decrypt where the response head should be:
/// kind `Tls`, connection closed.
#[test]
fn corrupt_record_instead_of_a_response_is_a_tls_error() {
    within(TEST_LIMIT, "corrupt record in head", || {
        let srv = on_request_head(|mut c| {
            let _ = c.sock.write_all(&corrupt_record());
            c.fin();
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let err = c.get(srv.url("/")).send().expect_err("must fail");
        eprintln!("corrupt record instead of a response: {err}");
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        assert_all_closed(&t);
    });
}

/// A record that fails to decrypt in the middle of a body: the read
/// fails, the connection closes, its threads exit.
#[test]
fn corrupt_record_inside_a_body_fails_the_read() {
    within(TEST_LIMIT, "corrupt record in body", || {
        let srv = on_request_head(|mut c| {
            let mut plain = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
            plain.extend_from_slice(&[b'b'; 30_000]);
            let mut wire = records(&mut c, &plain);
            wire.extend_from_slice(&corrupt_record());
            let _ = c.sock.write_all(&wire);
            let _ = c.wait_client_close(LIMIT);
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        let Err(err) = read_body(&t, srv.url("/")) else {
            panic!("the corrupt record must fail the read");
        };
        eprintln!("corrupt record inside a body: {err} ({:?})", err.kind());
        assert_all_closed(&t);
    });
}

/// The server answers early and then sends key updates (each followed by
/// a little of the answer's body) while it reads nothing, so the client's
/// writer sits blocked in a full socket the whole time. The reader must
/// still take every update and the body; once the server reads again, the
/// upload (now under the client's new keys) completes and the connection
/// is reused.
#[test]
fn key_updates_while_the_upload_is_blocked() {
    const UPLOAD: u64 = 20 * MB;
    const PIECES: usize = 20;
    let (srv, go_tx, got_rx) = answers_before_reading("key updates while blocked", |c| {
        let _ = c.write_all(
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", PIECES * 5).as_bytes(),
        );
        for i in 0..PIECES {
            let _ = c.key_update();
            let _ = c.write_all(format!("{i:04}.").as_bytes());
            thread::sleep(Duration::from_millis(2));
        }
    });
    let t = transport();
    let _leak = LeakCheck::new(&t);
    let c = client(&t);
    let produced = Arc::new(AtomicU64::new(0));
    let p = produced.clone();
    within_status(
        HEAVY_LIMIT,
        "key updates while blocked",
        move || format!("client produced {} bytes", p.load(Ordering::SeqCst)),
        move || {
            let trace = TlsTrace::new();
            let body =
                Body::from_reader(PatternReader::new(UPLOAD, produced.clone()), Some(UPLOAD));
            let mut resp = c
                .post(srv.url("/upload"))
                .body(body)
                .trace(trace.clone())
                .send()
                .expect("answer");
            let mut all_but_one = vec![0u8; PIECES * 5 - 1];
            resp.read_exact(&mut all_but_one)
                .expect("body under new keys");
            let at_body = produced.load(Ordering::SeqCst);
            assert!(at_body < UPLOAD, "the upload was not blocked ({at_body})");
            let want: String = (0..PIECES).map(|i| format!("{i:04}.")).collect();
            assert_eq!(all_but_one, &want.as_bytes()[..PIECES * 5 - 1]);
            go_tx.send(()).expect("server gone");
            let (got, updates) = got_rx
                .recv_timeout(HEAVY_LIMIT)
                .expect("server never finished reading the upload");
            assert_eq!(got, UPLOAD, "server received the whole upload");
            assert_eq!(updates, PIECES);
            eprintln!(
                "key updates while blocked: {updates} KeyUpdates with the upload stuck at \
                 {:.1} MB; upload of {} MB then completed",
                at_body as f64 / MB as f64,
                UPLOAD / MB
            );
            assert_request_written(&trace);
            let mut last = Vec::new();
            resp.read_to_end(&mut last).expect("last byte");
            assert_eq!(last, b".");
            let after = get_after(&c, srv.url("/after"));
            assert!(after.reused, "{after:?}");
        },
    );
}

// ---------------------------------------------------------------------
// Closing: close_notify on idle close, deadlines and drops mid-transfer
// ---------------------------------------------------------------------

/// A keep-alive server that reports how each connection's client side
/// ended (after the first request).
fn end_reporting_server(key_updates_after_first: usize) -> (TlsServer, mpsc::Receiver<PeerEnd>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let srv = TlsServer::start(pki().1.server_config(), move |mut c| {
        if c.read_request().is_none() {
            return;
        }
        ok(&mut c, b"bye");
        for _ in 0..key_updates_after_first {
            let _ = c.key_update();
        }
        let _ = c.flush();
        let end = c.read_end(Duration::from_secs(20));
        let _ = tx.lock().unwrap().send(end);
    });
    (srv, rx)
}

/// Closing an idle TLS connection says `close_notify` first: on
/// `close_idle_connections`, on the idle timeout, and also when the client
/// owes the server a KeyUpdate (queued by the server's update request on
/// the idle connection, sent ahead of the alert).
#[test]
fn idle_close_sends_close_notify() {
    within(TEST_LIMIT, "idle close_notify", || {
        for (what, updates, idle_timeout) in [
            ("close_idle_connections", 0, None),
            ("close_idle_connections after key updates", 2, None),
            ("idle timeout", 0, Some(Duration::from_millis(300))),
        ] {
            let (srv, ends) = end_reporting_server(updates);
            let t = tls_builder().idle_conn_timeout(idle_timeout).build();
            let _leak = LeakCheck::new(&t);
            let body = fetch_text(client(&t).get(srv.url("/")), what);
            assert_eq!(body, "bye");
            wait_stats(&t, LIMIT, |s| s.idle == 1);
            if updates > 0 {
                // Let the updates reach the idle connection.
                thread::sleep(Duration::from_millis(100));
            }
            if idle_timeout.is_none() {
                t.close_idle_connections();
            }
            assert_all_closed(&t);
            assert_eq!(
                ends.recv_timeout(LIMIT),
                Ok(PeerEnd::CloseNotify),
                "{what}: how the server saw the client leave"
            );
        }
    });
}

/// A client deadline that fires while a TLS body read is blocked: the read
/// fails with kind `Timeout` soon after, and both threads exit.
#[test]
fn deadline_during_a_blocked_tls_body_read() {
    within(TEST_LIMIT, "deadline in body", || {
        let srv = on_request_head(|mut c| {
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
            out.extend_from_slice(&[b'd'; 1000]);
            let _ = c.write_all(&out);
            // Stall until the client leaves.
            let _ = c.read_end(Duration::from_secs(20));
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        let c = Client::builder()
            .transport(t.clone())
            .timeout(Duration::from_millis(500))
            .build()
            .expect("client");
        let start = Instant::now();
        let mut resp = c.get(srv.url("/")).send().expect("head");
        let mut body = Vec::new();
        let err = resp.read_to_end(&mut body).expect_err("deadline");
        let elapsed = start.elapsed();
        eprintln!("deadline in a TLS body: {err} after {elapsed:?}");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<nethttp::Error>())
            .expect("nethttp::Error inside");
        assert_eq!(inner.kind(), ErrorKind::Timeout);
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        drop(resp);
        assert_all_closed(&t);
    });
}

/// The server answers at once and never reads the upload, so the
/// client's writer is blocked in a full socket. Dropping the response
/// before its end, or reading it to the end (the write never finishes, so
/// the connection cannot be reused), closes the connection: the blocked
/// writer wakes and both threads exit.
#[test]
fn response_released_while_the_upload_is_blocked_closes_both_threads() {
    within(TEST_LIMIT, "release while upload blocked", || {
        for read_to_end in [false, true] {
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let done_rx = Mutex::new(Some(done_rx));
            let srv = on_request_head(move |mut c| {
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly");
                // Never read; hold the socket until the test is done.
                let done = done_rx.lock().unwrap().take();
                if let Some(done) = done {
                    let _ = done.recv_timeout(TEST_LIMIT);
                }
            });
            let t = transport();
            let _leak = LeakCheck::new(&t);
            let c = client(&t);
            let produced = Arc::new(AtomicU64::new(0));
            let n = 64 * MB;
            let body = Body::from_reader(PatternReader::new(n, produced.clone()), Some(n));
            let resp = c
                .post(srv.url("/"))
                .body(body)
                .send()
                .expect("early answer");
            assert!(produced.load(Ordering::SeqCst) < n);
            if read_to_end {
                assert_eq!(resp.text().expect("body"), "early");
            } else {
                drop(resp);
            }
            let st = wait_stats(&t, LIMIT, |s| s.threads == 0 && s.conns == 0);
            assert_eq!(st.idle, 0, "read_to_end={read_to_end}");
            let _ = done_tx.send(());
        }
    });
}

/// Several threads share one transport over TLS; everything comes back.
#[test]
fn parallel_requests_share_a_tls_pool() {
    within(TEST_LIMIT, "parallel", || {
        let srv = fixed_server(pki().1.server_config(), b"parallel");
        let t = tls_builder().max_idle_conns_per_host(4).build();
        let _leak = LeakCheck::new(&t);
        let trace = TlsTrace::new();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (c, tr, url) = (client(&t), trace.clone(), srv.url("/"));
                thread::spawn(move || {
                    for _ in 0..25 {
                        let body = fetch_text(c.get(&url).trace(tr.clone()), "request");
                        assert_eq!(body, "parallel");
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
        // A dial thread may still be finishing after its dial is counted
        // done: wait for two threads per connection.
        let st = wait_stats(&t, LIMIT, |s| {
            s.in_use == 0 && s.dialing == 0 && s.threads == 2 * s.conns
        });
        assert!(st.conns <= 4, "{st:?}");
        assert_eq!(trace.starts(), srv.accepted());
        assert!(trace.dones().iter().all(Option::is_none));
        assert_eq!(trace.rec.conns().len(), 100);
        t.close_idle_connections();
        assert_all_closed(&t);
    });
}

/// A server that refuses an upload at once (413, `Connection: close`),
/// says `close_notify`, drains briefly and drops the socket, as nginx
/// does: the client gets the 413 and its body, and both threads exit.
#[test]
fn server_rejects_an_upload_early_and_closes() {
    within(TEST_LIMIT, "413 and close", || {
        let srv = on_request_head(|mut c| {
            let _ = c.write_all(
                b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 7\r\n\r\ntoo big",
            );
            c.tls.send_close_notify();
            let _ = c.flush();
            let _ = c.sock.shutdown(std::net::Shutdown::Write);
            let _ = c.sock.set_read_timeout(Some(Duration::from_millis(50)));
            let start = Instant::now();
            let mut sink = [0u8; 64 * 1024];
            while start.elapsed() < Duration::from_millis(300) {
                match c.sock.read(&mut sink) {
                    Ok(0) => break,
                    _ => continue,
                }
            }
            // Dropped with unread data: the kernel answers with a reset.
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        let n = 64 * MB;
        let body = Body::from_reader(PatternReader::new(n, Arc::new(AtomicU64::new(0))), Some(n));
        let resp = c
            .post(srv.url("/"))
            .body(body)
            .send()
            .expect("the 413 answer");
        assert_eq!(resp.status(), 413);
        assert_eq!(resp.text().expect("body"), "too big");
        assert_all_closed(&t);
    });
}

// ---------------------------------------------------------------------
// ALPN and servers that are not what they seem
// ---------------------------------------------------------------------

/// A server that picks `h2` in ALPN and then answers in HTTP/1.1: the
/// HTTP/2 connection finds no SETTINGS frame where the server's preface
/// must be, and the request fails with kind `Protocol`, nothing left
/// behind. (Before HTTP/2, such a server was refused at the handshake.)
#[test]
fn server_choosing_h2_but_speaking_http1_is_a_protocol_error() {
    within(TEST_LIMIT, "alpn h2, http/1.1 bytes", || {
        let mut server = pki().1.server_config();
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let srv = fixed_server(server, b"x");
        let mut config = (*pki().0.client_config()).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let t = transport_with(Arc::new(config));
        let _leak = LeakCheck::new(&t);
        let err = client(&t)
            .get(srv.url("/"))
            .send()
            .expect_err("HTTP/1.1 bytes on an h2 connection");
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    });
}

/// A server without ALPN, and a caller's configuration without ALPN:
/// both fine (HTTP/1.1 is assumed).
#[test]
fn no_alpn_on_either_side_works() {
    within(TEST_LIMIT, "no alpn", || {
        let mut server = pki().1.server_config();
        server.alpn_protocols.clear();
        let srv = fixed_server(server, b"no alpn");
        for client_alpn in [true, false] {
            let mut config = (*pki().0.client_config()).clone();
            if !client_alpn {
                config.alpn_protocols.clear();
            }
            let t = transport_with(Arc::new(config));
            let _leak = LeakCheck::new(&t);
            let body = fetch_text(client(&t).get(srv.url("/")), "request");
            assert_eq!(body, "no alpn");
        }
    });
}

/// A plain-HTTP server on the port: it answers the ClientHello with a
/// plaintext 400. Kind `Tls`, nothing left behind.
#[test]
fn plain_http_server_on_an_https_url_is_a_tls_error() {
    within(TEST_LIMIT, "plain http server", || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().expect("accept");
            sock.set_read_timeout(Some(LIMIT)).expect("timeout");
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf);
            let _ = sock.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad request",
            );
            let _ = sock.shutdown(std::net::Shutdown::Write);
            let _ = sock.read_to_end(&mut Vec::new());
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        assert_tls_error("plain http server", &t, format!("https://{addr}/"));
        server.join().expect("server");
    });
}

/// A server that accepts TCP and closes at once, before any handshake
/// byte: a handshake failure (kind `Tls`), nothing left behind.
#[test]
fn server_closing_during_the_handshake_is_a_tls_error() {
    within(TEST_LIMIT, "close in handshake", || {
        let srv = TlsServer::start_raw(pki().1.server_config(), |a| {
            let mut sock = a.sock;
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf);
            let _ = sock.shutdown(std::net::Shutdown::Both);
        });
        let t = transport();
        let _leak = LeakCheck::new(&t);
        assert_tls_error("server closed during the handshake", &t, srv.url("/"));
    });
}

// ---------------------------------------------------------------------
// Servers that close keep-alive connections
// ---------------------------------------------------------------------

/// The server closes an idle keep-alive connection (`close_notify`, or a
/// bare FIN): the client drops it from the pool at once, and the next
/// request dials a new one.
#[test]
fn server_closing_an_idle_tls_connection_removes_it_from_the_pool() {
    within(TEST_LIMIT, "server closes idle", || {
        for end in [End::CloseNotify, End::Fin] {
            let srv = TlsServer::start(pki().1.server_config(), move |mut c| {
                if c.read_request().is_none() {
                    return;
                }
                ok(&mut c, b"once");
                thread::sleep(Duration::from_millis(50));
                end.end(c);
            });
            let t = transport();
            let _leak = LeakCheck::new(&t);
            let c = client(&t);
            let get = || fetch_text(c.get(srv.url("/")), &format!("{end:?}"));
            assert_eq!(get(), "once");
            assert_all_closed(&t);
            assert_eq!(get(), "once");
            assert_eq!(srv.accepted(), 2, "{end:?}");
        }
    });
}

/// The server reads the second request on a reused connection and closes
/// without answering (`close_notify`, or a bare FIN). Nothing of a
/// response arrived, so the GET is retried on a new connection (Go's rule
/// for dead reused connections) and succeeds.
#[test]
fn dead_reused_tls_connection_is_retried() {
    within(TEST_LIMIT, "retry on dead reused conn", || {
        for end in [End::CloseNotify, End::Fin] {
            let srv = TlsServer::start(pki().1.server_config(), move |mut c| {
                let first = c.index == 0;
                if c.read_request().is_none() {
                    return;
                }
                ok(&mut c, b"answer");
                if first {
                    if c.read_request().is_none() {
                        return;
                    }
                    end.end(c);
                    return;
                }
                serve_keep_alive(c, |c, _, _| ok(c, b"answer"));
            });
            let t = transport();
            let _leak = LeakCheck::new(&t);
            let c = client(&t);
            let trace = TlsTrace::new();
            let get = || {
                fetch_text(
                    c.get(srv.url("/")).trace(trace.clone()),
                    &format!("{end:?}"),
                )
            };
            assert_eq!(get(), "answer");
            wait_stats(&t, LIMIT, |s| s.idle == 1);
            assert_eq!(get(), "answer", "{end:?}: retried");
            let conns = trace.rec.conns();
            assert_eq!(conns.len(), 3, "{end:?}: {:?}", trace.rec.events());
            assert!(conns[1].reused && !conns[2].reused, "{end:?}: {conns:?}");
            assert_eq!(srv.accepted(), 2, "{end:?}");
            assert_eq!(trace.starts(), 2);
        }
    });
}

/// Records without plaintext (here key updates every 100 ms, under rustls'
/// limit of 32 in a row) must not keep an idle connection alive past the
/// idle timeout: it is "how long an idle connection stays in the pool"
/// (Go runs it as a timer, independent of reads).
#[test]
fn idle_timeout_holds_while_key_updates_trickle_in() {
    within(TEST_LIMIT, "idle timeout with trickle", || {
        let srv = TlsServer::start(pki().1.server_config(), |mut c| {
            if c.read_request().is_none() {
                return;
            }
            ok(&mut c, b"idle");
            for _ in 0..30 {
                thread::sleep(Duration::from_millis(100));
                if c.key_update().and_then(|()| c.flush()).is_err() {
                    return;
                }
            }
            let _ = c.read_end(Duration::from_secs(20));
        });
        let t = tls_builder()
            .idle_conn_timeout(Some(Duration::from_millis(300)))
            .build();
        let _leak = LeakCheck::new(&t);
        let body = fetch_text(client(&t).get(srv.url("/")), "request");
        assert_eq!(body, "idle");
        let idle_since = Instant::now();
        let closed = wait_until(Duration::from_secs(6), || t.stats().conns == 0);
        let took = idle_since.elapsed();
        eprintln!(
            "idle timeout 300 ms with key updates every 100 ms: closed={closed} after {took:?}"
        );
        assert!(
            closed && took < Duration::from_millis(1500),
            "the idle connection lived {took:?} (idle timeout 300 ms)"
        );
        assert_all_closed(&t);
    });
}

#[test]
fn server_refusing_our_missing_client_certificate_is_a_tls_error() {
    let (ca, leaf) = pki();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        support::tls::provider(),
    )
    .build()
    .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf.key_pkcs8.clone().into());
    let mut config = rustls::ServerConfig::builder_with_provider(support::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![leaf.cert.clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server = TlsServer::start(config, |mut c| {
        let _ = c.read_head();
    });
    let t = Transport::builder().tls_config(ca.client_config()).build();
    let _leaks = LeakCheck::new(&t);
    let c = Client::builder().transport(t.clone()).build().unwrap();
    let err = c.get(server.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
}

/// A cancel during the dial (here: a handshake the server never answers)
/// ends the request at once; the dial thread finishes on its own, bounded
/// by `tls_handshake_timeout`, and nothing is left behind.
#[test]
fn cancel_during_the_dial_returns_at_once() {
    within(TEST_LIMIT, "cancel in dial", || {
        let srv = TlsServer::start_raw(pki().1.server_config(), |a| {
            let mut sock = a.sock;
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf);
            thread::sleep(Duration::from_secs(3));
        });
        let t = Transport::builder()
            .tls_config(pki().0.client_config())
            .tls_handshake_timeout(Some(Duration::from_millis(800)))
            .build();
        let _leak = LeakCheck::new(&t);
        let token = nethttp::CancelToken::new();
        let canceler = {
            let token = token.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(150));
                token.cancel();
            })
        };
        let start = Instant::now();
        let err = client(&t)
            .get(srv.url("/"))
            .cancel(token)
            .send()
            .unwrap_err();
        let took = start.elapsed();
        canceler.join().unwrap();
        assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
        assert!(err.to_string().contains("connecting"), "{err}");
        assert!(took < Duration::from_millis(700), "cancel took {took:?}");
    });
}

/// `thread_stack_size` below the floor is raised to it (API.md, "Safety
/// rules"): a TLS dial on a dial thread (a cancel token forces one) and
/// both connection threads work with a one-byte request. (This build is
/// optimised enough to need far less; the floor is sized for debug builds,
/// see `config::MIN_STACK`.)
#[test]
fn a_tiny_thread_stack_is_raised_to_the_floor() {
    within(TEST_LIMIT, "tiny stack", || {
        let srv = fixed_server(pki().1.server_config(), b"small");
        let t = tls_builder().thread_stack_size(1).build();
        let _leak = LeakCheck::new(&t);
        let c = client(&t);
        for _ in 0..2 {
            let req = c.get(srv.url("/")).cancel(nethttp::CancelToken::new());
            assert_eq!(fetch_text(req, "request"), "small");
        }
    });
}
