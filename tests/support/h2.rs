//! HTTP/2 test peers: [`H2Peer`], the scripted python-h2 server in
//! `h2peer.py` (faults by scenario; its docstring lists them), and
//! [`Nginx`], a real nginx serving HTTP/2 with prior knowledge (h2c) and
//! over TLS with ALPN `h2`. Both listen on 127.0.0.1 only; every wait here
//! is bounded. A missing peer skips the test (a message on stderr), or
//! fails it under CI, as [`peer_available`](super::peer_available) does.

use std::{
    io::{self, BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{Proxy, Transport, TransportBuilder};
use rustls::{ClientConfig, RootCertStore};

use super::tls::{Ca, pki, provider};

/// How long a peer may take to start listening.
const START_LIMIT: Duration = Duration::from_secs(5);
/// How long a peer may take to exit once told to.
const STOP_LIMIT: Duration = Duration::from_secs(3);

/// Period of the pattern bodies both peers serve: byte `i` is `i % 251`.
pub const PATTERN_PERIOD: usize = 251;

/// `len` bytes of the peers' pattern (byte `i` is `i % 251`), the body of
/// `/bytes/N` on [`H2Peer`] and of the files [`Nginx`] serves.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % PATTERN_PERIOD) as u8).collect()
}

/// Whether `data` is the pattern from offset 0.
pub fn is_pattern(data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .all(|(i, &b)| b == (i % PATTERN_PERIOD) as u8)
}

/// A client configuration that trusts `ca` only and offers ALPN `alpn`
/// (ring provider, safe default versions).
pub fn client_config_alpn(ca: &Ca, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert()).expect("add test ca");
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A transport builder that trusts the shared test CA
/// ([`pki`](super::tls::pki), which signed the certificates of
/// [`Nginx`] and [`H2Peer::start_tls_pki`]), offers ALPN `h2` then
/// `http/1.1`, and uses no proxy.
pub fn tls_transport_builder() -> TransportBuilder {
    Transport::builder()
        .tls_config(client_config_alpn(&pki().0, &[b"h2", b"http/1.1"]))
        .proxy(Proxy::none())
}

/// The name of the running test, for skip messages: libtest names each
/// test's thread after it (helper threads have other names).
fn test_name() -> String {
    match thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "this test".to_string(),
    }
}

/// Whether `python3` can import `h2`, asked once per test binary.
fn python_h2_found() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import h2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// [`peer_available`](super::peer_available)'s rule for python3 with the
/// h2 module: a failure under CI (`CI` set), else a skip message on
/// stderr (past the harness's capture) and false.
fn python_h2_available() -> bool {
    if python_h2_found() {
        return true;
    }
    let test = test_name();
    if std::env::var_os("CI").is_some() {
        panic!(
            "python3 with the h2 module is not installed, but CI runs {test} \
             (`python3 -m pip install h2`)"
        );
    }
    let msg = format!(
        "\n*** SKIPPED {test}: python3 with the h2 module is not installed. \
         Install it (`python3 -m pip install h2`, or Debian: `apt-get install \
         python3-h2`) to run it. ***\n\n"
    );
    let _ = io::stderr().write_all(msg.as_bytes());
    false
}

/// A fresh directory under the system temp dir, unique to this process.
fn temp_dir(kind: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nethttp-{kind}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir); // left by a killed run with our pid
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Waits (bounded) for `child` to exit; kills it (SIGKILL) if it does not.
fn reap(child: &mut Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => thread::sleep(Duration::from_millis(10)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The scripted HTTP/2 server `tests/support/h2peer.py` running one
/// scenario (see the script's docstring), on 127.0.0.1. Every response
/// carries `x-peer-conn` (0 for the first connection it accepted, 1 for
/// the next, …) and `x-peer-stream` (the stream id). Dropping it kills the
/// process; it also exits by itself when the test process dies (its stdin
/// closes).
pub struct H2Peer {
    /// The port on 127.0.0.1.
    pub port: u16,
    child: Child,
    /// Held open: the peer exits when it closes.
    stdin: Option<ChildStdin>,
    /// Certificate files of [`H2Peer::start_tls_pki`], removed on drop.
    dir: Option<PathBuf>,
}

impl H2Peer {
    /// The script's path (next to this file).
    pub fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/h2peer.py")
    }

    /// Starts `scenario` over h2c (prior knowledge). `None` (after a skip
    /// message) when python3 or its h2 module is missing; panics under CI
    /// then, and whenever the peer does not start.
    pub fn start(scenario: &str) -> Option<H2Peer> {
        H2Peer::spawn(scenario, None, None)
    }

    /// Starts `scenario` over TLS (ALPN `h2` only) with the PEM
    /// certificate chain and key in these files.
    pub fn start_tls(scenario: &str, cert_pem: &Path, key_pem: &Path) -> Option<H2Peer> {
        H2Peer::spawn(scenario, Some((cert_pem, key_pem)), None)
    }

    /// Starts `scenario` over TLS with the shared test leaf
    /// ([`pki`](super::tls::pki): `localhost` and `127.0.0.1`), which
    /// [`tls_transport_builder`] trusts.
    pub fn start_tls_pki(scenario: &str) -> Option<H2Peer> {
        if !python_h2_available() {
            return None;
        }
        let leaf = &pki().1;
        let dir = temp_dir("h2peer");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &leaf.cert_pem).expect("write cert.pem");
        std::fs::write(&key, &leaf.key_pem).expect("write key.pem");
        H2Peer::spawn(scenario, Some((&cert, &key)), Some(dir))
    }

    fn spawn(scenario: &str, tls: Option<(&Path, &Path)>, dir: Option<PathBuf>) -> Option<H2Peer> {
        if !python_h2_available() {
            if let Some(dir) = dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            return None;
        }
        let mut cmd = Command::new("python3");
        cmd.arg(H2Peer::script()).args(["--scenario", scenario]);
        if let Some((cert, key)) = tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3 h2peer.py");
        let stdin = child.stdin.take();
        let port = read_port(child.stdout.take().expect("peer stdout"), START_LIMIT);
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            if let Some(dir) = dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            panic!("h2peer.py --scenario {scenario} did not print its port within {START_LIMIT:?}");
        };
        Some(H2Peer {
            port,
            child,
            stdin,
            dir,
        })
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `https://127.0.0.1:PORT{path}` (for a peer started with TLS).
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for H2Peer {
    fn drop(&mut self) {
        drop(self.stdin.take()); // the peer exits on EOF...
        let _ = self.child.kill(); // ...or now
        reap(&mut self.child, STOP_LIMIT);
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The port a peer prints as `PORT <n>` on its first stdout line, within
/// `limit`. A thread keeps reading what else comes until the peer exits,
/// so the peer never writes to a closed pipe.
pub fn read_port(out: ChildStdout, limit: Duration) -> Option<u16> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut out = BufReader::new(out);
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let _ = tx.send(line);
        let _ = io::copy(&mut out, &mut io::sink());
    });
    let line = rx.recv_timeout(limit).ok()?;
    line.trim().strip_prefix("PORT ")?.parse().ok()
}

/// The files [`Nginx`] serves under `/data/` (name, size): the pattern
/// (byte `i` is `i % 251`). Each is also at `/bytes/SIZE`.
pub const NGINX_FILES: &[(&str, usize)] = &[
    ("0", 0),
    ("1k", 1 << 10),
    ("64k", 64 << 10),
    ("1m", 1 << 20),
    ("10m", 10 << 20),
];

/// nginx (Debian's 1.22) on 127.0.0.1: h2c with prior knowledge on
/// `port`, HTTPS with ALPN `h2` (and `http/1.1`) on `tls_port`, with a
/// certificate for `localhost` and `127.0.0.1` from the shared test CA
/// ([`pki`](super::tls::pki)). One process (no master, no daemon) under
/// a watchdog `sh` that stops it when the test drops it or dies, in a temp
/// prefix dir removed on drop. Locations, on both ports:
///
/// - `/data/{0,1k,64k,1m,10m}` and `/bytes/{0,1024,65536,1048576,10485760}`:
///   static pattern files ([`NGINX_FILES`]).
/// - `/echo`: 200, body `"$request_method $server_protocol $http2\n"`
///   (e.g. `GET HTTP/2.0 h2c`), headers `x-method`, `x-protocol`,
///   `x-http2` (`h2`, `h2c` or empty). A request body is read and dropped.
/// - `/put/NAME`: WebDAV `PUT` (201, or 204 over an existing file) stores
///   the body, which a `GET` of the same path returns; `DELETE` too. No
///   body size limit.
/// - `/status/204`, `/status/404`, `/status/500`: that status.
///
/// Anything else is nginx's 404.
pub struct Nginx {
    /// h2c with prior knowledge.
    pub port: u16,
    /// HTTPS; ALPN `h2` (or `http/1.1`).
    pub tls_port: u16,
    dir: PathBuf,
    /// `sh` running [`NGINX_WATCHDOG`], nginx's parent.
    child: Child,
    /// Held open: the watchdog stops nginx when it closes.
    stdin: Option<ChildStdin>,
}

/// Runs nginx (`"$@"`) in the background and stops it (SIGTERM) when
/// stdin closes: when the [`Nginx`] is dropped, and also when the test
/// process dies without dropping it (killed, or a hung test's thread never
/// unwinds).
const NGINX_WATCHDOG: &str = r#""$@" </dev/null &
pid=$!
read -r _
kill "$pid" 2>/dev/null
wait "$pid""#;

impl Nginx {
    /// The nginx binary: `nginx` on PATH, else `/usr/sbin/nginx`.
    fn binary() -> String {
        let on_path = Command::new("nginx")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !on_path && Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx".to_string()
        } else {
            "nginx".to_string()
        }
    }

    /// Starts nginx and waits (bounded) until both ports accept. `None`
    /// (after a skip message) when nginx is not installed; panics under CI
    /// then, and whenever it does not start (three tries with fresh ports).
    pub fn start_h2() -> Option<Nginx> {
        let bin = Nginx::binary();
        if !super::peer_available(&bin, &["-v"], "nginx", &test_name()) {
            return None;
        }
        let dir = temp_dir("h2-nginx");
        Nginx::write_files(&dir);
        let mut last_log = String::new();
        for attempt in 1..=3 {
            let (port, tls_port) = free_ports();
            std::fs::write(dir.join("nginx.conf"), nginx_conf(&dir, port, tls_port))
                .expect("write nginx.conf");
            let _ = std::fs::remove_file(dir.join("nginx.pid"));
            let _ = std::fs::remove_file(dir.join("error.log"));
            let mut child = Command::new("sh")
                .args(["-c", NGINX_WATCHDOG, "nginx-watchdog", &bin])
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-e")
                .arg(dir.join("error.log"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn sh (nginx)");
            let stdin = child.stdin.take();
            if wait_nginx_ready(&mut child, &dir, &[port, tls_port]) {
                return Some(Nginx {
                    port,
                    tls_port,
                    dir,
                    child,
                    stdin,
                });
            }
            stop_nginx(&mut child, stdin, &dir);
            last_log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            eprintln!("nginx did not start on {port}/{tls_port} (attempt {attempt}): {last_log}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("nginx did not start in three attempts; last error.log:\n{last_log}");
    }

    /// The served files, the certificate, the key and the CA's PEM.
    fn write_files(dir: &Path) {
        for sub in ["www/data", "www/bytes", "www/put", "tmp", "tls", "logs"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create nginx dirs");
        }
        let biggest = NGINX_FILES.iter().map(|&(_, n)| n).max().unwrap_or(0);
        let data = pattern(biggest);
        for &(name, size) in NGINX_FILES {
            let file = dir.join("www/data").join(name);
            std::fs::write(&file, &data[..size]).expect("write pattern file");
            let alias = dir.join("www/bytes").join(size.to_string());
            if std::fs::hard_link(&file, &alias).is_err() {
                std::fs::write(&alias, &data[..size]).expect("write pattern file");
            }
        }
        let (ca, leaf) = pki();
        std::fs::write(dir.join("tls/server.pem"), &leaf.cert_pem).expect("write server.pem");
        std::fs::write(dir.join("tls/server.key"), &leaf.key_pem).expect("write server.key");
        std::fs::write(dir.join("tls/ca.pem"), ca.cert_pem()).expect("write ca.pem");
    }

    /// `http://127.0.0.1:PORT{path}`: h2c with prior knowledge.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `https://127.0.0.1:TLS_PORT{path}`.
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.tls_port)
    }

    /// `https://localhost:TLS_PORT{path}` (nginx listens on 127.0.0.1
    /// only, not on `::1`).
    pub fn tls_url_localhost(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.tls_port)
    }

    /// The CA that signed the server certificate (the shared test CA).
    pub fn ca(&self) -> &'static Ca {
        &pki().0
    }

    /// The CA certificate's PEM file (for curl's `--cacert`, say).
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// A client configuration that trusts [`ca`](Self::ca) and offers
    /// ALPN `h2` then `http/1.1`.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        client_config_alpn(self.ca(), &[b"h2", b"http/1.1"])
    }

    /// A transport builder with [`client_config`](Self::client_config)
    /// and no proxy.
    pub fn transport_builder(&self) -> TransportBuilder {
        tls_transport_builder()
    }

    /// nginx's error log so far, for failure messages.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The prefix directory (`www/`, `tls/`, `nginx.conf`, `error.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop_nginx(&mut self.child, self.stdin.take(), &self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// nginx's pid, from its pid file.
fn nginx_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("nginx.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Closes the watchdog's stdin (it sends nginx SIGTERM, a fast shutdown,
/// and waits for it) and reaps it, bounded; SIGKILLs nginx if the
/// watchdog had to be killed.
fn stop_nginx(watchdog: &mut Child, stdin: Option<ChildStdin>, dir: &Path) {
    drop(stdin);
    let deadline = Instant::now() + STOP_LIMIT;
    while Instant::now() < deadline && matches!(watchdog.try_wait(), Ok(None)) {
        thread::sleep(Duration::from_millis(10));
    }
    if matches!(watchdog.try_wait(), Ok(None)) {
        if let Some(pid) = nginx_pid(dir) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = watchdog.kill();
    }
    let _ = watchdog.wait();
}

/// Two distinct ports of 127.0.0.1 that were free a moment ago.
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = |l: &TcpListener| l.local_addr().expect("local addr").port();
    (port(&a), port(&b))
}

/// Waits up to [`START_LIMIT`] until nginx wrote its pid file (it has
/// bound its ports then: it stops before that when a bind fails) and both
/// ports accept. False as soon as its error log has an `[emerg]` line (a
/// failed bind, say), or when the watchdog exited or the time ran out.
fn wait_nginx_ready(watchdog: &mut Child, dir: &Path, ports: &[u16]) -> bool {
    let deadline = Instant::now() + START_LIMIT;
    while Instant::now() < deadline {
        if !matches!(watchdog.try_wait(), Ok(None)) {
            return false;
        }
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        if log.contains("[emerg]") {
            return false;
        }
        let running = nginx_pid(dir).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if running
            && ports.iter().all(|&p| {
                let addr = SocketAddr::from(([127, 0, 0, 1], p));
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            })
        {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// nginx.conf for the prefix `dir`: single process in the foreground,
/// every path inside `dir`, so it runs as whoever runs the tests.
fn nginx_conf(dir: &Path, port: u16, tls_port: u16) -> String {
    let d = dir.display();
    let locations = format!(
        r#"
            location /data/ {{ root {d}/www; }}
            location /bytes/ {{ root {d}/www; }}
            location = /echo {{
                add_header x-method $request_method always;
                add_header x-protocol $server_protocol always;
                add_header x-http2 "$http2" always;
                return 200 "$request_method $server_protocol $http2\n";
            }}
            location /put/ {{
                root {d}/www;
                dav_methods PUT DELETE;
                create_full_put_path on;
                client_max_body_size 0;
            }}
            location = /status/204 {{ return 204; }}
            location = /status/404 {{ return 404; }}
            location = /status/500 {{ return 500; }}"#
    );
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 100000;
    keepalive_timeout 300;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} http2;
        server_name localhost;
        {locations}
    }}
    server {{
        listen 127.0.0.1:{tls_port} ssl http2;
        server_name localhost;
        ssl_certificate {d}/tls/server.pem;
        ssl_certificate_key {d}/tls/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        {locations}
    }}
}}
"#
    )
}
