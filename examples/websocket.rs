//! `cargo run --example websocket`: WebSocket (RFC 6455) over
//! `Response::upgrade`, against an in-process tungstenite server.
//!
//! The server is tungstenite's own (`tungstenite::accept` on a plain
//! `std::net::TcpListener` on `127.0.0.1:0`, one thread, not counted by
//! `nethttp`): it echoes every message until the client closes. The client
//! sends the opening handshake itself with `nethttp` (a GET with
//! `Connection: Upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Key`,
//! `Sec-WebSocket-Version: 13`), checks the `101` and its
//! `Sec-WebSocket-Accept`, takes the socket over with
//! [`Response::upgrade`](nethttp::Response::upgrade), and hands it to
//! `tungstenite::WebSocket::from_raw_socket` as the client's stream. It
//! sends a few messages, checks the echoes, closes cleanly, and checks that
//! the connection's two `nethttp` threads are gone (the upgraded stream
//! holds none). It exits non-zero if anything did not go as expected.

use std::{
    error::Error as StdError,
    net::TcpListener,
    process::ExitCode,
    thread,
    time::{Duration, Instant},
};

use nethttp::{Client, Proxy, Transport};
use tungstenite::{Message, WebSocket, protocol::Role};

type BoxError = Box<dyn StdError + Send + Sync>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("websocket: all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("websocket: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Fails with `what` unless `ok`.
fn check(ok: bool, what: impl Into<String>) -> Result<(), BoxError> {
    if ok { Ok(()) } else { Err(what.into().into()) }
}

fn run() -> Result<(), BoxError> {
    let server = echo_server()?;
    let url = format!("http://{}/echo", server.addr);
    println!("server: tungstenite echo on {url}");

    let transport = Transport::builder().proxy(Proxy::none()).build();
    let client = Client::builder()
        .transport(transport.clone())
        // Bounds the handshake; it does not bound the upgraded stream.
        .timeout(Duration::from_secs(10))
        .build()?;

    // The opening handshake (RFC 6455 §4.1), as an ordinary request.
    let key = tungstenite::handshake::client::generate_key();
    let resp = client
        .get(&url)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", key.as_str())
        .send()?;
    println!("handshake: {} {:?}", resp.status(), resp.version());
    check(
        resp.status() == 101,
        format!("want 101, got {}", resp.status()),
    )?;
    let accept = resp
        .headers()
        .get("sec-websocket-accept")
        .ok_or("no Sec-WebSocket-Accept")?;
    let want = tungstenite::handshake::derive_accept_key(key.as_bytes());
    check(
        accept.as_bytes() == want.as_bytes(),
        "Sec-WebSocket-Accept does not match the key",
    )?;
    let held = transport.stats();
    println!(
        "before upgrade: {} connection in use, {} nethttp threads (live_threads = {})",
        held.in_use,
        held.threads,
        nethttp::live_threads()
    );
    check(held.in_use == 1 && held.threads == 2, format!("{held:?}"))?;

    // The socket is ours from here: no thread, no pool, no timeout.
    let upgraded = resp.upgrade()?;
    wait_for(|| nethttp::live_threads() == 0 && transport.stats().threads == 0)?;
    let after = transport.stats();
    println!(
        "after upgrade: {} connections, {} nethttp threads (live_threads = {}); {upgraded:?}",
        after.conns,
        after.threads,
        nethttp::live_threads()
    );
    check(after.conns == 0, format!("{after:?}"))?;

    let mut ws = WebSocket::from_raw_socket(upgraded, Role::Client, None);
    for text in ["hello", "über nethttp", "third and last"] {
        ws.send(Message::text(text))?;
        let echo = ws.read()?;
        println!("sent {text:?}, got back {:?}", echo.to_text()?);
        check(echo == Message::text(text), "the echo differs")?;
    }
    let bytes = vec![0u8, 1, 2, 254, 255];
    ws.send(Message::binary(bytes.clone()))?;
    let echo = ws.read()?;
    println!(
        "sent {:?} (binary), got back {:?}",
        bytes,
        echo.clone().into_data().as_ref()
    );
    check(echo == Message::binary(bytes), "the binary echo differs")?;

    // The closing handshake (RFC 6455 §5.5.1): our Close, the server's
    // answer, then the end of the stream.
    ws.close(None)?;
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => println!("server answered close: {frame:?}"),
            Ok(other) => println!("after close: {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => return Err(e.into()),
        }
    }
    println!("closed cleanly");
    drop(ws);
    server
        .thread
        .join()
        .map_err(|_| "the server thread panicked")??;
    check(
        nethttp::live_threads() == 0,
        format!("{} nethttp threads left", nethttp::live_threads()),
    )?;
    println!("nethttp::live_threads() = 0");
    Ok(())
}

struct Server {
    addr: std::net::SocketAddr,
    thread: thread::JoinHandle<Result<(), BoxError>>,
}

/// tungstenite's server on `127.0.0.1:0`: one connection, every text or
/// binary message echoed, until the client closes.
fn echo_server() -> Result<Server, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let thread = thread::spawn(move || -> Result<(), BoxError> {
        let (sock, _) = listener.accept()?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut ws = tungstenite::accept(sock).map_err(|e| e.to_string())?;
        loop {
            match ws.read() {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m)?,
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    });
    Ok(Server { addr, thread })
}

/// Polls `done` for up to five seconds: thread counts drop a moment after
/// the threads have left their loops.
fn wait_for(mut done: impl FnMut() -> bool) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        if Instant::now() > deadline {
            return Err("the connection's threads did not exit".into());
        }
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
