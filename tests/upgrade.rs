//! `Response::upgrade` (RFC 9110 §7.8, Go's `errCallerOwnsConn`): a
//! `101 Switching Protocols` hands the socket to the caller as `Upgraded`;
//! the connection leaves the pool, its two threads exit, and the socket
//! stays open. Over plain TCP, TLS (an in-process rustls server) and a
//! Unix socket; WebSocket through tungstenite, a peer nobody here wrote.
//!
//! The tests of this binary run one at a time (`serial`), so the crate-wide
//! `nethttp::live_threads()` is exact here. Every wait is bounded.

mod support;

use std::{
    io::{self, Read, Write},
    net::{Shutdown, TcpListener},
    sync::{Mutex, MutexGuard, mpsc},
    thread,
    time::Duration,
};

use nethttp::{Client, ErrorKind, PoolStats, Proxy, Response, Transport, TransportBuilder};
use support::{
    LeakCheck, ScriptConn, ScriptedServer, bounded, client,
    tls::{TlsConn, TlsServer, pki},
    wait_stats, wait_until,
};

const LIMIT: Duration = Duration::from_secs(10);
const TEST_LIMIT: Duration = Duration::from_secs(40);

/// One test at a time: `live_threads()` counts the whole process.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn builder() -> TransportBuilder {
    Transport::builder().proxy(Proxy::none())
}

/// The 101 head our scripted servers send, then `early` in the same write.
fn switching(early: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n{early}"
    )
}

/// Sends an upgrade request for the `echo` protocol.
fn ask_upgrade(c: &Client, url: &str) -> Response {
    c.get(url)
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .send()
        .expect("upgrade request")
}

/// Echoes what the client sends until it shuts its side down.
fn echo_plain(c: &mut ScriptConn) {
    let mut buf = [0; 4096];
    loop {
        match c.reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => c.write(&buf[..n]),
        }
    }
}

/// A server that answers the first request with a 101 (and `early` in the
/// same write), then echoes; a `/plain` request gets `200 ok` instead.
fn upgrade_server(early: &'static str) -> ScriptedServer {
    ScriptedServer::start(move |mut c| {
        while let Some(head) = c.read_head() {
            if head.starts_with("GET /plain ") {
                c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                continue;
            }
            c.write(switching(early));
            echo_plain(&mut c);
            return;
        }
    })
}

#[track_caller]
fn read_exactly(r: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    r.read_exact(&mut buf).expect("read");
    buf
}

#[test]
fn an_upgraded_connection_leaves_the_pool_and_its_threads_exit() {
    let _serial = serial();
    bounded("upgrade_plain", TEST_LIMIT, || {
        assert_eq!(
            nethttp::live_threads(),
            0,
            "nothing else runs in this binary"
        );
        let server = upgrade_server("HELLO");
        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let resp = ask_upgrade(&c, &server.url("/chat"));
        assert_eq!(resp.status(), 101);
        // Until `upgrade`, the 101 holds its connection: in use, two threads.
        let held = t.stats();
        assert_eq!(
            (held.conns, held.in_use, held.threads),
            (1, 1, 2),
            "{held:?}"
        );
        assert_eq!(nethttp::live_threads(), 2);

        let mut up = resp.upgrade().expect("upgrade");
        // Out of the pool at once; the threads a moment later.
        let s = t.stats();
        assert_eq!((s.conns, s.in_use, s.idle), (0, 0, 0), "{s:?}");
        wait_stats(&t, LIMIT, |s| *s == PoolStats::default());
        assert!(wait_until(LIMIT, || nethttp::live_threads() == 0));

        // The bytes that came with the 101 head come first.
        assert_eq!(read_exactly(&mut up, 5), b"HELLO");
        for msg in ["ping", "a longer message", "x"] {
            up.write_all(msg.as_bytes()).expect("write");
            up.flush().expect("flush");
            assert_eq!(read_exactly(&mut up, msg.len()), msg.as_bytes());
        }
        assert!(format!("{up:?}").contains("Upgraded"));
        drop(up);
        assert_eq!(t.stats(), PoolStats::default());
    });
}

#[test]
fn shutdown_sends_fin_and_the_servers_later_bytes_still_read() {
    let _serial = serial();
    bounded("upgrade_shutdown", TEST_LIMIT, || {
        let server = ScriptedServer::start(|mut c| {
            let _ = c.read_head();
            c.write(switching(""));
            // Everything until the client's FIN, then an answer after it.
            let mut got = Vec::new();
            let _ = c.reader.read_to_end(&mut got);
            c.write(format!("after-fin:{}", String::from_utf8_lossy(&got)));
            let _ = c.stream.shutdown(Shutdown::Write);
        });
        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let mut up = ask_upgrade(&client(&t), &server.url("/"))
            .upgrade()
            .expect("upgrade");
        up.write_all(b"abc").expect("write");
        up.shutdown().expect("shutdown");
        up.shutdown().expect("a second shutdown does nothing");
        let err = up
            .write_all(b"more")
            .expect_err("writes after shutdown fail");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let mut rest = String::new();
        up.read_to_string(&mut rest)
            .expect("read to the server's FIN");
        assert_eq!(rest, "after-fin:abc");
    });
}

#[test]
fn a_dropped_101_closes_its_connection_and_leaks_nothing() {
    let _serial = serial();
    bounded("upgrade_dropped", TEST_LIMIT, || {
        let (closed_tx, closed_rx) = mpsc::channel();
        let server = ScriptedServer::start(move |mut c| {
            let _ = c.read_head();
            c.write(switching("early"));
            // The client closes without a word.
            let mut rest = Vec::new();
            let _ = c.reader.read_to_end(&mut rest);
            let _ = closed_tx.send(rest);
        });
        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let resp = ask_upgrade(&c, &server.url("/"));
        assert_eq!(t.stats().threads, 2);
        // Reading its (empty) body does not end it: only upgrade or drop.
        let mut resp = resp;
        assert_eq!(resp.read(&mut [0; 8]).expect("read"), 0);
        assert_eq!(t.stats().in_use, 1);
        drop(resp);
        let s = t.stats();
        assert_eq!((s.conns, s.in_use), (0, 0), "closed at once: {s:?}");
        wait_stats(&t, LIMIT, |s| s.threads == 0);
        let rest = closed_rx.recv_timeout(LIMIT).expect("the server saw EOF");
        assert!(rest.is_empty(), "{rest:?}");

        // Its body alone, dropped, does the same.
        let body = ask_upgrade(&c, &server.url("/")).into_body();
        assert_eq!(t.stats().in_use, 1);
        drop(body);
        wait_stats(&t, LIMIT, |s| *s == PoolStats::default());
        closed_rx.recv_timeout(LIMIT).expect("the server saw EOF");
    });
}

#[test]
fn a_response_that_is_not_101_cannot_upgrade() {
    let _serial = serial();
    bounded("upgrade_refused", TEST_LIMIT, || {
        let server = ScriptedServer::start(|mut c| {
            while let Some(head) = c.read_head() {
                if head.starts_with("GET /204 ") {
                    c.write("HTTP/1.1 204 No Content\r\n\r\n");
                } else {
                    c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
                }
            }
        });
        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let err = ask_upgrade(&c, &server.url("/"))
            .upgrade()
            .expect_err("200 is not 101");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
        assert!(err.to_string().contains("not 101"), "{err}");
        assert!(err.url().is_some(), "{err:?}");
        // Its unread body was dropped: the connection closed, as usual.
        wait_stats(&t, LIMIT, |s| s.conns == 0 && s.threads == 0);

        // A response without a body went back to the pool before.
        let err = ask_upgrade(&c, &server.url("/204"))
            .upgrade()
            .expect_err("204 is not 101");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        let s = t.stats();
        assert_eq!((s.idle, s.threads), (1, 2), "{s:?}");

        // A response that came from no connection.
        let mock = Response::from_http(
            nethttp::http::Response::builder()
                .status(101)
                .body(io::empty())
                .expect("response"),
            nethttp::Url::parse("http://mock.test/").expect("url"),
        );
        let err = mock.upgrade().expect_err("no connection behind it");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    });
}

#[test]
fn an_upgraded_stream_outlives_its_transport() {
    let _serial = serial();
    bounded("upgrade_outlives", TEST_LIMIT, || {
        let server = upgrade_server("");
        let mut up = {
            let t = builder().build();
            let resp = ask_upgrade(&client(&t), &server.url("/"));
            resp.upgrade().expect("upgrade")
            // The client and the transport drop here.
        };
        assert!(wait_until(LIMIT, || nethttp::live_threads() == 0));
        up.write_all(b"still here").expect("write");
        assert_eq!(read_exactly(&mut up, 10), b"still here");
    });
}

#[test]
fn timeouts_do_not_bound_an_upgraded_stream() {
    let _serial = serial();
    bounded("upgrade_timeouts", TEST_LIMIT, || {
        let server = ScriptedServer::start(|mut c| {
            let _ = c.read_head();
            c.write(switching(""));
            // Quiet for longer than every timeout below, then speaks.
            thread::sleep(Duration::from_millis(700));
            c.write("late");
            echo_plain(&mut c);
        });
        let t = builder()
            .read_timeout(Some(Duration::from_millis(200)))
            .idle_conn_timeout(Some(Duration::from_millis(200)))
            .build();
        let _leaks = LeakCheck::new(&t);
        let c = Client::builder()
            .transport(t.clone())
            .timeout(Duration::from_millis(300))
            .build()
            .expect("client");
        let mut up = ask_upgrade(&c, &server.url("/"))
            .upgrade()
            .expect("upgrade");
        assert_eq!(read_exactly(&mut up, 4), b"late");
        thread::sleep(Duration::from_millis(400));
        up.write_all(b"echo").expect("write");
        assert_eq!(read_exactly(&mut up, 4), b"echo");
    });
}

#[test]
fn an_upgraded_connection_frees_its_per_host_slot() {
    let _serial = serial();
    bounded("upgrade_slot", TEST_LIMIT, || {
        let server = upgrade_server("");
        let t = builder().max_conns_per_host(1).build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let resp = ask_upgrade(&c, &server.url("/"));
        // While the 101 holds the only slot, a second request waits.
        let c2 = c.clone();
        let url = server.url("/plain");
        let second = support::spawn_result(move || c2.get(&url).send().and_then(Response::text));
        wait_stats(&t, LIMIT, |s| s.waiting == 1);
        assert!(second.recv_timeout(Duration::from_millis(200)).is_err());
        // The upgrade frees the slot: the second request dials.
        let mut up = resp.upgrade().expect("upgrade");
        let text = second.recv_timeout(LIMIT).expect("second request ran");
        assert_eq!(text.expect("second request"), "ok");
        assert_eq!(server.accepted(), 2);
        up.write_all(b"hi").expect("write");
        assert_eq!(read_exactly(&mut up, 2), b"hi");
        let s = t.stats();
        assert_eq!((s.conns, s.idle), (1, 1), "only the second: {s:?}");
    });
}

#[test]
fn without_keep_alives_an_upgrade_request_gets_no_connection_close() {
    let _serial = serial();
    bounded("upgrade_no_close", TEST_LIMIT, || {
        let (heads_tx, heads_rx) = mpsc::channel();
        let server = ScriptedServer::start(move |mut c| {
            let Some(head) = c.read_head() else { return };
            let _ = heads_tx.send(head.clone());
            if head.starts_with("GET /plain ") {
                c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                return;
            }
            c.write(switching(""));
            echo_plain(&mut c);
        });
        let t = builder().disable_keep_alives(true).build();
        let _leaks = LeakCheck::new(&t);
        let c = client(&t);
        let mut up = ask_upgrade(&c, &server.url("/"))
            .upgrade()
            .expect("upgrade");
        let head = heads_rx
            .recv_timeout(LIMIT)
            .expect("head")
            .to_ascii_lowercase();
        assert!(head.contains("connection: upgrade"), "{head}");
        assert!(!head.contains("close"), "{head}");
        up.write_all(b"x").expect("write");
        assert_eq!(read_exactly(&mut up, 1), b"x");
        // Any other request still says close.
        assert_eq!(
            c.get(server.url("/plain")).send().unwrap().text().unwrap(),
            "ok"
        );
        let head = heads_rx
            .recv_timeout(LIMIT)
            .expect("head")
            .to_ascii_lowercase();
        assert!(head.contains("connection: close"), "{head}");
    });
}

/// An echo over TLS: the 101 and `early` in one write, then every
/// plaintext byte back (each piece after a key update) until the client's
/// `close_notify`, then `bye`.
fn tls_upgrade_server() -> TlsServer {
    TlsServer::start(pki().1.server_config(), |mut c: TlsConn| {
        if c.read_head().is_none() {
            return;
        }
        let _ = c.write_all(switching("EARLY").as_bytes());
        let mut buf = [0; 4096];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // A key update (update requested) with each echo: the
                    // client's read makes its session queue an answer,
                    // which `Upgraded` must send itself.
                    let _ = c.key_update();
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
        // The client shut its side down; ours is still open.
        let _ = c.write_all(b"bye");
        c.close_notify();
    })
}

#[test]
fn an_upgrade_over_tls_keeps_the_session() {
    let _serial = serial();
    bounded("upgrade_tls", TEST_LIMIT, || {
        let server = tls_upgrade_server();
        let t = builder().tls_config(pki().0.client_config()).build();
        let _leaks = LeakCheck::new(&t);
        let resp = ask_upgrade(&client(&t), &server.url("/"));
        assert_eq!(t.stats().threads, 2);
        let mut up = resp.upgrade().expect("upgrade");
        wait_stats(&t, LIMIT, |s| *s == PoolStats::default());
        assert_eq!(read_exactly(&mut up, 5), b"EARLY");
        // Larger than a TLS record, both ways.
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        up.write_all(&big).expect("write");
        up.flush().expect("flush");
        assert!(read_exactly(&mut up, big.len()) == big, "echo differs");
        // close_notify, FIN; the server's answer after it still reads.
        up.shutdown().expect("shutdown");
        let mut rest = Vec::new();
        up.read_to_end(&mut rest).expect("read to close_notify");
        assert_eq!(rest, b"bye");
        assert!(format!("{up:?}").contains("tls: true"), "{up:?}");
    });
}

#[test]
fn an_upgrade_over_a_unix_socket() {
    let _serial = serial();
    bounded("upgrade_unix", TEST_LIMIT, || {
        let dir = std::env::temp_dir().join(format!("nethttp-upgrade-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.set_read_timeout(Some(LIMIT)).expect("timeout");
            let mut head = Vec::new();
            let mut byte = [0];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).expect("read") == 1 {
                head.push(byte[0]);
            }
            s.write_all(switching("U").as_bytes()).expect("write");
            let mut buf = [0; 64];
            let n = s.read(&mut buf).expect("read");
            s.write_all(&buf[..n]).expect("echo");
        });
        let t = builder().unix_socket(&path).build();
        let _leaks = LeakCheck::new(&t);
        let mut up = ask_upgrade(&client(&t), "http://unix.test/")
            .upgrade()
            .expect("upgrade");
        assert_eq!(read_exactly(&mut up, 1), b"U");
        up.write_all(b"over unix").expect("write");
        assert_eq!(read_exactly(&mut up, 9), b"over unix");
        server.join().expect("server");
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn an_http2_response_cannot_upgrade() {
    let _serial = serial();
    let Some(peer) = support::h2::H2Peer::start("echo") else {
        return;
    };
    bounded("upgrade_h2", TEST_LIMIT, move || {
        let t = builder().http2_prior_knowledge().build();
        let _leaks = LeakCheck::new(&t);
        let resp = client(&t).get(peer.url("/status/200")).send().expect("h2");
        assert_eq!(resp.version(), nethttp::http::Version::HTTP_2);
        let err = resp.upgrade().expect_err("HTTP/2 has no 101");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
        t.close_idle_connections();
    });
}

/// WebSocket (RFC 6455) over `Upgraded`: our GET does the opening
/// handshake, tungstenite speaks the protocol on both ends (its server
/// accepts on a plain std listener).
#[test]
fn websocket_through_tungstenite() {
    let _serial = serial();
    bounded("upgrade_websocket", TEST_LIMIT, || {
        use tungstenite::{Message, protocol::Role};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = thread::spawn(move || {
            let (sock, _) = listener.accept().expect("accept");
            sock.set_read_timeout(Some(LIMIT)).expect("timeout");
            let mut ws = tungstenite::accept(sock).expect("websocket handshake");
            loop {
                match ws.read() {
                    Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                        ws.send(m).expect("echo");
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::ConnectionClosed) => return,
                    Err(e) => panic!("server: {e}"),
                }
            }
        });

        let t = builder().build();
        let _leaks = LeakCheck::new(&t);
        let key = tungstenite::handshake::client::generate_key();
        let resp = client(&t)
            .get(format!("http://{addr}/ws"))
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", key.as_str())
            .send()
            .expect("opening handshake");
        assert_eq!(resp.status(), 101);
        let accept = resp
            .headers()
            .get("sec-websocket-accept")
            .expect("Sec-WebSocket-Accept");
        assert_eq!(
            accept.as_bytes(),
            tungstenite::handshake::derive_accept_key(key.as_bytes()).as_bytes()
        );
        let up = resp.upgrade().expect("upgrade");
        wait_stats(&t, LIMIT, |s| *s == PoolStats::default());
        let mut ws = tungstenite::WebSocket::from_raw_socket(up, Role::Client, None);
        for text in ["hello", "über", "third message"] {
            ws.send(Message::text(text)).expect("send");
            assert_eq!(ws.read().expect("echo"), Message::text(text));
        }
        ws.send(Message::binary(vec![0u8, 1, 2, 255]))
            .expect("send binary");
        assert_eq!(
            ws.read().expect("echo"),
            Message::binary(vec![0u8, 1, 2, 255])
        );
        ws.close(None).expect("close");
        loop {
            match ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("client: {e}"),
            }
        }
        server.join().expect("server");
    });
}
