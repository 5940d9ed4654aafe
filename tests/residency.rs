//! A micro-optimisation that shapes the code, guarded (issue 13): a
//! connection thread's deepest stack stays resident for as long as its
//! connection lives, so the reader's and the writer's hot paths keep their
//! frames small and apart (`#[inline(never)]` on the big steps, the header
//! slots on the heap, channels built out of line). This test reads how much
//! of each thread's stack is resident after a workload, from the kernel:
//! the thread's stack pointer (`/proc/self/task/<tid>/syscall`, while it
//! waits) and the resident size of the mapping that holds it
//! (`/proc/self/smaps`). It fails if either grows past its measured size.
//!
//! The mapping also holds the thread's TLS and glibc's thread descriptor
//! (one page), so "pages" below counts them too. Measured 2026-12-03 with
//! this repository's test profile (opt-level 1, dependencies 2).

mod support;
use support::*;

use std::{
    fs, io,
    sync::{Arc, Mutex},
    time::Duration,
};

use nethttp::{Body, ClientTrace, GotConnInfo, Transport};

/// Resident pages of each connection thread's stack mapping, at most.
const READER_PAGES: u64 = 3;
const WRITER_PAGES: u64 = 2;

#[derive(Default)]
struct Ids(Mutex<Vec<u64>>);

impl ClientTrace for Ids {
    fn got_conn(&self, info: &GotConnInfo) {
        self.0.lock().unwrap().push(info.conn_id);
    }
}

/// The thread of this process named `name`.
fn tid_named(name: &str) -> Option<String> {
    fs::read_dir("/proc/self/task").ok()?.find_map(|e| {
        let e = e.ok()?;
        let comm = fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == name).then(|| e.file_name().to_string_lossy().into_owned())
    })
}

/// The stack pointer of thread `tid` while it waits in a system call.
fn waiting_sp(tid: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    let fields: Vec<&str> = s.split_whitespace().collect();
    // "nr arg1 .. arg6 sp pc" while in a system call; "running" or
    // "-1 sp pc" otherwise.
    (fields.len() == 9).then(|| u64::from_str_radix(fields[7].trim_start_matches("0x"), 16).ok())?
}

/// Resident KiB of the mapping that holds `addr`.
fn resident_kib(addr: u64) -> Option<u64> {
    let smaps = fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ') {
            if let Some((lo, hi)) = range.split_once('-') {
                if let (Ok(lo), Ok(hi)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16))
                {
                    inside = lo <= addr && addr < hi;
                    continue;
                }
            }
        }
        if inside {
            if let Some(kb) = line.strip_prefix("Rss:") {
                return kb.trim().trim_end_matches("kB").trim().parse().ok();
            }
        }
    }
    None
}

/// The resident pages of thread `name`'s stack, once it waits.
fn stack_pages(name: &str) -> u64 {
    let mut last = None;
    let found = wait_until(Duration::from_secs(5), || {
        last = tid_named(name)
            .and_then(|tid| waiting_sp(&tid))
            .and_then(resident_kib);
        last.is_some()
    });
    assert!(found, "{name}: no waiting thread or no stack mapping");
    last.unwrap_or(0) / 4
}

#[test]
fn connection_threads_keep_their_stacks_small() {
    // Every kind of response the reader handles: copied, lent, chunked
    // with trailers, no body; and streamed uploads, sized and chunked, for
    // the writer (the caller writes a bodiless request itself).
    let pat = Arc::new(pattern_vec(256 << 10));
    let server = ScriptedServer::start(keep_alive_script(pat));
    let t = Transport::new();
    let _leaks = LeakCheck::new(&t);
    let c = client(&t);
    let ids = Arc::new(Ids::default());
    for path in [
        "/bytes/100",
        "/bytes/200000",
        "/chunked/50000",
        "/status/204",
    ] {
        for _ in 0..3 {
            let resp = c.get(server.url(path)).trace(ids.clone()).send().unwrap();
            resp.discard().unwrap();
        }
    }
    for len in [Some(100_000), None] {
        for _ in 0..3 {
            let body = Body::from_reader(io::Cursor::new(pattern_vec(100_000)), len);
            let resp = c
                .post(server.url("/status/204"))
                .body(body)
                .trace(ids.clone())
                .send()
                .unwrap();
            resp.discard().unwrap();
        }
    }
    let ids = ids.0.lock().unwrap().clone();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one connection: {ids:?}"
    );
    let id = ids[0];
    let reader = stack_pages(&format!("nethttp-r{id}"));
    let writer = stack_pages(&format!("nethttp-w{id}"));
    eprintln!("resident stack pages: reader {reader}, writer {writer}");
    assert!(reader <= READER_PAGES, "reader stack: {reader} pages");
    assert!(writer <= WRITER_PAGES, "writer stack: {writer} pages");
}
