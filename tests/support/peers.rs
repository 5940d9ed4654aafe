//! Real proxies and servers for the dialling tests, each started by the
//! test on 127.0.0.1 (or on a Unix socket in its own temp dir), from a
//! config written to that temp dir:
//!
//! - [`Danted`]: Dante's SOCKS server (Debian `dante-server`), SOCKS5 and
//!   SOCKS4, no authentication. Dante 1.4.2 does not speak SOCKS4a (it
//!   takes the `0.0.0.x` address literally) and checks usernames against
//!   the system's password file, so neither is tested against it.
//! - [`Tinyproxy`]: a forward HTTP proxy (absolute form and `CONNECT`).
//! - [`StunnelProxy`]: stunnel terminating TLS in front of a
//!   [`Tinyproxy`]: an `https://` proxy.
//! - [`NginxUnix`]: nginx serving plain HTTP and HTTPS on two Unix sockets.
//!
//! Each runs under a watchdog `sh` that stops it (SIGTERM) when the peer is
//! dropped, and also when the test process dies without dropping it (its
//! stdin closes). Start-up is bounded ([`START_LIMIT`], three tries with
//! fresh ports); a peer that does not come up fails the test with its log.
//! A missing binary skips the test with a message on stderr, or fails it
//! under CI, as [`peer_available`](super::peer_available) does.

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::{
        fs::{MetadataExt, PermissionsExt},
        net::UnixStream,
    },
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use rustls::ClientConfig;

use super::tls::{Ca, Leaf, pki};

/// How long a peer may take to accept connections.
pub const START_LIMIT: Duration = Duration::from_secs(10);
/// How long a peer may take to exit once told to.
const STOP_LIMIT: Duration = Duration::from_secs(3);

/// The name of the running test, for skip messages: libtest names each
/// test's thread after it.
fn test_name() -> String {
    match thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "this test".to_string(),
    }
}

/// The first of `names` on PATH, else the first of `fallbacks` that
/// exists, else `names[0]` (so the skip message names it).
fn binary(names: &[&str], fallbacks: &[&str]) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = |name: &&&str| std::env::split_paths(&path).any(|dir| dir.join(name).is_file());
    if let Some(name) = names.iter().find(on_path) {
        return name.to_string();
    }
    fallbacks
        .iter()
        .find(|p| Path::new(p).is_file())
        .map_or_else(|| names[0].to_string(), |p| p.to_string())
}

/// Whether this process runs as root (daemons then need to be told which
/// user to drop to).
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A directory of its own under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(kind: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nethttp-{kind}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir); // left by a killed run with our pid
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Whether 127.0.0.1:`port` accepts a connection now.
fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Runs `"$@"` (`$1` is the log file, the program and its arguments
/// follow) in the background with its output in the log, prints its pid,
/// and stops it (SIGTERM) and waits for it when stdin closes.
const WATCHDOG: &str = r#"log=$1
shift
"$@" </dev/null >>"$log" 2>&1 &
pid=$!
echo "$pid"
read -r _
kill "$pid" 2>/dev/null
wait "$pid""#;

/// A program under [`WATCHDOG`]. Dropping it stops the program, bounded.
pub struct Watched {
    what: String,
    sh: Child,
    stdin: Option<ChildStdin>,
    pid: Option<u32>,
    log: PathBuf,
}

impl Watched {
    /// Starts `program args` with its stdout and stderr appended to `log`.
    fn spawn(what: &str, program: &str, args: &[&str], log: &Path) -> Watched {
        let mut sh = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(format!("{what}-watchdog"))
            .arg(log)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn sh ({what}): {e}"));
        let stdin = sh.stdin.take();
        let out = sh.stdout.take().expect("watchdog stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let pid = rx
            .recv_timeout(START_LIMIT)
            .ok()
            .and_then(|l| l.trim().parse().ok());
        Watched {
            what: what.to_string(),
            sh,
            stdin,
            pid,
            log: log.to_path_buf(),
        }
    }

    /// Whether the program still runs (as far as the watchdog knows).
    fn running(&mut self) -> bool {
        self.pid.is_some()
            && matches!(self.sh.try_wait(), Ok(None))
            && self
                .pid
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }

    /// Waits up to [`START_LIMIT`] for `ready`; false when the program
    /// exited or the time ran out.
    fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if !self.running() {
                return false;
            }
            if ready() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// What the program wrote to its log so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline && matches!(self.sh.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(10));
        }
        if matches!(self.sh.try_wait(), Ok(None)) {
            eprintln!("{}: did not stop within {STOP_LIMIT:?}; SIGKILL", self.what);
            if let Some(pid) = self.pid {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = self.sh.kill();
        }
        let _ = self.sh.wait();
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a peer up to three times (fresh ports each time): `attempt`
/// writes the config for the try and spawns the program; `ready` says
/// whether it is up. Panics with the last log when no try works.
fn start_tries<T>(
    what: &str,
    mut attempt: impl FnMut() -> (Watched, T),
    ready: impl Fn(&T) -> bool,
) -> (Watched, T) {
    let mut last = String::new();
    for n in 1..=3 {
        let (mut proc, state) = attempt();
        if proc.wait_ready(|| ready(&state)) {
            return (proc, state);
        }
        proc.stop();
        last = proc.output();
        eprintln!("{what} did not start (attempt {n}): {last}");
    }
    panic!("{what} did not start in three attempts within {START_LIMIT:?} each; last log:\n{last}");
}

/// Dante's SOCKS server (`danted`, Debian `dante-server`) on
/// 127.0.0.1:[`port`](Self::port): SOCKS5 and SOCKS4 `CONNECT`, no
/// authentication (`socksmethod: none`), to 127.0.0.0/8 only, dialling out
/// from 127.0.0.1. It resolves names itself (socks5h) with the system's
/// resolver, IPv4 only: `localhost` works from `/etc/hosts`.
///
/// It logs at debug level 1, which includes every request as it arrived
/// ([`requests`](Self::requests)), so a test can see whether it got a name
/// or an address.
pub struct Danted {
    pub port: u16,
    proc: Watched,
    _dir: TempDir,
}

impl Danted {
    /// Starts danted; `None` (after a skip message) when it is not
    /// installed.
    pub fn start() -> Option<Danted> {
        let bin = binary(&["danted"], &["/usr/sbin/danted"]);
        if !super::peer_available(&bin, &["-v"], "dante-server", &test_name()) {
            return None;
        }
        let dir = TempDir::new("danted");
        let (proc, port) = start_tries(
            "danted",
            || {
                let port = free_port();
                let conf = dir.join("danted.conf");
                std::fs::write(&conf, danted_conf(port)).expect("write danted.conf");
                let _ = std::fs::remove_file(dir.join("danted.out"));
                let (conf, pid) = (conf.display().to_string(), dir.join("danted.pid"));
                let pid = pid.display().to_string();
                let proc = Watched::spawn(
                    "danted",
                    &bin,
                    &["-f", &conf, "-N", "1", "-p", &pid],
                    &dir.join("danted.out"),
                );
                (proc, port)
            },
            |&port| accepts(port),
        );
        Some(Danted {
            port,
            proc,
            _dir: dir,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `SCHEME://127.0.0.1:PORT` (`socks5`, `socks5h`, `socks4`).
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Dante's log so far (it logs to stderr, which goes to a file).
    pub fn log(&self) -> String {
        self.proc.output()
    }

    /// Every request Dante received so far, as it logs the packet: e.g.
    /// `VER: 5 CMD: 1 FLAG: 0 ATYP: 3 address: localhost.8080` (a name,
    /// socks5h) or `VER: 5 CMD: 1 FLAG: 0 ATYP: 1 address: 127.0.0.1.8080`
    /// (an IPv4 address), `VER: 4 CMD: 1 address: 127.0.0.1.8080`.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("request received from client"))
            .filter_map(|l| l.split("Packet: ").nth(1))
            .map(|p| p.trim().to_string())
            .collect()
    }
}

/// danted.conf: one listening address, no authentication, `CONNECT` to
/// loopback only, the log (debug level 1: every request packet) on
/// stderr. Rules match first to last.
fn danted_conf(port: u16) -> String {
    // As root, danted needs to be told whom to drop to; it binds no
    // privileged port, so root for the privileged operations is harmless.
    let users = if is_root() {
        "user.privileged: root\nuser.unprivileged: nobody\n"
    } else {
        ""
    };
    format!(
        r#"logoutput: stderr
debug: 1
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
clientmethod: none
socksmethod: none
{users}client pass {{
    from: 127.0.0.0/8 to: 0/0
}}
socks pass {{
    from: 127.0.0.0/8 to: 127.0.0.0/8
    command: connect
    log: connect error
}}
socks block {{
    from: 0/0 to: 0/0
    log: connect error
}}
"#
    )
}

/// tinyproxy (a forward HTTP proxy) on 127.0.0.1:[`port`](Self::port):
/// absolute-form requests and `CONNECT` to any port, no `Via` header.
pub struct Tinyproxy {
    pub port: u16,
    _proc: Watched,
    _dir: TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy; `None` (after a skip message) when it is not
    /// installed.
    pub fn start() -> Option<Tinyproxy> {
        if !super::peer_available("tinyproxy", &["-v"], "tinyproxy", &test_name()) {
            return None;
        }
        let dir = TempDir::new("tinyproxy");
        let user = if is_root() {
            "User nobody\nGroup nogroup\n"
        } else {
            ""
        };
        let (proc, port) = start_tries(
            "tinyproxy",
            || {
                let port = free_port();
                let conf = dir.join("tinyproxy.conf");
                // No ConnectPort line: CONNECT is allowed to every port.
                std::fs::write(
                    &conf,
                    format!(
                        "{user}Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Critical\n\
                         MaxClients 20\nAllow 127.0.0.1\nDisableViaHeader Yes\n"
                    ),
                )
                .expect("write tinyproxy.conf");
                let conf = conf.display().to_string();
                let proc = Watched::spawn(
                    "tinyproxy",
                    "tinyproxy",
                    &["-d", "-c", &conf],
                    &dir.join("tinyproxy.out"),
                );
                (proc, port)
            },
            |&port| accepts(port),
        );
        Some(Tinyproxy {
            port,
            _proc: proc,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The certificate [`StunnelProxy`] presents: `127.0.0.1`, `localhost`
/// and `proxy.test`, signed by the shared test CA ([`pki`]), so one
/// `tls_config` trusts both the proxy and the [`pki`] targets behind it.
pub fn proxy_leaf() -> &'static Leaf {
    static LEAF: OnceLock<Leaf> = OnceLock::new();
    LEAF.get_or_init(|| {
        pki()
            .0
            .leaf(&["127.0.0.1", "localhost", "proxy.test"], false)
    })
}

/// An `https://` proxy: stunnel (Debian `stunnel4`) on
/// 127.0.0.1:[`port`](Self::port) terminating TLS with [`proxy_leaf`], in
/// front of a [`Tinyproxy`]. Inside the TLS, plain `http://` requests go
/// in absolute form and `https://` ones through `CONNECT` (TLS in TLS).
pub struct StunnelProxy {
    pub port: u16,
    /// The tinyproxy behind it.
    pub tinyproxy: Tinyproxy,
    proc: Watched,
    _dir: TempDir,
}

impl StunnelProxy {
    /// Starts tinyproxy and stunnel; `None` (after a skip message) when
    /// either is not installed.
    pub fn start() -> Option<StunnelProxy> {
        let bin = binary(
            &["stunnel4", "stunnel"],
            &["/usr/bin/stunnel4", "/usr/bin/stunnel"],
        );
        if !super::peer_available(&bin, &["-version"], "stunnel4", &test_name()) {
            return None;
        }
        let tinyproxy = Tinyproxy::start()?;
        let dir = TempDir::new("stunnel");
        let leaf = proxy_leaf();
        std::fs::write(dir.join("proxy.pem"), &leaf.cert_pem).expect("write proxy.pem");
        std::fs::write(dir.join("proxy.key"), &leaf.key_pem).expect("write proxy.key");
        // stunnel warns about a key others can read.
        let _ = std::fs::set_permissions(
            dir.join("proxy.key"),
            std::fs::Permissions::from_mode(0o600),
        );
        let backend = tinyproxy.port;
        let (proc, port) = start_tries(
            "stunnel",
            || {
                let port = free_port();
                let conf = dir.join("stunnel.conf");
                std::fs::write(&conf, stunnel_conf(dir.path(), port, backend))
                    .expect("write stunnel.conf");
                let conf = conf.display().to_string();
                let proc = Watched::spawn("stunnel", &bin, &[&conf], &dir.join("stunnel.out"));
                (proc, port)
            },
            |&port| accepts(port),
        );
        Some(StunnelProxy {
            port,
            tinyproxy,
            proc,
            _dir: dir,
        })
    }

    /// `https://127.0.0.1:PORT` (the certificate names `127.0.0.1`).
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// `https://HOST:PORT`, for a name the certificate carries
    /// (`localhost`, `proxy.test`).
    pub fn url_named(&self, host: &str) -> String {
        format!("https://{host}:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The CA that signed the proxy's certificate (the shared test CA).
    pub fn ca(&self) -> &'static Ca {
        &pki().0
    }

    /// A client configuration that trusts [`ca`](Self::ca) (ALPN
    /// `http/1.1`).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.ca().client_config()
    }

    /// stunnel's log so far.
    pub fn log(&self) -> String {
        self.proc.output()
    }
}

/// stunnel.conf: in the foreground, no pid file, one service from
/// 127.0.0.1:`port` (TLS) to 127.0.0.1:`backend` (plain).
fn stunnel_conf(dir: &Path, port: u16, backend: u16) -> String {
    let d = dir.display();
    format!(
        r#"foreground = yes
pid =
debug = warning
[https-proxy]
accept = 127.0.0.1:{port}
connect = 127.0.0.1:{backend}
cert = {d}/proxy.pem
key = {d}/proxy.key
TIMEOUTclose = 0
"#
    )
}

/// nginx (see [`Nginx`](super::h2::Nginx)) serving HTTP/1.1 on two Unix
/// sockets in its temp dir: plain on [`sock`](Self::sock), HTTPS on
/// [`tls_sock`](Self::tls_sock) with the shared test leaf ([`pki`]:
/// `localhost`, `127.0.0.1`). Keep-alive on. Locations, on both:
///
/// - `/hello`: `hello over a unix socket\n` (25 bytes, `text/plain`).
/// - `/host`: the request's `Host` header, verbatim (empty when none).
/// - `/short`: `short\n`, on a connection nginx closes after 200 ms idle
///   (`keepalive_timeout 200ms`), for the idle-close path.
/// - `/bytes/65536`: 64 KiB of [`h2::pattern`](super::h2::pattern).
pub struct NginxUnix {
    /// Plain HTTP.
    pub sock: PathBuf,
    /// HTTPS.
    pub tls_sock: PathBuf,
    proc: Watched,
    dir: TempDir,
}

/// The body of [`NginxUnix`]'s `/hello`.
pub const UNIX_HELLO: &str = "hello over a unix socket\n";

impl NginxUnix {
    /// Starts nginx; `None` (after a skip message) when it is not
    /// installed.
    pub fn start() -> Option<NginxUnix> {
        let bin = binary(&["nginx"], &["/usr/sbin/nginx"]);
        if !super::peer_available(&bin, &["-v"], "nginx", &test_name()) {
            return None;
        }
        let dir = TempDir::new("nginx-unix");
        for sub in ["www/bytes", "tmp", "tls"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create nginx dirs");
        }
        std::fs::write(dir.join("www/bytes/65536"), super::h2::pattern(65536))
            .expect("write pattern file");
        let leaf = &pki().1;
        std::fs::write(dir.join("tls/server.pem"), &leaf.cert_pem).expect("write server.pem");
        std::fs::write(dir.join("tls/server.key"), &leaf.key_pem).expect("write server.key");
        let (sock, tls_sock) = (dir.join("nginx.sock"), dir.join("nginx-tls.sock"));
        std::fs::write(dir.join("nginx.conf"), nginx_unix_conf(dir.path()))
            .expect("write nginx.conf");
        let (proc, ()) = start_tries(
            "nginx (unix sockets)",
            || {
                for f in ["nginx.sock", "nginx-tls.sock", "nginx.pid", "error.log"] {
                    let _ = std::fs::remove_file(dir.join(f));
                }
                let (prefix, conf, log) = (
                    dir.path().display().to_string(),
                    dir.join("nginx.conf").display().to_string(),
                    dir.join("error.log").display().to_string(),
                );
                let proc = Watched::spawn(
                    "nginx",
                    &bin,
                    &["-p", &prefix, "-c", &conf, "-e", &log],
                    &dir.join("nginx.out"),
                );
                (proc, ())
            },
            |()| UnixStream::connect(&sock).is_ok() && UnixStream::connect(&tls_sock).is_ok(),
        );
        Some(NginxUnix {
            sock,
            tls_sock,
            proc,
            dir,
        })
    }

    /// nginx's error log so far (and anything it printed).
    pub fn error_log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        format!("{log}{}", self.proc.output())
    }

    /// The temp dir (sockets, `nginx.conf`, `error.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// nginx.conf for the prefix `dir`: one process in the foreground, every
/// path inside `dir`.
fn nginx_unix_conf(dir: &Path) -> String {
    let d = dir.display();
    let locations = format!(
        r#"
        location = /hello {{ return 200 "{UNIX_HELLO_ESCAPED}"; }}
        location = /host {{ return 200 "$http_host"; }}
        location = /short {{
            keepalive_timeout 200ms;
            return 200 "short\n";
        }}
        location /bytes/ {{ root {d}/www; }}"#,
        UNIX_HELLO_ESCAPED = UNIX_HELLO.replace('\n', "\\n"),
    );
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    default_type text/plain;
    keepalive_requests 100000;
    keepalive_timeout 300;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen unix:{d}/nginx.sock;
        server_name localhost;
        {locations}
    }}
    server {{
        listen unix:{d}/nginx-tls.sock ssl;
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
