//! Connecting anywhere (API.md, "Dialling, resolving, proxies"):
//!
//! - `resolve(host, addrs)` overrides and the `Resolve` hook: the URL's
//!   host still drives `Host`, TLS's name check and the pool key; the DNS
//!   hooks report the hook's answer; failures are kind `Dns`.
//! - The `Dial` hook (TCP or Unix sockets; failures are kind `Connect`;
//!   `tcp_nodelay`/`tcp_keepalive` apply to its TCP sockets) and
//!   `unix_socket(path)` (nginx on a Unix socket, plain and TLS, pooled,
//!   idle close seen, addresses `0.0.0.0:0`).
//! - Happy eyeballs and a `connect_timeout` that spans the whole connect:
//!   a listener on `[::1]` whose accept queue is full (SYNs dropped) next
//!   to a working one on 127.0.0.1, and a custom dialer that loses a race.
//! - `local_address`, `tcp_nodelay`, `tcp_keepalive`.
//! - SOCKS: socks5, socks5h and socks4 through Dante (`danted`); socks4a,
//!   exact SOCKS5 bytes and RFC 1929 username/password through scripted
//!   proxies (Dante 1.4.2 has no SOCKS4a, and its username method checks
//!   system accounts).
//! - `https://` proxies: stunnel in front of tinyproxy (absolute form and
//!   CONNECT inside TLS), and a scripted TLS proxy for exact heads;
//!   `Proxy::headers`; `Proxy::custom`.
//!
//! Real peers come from `support::peers`; a missing one skips its test
//! loudly (fails it under CI, where `.ci/run` installs it). Only
//! 127.0.0.0/8 and `::1` are ever contacted: names are `.test` names given
//! to `resolve` or a test resolver, or `localhost`, which only Dante
//! resolves (from `/etc/hosts`); transports that must resolve nothing
//! themselves (through a proxy, over a Unix socket) get a resolver that
//! refuses every name, so a mistake never reaches the system's DNS. Tests
//! that need `::1` check it first and skip loudly when it is missing.
//! Every request is bounded by a client timeout; every transport ends with
//! a `LeakCheck`.

mod support;

use std::{
    error::Error as _,
    io::{self, BufRead, BufReader, Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream},
    os::unix::net::UnixStream,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{
    Client, ClientTrace, ErrorKind, GotConnInfo, Proxy, Response, Socket, Transport, Url,
    http::{HeaderMap, HeaderValue},
};
use support::{
    peers::{Danted, NginxUnix, StunnelProxy, UNIX_HELLO, proxy_leaf},
    tls::{Ca, TlsServer, ok, pki, serve_keep_alive},
    *,
};

/// Bound on every request (the whole exchange): a feature that is not
/// there yet fails its test instead of hanging it.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);
/// Bound on waits for state that follows a request (stats, late hooks).
const SETTLE: Duration = Duration::from_secs(5);
/// What nethttp reports for either end of a Unix socket.
const NO_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

// ---------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------

/// A client on `t` whose requests are bounded by [`REQUEST_LIMIT`].
fn cl(t: &Transport) -> Client {
    Client::builder()
        .transport(t.clone())
        .timeout(REQUEST_LIMIT)
        .build()
        .expect("client")
}

/// One hook call, with the addresses and errors it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    DnsStart(String),
    DnsDone(Vec<SocketAddr>),
    ConnectStart(SocketAddr),
    /// The error's text when the hook got one.
    ConnectDone(SocketAddr, Option<String>),
    TlsStart,
    TlsDone(Option<ErrorKind>),
    GotConn,
}

/// A trace that keeps the dialling hooks' arguments.
#[derive(Default)]
struct DialTrace {
    events: Mutex<Vec<Ev>>,
    conns: Mutex<Vec<GotConnInfo>>,
}

impl DialTrace {
    fn new() -> Arc<DialTrace> {
        Arc::new(DialTrace::default())
    }

    fn events(&self) -> Vec<Ev> {
        self.events.lock().unwrap().clone()
    }

    fn conns(&self) -> Vec<GotConnInfo> {
        self.conns.lock().unwrap().clone()
    }

    fn push(&self, e: Ev) {
        self.events.lock().unwrap().push(e);
    }

    fn dns_starts(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Ev::DnsStart(h) => Some(h),
                _ => None,
            })
            .collect()
    }

    fn connect_starts(&self) -> Vec<SocketAddr> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Ev::ConnectStart(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// The `connect_done` for `addr`, if it fired: `Ok(())` or the error.
    fn connect_done(&self, addr: SocketAddr) -> Option<Result<(), String>> {
        self.events().into_iter().find_map(|e| match e {
            Ev::ConnectDone(a, err) if a == addr => Some(err.map_or(Ok(()), Err)),
            _ => None,
        })
    }

    /// Index of the first event equal to `e`.
    fn position(&self, want: impl Fn(&Ev) -> bool) -> Option<usize> {
        self.events().iter().position(want)
    }
}

impl ClientTrace for DialTrace {
    fn dns_start(&self, host: &str) {
        self.push(Ev::DnsStart(host.to_string()));
    }
    fn dns_done(&self, addrs: &[SocketAddr]) {
        self.push(Ev::DnsDone(addrs.to_vec()));
    }
    fn connect_start(&self, addr: SocketAddr) {
        self.push(Ev::ConnectStart(addr));
    }
    fn connect_done(&self, addr: SocketAddr, err: Option<&io::Error>) {
        self.push(Ev::ConnectDone(addr, err.map(|e| e.to_string())));
    }
    fn tls_handshake_start(&self) {
        self.push(Ev::TlsStart);
    }
    fn tls_handshake_done(&self, err: Option<&nethttp::Error>) {
        self.push(Ev::TlsDone(err.map(|e| e.kind())));
    }
    fn got_conn(&self, info: &GotConnInfo) {
        self.push(Ev::GotConn);
        self.conns.lock().unwrap().push(info.clone());
    }
}

/// GET `url` with a fresh [`DialTrace`], body read as text.
fn fetch(c: &Client, url: &str) -> (nethttp::Result<String>, Arc<DialTrace>) {
    let tr = DialTrace::new();
    let res = c.get(url).trace(tr.clone()).send().and_then(Response::text);
    (res, tr)
}

/// [`fetch`] that must succeed.
#[track_caller]
fn text(c: &Client, url: &str) -> (String, Arc<DialTrace>) {
    let (res, tr) = fetch(c, url);
    match res {
        Ok(body) => (body, tr),
        Err(e) => panic!(
            "GET {url}: {e} (kind {:?}; chain: {}); hooks: {:?}",
            e.kind(),
            chain(&e),
            tr.events()
        ),
    }
}

/// [`fetch`] that must fail; returns the error.
#[track_caller]
fn fails(c: &Client, url: &str) -> (nethttp::Error, Arc<DialTrace>) {
    let (res, tr) = fetch(c, url);
    match res {
        Ok(body) => panic!("GET {url}: succeeded ({body:?}), want an error"),
        Err(e) => (e, tr),
    }
}

/// An error's message and those of its sources, joined.
fn chain(e: &nethttp::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(" <- ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// A request a [`recording_server`] received.
#[derive(Debug, Clone)]
struct Seen {
    /// The client's address as the server saw it.
    peer: SocketAddr,
    /// Which accepted connection it came on (0, 1, …).
    conn: usize,
    head: String,
}

impl Seen {
    fn host(&self) -> String {
        header_value(&self.head.to_ascii_lowercase(), "host")
            .unwrap_or("")
            .to_string()
    }
}

type SeenLog = Arc<Mutex<Vec<Seen>>>;

/// A keep-alive server on 127.0.0.1 answering every request with `body`,
/// recording each request.
fn recording_server(body: &'static str) -> (ScriptedServer, SeenLog) {
    let seen: SeenLog = Arc::default();
    let s = seen.clone();
    let server = ScriptedServer::start(move |mut c| {
        let Ok(peer) = c.stream.peer_addr() else {
            return;
        };
        while let Some((head, _)) = c.read_request() {
            s.lock().unwrap().push(Seen {
                peer,
                conn: c.index,
                head,
            });
            c.write(format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
    });
    (server, seen)
}

/// A scripted HTTP proxy that answers absolute-form requests itself with
/// `ok`, refuses `CONNECT` with 403, and records every head.
fn recording_proxy() -> (ScriptedServer, Arc<Mutex<Vec<String>>>) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let h = heads.clone();
    let server = ScriptedServer::start(move |mut c| {
        while let Some(head) = c.read_head() {
            let connect = head.starts_with("CONNECT ");
            h.lock().unwrap().push(head);
            if connect {
                c.write("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            } else {
                c.write("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nproxied!");
            }
        }
    });
    (server, heads)
}

/// The same as [`recording_proxy`] inside TLS ([`proxy_leaf`]'s
/// certificate): an `https://` proxy.
fn tls_recording_proxy() -> (TlsServer, Arc<Mutex<Vec<String>>>) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let h = heads.clone();
    let server = TlsServer::start(proxy_leaf().server_config(), move |mut c| {
        while let Some(head) = c.read_head() {
            let connect = head.starts_with("CONNECT ");
            h.lock().unwrap().push(head);
            let reply: &[u8] = if connect {
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nproxied!"
            };
            if c.write_all(reply).is_err() {
                return;
            }
        }
    });
    (server, heads)
}

/// A TLS server (certificate `leaf`) that answers every request with the
/// request's `Host` header as the body.
fn tls_host_echo(leaf: &support::tls::Leaf) -> TlsServer {
    TlsServer::start(leaf.server_config(), |c| {
        serve_keep_alive(c, |c, head, _| {
            let host = header_value(&head.to_ascii_lowercase(), "host")
                .unwrap_or("")
                .to_string();
            ok(c, host.as_bytes());
        });
    })
}

/// The resolver of transports that must resolve no name themselves (the
/// proxy does, or a Unix socket needs none): it refuses every name, so no
/// test name ever reaches the system's resolver (and DNS) by mistake.
fn no_resolving(host: &str, _: u16) -> io::Result<Vec<SocketAddr>> {
    Err(io::Error::other(format!(
        "{host} must not be resolved here (test resolver)"
    )))
}

/// An address of 127.0.0.1 where nothing listens (a moment ago).
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr
}

/// Prints a loud skip message past the harness's capture.
fn skip(test: &str, why: &str) {
    let msg = format!("\n*** SKIPPED {test}: {why} ***\n\n");
    let _ = io::stderr().write_all(msg.as_bytes());
}

/// Whether `[::1]` can be bound and connected to here; skips loudly when
/// not (some containers have no IPv6 loopback).
fn ipv6_loopback(test: &str) -> bool {
    let usable = TcpListener::bind((Ipv6Addr::LOCALHOST, 0))
        .and_then(|l| {
            let addr = l.local_addr()?;
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map(drop)
        })
        .is_ok();
    if !usable {
        skip(test, "no usable IPv6 loopback ([::1]) on this machine");
    }
    usable
}

/// A listener whose accept queue is full (backlog 0, filled by
/// connections nobody accepts), so further SYNs are dropped: a connect to
/// [`addr`](Self::addr) neither succeeds nor fails before its timeout.
struct Unanswered {
    addr: SocketAddr,
    _listener: socket2::Socket,
    _queue: Vec<socket2::Socket>,
}

/// An [`Unanswered`] listener on `ip`, checked: `None` (after a loud skip
/// message) when a plain connect to it does not time out here.
fn unanswered(ip: IpAddr, test: &str) -> Option<Unanswered> {
    use socket2::{Domain, Socket as Sock, Type};
    let domain = if ip.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let listener = Sock::new(domain, Type::STREAM, None).expect("socket");
    listener
        .bind(&SocketAddr::new(ip, 0).into())
        .expect("bind unanswered listener");
    listener.listen(0).expect("listen(0)");
    let addr = listener
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet addr");
    let mut queue = Vec::new();
    for _ in 0..8 {
        let s = Sock::new(domain, Type::STREAM, None).expect("socket");
        s.set_nonblocking(true).expect("nonblocking");
        let _ = s.connect(&addr.into()); // EINPROGRESS
        queue.push(s);
    }
    let probe = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
    match probe {
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Some(Unanswered {
            addr,
            _listener: listener,
            _queue: queue,
        }),
        other => {
            skip(
                test,
                &format!(
                    "a connect to a full accept queue on {addr} does not hang here \
                     ({other:?}), so there is no unanswered address to test with"
                ),
            );
            None
        }
    }
}

/// Copies bytes both ways between a client (`from_client`, `to_client`:
/// the two halves of one socket) and a new connection to `target`, until
/// both sides have closed.
fn relay(mut from_client: impl Read + Send + 'static, to_client: TcpStream, target: SocketAddr) {
    let Ok(up) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        return;
    };
    let _ = up.set_read_timeout(Some(Duration::from_secs(20)));
    let Ok(mut up_w) = up.try_clone() else {
        return;
    };
    let (mut up_r, mut down) = (up, to_client);
    let back = thread::spawn(move || {
        let _ = io::copy(&mut up_r, &mut down);
        let _ = down.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut from_client, &mut up_w);
    let _ = up_w.shutdown(Shutdown::Write);
    let _ = back.join();
}

/// What a scripted SOCKS5 proxy saw on one connection.
#[derive(Debug, Clone, Default)]
struct Socks5Seen {
    /// The methods the greeting offered.
    methods: Vec<u8>,
    /// The RFC 1929 username and password, when sent.
    auth: Option<(Vec<u8>, Vec<u8>)>,
    /// The request, exact: `VER CMD RSV ATYP DST.ADDR DST.PORT`.
    request: Vec<u8>,
}

/// A scripted SOCKS5 proxy (RFC 1928) on 127.0.0.1 that relays every
/// `CONNECT` to `target`, whatever it names. With `creds`, it chooses
/// username/password (RFC 1929) and accepts only these; without, "no
/// authentication". Records each connection's handshake.
fn socks5_proxy(
    creds: Option<(&'static str, &'static str)>,
    target: SocketAddr,
) -> (ScriptedServer, Arc<Mutex<Vec<Socks5Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = ScriptedServer::start(move |c| {
        let ScriptConn {
            mut reader,
            mut stream,
            ..
        } = c;
        let mut rec = Socks5Seen::default();
        let res = socks5_handshake(&mut reader, &mut stream, creds, &mut rec);
        s.lock().unwrap().push(rec);
        if res.is_ok() {
            relay(reader, stream, target);
        }
    });
    (server, seen)
}

fn socks5_handshake(
    r: &mut BufReader<TcpStream>,
    w: &mut TcpStream,
    creds: Option<(&'static str, &'static str)>,
    rec: &mut Socks5Seen,
) -> io::Result<()> {
    let refuse = |why: &str| Err(io::Error::other(why.to_string()));
    let mut head = [0u8; 2];
    r.read_exact(&mut head)?;
    if head[0] != 5 {
        return refuse("not SOCKS5");
    }
    let mut methods = vec![0; usize::from(head[1])];
    r.read_exact(&mut methods)?;
    rec.methods = methods.clone();
    match creds {
        Some((user, pass)) => {
            if !methods.contains(&2) {
                w.write_all(&[5, 0xFF])?;
                return refuse("username/password not offered");
            }
            w.write_all(&[5, 2])?;
            let mut v = [0u8; 2];
            r.read_exact(&mut v)?;
            let mut u = vec![0; usize::from(v[1])];
            r.read_exact(&mut u)?;
            let mut plen = [0u8; 1];
            r.read_exact(&mut plen)?;
            let mut p = vec![0; usize::from(plen[0])];
            r.read_exact(&mut p)?;
            rec.auth = Some((u.clone(), p.clone()));
            if v[0] != 1 || u != user.as_bytes() || p != pass.as_bytes() {
                w.write_all(&[1, 1])?;
                return refuse("wrong credentials");
            }
            w.write_all(&[1, 0])?;
        }
        None => {
            if !methods.contains(&0) {
                w.write_all(&[5, 0xFF])?;
                return refuse("no authentication not offered");
            }
            w.write_all(&[5, 0])?;
        }
    }
    let mut req = [0u8; 4];
    r.read_exact(&mut req)?;
    rec.request.extend_from_slice(&req);
    let rest = match req[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut n = [0u8; 1];
            r.read_exact(&mut n)?;
            rec.request.push(n[0]);
            usize::from(n[0]) + 2
        }
        _ => return refuse("bad ATYP"),
    };
    let mut tail = vec![0; rest];
    r.read_exact(&mut tail)?;
    rec.request.extend_from_slice(&tail);
    if req[0] != 5 || req[1] != 1 {
        w.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0])?;
        return refuse("not CONNECT");
    }
    w.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0x12, 0x34])?;
    Ok(())
}

/// A scripted SOCKS4/4a proxy on 127.0.0.1 that grants every `CONNECT`
/// and relays it to `target`. Records each request exactly (`VN CD
/// DSTPORT DSTIP USERID NUL [HOST NUL]`).
fn socks4_proxy(target: SocketAddr) -> (ScriptedServer, Arc<Mutex<Vec<Vec<u8>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = ScriptedServer::start(move |c| {
        let ScriptConn {
            mut reader,
            mut stream,
            ..
        } = c;
        let mut req = vec![0u8; 8];
        if reader.read_exact(&mut req).is_err() {
            return;
        }
        if reader.read_until(0, &mut req).is_err() {
            return;
        }
        let ip = [req[4], req[5], req[6], req[7]];
        if ip[..3] == [0, 0, 0] && ip[3] != 0 && reader.read_until(0, &mut req).is_err() {
            return;
        }
        s.lock().unwrap().push(req);
        if stream.write_all(&[0, 0x5A, 0, 0, 0, 0, 0, 0]).is_ok() {
            relay(reader, stream, target);
        }
    });
    (server, seen)
}

/// `Proxy::all(url)`, which must parse.
fn proxy(url: &str) -> Proxy {
    Proxy::all(url).unwrap_or_else(|e| panic!("Proxy::all({url}): {e}"))
}

/// Asserts `err` is kind `Proxy`, names `proxy_addr` and shows no
/// `password`.
#[track_caller]
fn assert_proxy_error(err: &nethttp::Error, proxy_addr: SocketAddr, password: &str, what: &str) {
    assert_eq!(err.kind(), ErrorKind::Proxy, "{what}: {err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&proxy_addr.to_string()),
        "{what}: the message names the proxy {proxy_addr}: {msg}"
    );
    assert!(
        !msg.contains(password) && !format!("{err:?}").contains(password),
        "{what}: the password shows: {msg} / {err:?}"
    );
}

// ---------------------------------------------------------------------
// resolve overrides
// ---------------------------------------------------------------------

/// `resolve(host, addrs)` dials the override's own address and port,
/// whatever port the URL names; `Host` is the URL's; connections pool by
/// the URL's host (two names on one address get a connection each) and
/// names match case-insensitively.
#[test]
fn resolve_override_dials_its_address_and_keeps_the_url_host() {
    let (server, seen) = recording_server("over");
    let t = Transport::builder()
        .proxy(Proxy::none())
        .resolve("example.test", [server.addr])
        .resolve("Other.TEST", [server.addr])
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    // Port 1 of the URL: nothing listens there, the override's port is used.
    for (i, path) in ["/a", "/b"].into_iter().enumerate() {
        let (body, tr) = text(&c, &format!("http://example.test:1{path}"));
        assert_eq!(body, "over");
        let conn = &tr.conns()[0];
        assert_eq!(conn.remote_addr, server.addr, "{conn:?}");
        assert_eq!(conn.reused, i == 1, "{conn:?}");
        if i == 0 {
            assert_eq!(tr.connect_starts(), [server.addr], "{:?}", tr.events());
        }
    }
    let (body, _) = text(&c, "http://other.test/c");
    assert_eq!(body, "over");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen[0].head.starts_with("GET /a HTTP/1.1\r\n"),
        "{}",
        seen[0].head
    );
    assert_eq!(seen[0].host(), "example.test:1", "Host is the URL's");
    assert_eq!(seen[2].host(), "other.test");
    assert_eq!(seen[0].conn, seen[1].conn, "one connection per URL host");
    assert_ne!(
        seen[2].conn, seen[0].conn,
        "another URL host on the same address: a connection of its own"
    );
    assert_eq!(server.accepted(), 2);
    wait_stats(&t, SETTLE, |s| s.idle == 2 && s.threads == 4);
}

/// With an override, TLS still checks the URL's name: a certificate for
/// `example.test` passes, the same server reached as `wrong.test` fails
/// with kind `Tls`.
#[test]
fn resolve_override_over_https_checks_the_url_name() {
    let ca = &pki().0;
    let server = tls_host_echo(&ca.leaf(&["example.test"], false));
    let t = Transport::builder()
        .proxy(Proxy::none())
        .tls_config(ca.client_config())
        .resolve("example.test", [server.addr])
        .resolve("wrong.test", [server.addr])
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    for i in 0..2 {
        let (body, tr) = text(&c, "https://example.test/host");
        assert_eq!(body, "example.test");
        assert_eq!(tr.conns()[0].reused, i == 1);
        assert_eq!(tr.conns()[0].remote_addr, server.addr);
    }
    let (body, _) = text(&c, "https://example.test:8443/host");
    assert_eq!(body, "example.test:8443");
    assert_eq!(server.accepted(), 2, "one connection per host:port");
    let (err, tr) = fails(&c, "https://wrong.test/host");
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}; {:?}", tr.events());
}

// ---------------------------------------------------------------------
// The Resolve hook
// ---------------------------------------------------------------------

/// A `Resolve` closure is asked once per new connection with the URL's
/// host and port; the DNS hooks report its answer; an error or an empty
/// answer is kind `Dns`; overrides come first and IP literals skip it.
#[test]
fn resolver_hook_is_asked_once_per_connection() {
    let (server, seen) = recording_server("hooked");
    let addr = server.addr;
    let calls = Arc::new(Mutex::new(Vec::<(String, u16)>::new()));
    let calls2 = calls.clone();
    let t = Transport::builder()
        .proxy(Proxy::none())
        .resolver(
            move |host: &str, port: u16| -> io::Result<Vec<SocketAddr>> {
                calls2.lock().unwrap().push((host.to_string(), port));
                match host {
                    "svc.test" => Ok(vec![addr]),
                    "empty.test" => Ok(vec![]),
                    _ => Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "no such test host (resolver hook)",
                    )),
                }
            },
        )
        .resolve("pinned.test", [addr])
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    let (body, tr) = text(&c, "http://svc.test:8123/x");
    assert_eq!(body, "hooked");
    assert_eq!(
        *calls.lock().unwrap(),
        [("svc.test".to_string(), 8123)],
        "the URL's host and port"
    );
    let events = tr.events();
    let start = tr.position(|e| *e == Ev::DnsStart("svc.test".into()));
    let done = tr.position(|e| *e == Ev::DnsDone(vec![addr]));
    let connect = tr.position(|e| *e == Ev::ConnectStart(addr));
    assert!(
        start.is_some() && start < done && done < connect,
        "dns_start, dns_done with the hook's answer, then connect_start: {events:?}"
    );
    assert_eq!(seen.lock().unwrap()[0].host(), "svc.test:8123");

    let (_, tr) = text(&c, "http://svc.test:8123/y");
    assert!(tr.conns()[0].reused);
    assert!(tr.dns_starts().is_empty(), "{:?}", tr.events());
    assert_eq!(
        calls.lock().unwrap().len(),
        1,
        "a reused connection asks nothing"
    );

    t.close_idle_connections();
    text(&c, "http://svc.test:8123/z");
    assert_eq!(
        calls.lock().unwrap().len(),
        2,
        "a new connection asks again"
    );

    let (err, _) = fails(&c, "http://nope.test/");
    assert_eq!(err.kind(), ErrorKind::Dns, "{err}");
    assert!(
        chain(&err).contains("no such test host"),
        "the hook's error is kept: {}",
        chain(&err)
    );
    let (err, _) = fails(&c, "http://empty.test/");
    assert_eq!(err.kind(), ErrorKind::Dns, "an empty answer: {err}");

    let before = calls.lock().unwrap().len();
    let (body, _) = text(&c, "http://pinned.test:5/");
    assert_eq!(body, "hooked");
    let (body, tr) = text(&c, &server.url("/literal"));
    assert_eq!(body, "hooked");
    assert!(tr.dns_starts().is_empty(), "{:?}", tr.events());
    assert_eq!(
        calls.lock().unwrap().len(),
        before,
        "overrides come first; IP literals are never resolved"
    );
}

// ---------------------------------------------------------------------
// The Dial hook
// ---------------------------------------------------------------------

/// A `Dial` closure gets each resolved address (and what is left of the
/// connect timeout), once per new connection; its socket carries the
/// requests; `GotConnInfo` has its addresses.
#[test]
fn dialer_hook_gets_the_resolved_address_and_its_socket_is_used() {
    let (server, _seen) = recording_server("dialled");
    let dialled = Arc::new(Mutex::new(Vec::<(SocketAddr, Option<Duration>)>::new()));
    let kept = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
    let (d, k) = (dialled.clone(), kept.clone());
    let t = Transport::builder()
        .proxy(Proxy::none())
        .connect_timeout(Some(Duration::from_secs(7)))
        .resolve("dial.test", [server.addr])
        .dialer(
            move |addr: SocketAddr, timeout: Option<Duration>| -> io::Result<Socket> {
                d.lock().unwrap().push((addr, timeout));
                let s =
                    TcpStream::connect_timeout(&addr, timeout.unwrap_or(Duration::from_secs(5)))?;
                k.lock().unwrap().push(s.try_clone()?);
                Ok(Socket::Tcp(s))
            },
        )
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    let (body, tr) = text(&c, "http://dial.test/");
    assert_eq!(body, "dialled");
    let (body, tr2) = text(&c, "http://dial.test/again");
    assert_eq!(body, "dialled");
    assert!(tr2.conns()[0].reused);
    let dialled = dialled.lock().unwrap().clone();
    assert_eq!(dialled.len(), 1, "{dialled:?}");
    assert_eq!(dialled[0].0, server.addr);
    let timeout = dialled[0].1.expect("the connect timeout is passed on");
    assert!(
        timeout > Duration::ZERO && timeout <= Duration::from_secs(7),
        "{timeout:?}"
    );
    let local = kept.lock().unwrap()[0].local_addr().unwrap();
    let conn = &tr.conns()[0];
    assert_eq!(
        (conn.local_addr, conn.remote_addr),
        (local, server.addr),
        "{conn:?}"
    );
    assert_eq!(
        tr.connect_done(server.addr),
        Some(Ok(())),
        "{:?}",
        tr.events()
    );
}

/// A failing `Dial` is kind `Connect`, keeps the dialer's error, and
/// `connect_done` reports it.
#[test]
fn a_failing_dialer_is_kind_connect() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 9));
    let t = Transport::builder()
        .proxy(Proxy::none())
        .dialer(|_: SocketAddr, _: Option<Duration>| -> io::Result<Socket> {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "refused by the test's dial policy",
            ))
        })
        .build();
    let _leaks = LeakCheck::new(&t);
    let (err, tr) = fails(&cl(&t), "http://127.0.0.1:9/");
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(
        chain(&err).contains("refused by the test's dial policy"),
        "{}",
        chain(&err)
    );
    assert_eq!(tr.connect_starts(), [addr], "{:?}", tr.events());
    assert!(
        matches!(tr.connect_done(addr), Some(Err(_))),
        "{:?}",
        tr.events()
    );
}

/// A `Dial` may return a Unix socket (here nginx's), for plain HTTP and
/// TLS; `GotConnInfo` then reports `0.0.0.0:0` for both ends.
#[test]
fn a_dialer_may_return_a_unix_socket() {
    let Some(nginx) = NginxUnix::start() else {
        return;
    };
    let sock = nginx.sock.clone();
    let t = Transport::builder()
        .proxy(Proxy::none())
        .dialer(
            move |_: SocketAddr, _: Option<Duration>| -> io::Result<Socket> {
                Ok(Socket::Unix(UnixStream::connect(&sock)?))
            },
        )
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    for i in 0..2 {
        let (body, tr) = text(&c, "http://127.0.0.1:9/hello");
        assert_eq!(body, UNIX_HELLO, "{}", nginx.error_log());
        let conn = &tr.conns()[0];
        assert_eq!((conn.local_addr, conn.remote_addr), (NO_ADDR, NO_ADDR));
        assert_eq!(conn.reused, i == 1, "{conn:?}");
    }
    let (body, _) = text(&c, "http://127.0.0.1:9/host");
    assert_eq!(body, "127.0.0.1:9");
    // TLS over the dialer's Unix socket; the certificate names localhost.
    let t2 = Transport::builder()
        .proxy(Proxy::none())
        .tls_config(pki().0.client_config())
        .dialer({
            let tls_sock = nginx.tls_sock.clone();
            move |_: SocketAddr, _: Option<Duration>| -> io::Result<Socket> {
                Ok(UnixStream::connect(&tls_sock)?.into())
            }
        })
        .resolve("localhost", [SocketAddr::from(([127, 0, 0, 1], 443))])
        .build();
    let _leaks2 = LeakCheck::new(&t2);
    let (body, tr) = text(&cl(&t2), "https://localhost/host");
    assert_eq!(body, "localhost");
    assert_eq!(tr.conns()[0].remote_addr, NO_ADDR);
}

// ---------------------------------------------------------------------
// unix_socket
// ---------------------------------------------------------------------

/// `unix_socket(path)`: every request goes to nginx's socket, `Host` from
/// the URL, pooled by the URL's host, both threads per connection and
/// none once closed; addresses `0.0.0.0:0` in `GotConnInfo` and the
/// connect hooks; no DNS.
#[test]
fn unix_socket_serves_requests_pooled_by_url_host() {
    let Some(nginx) = NginxUnix::start() else {
        return;
    };
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(Proxy::none())
        .unix_socket(&nginx.sock)
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    let (body, tr) = text(&c, "http://docker/hello");
    assert_eq!(body, UNIX_HELLO, "{}", nginx.error_log());
    let conn = &tr.conns()[0];
    assert_eq!((conn.local_addr, conn.remote_addr), (NO_ADDR, NO_ADDR));
    assert!(!conn.reused);
    assert!(tr.dns_starts().is_empty(), "{:?}", tr.events());
    assert_eq!(tr.connect_starts(), [NO_ADDR], "{:?}", tr.events());
    assert_eq!(tr.connect_done(NO_ADDR), Some(Ok(())), "{:?}", tr.events());

    let (body, tr) = text(&c, "http://docker/host");
    assert_eq!(body, "docker", "Host from the URL");
    assert!(tr.conns()[0].reused, "{:?}", tr.conns());
    wait_stats(&t, SETTLE, |s| {
        s.conns == 1 && s.idle == 1 && s.threads == 2
    });

    let big = c
        .get("http://docker/bytes/65536")
        .send()
        .and_then(Response::bytes)
        .expect("64 KiB over the socket");
    assert_eq!(big.len(), 65536);
    assert!(support::h2::is_pattern(&big));

    let (body, tr) = text(&c, "http://docker:2375/host");
    assert_eq!(body, "docker:2375");
    assert!(
        !tr.conns()[0].reused,
        "another host:port, another connection"
    );
    wait_stats(&t, SETTLE, |s| s.idle == 2 && s.threads == 4);
    t.close_idle_connections();
    wait_stats(&t, SETTLE, |s| s.conns == 0 && s.threads == 0);
}

/// nginx closes an idle connection on a Unix socket (after 200 ms): the
/// pool drops it at once, and the next request dials a new one.
#[test]
fn unix_socket_idle_close_by_the_server_is_seen() {
    let Some(nginx) = NginxUnix::start() else {
        return;
    };
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(Proxy::none())
        .unix_socket(&nginx.sock)
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    assert_eq!(text(&c, "http://docker/short").0, "short\n");
    wait_stats(&t, SETTLE, |s| s.conns == 0 && s.threads == 0);
    let (body, tr) = text(&c, "http://docker/hello");
    assert_eq!(body, UNIX_HELLO);
    assert!(!tr.conns()[0].reused);
}

/// HTTPS over `unix_socket`: TLS checks the URL's name (`localhost` is
/// on the certificate, `wrong.test` is not: kind `Tls`).
#[test]
fn unix_socket_carries_tls() {
    let Some(nginx) = NginxUnix::start() else {
        return;
    };
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(Proxy::none())
        .tls_config(pki().0.client_config())
        .unix_socket(&nginx.tls_sock)
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    for i in 0..2 {
        let (body, tr) = text(&c, "https://localhost/host");
        assert_eq!(body, "localhost", "{}", nginx.error_log());
        assert_eq!(tr.conns()[0].reused, i == 1);
        assert_eq!(tr.conns()[0].remote_addr, NO_ADDR);
    }
    let (err, _) = fails(&c, "https://wrong.test/host");
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
}

/// A socket path where nothing listens is kind `Connect`.
#[test]
fn a_missing_unix_socket_is_kind_connect() {
    let dir = support::peers::TempDir::new("no-socket");
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(Proxy::none())
        .unix_socket(dir.join("absent.sock"))
        .build();
    let _leaks = LeakCheck::new(&t);
    let (err, _) = fails(&cl(&t), "http://docker/");
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
}

// ---------------------------------------------------------------------
// Happy eyeballs and the connect timeout
// ---------------------------------------------------------------------

/// `[::1]` never answers, 127.0.0.1 does: with the default 300 ms delay
/// the IPv4 fallback starts and wins; `connect_start` fired for both, the
/// loser's `connect_done` carries an error (Go: the cancel), and the
/// connection is the IPv4 one. Nothing is left behind.
#[test]
fn happy_eyeballs_falls_back_to_the_other_family() {
    let test = "happy_eyeballs_falls_back_to_the_other_family";
    if !ipv6_loopback(test) {
        return;
    }
    let Some(dead) = unanswered(IpAddr::V6(Ipv6Addr::LOCALHOST), test) else {
        return;
    };
    let (live, _) = recording_server("live");
    let t = Transport::builder()
        .proxy(Proxy::none())
        .connect_timeout(Some(Duration::from_secs(10)))
        .resolve("dual.test", [dead.addr, live.addr])
        .build();
    let _leaks = LeakCheck::new(&t);
    let start = Instant::now();
    let (body, tr) = text(&cl(&t), "http://dual.test/");
    let took = start.elapsed();
    assert_eq!(body, "live");
    assert!(
        took >= Duration::from_millis(250),
        "the fallback waits for the delay: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(tr.conns()[0].remote_addr, live.addr);
    let starts = tr.connect_starts();
    assert_eq!(
        starts,
        [dead.addr, live.addr],
        "the first address's family first: {:?}",
        tr.events()
    );
    assert_eq!(
        tr.connect_done(live.addr),
        Some(Ok(())),
        "{:?}",
        tr.events()
    );
    let loser = wait_until(SETTLE, || tr.connect_done(dead.addr).is_some());
    assert!(
        loser && matches!(tr.connect_done(dead.addr), Some(Err(_))),
        "connect_done for the loser, with an error: {:?}",
        tr.events()
    );
    wait_stats(&t, SETTLE, |s| {
        s.conns == 1 && s.threads == 2 && s.dialing == 0
    });
}

/// Without happy eyeballs the addresses are tried in turn, and the dead
/// one costs only its share of the connect timeout (Go's partial
/// deadlines: 4 s over two addresses), not all of it.
#[test]
fn without_happy_eyeballs_addresses_are_tried_in_turn() {
    let test = "without_happy_eyeballs_addresses_are_tried_in_turn";
    if !ipv6_loopback(test) {
        return;
    }
    let Some(dead) = unanswered(IpAddr::V6(Ipv6Addr::LOCALHOST), test) else {
        return;
    };
    let (live, _) = recording_server("live");
    let t = Transport::builder()
        .proxy(Proxy::none())
        .happy_eyeballs_delay(None)
        .connect_timeout(Some(Duration::from_secs(4)))
        .resolve("dual.test", [dead.addr, live.addr])
        .build();
    let _leaks = LeakCheck::new(&t);
    let start = Instant::now();
    let (body, tr) = text(&cl(&t), "http://dual.test/");
    let took = start.elapsed();
    assert_eq!(body, "live");
    assert!(
        took >= Duration::from_secs(1),
        "the dead address had its share first: {took:?}"
    );
    assert!(
        took < Duration::from_millis(3500),
        "only a share of the 4 s timeout, not all of it: {took:?}"
    );
    let done_dead = tr.position(|e| matches!(e, Ev::ConnectDone(a, Some(_)) if *a == dead.addr));
    let start_live = tr.position(|e| *e == Ev::ConnectStart(live.addr));
    assert!(
        done_dead.is_some() && done_dead < start_live,
        "one at a time, in order: {:?}",
        tr.events()
    );
}

/// `connect_timeout` bounds the whole connect over all addresses: two
/// unanswered addresses with a 1 s timeout fail in well under 2 × 1 s,
/// with kind `Timeout` (or `Connect`); the same across families.
#[test]
fn connect_timeout_spans_every_address() {
    let test = "connect_timeout_spans_every_address";
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (Some(a), Some(b)) = (unanswered(v4, test), unanswered(v4, test)) else {
        return;
    };
    let mut cases = vec![("two IPv4", vec![a.addr, b.addr])];
    let v6 = if ipv6_loopback(test) {
        unanswered(IpAddr::V6(Ipv6Addr::LOCALHOST), test)
    } else {
        None
    };
    if let Some(v6) = &v6 {
        cases.push(("IPv6 then IPv4", vec![v6.addr, a.addr]));
    }
    for (what, addrs) in cases {
        let t = Transport::builder()
            .proxy(Proxy::none())
            .connect_timeout(Some(Duration::from_secs(1)))
            .resolve("dead.test", addrs)
            .build();
        let _leaks = LeakCheck::new(&t);
        let start = Instant::now();
        let (err, tr) = fails(&cl(&t), "http://dead.test/");
        let took = start.elapsed();
        assert!(
            matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
            "{what}: {err} ({:?})",
            err.kind()
        );
        assert!(
            took >= Duration::from_millis(500),
            "{what}: {took:?}: {:?}",
            tr.events()
        );
        assert!(
            took < Duration::from_millis(1800),
            "{what}: one timeout for the whole connect, not one per address: {took:?}"
        );
    }
}

/// A refused address falls through to the next at once (no waiting for
/// the timeout or the fallback delay).
#[test]
fn a_refused_address_falls_through_to_the_next() {
    let refused = closed_port();
    let (live, _) = recording_server("live");
    let t = Transport::builder()
        .proxy(Proxy::none())
        .resolve("two.test", [refused, live.addr])
        .build();
    let _leaks = LeakCheck::new(&t);
    let start = Instant::now();
    let (body, tr) = text(&cl(&t), "http://two.test/");
    assert_eq!(body, "live");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        tr.connect_starts(),
        [refused, live.addr],
        "{:?}",
        tr.events()
    );
    assert!(matches!(tr.connect_done(refused), Some(Err(_))));
    assert_eq!(tr.conns()[0].remote_addr, live.addr);
}

/// Happy eyeballs with a custom dialer: the IPv6 attempt (the dialer
/// takes 1 s, then connects) loses to the IPv4 fallback started after
/// 300 ms. The request does not wait for the loser; its racing thread is
/// counted while it runs; the socket it returns late is closed unused.
#[test]
fn happy_eyeballs_with_a_dialer_closes_the_late_loser() {
    let (live, _) = recording_server("live");
    // Where the slow IPv6 attempt really lands: it reports what it got.
    let (late_tx, late_rx) = mpsc::channel::<usize>();
    let late_tx = Mutex::new(late_tx);
    let late = ScriptedServer::start(move |mut c| {
        let mut got = Vec::new();
        let _ = c.reader.read_to_end(&mut got);
        let _ = late_tx.lock().unwrap().send(got.len());
    });
    let late_addr = late.addr;
    // Never contacted: the dialer maps it to `late`.
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 9));
    let t = Transport::builder()
        .proxy(Proxy::none())
        .resolve("race.test", [v6, live.addr])
        .dialer(
            move |addr: SocketAddr, _: Option<Duration>| -> io::Result<Socket> {
                if addr.is_ipv6() {
                    thread::sleep(Duration::from_secs(1));
                    return Ok(
                        TcpStream::connect_timeout(&late_addr, Duration::from_secs(2))?.into(),
                    );
                }
                Ok(TcpStream::connect_timeout(&addr, Duration::from_secs(2))?.into())
            },
        )
        .build();
    let _leaks = LeakCheck::new(&t);
    let start = Instant::now();
    let (body, tr) = text(&cl(&t), "http://race.test/");
    let took = start.elapsed();
    assert_eq!(body, "live");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(900),
        "won by the fallback after the delay, without waiting for the loser: {took:?}"
    );
    let racing = t.stats();
    assert!(
        racing.threads >= 3,
        "the loser's racing thread is counted while it runs: {racing:?}"
    );
    assert_eq!(tr.conns()[0].remote_addr, live.addr);
    let sent = late_rx
        .recv_timeout(SETTLE)
        .expect("the late loser's socket is closed");
    assert_eq!(sent, 0, "nothing is sent on the loser");
    wait_stats(&t, SETTLE, |s| {
        s.threads == 2 && s.conns == 1 && s.dialing == 0
    });
    assert!(
        wait_until(SETTLE, || tr.connect_done(v6).is_some()),
        "connect_done for every connect_start: {:?}",
        tr.events()
    );
}

// ---------------------------------------------------------------------
// Local address and TCP options
// ---------------------------------------------------------------------

/// `local_address` binds the source address (127.0.0.2, so it shows);
/// one of the other family than every target address fails fast with
/// kind `Connect`.
#[test]
fn local_address_binds_the_source() {
    let test = "local_address_binds_the_source";
    let (server, seen) = recording_server("bound");
    let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    if TcpListener::bind((src, 0)).is_err() {
        skip(test, "127.0.0.2 cannot be bound here");
        return;
    }
    let t = Transport::builder()
        .proxy(Proxy::none())
        .local_address(Some(src))
        .build();
    let _leaks = LeakCheck::new(&t);
    let (body, tr) = text(&cl(&t), &server.url("/"));
    assert_eq!(body, "bound");
    assert_eq!(seen.lock().unwrap()[0].peer.ip(), src);
    assert_eq!(tr.conns()[0].local_addr.ip(), src);

    let t6 = Transport::builder()
        .proxy(Proxy::none())
        .local_address(Some(IpAddr::V6(Ipv6Addr::LOCALHOST)))
        .build();
    let _leaks6 = LeakCheck::new(&t6);
    let start = Instant::now();
    let (err, _) = fails(&cl(&t6), &server.url("/"));
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.accepted(), 1);
}

/// `tcp_nodelay` and `tcp_keepalive` apply to a custom dialer's TCP
/// socket too (the builder's doc): defaults are nodelay on, keepalive off.
#[test]
fn tcp_options_apply_to_a_dialers_socket() {
    let (server, _) = recording_server("opts");
    let kept = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
    let dialer = {
        let kept = kept.clone();
        move |addr: SocketAddr, _: Option<Duration>| -> io::Result<Socket> {
            let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            kept.lock().unwrap().push(s.try_clone()?);
            Ok(s.into())
        }
    };
    let defaults = Transport::builder()
        .proxy(Proxy::none())
        .dialer(dialer.clone())
        .build();
    let _leaks = LeakCheck::new(&defaults);
    let set = Transport::builder()
        .proxy(Proxy::none())
        .dialer(dialer)
        .tcp_nodelay(false)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .build();
    let _leaks2 = LeakCheck::new(&set);
    assert_eq!(text(&cl(&defaults), &server.url("/")).0, "opts");
    assert_eq!(text(&cl(&set), &server.url("/")).0, "opts");
    let kept = kept.lock().unwrap();
    let opts = |s: &TcpStream| {
        (
            s.nodelay().unwrap(),
            socket2::SockRef::from(s).keepalive().unwrap(),
        )
    };
    assert_eq!(
        opts(&kept[0]),
        (true, false),
        "defaults: nodelay, no keepalive"
    );
    assert_eq!(opts(&kept[1]), (false, true), "as set");
}

/// The built-in dialer with keepalive on and nodelay off still works
/// (its socket cannot be seen from outside to check the options).
#[test]
fn builtin_dialer_with_tcp_options_works() {
    let (server, _) = recording_server("fine");
    let t = Transport::builder()
        .proxy(Proxy::none())
        .tcp_keepalive(Some(Duration::from_secs(15)))
        .tcp_nodelay(false)
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    for _ in 0..2 {
        assert_eq!(text(&c, &server.url("/")).0, "fine");
    }
    assert_eq!(server.accepted(), 1);
}

// ---------------------------------------------------------------------
// SOCKS through Dante
// ---------------------------------------------------------------------

/// socks5 resolves names here (the override's address reaches Dante as
/// `ATYP 1`, never the name); socks5h hands the name to Dante (`ATYP 3`),
/// which resolves `localhost` itself: no resolver is asked and no DNS hook
/// fires. The TCP peer is the proxy.
#[test]
fn socks5_and_socks5h_through_dante() {
    let Some(dante) = Danted::start() else {
        return;
    };
    let target = InteropServer::start(2);
    let port = target.addr.port();
    let asked = Arc::new(AtomicUsize::new(0));

    let t = Transport::builder()
        .proxy(proxy(&dante.url("socks5")))
        .resolve("only-here.test", [target.addr])
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    for i in 0..2 {
        let (body, tr) = text(&c, &format!("http://only-here.test:{port}/hello"));
        assert_eq!(body, "hello, world!", "{}", dante.log());
        assert_eq!(tr.conns()[0].remote_addr, dante.addr());
        assert_eq!(tr.conns()[0].reused, i == 1);
    }
    let requests = dante.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains(&format!("ATYP: 1 address: 127.0.0.1.{port}"))),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.contains("only-here")),
        "socks5 sends the address, not the name: {requests:?}"
    );

    let a = asked.clone();
    let th = Transport::builder()
        .proxy(proxy(&dante.url("socks5h")))
        .resolver(move |_: &str, _: u16| -> io::Result<Vec<SocketAddr>> {
            a.fetch_add(1, Ordering::SeqCst);
            Err(io::Error::other("socks5h must not resolve here"))
        })
        .build();
    let _leaks_h = LeakCheck::new(&th);
    let (body, tr) = text(&cl(&th), &format!("http://localhost:{port}/hello"));
    assert_eq!(body, "hello, world!", "{}", dante.log());
    assert_eq!(tr.conns()[0].remote_addr, dante.addr());
    assert!(tr.dns_starts().is_empty(), "{:?}", tr.events());
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    let requests = dante.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains(&format!("ATYP: 3 address: localhost.{port}"))),
        "socks5h sends the name: {requests:?}"
    );
}

/// HTTPS through Dante: TLS end to end inside the SOCKS tunnel, for
/// socks5 (an IP literal) and socks5h (a name Dante resolves).
#[test]
fn https_through_dante() {
    let Some(dante) = Danted::start() else {
        return;
    };
    let target = tls_host_echo(&pki().1);
    let port = target.addr.port();
    for scheme in ["socks5", "socks5h"] {
        let t = Transport::builder()
            .resolver(no_resolving)
            .proxy(proxy(&dante.url(scheme)))
            .tls_config(pki().0.client_config())
            .build();
        let _leaks = LeakCheck::new(&t);
        let c = cl(&t);
        let host = if scheme == "socks5h" {
            "localhost"
        } else {
            "127.0.0.1"
        };
        for i in 0..2 {
            let (body, tr) = text(&c, &format!("https://{host}:{port}/"));
            assert_eq!(body, format!("{host}:{port}"), "{scheme}: {}", dante.log());
            assert_eq!(tr.conns()[0].reused, i == 1, "{scheme}");
            assert_eq!(tr.conns()[0].remote_addr, dante.addr(), "{scheme}");
        }
    }
    assert_eq!(target.accepted(), 2);
}

/// socks4 through Dante: IPv4 only, names resolved here (the override).
#[test]
fn socks4_through_dante() {
    let Some(dante) = Danted::start() else {
        return;
    };
    let target = InteropServer::start(2);
    let port = target.addr.port();
    let t = Transport::builder()
        .proxy(proxy(&dante.url("socks4")))
        .resolve("v4.test", [target.addr])
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    assert_eq!(text(&c, &target.url("/hello")).0, "hello, world!");
    t.close_idle_connections();
    assert_eq!(
        text(&c, &format!("http://v4.test:{port}/hello")).0,
        "hello, world!"
    );
    let requests = dante.requests();
    let want = format!("VER: 4 CMD: 1 address: 127.0.0.1.{port}");
    assert_eq!(
        requests.iter().filter(|r| r.contains(&want)).count(),
        2,
        "{requests:?}"
    );
}

/// A SOCKS connection is keyed by proxy and target: two targets through
/// one proxy never share one (an HTTP proxy's would).
#[test]
fn socks_connections_are_never_shared_between_targets() {
    let Some(dante) = Danted::start() else {
        return;
    };
    let (a, seen_a) = recording_server("a");
    let (b, seen_b) = recording_server("b");
    let t = Transport::builder()
        .proxy(proxy(&dante.url("socks5")))
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    for _ in 0..2 {
        assert_eq!(text(&c, &a.url("/")).0, "a");
        assert_eq!(text(&c, &b.url("/")).0, "b");
    }
    wait_stats(&t, SETTLE, |s| s.conns == 2 && s.idle == 2);
    assert_eq!((a.accepted(), b.accepted()), (1, 1));
    assert_eq!(seen_a.lock().unwrap().len(), 2);
    assert_eq!(seen_b.lock().unwrap().len(), 2);
}

/// Dante cannot reach the target (a closed port): kind `Proxy`, naming
/// the proxy.
#[test]
fn a_socks_refusal_is_a_proxy_error() {
    let Some(dante) = Danted::start() else {
        return;
    };
    // Credentials that Dante does not ask for (it chooses no auth).
    let t = Transport::builder()
        .proxy(proxy(&format!("socks5://ann:s3cret@{}", dante.addr())))
        .build();
    let _leaks = LeakCheck::new(&t);
    let target = closed_port();
    let (err, _) = fails(&cl(&t), &format!("http://{target}/"));
    assert_proxy_error(&err, dante.addr(), "s3cret", "target refused");
}

/// A SOCKS proxy that cannot be reached: kind `Proxy`, the message names
/// it, and the password in its URL never shows.
#[test]
fn an_unreachable_socks_proxy_is_a_proxy_error() {
    let dead = closed_port();
    for scheme in ["socks5", "socks5h", "socks4", "socks4a"] {
        let t = Transport::builder()
            .proxy(proxy(&format!("{scheme}://ann:s3cret@{dead}")))
            .build();
        let _leaks = LeakCheck::new(&t);
        let (err, _) = fails(&cl(&t), "http://127.0.0.1:9/");
        assert_proxy_error(&err, dead, "s3cret", scheme);
    }
}

// ---------------------------------------------------------------------
// SOCKS against scripted proxies: exact bytes, RFC 1929, socks4a
// ---------------------------------------------------------------------

/// The exact SOCKS5 requests: `ATYP 1` for an IPv4 target, `ATYP 4` for
/// an IPv6 literal (socks5), `ATYP 3` with the name for socks5h. Without
/// credentials only "no authentication" is offered.
#[test]
fn socks5_request_bytes() {
    let target = InteropServer::start(2);
    let (proxy_srv, seen) = socks5_proxy(None, target.addr);
    let c5 = Transport::builder()
        .resolver(no_resolving)
        .proxy(proxy(&format!("socks5://{}", proxy_srv.addr)))
        .build();
    let _leaks = LeakCheck::new(&c5);
    let c5h = Transport::builder()
        .resolver(no_resolving)
        .proxy(proxy(&format!("socks5h://{}", proxy_srv.addr)))
        .build();
    let _leaks_h = LeakCheck::new(&c5h);
    // The proxy relays every request to `target`, whatever it names: the
    // IPv6 and .test targets are never contacted.
    let body = |t: &Transport, url: &str| text(&cl(t), url).0;
    assert_eq!(body(&c5, "http://127.0.0.1:8081/hello"), "hello, world!");
    assert_eq!(body(&c5, "http://[::1]:8082/hello"), "hello, world!");
    assert_eq!(body(&c5h, "http://named.test:8083/hello"), "hello, world!");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for s in &seen {
        assert_eq!(s.methods, [0], "no credentials: no auth only: {s:?}");
        assert!(s.auth.is_none());
    }
    assert_eq!(seen[0].request, [5, 1, 0, 1, 127, 0, 0, 1, 0x1F, 0x91]);
    let mut v6 = vec![5, 1, 0, 4];
    v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    v6.extend_from_slice(&[0x1F, 0x92]);
    assert_eq!(seen[1].request, v6);
    let mut named = vec![5, 1, 0, 3, 10];
    named.extend_from_slice(b"named.test");
    named.extend_from_slice(&[0x1F, 0x93]);
    assert_eq!(seen[2].request, named);
}

/// RFC 1929: with credentials in the URL (percent-decoded) the greeting
/// offers both "no authentication" and username/password, the proxy picks
/// the latter and checks them; wrong ones are kind `Proxy` without the
/// password in the message; a proxy may still choose no authentication.
#[test]
fn socks5_username_password() {
    let target = InteropServer::start(2);
    let (strict, seen) = socks5_proxy(Some(("us er", "p@ss:w")), target.addr);
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(proxy(&format!(
            "socks5h://us%20er:p%40ss%3Aw@{}",
            strict.addr
        )))
        .build();
    let _leaks = LeakCheck::new(&t);
    assert_eq!(text(&cl(&t), "http://auth.test/hello").0, "hello, world!");
    let first = seen.lock().unwrap()[0].clone();
    let mut methods = first.methods.clone();
    methods.sort_unstable();
    assert_eq!(methods, [0, 2], "both offered: {first:?}");
    assert_eq!(
        first.auth,
        Some((b"us er".to_vec(), b"p@ss:w".to_vec())),
        "{first:?}"
    );

    let wrong = Transport::builder()
        .resolver(no_resolving)
        .proxy(proxy(&format!(
            "socks5h://us%20er:Wr0ngPass@{}",
            strict.addr
        )))
        .build();
    let _leaks_w = LeakCheck::new(&wrong);
    let (err, _) = fails(&cl(&wrong), "http://auth.test/hello");
    assert_proxy_error(&err, strict.addr, "Wr0ngPass", "wrong password");

    let none = Transport::builder()
        .resolver(no_resolving)
        .proxy(proxy(&format!("socks5h://{}", strict.addr)))
        .build();
    let _leaks_n = LeakCheck::new(&none);
    let (err, _) = fails(&cl(&none), "http://auth.test/hello");
    assert_proxy_error(&err, strict.addr, "p@ss:w", "no credentials");

    let (lax, lax_seen) = socks5_proxy(None, target.addr);
    let chooses_none = Transport::builder()
        .resolver(no_resolving)
        .proxy(proxy(&format!("socks5h://u:pw@{}", lax.addr)))
        .build();
    let _leaks_l = LeakCheck::new(&chooses_none);
    assert_eq!(
        text(&cl(&chooses_none), "http://auth.test/hello").0,
        "hello, world!"
    );
    assert!(lax_seen.lock().unwrap()[0].auth.is_none());
}

/// socks4a (Dante 1.4.2 has none): a name goes to the proxy after the
/// `0.0.0.x` address and the user id from the URL; an IPv4 literal is sent
/// as the address, with no name.
#[test]
fn socks4a_request_bytes() {
    let target = InteropServer::start(2);
    let (proxy_srv, seen) = socks4_proxy(target.addr);
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(proxy(&format!("socks4a://alice@{}", proxy_srv.addr)))
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    assert_eq!(
        text(&c, "http://named4a.test:8084/hello").0,
        "hello, world!"
    );
    assert_eq!(text(&c, "http://127.0.0.1:8085/hello").0, "hello, world!");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let named = &seen[0];
    assert_eq!(&named[..4], &[4, 1, 0x1F, 0x94], "{named:?}");
    assert_eq!(&named[4..7], &[0, 0, 0], "{named:?}");
    assert_ne!(named[7], 0, "{named:?}");
    assert_eq!(&named[8..], b"alice\0named4a.test\0");
    assert_eq!(
        seen[1],
        [&[4, 1, 0x1F, 0x95, 127, 0, 0, 1][..], b"alice\0"].concat()
    );
}

// ---------------------------------------------------------------------
// https:// proxies
// ---------------------------------------------------------------------

/// stunnel + tinyproxy as an `https://` proxy: a plain `http://` target
/// in absolute form inside the TLS, byte-exact. tinyproxy closes its
/// client connection after every response (it has no client keep-alive:
/// curl sees the same), so each request dials the proxy anew; reuse of an
/// `https://` proxy connection is checked against the scripted proxy in
/// `https_proxy_heads_carry_proxy_headers`.
#[test]
fn https_proxy_carries_plain_http_targets() {
    let Some(proxy_peer) = StunnelProxy::start() else {
        return;
    };
    let target = InteropServer::start(2);
    let t = Transport::builder()
        .proxy(proxy(&proxy_peer.url()))
        .tls_config(proxy_peer.client_config())
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    for _ in 0..3 {
        let (body, tr) = text(&c, &target.url("/hello"));
        assert_eq!(body, "hello, world!", "{}", proxy_peer.log());
        let conn = &tr.conns()[0];
        assert_eq!(conn.remote_addr, proxy_peer.addr(), "{conn:?}");
    }
    let big = c
        .get(target.url("/bytes/300000"))
        .send()
        .and_then(Response::bytes)
        .expect("300 kB through the https proxy");
    assert_eq!(big.len(), 300_000);
    assert!(big.iter().enumerate().all(|(i, b)| *b == pattern(i)));
}

/// The same proxy for an `https://` target: CONNECT inside TLS, then TLS
/// to the target inside that (TLS in TLS), one tunnel reused.
#[test]
fn https_proxy_tunnels_https_targets() {
    let Some(proxy_peer) = StunnelProxy::start() else {
        return;
    };
    let target = tls_host_echo(&pki().1);
    let t = Transport::builder()
        .proxy(proxy(&proxy_peer.url()))
        .tls_config(proxy_peer.client_config())
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    for i in 0..3 {
        let (body, tr) = text(&c, &target.url("/"));
        assert_eq!(body, target.addr.to_string(), "{}", proxy_peer.log());
        let conn = &tr.conns()[0];
        assert_eq!(conn.remote_addr, proxy_peer.addr(), "{conn:?}");
        assert_eq!(conn.reused, i > 0, "{conn:?}");
    }
    assert_eq!(target.accepted(), 1);
}

/// TLS to an `https://` proxy is checked with the transport's roots: a
/// proxy certificate they do not trust is kind `Proxy`, naming it.
#[test]
fn an_untrusted_https_proxy_is_a_proxy_error() {
    let (proxy_srv, heads) = tls_recording_proxy();
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(proxy(&format!("https://u:Pr0xyPw@{}", proxy_srv.addr)))
        .tls_config(Ca::new("some other CA").client_config())
        .build();
    let _leaks = LeakCheck::new(&t);
    for url in ["http://plain.test/", "https://secure.test/"] {
        let (err, _) = fails(&cl(&t), url);
        assert_proxy_error(&err, proxy_srv.addr, "Pr0xyPw", url);
    }
    assert!(heads.lock().unwrap().is_empty());
}

/// Exact heads inside TLS to an `https://` proxy: absolute form for
/// `http://` targets (two requests on one reused connection), CONNECT
/// for `https://` ones, each with the `Proxy::headers` and the
/// credentials; a refused CONNECT is kind `Proxy`.
#[test]
fn https_proxy_heads_carry_proxy_headers() {
    let (proxy_srv, heads) = tls_recording_proxy();
    let mut extra = HeaderMap::new();
    extra.insert("x-proxy-token", HeaderValue::from_static("t0ken"));
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(proxy(&format!("https://u:p@{}", proxy_srv.addr)).headers(extra))
        .tls_config(pki().0.client_config())
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    for i in 0..2 {
        let (body, tr) = text(&c, "http://plain.test/x?q=1");
        assert_eq!(body, "proxied!");
        let conn = &tr.conns()[0];
        assert_eq!(conn.remote_addr, proxy_srv.addr, "{conn:?}");
        assert_eq!(
            conn.reused,
            i == 1,
            "one TLS connection to the proxy: {conn:?}"
        );
    }
    assert_eq!(proxy_srv.accepted(), 1);
    let (err, _) = fails(&c, "https://secure.test/y");
    assert_eq!(err.kind(), ErrorKind::Proxy, "{err}");
    assert!(err.to_string().contains("403"), "{err}");
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 3, "{heads:?}");
    let (get, connect) = (&heads[0], &heads[2]);
    assert_eq!(heads[0], heads[1]);
    assert!(
        get.starts_with("GET http://plain.test/x?q=1 HTTP/1.1\r\n"),
        "{get}"
    );
    assert!(
        connect.starts_with("CONNECT secure.test:443 HTTP/1.1\r\n"),
        "{connect}"
    );
    for head in [get, connect] {
        let lower = head.to_ascii_lowercase();
        assert_eq!(
            header_value(&lower, "x-proxy-token"),
            Some("t0ken"),
            "{head}"
        );
        assert_eq!(
            header_value(&lower, "proxy-authorization"),
            Some("basic dtpw"),
            "{head}"
        );
    }
}

/// `Proxy::headers` on a plain `http://` proxy: on the absolute-form
/// request and on CONNECT.
#[test]
fn proxy_headers_reach_an_http_proxy() {
    let (proxy_srv, heads) = recording_proxy();
    let mut extra = HeaderMap::new();
    extra.insert("x-proxy-token", HeaderValue::from_static("t0ken"));
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(proxy(&format!("http://{}", proxy_srv.addr)).headers(extra))
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    assert_eq!(text(&c, "http://plain.test/x").0, "proxied!");
    let (err, _) = fails(&c, "https://secure.test/y");
    assert_eq!(err.kind(), ErrorKind::Proxy, "{err}");
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(heads[0].starts_with("GET http://plain.test/x HTTP/1.1\r\n"));
    assert!(heads[1].starts_with("CONNECT secure.test:443 HTTP/1.1\r\n"));
    for head in &heads {
        assert_eq!(
            header_value(&head.to_ascii_lowercase(), "x-proxy-token"),
            Some("t0ken"),
            "{head}"
        );
    }
}

// ---------------------------------------------------------------------
// Proxy::custom
// ---------------------------------------------------------------------

/// `Proxy::custom` picks per request: one host through a proxy, another
/// direct; the function is asked once per request.
#[test]
fn proxy_custom_routes_per_request() {
    let (proxy_srv, heads) = recording_proxy();
    let (direct, direct_seen) = recording_server("direct");
    let proxy_url = format!("http://{}", proxy_srv.addr);
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(Proxy::custom(move |u: &Url| {
            a.fetch_add(1, Ordering::SeqCst);
            (u.host_str() == Some("via.test")).then(|| Url::parse(&proxy_url).unwrap())
        }))
        .build();
    let _leaks = LeakCheck::new(&t);
    let c = cl(&t);
    assert_eq!(text(&c, "http://via.test/p").0, "proxied!");
    assert_eq!(text(&c, &direct.url("/d")).0, "direct");
    assert_eq!(text(&c, "http://via.test/q").0, "proxied!");
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(heads[0].starts_with("GET http://via.test/p HTTP/1.1\r\n"));
    assert_eq!(direct_seen.lock().unwrap().len(), 1);
    assert!(
        direct_seen.lock().unwrap()[0]
            .head
            .starts_with("GET /d HTTP/1.1\r\n")
    );
    assert_eq!(asked.load(Ordering::SeqCst), 3);
}

/// A `Proxy::custom` answer that is no proxy URL fails that request with
/// kind `Proxy`.
#[test]
fn proxy_custom_with_an_unsupported_scheme_is_kind_proxy() {
    let (direct, _) = recording_server("direct");
    let t = Transport::builder()
        .resolver(no_resolving)
        .proxy(Proxy::custom(|_: &Url| Url::parse("ftp://x").ok()))
        .build();
    let _leaks = LeakCheck::new(&t);
    let (err, _) = fails(&cl(&t), &direct.url("/"));
    assert_eq!(err.kind(), ErrorKind::Proxy, "{err}");
    assert_eq!(direct.accepted(), 0);
}
