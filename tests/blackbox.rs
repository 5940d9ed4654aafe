//! A seeded, bounded black-box fuzz of whole exchanges (issue 12, item 11):
//! valid responses, mutated the ways hostile and broken servers mutate them,
//! served byte for byte over loopback. For each, `support::blackbox` checks
//! the invariants: no panic, no hang, a connection whose response failed is
//! never reused, and the counts come back to zero. Unmutated responses must
//! decode exactly. The long version is `cargo +nightly fuzz run exchange`
//! (README, "Fuzzing").
//!
//! `NETHTTP_BLACKBOX_SEED` and `NETHTTP_BLACKBOX_CASES` replay or widen a
//! run; a failure message names its seed and case.

mod support;

use std::{thread, time::Instant};

use nethttp::Transport;
use support::{XorShift, blackbox};

/// Cases per worker thread, and the workers.
const CASES: usize = 500;
const WORKERS: u64 = 2;

/// One mutation of `r`, chosen by `rng`.
fn mutate(rng: &mut XorShift, r: &mut Vec<u8>) -> &'static str {
    let at = |rng: &mut XorShift, r: &Vec<u8>| rng.below(r.len() as u64 + 1) as usize;
    const BYTES: &[u8] = b"\r\n \t:;0189aAfF,\x00\x7f\xff-";
    match rng.below(9) {
        0 => {
            let i = at(rng, r).min(r.len().saturating_sub(1));
            if let Some(b) = r.get_mut(i) {
                *b ^= 1 << rng.below(8);
            }
            "flip a bit"
        }
        1 => {
            let i = at(rng, r);
            let b = BYTES[rng.below(BYTES.len() as u64) as usize];
            r.insert(i, b);
            "insert a byte"
        }
        2 => {
            if !r.is_empty() {
                let i = at(rng, r).min(r.len() - 1);
                r.remove(i);
            }
            "delete a byte"
        }
        3 => {
            let i = at(rng, r);
            r.truncate(i);
            "cut short"
        }
        4 => {
            // Repeat a line (a header twice, a chunk line twice).
            let lines: Vec<usize> = r
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1)
                .collect();
            if lines.len() >= 2 {
                let k = rng.below(lines.len() as u64 - 1) as usize;
                let line = r[lines[k]..lines[k + 1]].to_vec();
                let pos = lines[k + 1];
                r.splice(pos..pos, line);
            }
            "repeat a line"
        }
        5 => {
            // A number made huge, negative or hex.
            if let Some(i) = r.iter().position(|b| b.is_ascii_digit()) {
                let with: &[u8] = [
                    &b"99999999999999999999"[..],
                    b"-1",
                    b"0x10",
                    b"00000000000000000000005",
                    b"4294967296",
                ][rng.below(5) as usize];
                let end = r[i..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(r.len(), |e| i + e);
                r.splice(i..end, with.iter().copied());
            }
            "change a number"
        }
        6 => {
            let extra: &[u8] = [
                &b"Transfer-Encoding: chunked\r\n"[..],
                b"Content-Length: 3\r\n",
                b"Connection: close\r\n",
                b"Content-Encoding: gzip\r\n",
                b"Transfer-Encoding: gzip, chunked\r\n",
                b"X-Fold: a\r\n b\r\n",
                b"Bad Header : x\r\n",
            ][rng.below(7) as usize];
            if let Some(i) = r.windows(2).position(|w| w == b"\r\n") {
                r.splice(i + 2..i + 2, extra.iter().copied());
            }
            "add a header"
        }
        7 => {
            // Line endings: CRLF to LF, or LF to CR.
            if let Some(i) = r.windows(2).position(|w| w == b"\r\n") {
                if rng.below(2) == 0 {
                    r.remove(i);
                } else {
                    r[i + 1] = b'\r';
                }
            }
            "break a line ending"
        }
        _ => {
            // Garbage after the message.
            let n = rng.below(16) as usize;
            r.extend((0..n).map(|_| BYTES[rng.below(BYTES.len() as u64) as usize]));
            "append garbage"
        }
    }
}

#[test]
fn unmutated_responses_decode_exactly() {
    let t = Transport::new();
    for (response, body) in blackbox::seeds() {
        blackbox::check_seed(&t, &response, &body);
    }
}

#[test]
fn mutated_responses_keep_every_invariant() {
    let seed: u64 = std::env::var("NETHTTP_BLACKBOX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x006e_6574_6874_7470); // "nethttp"
    let cases: usize = std::env::var("NETHTTP_BLACKBOX_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CASES);
    let start = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            thread::spawn(move || {
                let t = Transport::new();
                let seeds = blackbox::seeds();
                let mut rng = XorShift::new(seed + w);
                let mut failed = 0;
                for case in 0..cases {
                    let (mut r, _) = seeds[rng.below(seeds.len() as u64) as usize].clone();
                    let mut how = Vec::new();
                    for _ in 0..=rng.below(3) {
                        how.push(mutate(&mut rng, &mut r));
                    }
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        blackbox::exchange(&t, &r)
                    }));
                    if let Err(p) = run {
                        failed += 1;
                        eprintln!(
                            "worker {w} case {case} (NETHTTP_BLACKBOX_SEED={seed}), {how:?}: {:?}",
                            p.downcast_ref::<String>()
                        );
                    }
                }
                failed
            })
        })
        .collect();
    let failed: usize = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    eprintln!(
        "{} mutated exchanges in {:?}",
        WORKERS as usize * cases,
        start.elapsed()
    );
    assert_eq!(failed, 0, "exchanges broke an invariant (see above)");
}
