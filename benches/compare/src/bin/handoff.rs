//! The hand-off floor: what passing a request between threads costs on this
//! machine, with no HTTP and no sockets.
//!
//! A keep-alive request in nethttp crosses three threads: the caller hands
//! it to the connection's writer, the writer's `send` wakes the reader
//! through the socket (here: a channel), and the reader hands the response
//! back to the caller. `handoff` runs `rings` such rings of three threads
//! (caller → writer → reader → caller) over the channel type nethttp uses
//! (crossbeam's bounded channel), each thread waiting the way nethttp's
//! request path waits (`try_recv`, up to 4 `yield_now`, then a blocking
//! `recv`), and passes a token round each ring `laps` times. Run it under
//! `taskset -c 1` to see the cost on one CPU, the client's CPU in the
//! benchmark's two-CPU placement.
//!
//!     handoff <rings> <laps> [yields]
//!
//! It prints one JSON line: the wall time per lap (three hand-offs) over all
//! rings, and the context switches per lap (all threads, voluntary and not).

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};
use std::{thread, time::Instant};

fn recv_soon(rx: &Receiver<u64>, yields: usize) -> Option<u64> {
    for _ in 0..yields {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => thread::yield_now(),
        }
    }
    rx.recv().ok()
}

/// Context switches of this thread so far, from `/proc/thread-self/status`.
fn switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// One hop of a ring: take the token, pass it on, until the ring closes.
/// Returns this thread's context switches.
fn hop(rx: Receiver<u64>, tx: Sender<u64>, yields: usize) -> u64 {
    let before = switches();
    while let Some(v) = recv_soon(&rx, yields) {
        if tx.send(v).is_err() {
            break;
        }
    }
    switches() - before
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rings: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let laps: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let yields: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(4);
    let start = std::sync::Barrier::new(rings + 1);
    let (elapsed, switched) = thread::scope(|s| {
        let mut callers = Vec::new();
        let mut hops = Vec::new();
        for _ in 0..rings {
            let (to_writer, writer_rx) = bounded::<u64>(1);
            let (to_reader, reader_rx) = bounded::<u64>(1);
            let (to_caller, caller_rx) = bounded::<u64>(1);
            hops.push(s.spawn(move || hop(writer_rx, to_reader, yields)));
            hops.push(s.spawn(move || hop(reader_rx, to_caller, yields)));
            let start = &start;
            callers.push(s.spawn(move || {
                start.wait();
                let before = switches();
                for lap in 0..laps {
                    to_writer.send(lap).expect("ring open");
                    let back = recv_soon(&caller_rx, yields).expect("ring open");
                    assert_eq!(back, lap);
                }
                switches() - before
            }));
        }
        start.wait();
        let t0 = Instant::now();
        let mut switched: u64 = callers.into_iter().map(|c| c.join().expect("caller")).sum();
        let elapsed = t0.elapsed();
        // The callers' senders are gone: every ring closes.
        switched += hops.into_iter().map(|h| h.join().expect("hop")).sum::<u64>();
        (elapsed, switched)
    });
    let total = rings as f64 * laps as f64;
    println!(
        "{{\"rings\":{rings},\"laps\":{laps},\"yields\":{yields},\"us_per_lap\":{:.3},\"us_per_handoff\":{:.3},\"switches_per_lap\":{:.2}}}",
        elapsed.as_secs_f64() * 1e6 / total,
        elapsed.as_secs_f64() * 1e6 / total / 3.0,
        switched as f64 / total
    );
}
