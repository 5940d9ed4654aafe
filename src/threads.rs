//! Every thread the crate starts goes through [`spawn`]: it names the thread,
//! gives it an explicit stack, and keeps the counts that leak tests read.
//! `std::thread::spawn` appears nowhere else in the crate.

use std::{
    any::Any,
    io,
    panic::{self, AssertUnwindSafe},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
};

/// Threads started by this crate (all transports) and not yet finished.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Returns the number of threads this crate has started and that have not
/// yet finished, across every transport: two per open connection plus dial
/// threads still running.
///
/// A thread counts from just before it is spawned until the last statement
/// of its body has run, so after a connection closes the count can lag for
/// a moment; leak tests should poll with a deadline.
///
/// ```
/// // A fresh process that has made no requests has started no threads.
/// assert_eq!(nethttp::live_threads(), 0);
/// ```
pub fn live_threads() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// Decrements the counters when the thread body ends, even by panic.
struct Census {
    transport: Arc<AtomicUsize>,
}

impl Drop for Census {
    fn drop(&mut self) {
        self.transport.fetch_sub(1, Ordering::SeqCst);
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Spawns a named thread with `stack` bytes of stack, counted in `transport`
/// (the owning transport's counter) and in the crate-wide count.
pub(crate) fn spawn<F>(
    name: String,
    stack: usize,
    transport: &Arc<AtomicUsize>,
    body: F,
) -> io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    transport.fetch_add(1, Ordering::SeqCst);
    LIVE.fetch_add(1, Ordering::SeqCst);
    let census = Census {
        transport: transport.clone(),
    };
    let spawned = thread::Builder::new()
        .name(name)
        .stack_size(stack)
        .spawn(move || {
            let _census = census;
            // A user callback may panic here (a trace hook, a request body's
            // reader). Each body's guards turn the unwind into a closed
            // connection or a failed dial; the panic stops at the thread's
            // edge instead of ending it through the runtime.
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(body)) {
                log::error!(
                    "nethttp: thread {} ended by a panic: {}",
                    thread::current().name().unwrap_or("?"),
                    panic_message(payload.as_ref())
                );
            }
        });
    // On failure the closure (and the census inside it) is dropped, which
    // undoes the counts.
    spawned.map(drop)
}

/// The text of a panic's payload, when it is one.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn counts_until_the_body_ends() {
        let counter = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        spawn("nethttp-test".into(), 64 * 1024, &counter, move || {
            let _ = rx.recv();
        })
        .unwrap();
        assert_eq!(counter.load(Ordering::SeqCst), 1);
        drop(tx);
        let deadline = Instant::now() + Duration::from_secs(5);
        while counter.load(Ordering::SeqCst) != 0 {
            assert!(Instant::now() < deadline, "thread did not finish");
            thread::sleep(Duration::from_millis(1));
        }
    }
}
