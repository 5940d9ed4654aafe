//! TLS test support: certificates made at test time (rcgen), a rustls
//! server on 127.0.0.1 that runs a script per connection, a trace that
//! records the TLS hooks, pattern bodies that verify without storing, and
//! a thread dump for hangs.

use std::{
    io::{self, Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{ClientTrace, ErrorKind, GotConnInfo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::{
    ClientConfig, RootCertStore, ServerConfig, ServerConnection,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
};

use super::Recorder;

/// The ring provider, chosen explicitly (no process default needed).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A test certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its private key.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key_pkcs8: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("ca key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("self-signed ca"),
        }
    }

    pub fn cert(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// The CA certificate in PEM, for trust-store files.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP literals),
    /// signed by this CA. `expired`: valid only during 2020.
    pub fn leaf(&self, names: &[&str], expired: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.is_ca = IsCa::NoCa;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &*self.issuer).expect("sign leaf");
        Leaf {
            cert: cert.der().clone(),
            key_pkcs8: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A client configuration that trusts this CA only: the ring provider,
    /// safe default versions, ALPN `http/1.1`.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert()).expect("add test ca");
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl Leaf {
    /// A server configuration (TLS 1.2 and 1.3, ALPN `http/1.1`, rustls
    /// defaults otherwise: two TLS 1.3 session tickets per handshake).
    pub fn server_config(&self) -> ServerConfig {
        self.server_config_versions(rustls::DEFAULT_VERSIONS)
    }

    pub fn server_config_versions(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> ServerConfig {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .expect("server cert");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }
}

/// One shared CA with a leaf for `localhost` and `127.0.0.1`, made once per
/// test binary.
pub fn pki() -> &'static (Ca, Leaf) {
    static PKI: std::sync::OnceLock<(Ca, Leaf)> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let ca = Ca::new("nethttp test CA");
        let leaf = ca.leaf(&["localhost", "127.0.0.1"], false);
        (ca, leaf)
    })
}

/// An accepted TCP connection before its TLS handshake.
pub struct Accepted {
    pub sock: TcpStream,
    pub index: usize,
    config: Arc<ServerConfig>,
    handshake_failures: Arc<AtomicUsize>,
}

impl Accepted {
    /// Runs the server side of the handshake and flushes what follows it
    /// (TLS 1.3 session tickets).
    pub fn handshake(self) -> io::Result<TlsConn> {
        let mut sock = self.sock;
        let mut tls = ServerConnection::new(self.config).map_err(io::Error::other)?;
        let res = (|| {
            while tls.is_handshaking() {
                tls.complete_io(&mut sock)?;
            }
            while tls.wants_write() {
                tls.write_tls(&mut sock)?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            self.handshake_failures.fetch_add(1, Ordering::SeqCst);
            return Err(e);
        }
        Ok(TlsConn {
            tls,
            sock,
            index: self.index,
            rbuf: Vec::new(),
            rpos: 0,
            key_updates: 0,
        })
    }
}

/// The server side of one TLS connection, for scripts.
pub struct TlsConn {
    pub tls: ServerConnection,
    pub sock: TcpStream,
    /// 0 for the first connection the server accepted, 1 for the next, …
    pub index: usize,
    /// Plaintext read ahead of the caller (after a head).
    rbuf: Vec<u8>,
    rpos: usize,
    /// Key updates this side requested.
    pub key_updates: usize,
}

impl TlsConn {
    fn stream(&mut self) -> rustls::Stream<'_, ServerConnection, TcpStream> {
        rustls::Stream::new(&mut self.tls, &mut self.sock)
    }

    /// Reads plaintext; `Ok(0)` at the end (`close_notify` or a bare FIN).
    pub fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.rpos < self.rbuf.len() {
            let n = (self.rbuf.len() - self.rpos).min(out.len());
            out[..n].copy_from_slice(&self.rbuf[self.rpos..self.rpos + n]);
            self.rpos += n;
            return Ok(n);
        }
        match self.stream().read(out) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }

    /// Reads one request head; `None` at EOF or on an error.
    pub fn read_head(&mut self) -> Option<String> {
        loop {
            let pending = &self.rbuf[self.rpos..];
            if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&pending[..i + 4]).into_owned();
                self.rpos += i + 4;
                return Some(head);
            }
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
            let mut tmp = [0u8; 16 * 1024];
            match self.stream().read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.rbuf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// Reads a request head and its `Content-Length` body.
    pub fn read_request(&mut self) -> Option<(String, Vec<u8>)> {
        let head = self.read_head()?;
        let len = content_length(&head).unwrap_or(0);
        let mut body = vec![0; len as usize];
        let mut got = 0;
        while got < body.len() {
            match self.read(&mut body[got..]) {
                Ok(0) | Err(_) => return None,
                Ok(n) => got += n,
            }
        }
        Some((head, body))
    }

    /// Reads and throws away up to `n` bytes; returns how many came.
    pub fn discard(&mut self, n: u64) -> u64 {
        let mut buf = vec![0; 64 * 1024];
        let mut got = 0;
        while got < n {
            let want = (n - got).min(buf.len() as u64) as usize;
            match self.read(&mut buf[..want]) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k as u64,
            }
        }
        got
    }

    /// Writes plaintext and sends every record it makes (and anything
    /// queued before it, such as a key update).
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream().write_all(data)?;
        self.flush()
    }

    /// Sends every queued record.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.tls.write_tls(&mut self.sock)?;
        }
        self.sock.flush()
    }

    /// Queues a TLS 1.3 KeyUpdate (update_requested); it goes out with the
    /// next write or flush.
    pub fn key_update(&mut self) -> io::Result<()> {
        self.tls.refresh_traffic_keys().map_err(io::Error::other)?;
        self.key_updates += 1;
        Ok(())
    }

    /// `close_notify`, then FIN; drains what the client still sends.
    pub fn close_notify(mut self) {
        self.tls.send_close_notify();
        let _ = self.flush();
        self.finish();
    }

    /// FIN without `close_notify` (a truncation as TLS sees it); drains
    /// what the client still sends.
    pub fn fin(mut self) {
        let _ = self.flush();
        self.finish();
    }

    /// Waits (bounded) until the client closes, without sending anything.
    /// True when the client closed the connection.
    pub fn wait_client_close(&mut self, limit: Duration) -> bool {
        let _ = self.sock.set_read_timeout(Some(limit));
        let mut buf = [0u8; 4096];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }

    /// Reads (discarding plaintext) until the client's side ends, at most
    /// `limit`, and says how it ended.
    pub fn read_end(&mut self, limit: Duration) -> PeerEnd {
        let _ = self.sock.set_read_timeout(Some(limit));
        let mut buf = [0u8; 4096];
        if self.rpos < self.rbuf.len() {
            self.rpos = self.rbuf.len();
        }
        loop {
            match self.stream().read(&mut buf) {
                Ok(0) => return PeerEnd::CloseNotify,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return PeerEnd::Fin,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return PeerEnd::Timeout;
                }
                Err(e) => return PeerEnd::Error(e.to_string()),
            }
        }
    }

    fn finish(self) {
        let _ = self.sock.shutdown(Shutdown::Write);
        let _ = self.sock.set_read_timeout(Some(Duration::from_secs(5)));
        let mut sock = self.sock;
        let _ = io::copy(&mut sock, &mut io::sink());
    }
}

/// How a client ended its side of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEnd {
    /// `close_notify` (then usually FIN).
    CloseNotify,
    /// FIN without `close_notify`.
    Fin,
    /// Nothing within the limit.
    Timeout,
    /// A TLS or socket error.
    Error(String),
}

/// The `Content-Length` of a head, if any.
pub fn content_length(head: &str) -> Option<u64> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

/// The request target of a head (`GET /x HTTP/1.1` → `/x`).
pub fn path(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

/// A rustls server on 127.0.0.1 that runs `script` on a thread per
/// accepted connection. Dropping it stops accepting.
pub struct TlsServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    handshake_failures: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl TlsServer {
    /// Handshakes each connection, then runs `script` on it.
    pub fn start<F>(config: ServerConfig, script: F) -> TlsServer
    where
        F: Fn(TlsConn) + Send + Sync + 'static,
    {
        TlsServer::start_raw(config, move |a| {
            if let Ok(c) = a.handshake() {
                script(c);
            }
        })
    }

    /// Runs `script` on each accepted connection before any handshake.
    pub fn start_raw<F>(config: ServerConfig, script: F) -> TlsServer
    where
        F: Fn(Accepted) + Send + Sync + 'static,
    {
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let handshake_failures = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(script);
        let (acc, st, hf) = (accepted.clone(), stop.clone(), handshake_failures.clone());
        let acceptor = thread::spawn(move || {
            for sock in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(sock) = sock else { continue };
                let index = acc.fetch_add(1, Ordering::SeqCst);
                let (script, config, hf) = (script.clone(), config.clone(), hf.clone());
                thread::spawn(move || {
                    // Bound every read: a stuck client fails the test
                    // instead of leaving a server thread behind forever.
                    let _ = sock.set_read_timeout(Some(Duration::from_secs(30)));
                    let _ = sock.set_nodelay(true);
                    script(Accepted {
                        sock,
                        index,
                        config,
                        handshake_failures: hf,
                    });
                });
            }
        });
        TlsServer {
            addr,
            accepted,
            handshake_failures,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{}", self.addr, path)
    }

    /// `https://localhost:PORT{path}`.
    pub fn url_localhost(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.addr.port(), path)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn handshake_failures(&self) -> usize {
        self.handshake_failures.load(Ordering::SeqCst)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// Serves keep-alive requests until the client closes: each request goes
/// to `respond`, which writes the whole response.
pub fn serve_keep_alive(mut c: TlsConn, respond: impl Fn(&mut TlsConn, &str, &[u8])) {
    while let Some((head, body)) = c.read_request() {
        respond(&mut c, &head, &body);
    }
}

/// Writes a `200 OK` with `body` and a `Content-Length`.
pub fn ok(c: &mut TlsConn, body: &[u8]) {
    let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    let _ = c.write_all(&out);
}

/// A trace that records the TLS hooks and delegates the rest to a
/// [`Recorder`].
#[derive(Default)]
pub struct TlsTrace {
    pub rec: Recorder,
    pub handshake_starts: AtomicUsize,
    /// One entry per `tls_handshake_done`: `None` on success, else the
    /// error's kind and text.
    pub handshake_done: Mutex<Vec<Option<(ErrorKind, String)>>>,
}

impl TlsTrace {
    pub fn new() -> Arc<TlsTrace> {
        Arc::new(TlsTrace::default())
    }

    pub fn starts(&self) -> usize {
        self.handshake_starts.load(Ordering::SeqCst)
    }

    pub fn dones(&self) -> Vec<Option<(ErrorKind, String)>> {
        self.handshake_done.lock().unwrap().clone()
    }
}

impl ClientTrace for TlsTrace {
    fn tls_handshake_start(&self) {
        self.handshake_starts.fetch_add(1, Ordering::SeqCst);
    }
    fn tls_handshake_done(&self, err: Option<&nethttp::Error>) {
        self.handshake_done
            .lock()
            .unwrap()
            .push(err.map(|e| (e.kind(), e.to_string())));
    }
    fn get_conn(&self, host_port: &str) {
        self.rec.get_conn(host_port);
    }
    fn got_conn(&self, info: &GotConnInfo) {
        self.rec.got_conn(info);
    }
    fn put_idle_conn(&self, err: Option<&nethttp::Error>) {
        self.rec.put_idle_conn(err);
    }
    fn got_first_response_byte(&self) {
        self.rec.got_first_response_byte();
    }
    fn connect_start(&self, addr: SocketAddr) {
        self.rec.connect_start(addr);
    }
    fn connect_done(&self, addr: SocketAddr, err: Option<&io::Error>) {
        self.rec.connect_done(addr, err);
    }
    fn wrote_headers(&self) {
        self.rec.wrote_headers();
    }
    fn wrote_request(&self, err: Option<&nethttp::Error>) {
        self.rec.wrote_request(err);
    }
}

/// Period of the pattern bodies: a prime, so a shifted or repeated block
/// never matches by accident.
const PERIOD: usize = 251;
/// Largest slice [`pattern_at`] hands out.
const PATTERN_MAX: usize = 64 * 1024;

fn pattern_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..PERIOD + PATTERN_MAX)
            .map(|i| ((i % PERIOD) as u8).wrapping_mul(7).wrapping_add(1))
            .collect()
    })
}

/// The pattern's bytes from stream offset `off`, `len` ≤ 64 KiB of them.
pub fn pattern_at(off: u64, len: usize) -> &'static [u8] {
    assert!(len <= PATTERN_MAX);
    let start = (off % PERIOD as u64) as usize;
    &pattern_table()[start..start + len]
}

/// A streamed request body of `len` pattern bytes; `produced` counts the
/// bytes handed out so far.
pub struct PatternReader {
    pos: u64,
    len: u64,
    produced: Arc<AtomicU64>,
}

impl PatternReader {
    pub fn new(len: u64, produced: Arc<AtomicU64>) -> PatternReader {
        PatternReader {
            pos: 0,
            len,
            produced,
        }
    }
}

impl Read for PatternReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = (self.len - self.pos)
            .min(out.len() as u64)
            .min(PATTERN_MAX as u64) as usize;
        out[..n].copy_from_slice(pattern_at(self.pos, n));
        self.pos += n as u64;
        self.produced.store(self.pos, Ordering::SeqCst);
        Ok(n)
    }
}

/// Reads `r` to its end, checking every byte against the pattern. Returns
/// the byte count, or where and how it failed.
pub fn verify_pattern(r: &mut impl Read, received: &AtomicU64) -> Result<u64, String> {
    let mut buf = vec![0u8; PATTERN_MAX];
    let mut off = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(off),
            Ok(n) => n,
            Err(e) => return Err(format!("read failed at byte {off}: {e} ({:?})", e.kind())),
        };
        if buf[..n] != *pattern_at(off, n) {
            let i = (0..n)
                .find(|&i| buf[i] != pattern_at(off + i as u64, 1)[0])
                .unwrap_or(0);
            return Err(format!("byte {} differs from the pattern", off + i as u64));
        }
        off += n as u64;
        received.store(off, Ordering::SeqCst);
    }
}

/// Prints every thread's stack of this process (gdb, when installed) to
/// stderr: call it before failing on a hang.
pub fn dump_threads(why: &str) {
    eprintln!("==== {why}: thread dump of pid {} ====", std::process::id());
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.filter_map(Result::ok) {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let wchan = std::fs::read_to_string(e.path().join("wchan")).unwrap_or_default();
            eprintln!("  tid {:?} {} wchan={wchan}", e.file_name(), comm.trim());
        }
    }
    let child = std::process::Command::new("gdb")
        .args([
            "-p",
            &std::process::id().to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("  (gdb not available)");
        return;
    };
    let mut out = child.stdout.take().expect("gdb stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        // The connection threads and the test's own frames; the harness's
        // threads are noise.
        Ok(s) => {
            for block in s.split("\nThread ") {
                let header = block.lines().next().unwrap_or("");
                if header.contains("nethttp") || block.contains("tls::") {
                    eprintln!("Thread {block}");
                }
            }
        }
        Err(_) => {
            let _ = child.kill();
            eprintln!("  (gdb took too long)");
        }
    }
    let _ = child.wait();
}

/// Runs `f` on its own thread and waits at most `limit` for its result;
/// on timeout prints `status()`, dumps the threads and panics. A panic in
/// `f` is re-raised here with its own message.
#[track_caller]
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    within_status(limit, what, String::new, f)
}

/// [`within`] with a progress report for the timeout message.
#[track_caller]
pub fn within_status<T: Send + 'static>(
    limit: Duration,
    what: &str,
    status: impl Fn() -> String,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    let worker = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            let status = status();
            eprintln!("{what}: HANG after {:?}; {status}", start.elapsed());
            dump_threads(what);
            panic!(
                "{what}: no result after {:?} (hang); {status}",
                start.elapsed()
            );
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => panic!("{what}: the worker ended without a result"),
        },
    }
}
