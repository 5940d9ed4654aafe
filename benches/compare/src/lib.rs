//! The shared harness of the comparison benchmark.
//!
//! Every client binary (`compare-nethttp`, `compare-ureq`, `compare-reqwest`,
//! `compare-raw`) implements [`Client`] and hands it to [`main_for`], which
//! parses `<mode> <url> <threads> <count>`, runs the mode, and prints one JSON
//! line. The clients live in separate binaries so that each process links,
//! maps and measures only its own client (peak RSS, thread counts).
//!
//! Modes (`count` is per thread):
//! - `seq`: one thread, `count` keep-alive GETs (the 13-byte body).
//! - `conc`: `threads` threads sharing one client, `count` GETs each.
//! - `fresh`: `threads` threads (normally 1), `count` GETs each, every one on
//!   a new connection (`Connection: close`).
//! - `download`: `threads` threads, `count` GETs each of a large body, read in
//!   64 KiB pieces and counted.
//! - `idle`: `threads` concurrent requests whose responses are held (body
//!   unread) until all have arrived, so `threads` connections are open at
//!   once; then the bodies are read, the connections go idle in the pool, and
//!   the RSS, threads and sockets added per idle connection are measured.
//!
//! `seq-tls`, `conc-tls`, `fresh-tls` and `download-tls` are the first four
//! over `https://` (there is no `idle-tls`): the same behaviour, with the
//! mode's name kept in the JSON line so that the report shows them as rows
//! of their own. In these modes every client trusts the CA in the PEM file
//! named by `COMPARE_CA` ([`compare_ca`]) as its only root, when it is set.
//!
//! `seq-h2`, `conc-h2` and `conc128-h2` are `seq` and `conc` over HTTP/2
//! (TLS, ALPN `h2`): an `https://` URL of a port that speaks h2. The clients
//! offer ALPN `h2` and `http/1.1`, and each checks that every response came
//! over HTTP/2 (a run that falls back to HTTP/1.1 fails). `conc128-h2` is
//! `conc` under its own name, so that its rows (128 threads in run.sh) stay
//! apart from `conc-h2`'s (16). raw has no HTTP/2: in these modes it runs
//! its `-tls` HTTP/1.1 loop (run.sh points it at the HTTP/1.1 TLS port), the
//! baseline the ratios are taken to. In the `-h2` modes the sampler also
//! records the peak and final number of sockets the process holds (not for
//! raw: one per thread by construction) and, for a client that offers a
//! [`Client::probe`] (nethttp: `Transport::stats()`), its pool's connections
//! and threads: peaks over the whole run (the warm-up, where every thread's
//! first request finds no connection yet, included), the pool's counts as
//! the timed part starts (what the warm-up left running), peaks over the
//! timed part, and the counts at the end.

use std::{
    fmt::Write as _,
    fs,
    io::{self, Read},
    sync::{
        Arc, Barrier,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

/// Result type of the client adapters: any error is fatal to the run.
pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Size of the read buffer every client reads bodies into.
pub const BUF: usize = 64 * 1024;

/// Kernel stack per thread on x86_64 (THREAD_SIZE = 16 KiB).
pub const KERNEL_STACK_KIB: f64 = 16.0;

/// One HTTP client under test.
pub trait Client: Sync {
    /// Per-thread state (the raw loop keeps its connection here).
    type Worker;
    /// A response whose body has not been read yet (idle mode).
    type Held: Send;

    /// Creates the per-thread state of a worker thread.
    fn worker(&self) -> Self::Worker;
    /// One keep-alive GET; reads the body to its end and returns its length.
    fn get(&self, w: &mut Self::Worker, url: &str, buf: &mut [u8]) -> Res<u64>;
    /// One GET on a new connection that is closed afterwards.
    fn get_fresh(&self, w: &mut Self::Worker, url: &str, buf: &mut [u8]) -> Res<u64>;
    /// Sends a GET and returns once the response head is in, body unread.
    fn hold(&self, url: &str) -> Res<Self::Held>;
    /// Reads a held body to its end, so its connection goes idle.
    fn release(&self, held: Self::Held, buf: &mut [u8]) -> Res<u64>;

    /// The protocol every response of a `-h2` run came over, which `get`
    /// checks on each response (the JSON line's `proto`). raw, which runs
    /// its HTTP/1.1 TLS loop there, keeps the default.
    fn proto(&self) -> &'static str {
        "http/1.1"
    }

    /// Whether the sampler counts this process's sockets in the `-h2` modes
    /// (raw: no, it holds one per worker thread by construction, and
    /// reading 128 fd links every 50 ms would tax the baseline).
    fn count_sockets(&self) -> bool {
        true
    }

    /// A probe of the client's own pool, sampled with the threads in the
    /// `-h2` modes (nethttp: `Transport::stats()`).
    fn probe(&self) -> Option<Probe> {
        None
    }
}

/// What a [`Client::probe`] reads: the pool's open connections and the
/// threads the client started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolPeek {
    /// Open connections.
    pub conns: usize,
    /// Threads the client started and that have not finished.
    pub threads: usize,
}

/// A probe of a client's pool, called from the sampler thread.
pub type Probe = Box<dyn Fn() -> PoolPeek + Send + Sync>;

/// Reads `r` to EOF through `buf`, returning the number of bytes.
pub fn drain(mut r: impl Read, buf: &mut [u8]) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        match r.read(buf) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A field of `/proc/self/status`, in its own unit (kB for Vm*, a count for Threads).
pub fn proc_status(field: &str) -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(field)
            && let Some(v) = rest.strip_prefix(':')
        {
            return v
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    0
}

/// Resident KiB per kind of mapping (`[heap]`, a file, or `anon <size>K`),
/// from `/proc/self/smaps`: with `COMPARE_SMAPS=1` idle mode prints where
/// the added RSS lives (thread stacks show up as anon mappings of the stack
/// size plus the guard page).
fn smaps_by_kind() -> std::collections::BTreeMap<String, i64> {
    let mut out = std::collections::BTreeMap::new();
    let text = fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut kind = String::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
        {
            let path = line.split_whitespace().nth(5);
            kind = match path {
                Some(p) => p.to_string(),
                None => format!("anon {}K", (b - a) / 1024),
            };
        } else if first == "Rss:" {
            let kib: i64 = f.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            *out.entry(kind.clone()).or_insert(0) += kib;
        }
    }
    out
}

/// Stack size of the harness's own caller threads in idle mode: an odd size,
/// so their mappings can be told apart in smaps and left out of the client's
/// cost (they are the harness's threads, not the client's).
const CALLER_STACK: usize = 2 * 1024 * 1024 + 44 * 1024;

/// Resident KiB of the harness's caller-thread stacks (see [`CALLER_STACK`]).
fn caller_stack_rss(map: &std::collections::BTreeMap<String, i64>) -> i64 {
    let lo = (CALLER_STACK / 1024) as u64;
    map.iter()
        .filter(|(k, _)| {
            k.strip_prefix("anon ")
                .and_then(|s| s.strip_suffix('K'))
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|kib| (lo..=lo + 8).contains(&kib))
        })
        .map(|(_, v)| *v)
        .sum()
}

/// Number of distinct sockets this process has open (a socket whose file
/// descriptor was duplicated, e.g. split into read and write halves with
/// `try_clone`, counts once).
pub fn open_sockets() -> usize {
    let mut inodes: Vec<String> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| fs::read_link(e.path()).ok())
                .map(|p| p.to_string_lossy().into_owned())
                .filter(|p| p.starts_with("socket:"))
                .collect()
        })
        .unwrap_or_default();
    inodes.sort();
    inodes.dedup();
    inodes.len()
}

/// Number of socket file descriptors this process has open.
pub fn open_socket_fds() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    fs::read_link(e.path())
                        .map(|p| p.to_string_lossy().starts_with("socket:"))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Samples `Threads` from `/proc/self/status` every 5 ms until finished; the
/// sampler's own thread is not counted. In the `-h2` modes it also counts
/// the process's sockets every 50 ms (when `sockets`) and reads the client's
/// pool probe every 5 ms (when there is one). `COMPARE_NO_SAMPLER=1` turns
/// it off (only the final counts are taken), so that syscall and
/// context-switch counts (profile.sh) hold nothing but the client's own.
struct Sampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Peaks>,
    sockets: bool,
    probe: Option<Arc<Probe>>,
    handle: Option<thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Peaks {
    threads: AtomicUsize,
    sockets: AtomicUsize,
    pool_conns: AtomicUsize,
    pool_threads: AtomicUsize,
    /// Set once the timed part starts (after the warm-up): from then on
    /// the `timed_*` peaks are kept too.
    timed: AtomicBool,
    timed_sockets: AtomicUsize,
    timed_pool_conns: AtomicUsize,
    timed_pool_threads: AtomicUsize,
}

impl Peaks {
    fn look(&self, own: usize, sockets: bool, probe: Option<&Probe>, tick: u64) {
        let timed = self.timed.load(Ordering::Relaxed);
        let n = proc_status("Threads") as usize;
        self.threads
            .fetch_max(n.saturating_sub(own), Ordering::Relaxed);
        if sockets && tick.is_multiple_of(10) {
            let n = open_sockets();
            self.sockets.fetch_max(n, Ordering::Relaxed);
            if timed {
                self.timed_sockets.fetch_max(n, Ordering::Relaxed);
            }
        }
        if let Some(p) = probe {
            let peek = p();
            self.pool_conns.fetch_max(peek.conns, Ordering::Relaxed);
            self.pool_threads.fetch_max(peek.threads, Ordering::Relaxed);
            if timed {
                self.timed_pool_conns
                    .fetch_max(peek.conns, Ordering::Relaxed);
                self.timed_pool_threads
                    .fetch_max(peek.threads, Ordering::Relaxed);
            }
        }
    }
}

/// What the sampler saw: peaks over the run (warm-up included), peaks over
/// its timed part, and the counts at its end.
struct Sampled {
    peak_threads: usize,
    /// (peak, timed peak, end) sockets, when counted.
    sockets: Option<(usize, usize, usize)>,
    /// (peak, timed peak, end) of the pool probe, when there is one.
    pool: Option<(PoolPeek, PoolPeek, PoolPeek)>,
}

impl Sampler {
    fn start(sockets: bool, probe: Option<Probe>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Peaks::default());
        let probe = probe.map(Arc::new);
        if std::env::var_os("COMPARE_NO_SAMPLER").is_some_and(|v| v == "1") {
            return Sampler {
                stop,
                peaks,
                sockets,
                probe,
                handle: None,
            };
        }
        let (s, p, pr) = (stop.clone(), peaks.clone(), probe.clone());
        let handle = thread::Builder::new()
            .name("sampler".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut tick = 0u64;
                while !s.load(Ordering::Relaxed) {
                    p.look(1, sockets, pr.as_deref(), tick);
                    tick += 1;
                    thread::sleep(Duration::from_millis(5));
                }
            })
            .expect("spawn sampler");
        Sampler {
            stop,
            peaks,
            sockets,
            probe,
            handle: Some(handle),
        }
    }

    /// The timed part starts: keep its own peaks from now on, and return
    /// the probe's reading at this moment (what the warm-up left running).
    fn mark_timed(&self) -> Option<PoolPeek> {
        self.peaks.timed.store(true, Ordering::Relaxed);
        self.probe.as_deref().map(|probe| probe())
    }

    fn finish(mut self) -> Sampled {
        // One last look, so short runs are covered too (sockets included).
        let own = usize::from(self.handle.is_some());
        self.peaks.look(own, self.sockets, self.probe.as_deref(), 0);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let p = &self.peaks;
        let load = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        Sampled {
            peak_threads: load(&p.threads),
            sockets: self
                .sockets
                .then(|| (load(&p.sockets), load(&p.timed_sockets), open_sockets())),
            pool: self.probe.as_deref().map(|probe| {
                let peak = PoolPeek {
                    conns: load(&p.pool_conns),
                    threads: load(&p.pool_threads),
                };
                let timed = PoolPeek {
                    conns: load(&p.timed_pool_conns),
                    threads: load(&p.timed_pool_threads),
                };
                (peak, timed, probe())
            }),
        }
    }
}

/// The contents of the PEM file named by `COMPARE_CA`, when that is set and
/// not empty: the CA (run.sh makes a throwaway one) that the clients trust
/// as their only root in the `-tls` modes.
pub fn compare_ca() -> Res<Option<Vec<u8>>> {
    match std::env::var_os("COMPARE_CA") {
        Some(path) if !path.is_empty() => fs::read(&path)
            .map(Some)
            .map_err(|e| format!("COMPARE_CA={}: {e}", path.to_string_lossy()).into()),
        _ => Ok(None),
    }
}

/// A rustls client configuration that trusts the certificates in `pem`
/// only: the ring provider, rustls's safe default versions (TLS 1.3 and
/// 1.2), ALPN `http/1.1`, rustls's defaults otherwise (nethttp and raw).
pub fn rustls_config(pem: &[u8]) -> Res<Arc<rustls::ClientConfig>> {
    rustls_config_alpn(pem, &[b"http/1.1"])
}

/// [`rustls_config`] offering the ALPN protocols `alpn`, in that order
/// (nethttp in the `-h2` modes: `h2`, `http/1.1`, its own default list).
pub fn rustls_config_alpn(pem: &[u8], alpn: &[&[u8]]) -> Res<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert?)?;
    }
    if roots.is_empty() {
        return Err("COMPARE_CA holds no certificate".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The parsed command line: `<mode> <url> <threads> <count>`.
#[derive(Debug, Clone)]
pub struct Args {
    /// seq | conc | fresh | download | idle, the first four with `-tls`,
    /// or seq | conc | conc128 with `-h2` (as given: the JSON line reports
    /// it).
    pub mode: String,
    /// What the run does: the mode without its `-tls` or `-h2` suffix
    /// (`conc` for `conc128-h2`).
    pub base: &'static str,
    /// A `-tls` or `-h2` mode: the URL is `https://`.
    pub tls: bool,
    /// A `-h2` mode: the clients offer ALPN `h2` and check that every
    /// response came over HTTP/2 (raw runs its HTTP/1.1 TLS loop).
    pub h2: bool,
    /// The URL every request goes to.
    pub url: String,
    /// Worker threads (idle: connections).
    pub threads: usize,
    /// Requests per worker thread (idle: ignored).
    pub count: usize,
}

/// Usage text shared by all binaries.
pub const USAGE: &str = "usage: compare <nethttp|ureq|reqwest|raw> <seq|conc|fresh|download|idle> <http-url> <threads> <count>
       compare <nethttp|ureq|reqwest|raw> <seq-tls|conc-tls|fresh-tls|download-tls> <https-url> <threads> <count>
       compare <nethttp|reqwest|raw> <seq-h2|conc-h2|conc128-h2> <https-url-of-an-h2-port> <threads> <count>
       (-tls and -h2 modes trust the CA in the PEM file $COMPARE_CA, when set, as their only root;
        raw runs its HTTP/1.1 TLS loop in the -h2 modes)";

/// The modes; each of them but `idle` also runs over TLS as `<mode>-tls`.
const MODES: [&str; 5] = ["seq", "conc", "fresh", "download", "idle"];

/// The HTTP/2 modes, `<name>-h2`, and what each runs.
const H2_MODES: [(&str, &str); 3] = [("seq", "seq"), ("conc", "conc"), ("conc128", "conc")];

impl Args {
    /// Parses `<mode> <url> <threads> <count>` from the given arguments.
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mode = it.next().ok_or(USAGE)?;
        let url = it.next().ok_or(USAGE)?;
        let threads = it
            .next()
            .ok_or(USAGE)?
            .parse()
            .map_err(|e| format!("threads: {e}"))?;
        let count = it
            .next()
            .ok_or(USAGE)?
            .parse()
            .map_err(|e| format!("count: {e}"))?;
        let unknown = || format!("unknown mode {mode:?}\n{USAGE}");
        let (base, tls, h2) = if let Some(name) = mode.strip_suffix("-h2") {
            let base = H2_MODES
                .into_iter()
                .find(|(m, _)| *m == name)
                .ok_or_else(unknown)?
                .1;
            (base, true, true)
        } else {
            let (name, tls) = match mode.strip_suffix("-tls") {
                Some(name) => (name, true),
                None => (mode.as_str(), false),
            };
            let base = MODES
                .into_iter()
                .find(|m| *m == name && !(tls && *m == "idle"))
                .ok_or_else(unknown)?;
            (base, tls, false)
        };
        // The row a run lands in must say what it measured.
        let https = url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        if tls && !https {
            return Err(format!("mode {mode} needs an https:// URL, not {url:?}"));
        }
        if !tls && https {
            return Err(match base {
                "idle" => "idle takes an http:// URL (there is no idle-tls)".into(),
                _ => format!("an https:// URL needs the mode {mode}-tls"),
            });
        }
        Ok(Args {
            mode,
            base,
            tls,
            h2,
            url,
            threads,
            count,
        })
    }
}

/// What a run measured.
#[derive(Debug, Default)]
struct Outcome {
    requests: u64,
    bytes: u64,
    secs: f64,
    extra: String,
}

/// Entry point of every client binary: parses the arguments after the
/// program name, builds the client with `make(&args)`, runs the mode and
/// prints one JSON line. Exits with status 1 on any error.
pub fn main_for<C: Client>(name: &str, make: impl FnOnce(&Args) -> Res<C>) {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let result = make(&args).and_then(|client| run(&client, &args));
    match result {
        Ok(o) => {
            let hwm = proc_status("VmHWM");
            println!(
                "{{\"client\":\"{name}\",\"mode\":\"{}\",\"threads\":{},\"count\":{},\"requests\":{},\"bytes\":{},\"secs\":{:.6},\"req_per_s\":{:.1},\"mb_per_s\":{:.2},\"peak_rss_kib\":{hwm},{}}}",
                args.mode,
                args.threads,
                args.count,
                o.requests,
                o.bytes,
                o.secs,
                o.requests as f64 / o.secs,
                o.bytes as f64 / o.secs / 1e6,
                o.extra,
            );
        }
        Err(e) => {
            eprintln!("{name} {} {}: error: {e}", args.mode, args.url);
            std::process::exit(1);
        }
    }
}

fn run<C: Client>(client: &C, args: &Args) -> Res<Outcome> {
    match args.base {
        "seq" | "conc" | "download" => timed(client, args, false),
        "fresh" => timed(client, args, true),
        "idle" => idle(client, args),
        _ => unreachable!(),
    }
}

/// Runs `threads` workers of `count` requests each; a short warm-up (not
/// timed) opens the connections first, except for the big download.
fn timed<C: Client>(client: &C, args: &Args, fresh: bool) -> Res<Outcome> {
    let warm = if args.base == "download" {
        0
    } else {
        (args.count / 20).clamp(1, 200)
    };
    let threads = args.threads.max(1);
    let start = Barrier::new(threads + 1);
    let end = Barrier::new(threads + 1);
    let sampler = if args.h2 {
        Sampler::start(client.count_sockets(), client.probe())
    } else {
        Sampler::start(false, None)
    };
    let (t0, t1, results, pool_at_start) = thread::scope(|s| -> Res<_> {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (start, end) = (&start, &end);
                s.spawn(move || -> Res<u64> {
                    let mut buf = vec![0u8; BUF];
                    let mut w = client.worker();
                    let one = |w: &mut C::Worker, buf: &mut [u8]| {
                        if fresh {
                            client.get_fresh(w, &args.url, buf)
                        } else {
                            client.get(w, &args.url, buf)
                        }
                    };
                    let mut warm_err = None;
                    for _ in 0..warm {
                        if let Err(e) = one(&mut w, &mut buf) {
                            warm_err = Some(e);
                            break;
                        }
                    }
                    start.wait();
                    let mut bytes = 0;
                    let mut res = Ok(());
                    if warm_err.is_none() {
                        for _ in 0..args.count {
                            match one(&mut w, &mut buf) {
                                Ok(n) => bytes += n,
                                Err(e) => {
                                    res = Err(e);
                                    break;
                                }
                            }
                        }
                    }
                    end.wait();
                    if let Some(e) = warm_err {
                        return Err(e);
                    }
                    res.map(|()| bytes)
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        let at_start = sampler.mark_timed();
        end.wait();
        let t1 = Instant::now();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect();
        Ok((t0, t1, results, at_start))
    })?;
    let sampled = sampler.finish();
    let mut bytes = 0;
    for r in results {
        bytes += r?;
    }
    let requests = (threads * args.count) as u64;
    if args.base == "download" && bytes == 0 && requests > 0 {
        return Err("download read no bytes".into());
    }
    let mut extra = format!("\"peak_threads\":{}", sampled.peak_threads);
    if args.h2 {
        let _ = write!(extra, ",\"proto\":\"{}\"", client.proto());
    }
    if let Some((peak, timed, end)) = sampled.sockets {
        let _ = write!(
            extra,
            ",\"peak_sockets\":{peak},\"timed_peak_sockets\":{timed},\"end_sockets\":{end}"
        );
    }
    if let Some((peak, timed, end)) = sampled.pool {
        let start = pool_at_start.unwrap_or_default();
        let _ = write!(
            extra,
            ",\"pool_peak_conns\":{},\"pool_peak_threads\":{},\"pool_start_conns\":{},\"pool_start_threads\":{},\"pool_timed_peak_conns\":{},\"pool_timed_peak_threads\":{},\"pool_end_conns\":{},\"pool_end_threads\":{}",
            peak.conns,
            peak.threads,
            start.conns,
            start.threads,
            timed.conns,
            timed.threads,
            end.conns,
            end.threads
        );
    }
    Ok(Outcome {
        requests,
        bytes,
        secs: (t1 - t0).as_secs_f64(),
        extra,
    })
}

/// How long the idle connections sit before they are measured.
const IDLE_SETTLE: Duration = Duration::from_secs(2);

/// Opens `threads` connections at once, lets them go idle, and measures what
/// each idle connection costs.
fn idle<C: Client>(client: &C, args: &Args) -> Res<Outcome> {
    let n = args.threads.max(1);
    let mut buf = vec![0u8; BUF];
    // Warm-up: one request (lazy runtimes, DNS, first allocations), then the
    // same number of short-lived caller threads touching the same amount of
    // stack, so the caller threads' own cost is in the baseline.
    let held = client.hold(&args.url)?;
    client.release(held, &mut buf)?;
    spawn_callers(n, |_| {
        let mut pad = [0u8; 32 * 1024];
        std::hint::black_box(&mut pad);
        Ok(())
    })?;
    thread::sleep(Duration::from_millis(200));
    let smaps = std::env::var_os("COMPARE_SMAPS").is_some_and(|v| v == "1");
    let map0 = smaps_by_kind();
    let rss0 = proc_status("VmRSS");
    let thr0 = proc_status("Threads");
    let sock0 = open_sockets();
    let fds0 = open_socket_fds();

    let t0 = Instant::now();
    let barrier = Barrier::new(n);
    let bytes = AtomicUsize::new(0);
    spawn_callers(n, |_| {
        let held = client.hold(&args.url);
        // Everyone waits until every response head is in, so all `n`
        // connections are open (in use) at the same moment.
        barrier.wait();
        // On the stack, not the heap: caller stacks are left out of the
        // client's cost (see CALLER_STACK); 200 such buffers at once on the
        // heap would stay resident in malloc's arenas and be charged to the
        // client.
        let mut buf = [0u8; 16 * 1024];
        let k = client.release(held?, &mut buf)?;
        bytes.fetch_add(k as usize, Ordering::Relaxed);
        Ok(())
    })?;
    let secs = t0.elapsed().as_secs_f64();
    // Measure idle connections, not the end of a burst: handed back, their
    // threads parked, and quiet for a while (nethttp gives a quiet
    // connection's read buffer back after a second; every client gets the
    // same wait).
    thread::sleep(IDLE_SETTLE);
    let rss1 = proc_status("VmRSS");
    let thr1 = proc_status("Threads");
    let map1 = smaps_by_kind();
    let callers = caller_stack_rss(&map1) - caller_stack_rss(&map0);
    if smaps {
        let mut rows: Vec<(i64, String)> = Vec::new();
        for (k, after) in &map1 {
            let d = after - map0.get(k).copied().unwrap_or(0);
            if d.abs() >= 64 {
                rows.push((d, k.clone()));
            }
        }
        rows.sort();
        for (d, k) in rows.iter().rev() {
            eprintln!("smaps: {d:>8} KiB  {k}");
        }
    }
    let sock1 = open_sockets();
    let fds1 = open_socket_fds();
    // New connections: the warm-up's connection may already sit in the pool
    // and serve one of the `n` requests, so count sockets rather than assume.
    let conns = sock1.saturating_sub(sock0);
    let fds_per = (fds1 as f64 - fds0 as f64) / conns.max(1) as f64;
    let nf = if conns > 0 { conns as f64 } else { n as f64 };
    // The added RSS, less what the harness's caller threads left behind in
    // their (cached) stacks.
    let vmrss_per = (rss1 as f64 - rss0 as f64) / nf;
    let rss_per = (rss1 as f64 - rss0 as f64 - callers as f64) / nf;
    let thr_per = (thr1 as f64 - thr0 as f64) / nf;
    let kstack = thr_per * KERNEL_STACK_KIB;
    let mut extra = String::new();
    let _ = write!(
        extra,
        "\"peak_threads\":{thr1},\"idle_conns\":{conns},\"rss_before_kib\":{rss0},\"rss_after_kib\":{rss1},\
         \"threads_before\":{thr0},\"threads_after\":{thr1},\"rss_per_conn_kib\":{rss_per:.2},\
         \"vmrss_per_conn_kib\":{vmrss_per:.2},\"caller_stacks_kib\":{callers},\
         \"threads_per_conn\":{thr_per:.2},\"kernel_stack_per_conn_kib\":{kstack:.2},\
         \"fds_per_conn\":{fds_per:.2},\"idle_cost_per_conn_kib\":{:.2}",
        rss_per + kstack
    );
    if conns + 1 < n {
        eprintln!("warning: only {conns} new connections for {n} concurrent requests");
    }
    Ok(Outcome {
        requests: n as u64,
        bytes: bytes.load(Ordering::Relaxed) as u64,
        secs,
        extra,
    })
}

/// Runs `f(i)` on `n` threads at once (stacks of [`CALLER_STACK`], about the
/// std default of 2 MiB) and returns the first error.
fn spawn_callers(n: usize, f: impl Fn(usize) -> Res<()> + Sync) -> Res<()> {
    thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let f = &f;
                thread::Builder::new()
                    .stack_size(CALLER_STACK)
                    .spawn_scoped(s, move || f(i))
                    .expect("spawn caller")
            })
            .collect();
        let mut first = Ok(());
        for h in hs {
            let r = h.join().expect("caller panicked");
            if first.is_ok() {
                first = r;
            }
        }
        first
    })
}
