//! The concurrency stress test: 16 threads x 500 requests through a
//! transport limited to 4 connections per host, with random early drops.
//! Every body read to its end must be exact, the whole workload must finish
//! (no deadlock), the connection limit must hold at every sample, and every
//! thread must be gone afterwards.

mod support;

use std::{
    io::{self, Read},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use nethttp::{Client, PoolStats, Transport};
use support::{
    InteropServer, LeakCheck, ScriptedServer, XorShift, bounded, keep_alive_script, pattern,
    pattern_vec, wait_stats,
};

const MAX_BODY: usize = 300_000;

/// What one request does with its response.
#[derive(Clone, Copy, Debug)]
enum Action {
    ReadAll,
    ReadSomeThenDrop,
    DropUnread,
}

#[derive(Default)]
struct Counts {
    full: AtomicUsize,
    partial: AtomicUsize,
    unread: AtomicUsize,
}

/// Samples `t.stats()` every millisecond until `stop`, recording the worst
/// values seen and the first sample that broke the connection limit.
struct Monitor {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<MonitorReport>>,
}

#[derive(Debug, Default)]
struct MonitorReport {
    samples: usize,
    max_conns: usize,
    max_conns_plus_dialing: usize,
    max_waiting: usize,
    max_threads: usize,
    violation: Option<PoolStats>,
    violation_with_dialing: Option<PoolStats>,
}

impl Monitor {
    fn start(t: &Transport, limit: usize) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let (t, st) = (t.clone(), stop.clone());
        let handle = thread::Builder::new()
            .name("stress-monitor".into())
            .spawn(move || {
                let mut r = MonitorReport::default();
                while !st.load(Ordering::SeqCst) {
                    let s = t.stats();
                    r.samples += 1;
                    r.max_conns = r.max_conns.max(s.conns);
                    r.max_conns_plus_dialing = r.max_conns_plus_dialing.max(s.conns + s.dialing);
                    r.max_waiting = r.max_waiting.max(s.waiting);
                    r.max_threads = r.max_threads.max(s.threads);
                    if s.conns > limit && r.violation.is_none() {
                        r.violation = Some(s);
                    }
                    if s.conns + s.dialing > limit && r.violation_with_dialing.is_none() {
                        r.violation_with_dialing = Some(s);
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                r
            })
            .expect("spawn monitor");
        Monitor {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> MonitorReport {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .expect("monitor")
            .join()
            .expect("monitor thread")
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Runs `threads` x `per_thread` GETs against `base` (a server with
/// `/bytes/N` and `/chunked/N`) through `client`, each response read
/// fully, read partly then dropped, or dropped unread as the PRNG says.
fn run_workload(
    client: Client,
    base: String,
    threads: u64,
    per_thread: usize,
    seed: u64,
    length_always: bool,
) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let workers: Vec<_> = (0..threads)
        .map(|w| {
            let (client, base, counts) = (client.clone(), base.clone(), counts.clone());
            thread::Builder::new()
                .name(format!("stress-{w}"))
                .spawn(move || {
                    let mut rng = XorShift::new(seed ^ (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let mut buf = vec![0u8; 16 * 1024];
                    for i in 0..per_thread {
                        let size = match rng.below(6) {
                            0 => 0,
                            1 => 13,
                            2 => rng.below(4096) as usize,
                            3 => 4096 + rng.below(60_000) as usize,
                            4 => 65_536,
                            _ => 100_000 + rng.below(200_000) as usize,
                        };
                        let kind = if rng.below(2) == 0 {
                            "bytes"
                        } else {
                            "chunked"
                        };
                        let action = match rng.below(3) {
                            0 => Action::ReadAll,
                            1 => Action::ReadSomeThenDrop,
                            _ => Action::DropUnread,
                        };
                        let what = format!("thread {w} request {i} /{kind}/{size} {action:?}");
                        let mut resp = client
                            .get(format!("{base}/{kind}/{size}"))
                            .send()
                            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                        assert_eq!(resp.status().as_u16(), 200, "{what}");
                        match resp.content_length() {
                            Some(len) => assert_eq!(len, size as u64, "{what}: Content-Length"),
                            // tiny_http sends bodies of 32 KiB and more chunked.
                            None => assert!(
                                kind == "chunked" || !length_always,
                                "{what}: no Content-Length"
                            ),
                        }
                        match action {
                            Action::ReadAll => {
                                let mut off = 0;
                                loop {
                                    let n = match resp.read(&mut buf) {
                                        Ok(0) => break,
                                        Ok(n) => n,
                                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                                            continue;
                                        }
                                        Err(e) => panic!("{what}: read error at {off}: {e:?}"),
                                    };
                                    if let Some(j) = (0..n).find(|&j| buf[j] != pattern(off + j)) {
                                        panic!("{what}: byte {} is {:#04x}", off + j, buf[j]);
                                    }
                                    off += n;
                                }
                                assert_eq!(off, size, "{what}: body length");
                                counts.full.fetch_add(1, Ordering::Relaxed);
                            }
                            Action::ReadSomeThenDrop => {
                                let want = (1 + rng.below(100) as usize).min(size);
                                let mut got = vec![0u8; want];
                                resp.read_exact(&mut got)
                                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                                assert_eq!(got, pattern_vec(want), "{what}: prefix");
                                drop(resp);
                                counts.partial.fetch_add(1, Ordering::Relaxed);
                            }
                            Action::DropUnread => {
                                drop(resp);
                                counts.unread.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
                .expect("spawn worker")
        })
        .collect();
    let mut first_panic = None;
    for w in workers {
        if let Err(p) = w.join() {
            first_panic.get_or_insert(p);
        }
    }
    if let Some(p) = first_panic {
        std::panic::resume_unwind(p);
    }
    counts
}

/// `length_always`: the server frames every `/bytes/N` with Content-Length.
fn stress(
    name: &str,
    base: String,
    threads: u64,
    per_thread: usize,
    limit_secs: u64,
    length_always: bool,
) {
    const LIMIT: usize = 4;
    let t = Transport::builder().max_conns_per_host(LIMIT).build();
    let _leaks = LeakCheck::new(&t);
    let client = Client::builder()
        .transport(t.clone())
        .build()
        .expect("client");
    let monitor = Monitor::start(&t, LIMIT);
    let start = Instant::now();
    let counts = bounded(name, Duration::from_secs(limit_secs), move || {
        run_workload(
            client,
            base,
            threads,
            per_thread,
            0x005E_ED0F_5EED,
            length_always,
        )
    });
    let elapsed = start.elapsed();
    let report = monitor.finish();
    let total = threads as usize * per_thread;
    eprintln!(
        "{name}: {total} requests in {elapsed:?} = {:.0} req/s \
         (read fully {}, read partly {}, dropped unread {}); monitor: {report:?}",
        total as f64 / elapsed.as_secs_f64(),
        counts.full.load(Ordering::Relaxed),
        counts.partial.load(Ordering::Relaxed),
        counts.unread.load(Ordering::Relaxed),
    );
    assert!(report.samples > 0, "the monitor never sampled");
    assert!(
        report.violation.is_none(),
        "{name}: more than {LIMIT} open connections: {:?}",
        report.violation
    );
    assert!(
        report.violation_with_dialing.is_none(),
        "{name}: open + dialing connections exceeded max_conns_per_host({LIMIT}): {:?}",
        report.violation_with_dialing
    );
    let s = t.stats();
    assert!(s.conns <= LIMIT, "{s:?}");
    assert_eq!(s.waiting, 0, "nobody waits after the workload: {s:?}");
    // Connections of dropped responses close on their reader thread, a
    // moment after the drop: poll, bounded.
    wait_stats(&t, Duration::from_secs(10), |s| {
        s.in_use == 0 && s.conns <= LIMIT
    });
    t.close_idle_connections();
    wait_stats(&t, Duration::from_secs(10), |s| {
        s.threads == 0 && s.conns == 0 && s.dialing == 0
    });
}

#[test]
fn stress_16x500_max_conns_4_random_drops_scripted_server() {
    let pat = Arc::new(pattern_vec(MAX_BODY));
    let server = ScriptedServer::start(keep_alive_script(pat));
    stress("scripted 16x500", server.url(""), 16, 500, 60, true);
}

#[test]
fn stress_16x100_max_conns_4_random_drops_tiny_http() {
    // The same workload, shorter, against a server nobody here wrote.
    let server = InteropServer::start(8);
    stress("tiny_http 16x100", server.url(""), 16, 100, 60, false);
}
