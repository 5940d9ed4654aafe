//! Every thread the crate starts goes through [`Threads::spawn`]: it names
//! the thread, gives it an explicit stack, and keeps the counts that leak
//! tests read. `std::thread::spawn` appears nowhere else in the crate.
//!
//! A thread whose work is done may stay parked as a *spare* (API.md "Spare
//! threads"), and the next [`Threads::spawn`] of the same transport hands
//! its work to a spare instead of starting a thread: starting and ending a
//! thread costs about as much as a whole plain-HTTP exchange on loopback.
//! A spare waits at most `spare_timeout` for work, and
//! [`Threads::end_spares`] ends every parked one at once.

use std::{
    any::Any,
    io,
    panic::{self, AssertUnwindSafe},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendError, Sender};
use parking_lot::Mutex;

/// Threads started by this crate (all transports) and not yet finished.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Returns the number of threads this crate has started and that have not
/// yet finished, across every transport: two per open connection, dial
/// threads still running, and spare threads parked for reuse (see
/// [`PoolStats::spare_threads`](crate::PoolStats::spare_threads)).
///
/// A thread counts from just before it is spawned until the last statement
/// of its body has run, so after a connection closes the count can lag for
/// a moment, and a spare stays counted until it ends (at most
/// [`spare_thread_timeout`](crate::TransportBuilder::spare_thread_timeout)
/// after its last work, or at once on `close_idle_connections()` or when
/// its transport is dropped); leak tests should poll with a deadline.
///
/// ```
/// // A fresh process that has made no requests has started no threads.
/// assert_eq!(nethttp::live_threads(), 0);
/// ```
pub fn live_threads() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// Work for a thread: its name and its body.
struct Job {
    name: String,
    body: Box<dyn FnOnce() + Send>,
    /// `SpareState::epoch` when the work was given: a thread whose work
    /// began before `end_spares` ends with it instead of parking.
    epoch: u64,
    /// Whether the thread may park as a spare after this body.
    then_park: bool,
}

/// What a parked spare receives.
enum Wake {
    Run(Job),
    /// End now (`end_spares`); the sender has already uncounted it.
    Stop,
}

/// One transport's threads: those at work, and the spares parked for reuse.
///
/// Shared by the transport, its dial threads and every thread it started
/// (each holds an `Arc`); no thread holds the transport through it, so
/// dropping the transport is not delayed by a spare.
pub(crate) struct Threads {
    stack: usize,
    /// Threads of this transport running a body: two per open connection
    /// plus running dials (`PoolStats::threads`). A body counts from its
    /// `spawn` until it returns.
    working: AtomicUsize,
    /// How long a spare waits for work; zero keeps no spares.
    spare_timeout: Duration,
    /// At most this many spares are parked.
    max_spares: usize,
    /// Parked spares not yet given work or told to stop, the epoch of
    /// `end_spares`, and whether the transport still takes spares. Taken by `spawn`, by a thread that
    /// parks or gives up waiting, and by `end_spares`; never held while
    /// anything blocks.
    spares: Mutex<SpareState>,
    /// Work and stop orders for parked spares: every message is for
    /// whichever spare takes it first. Sent only under `spares`.
    to_spares: Sender<Wake>,
    from_pool: Receiver<Wake>,
}

struct SpareState {
    parked: usize,
    /// Bumped by every `end_spares`.
    epoch: u64,
    /// False once the transport is gone.
    open: bool,
}

impl Threads {
    /// Threads with `stack` bytes of stack, keeping at most `max_spares`
    /// spares for `spare_timeout` each.
    pub(crate) fn new(stack: usize, spare_timeout: Duration, max_spares: usize) -> Arc<Threads> {
        let (to_spares, from_pool) = crossbeam_channel::unbounded();
        Arc::new(Threads {
            stack,
            working: AtomicUsize::new(0),
            spare_timeout,
            max_spares: if spare_timeout.is_zero() {
                0
            } else {
                max_spares
            },
            spares: Mutex::new(SpareState {
                parked: 0,
                epoch: 0,
                open: true,
            }),
            to_spares,
            from_pool,
        })
    }

    /// Threads running a body (`PoolStats::threads`).
    pub(crate) fn working(&self) -> usize {
        self.working.load(Ordering::SeqCst)
    }

    /// Spares parked (`PoolStats::spare_threads`).
    pub(crate) fn spares(&self) -> usize {
        self.spares.lock().parked
    }

    /// Runs `body` on a thread named `name`: a parked spare if there is
    /// one, else a new thread, which may park as a spare afterwards. The
    /// body counts in `working` until it returns. For a connection's
    /// reader and writer.
    pub(crate) fn spawn<F>(self: &Arc<Self>, name: String, body: F) -> io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        self.give(name, Box::new(body), true)
    }

    /// [`spawn`](Self::spawn) for a short task (a dial, a racing connect)
    /// whose thread ends with it instead of parking: a dial reaches deeper
    /// into its stack than a connection's threads, and a connection thread
    /// started on such a spare would keep those pages resident for its
    /// whole life (about 4 KiB more per idle connection thread, measured).
    pub(crate) fn spawn_transient<F>(self: &Arc<Self>, name: String, body: F) -> io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        self.give(name, Box::new(body), false)
    }

    fn give(
        self: &Arc<Self>,
        name: String,
        body: Box<dyn FnOnce() + Send>,
        then_park: bool,
    ) -> io::Result<()> {
        self.working.fetch_add(1, Ordering::SeqCst);
        let job = {
            let mut s = self.spares.lock();
            let job = Job {
                name,
                body,
                epoch: s.epoch,
                then_park,
            };
            if s.parked > 0 {
                s.parked -= 1;
                // The receiver lives in `self`: the send cannot fail, but
                // if it did, the work would get a thread of its own.
                let Err(SendError(Wake::Run(job))) = self.to_spares.send(Wake::Run(job)) else {
                    return Ok(());
                };
                job
            } else {
                job
            }
        };
        self.start(job)
    }

    /// A new OS thread for `job`; after it, the thread may park as a spare
    /// (see `park`) if the job allows.
    fn start(self: &Arc<Self>, job: Job) -> io::Result<()> {
        LIVE.fetch_add(1, Ordering::SeqCst);
        let census = Census;
        let me = self.clone();
        let spawned = thread::Builder::new()
            .name(job.name.clone())
            .stack_size(self.stack)
            .spawn(move || {
                let _census = census;
                let mut next = Some(job);
                while let Some(job) = next {
                    let (epoch, then_park) = (job.epoch, job.then_park);
                    me.run(job);
                    next = if then_park { me.park(epoch) } else { None };
                }
            });
        spawned.map(drop).inspect_err(|_| {
            // The closure (and the census inside it) is dropped, which
            // undoes the crate-wide count; the job was never run.
            self.working.fetch_sub(1, Ordering::SeqCst);
        })
    }

    /// Runs one body, counted in `working` (incremented by `spawn`).
    // Kept out of the thread's loop, as `park` is: the loop's frame stays
    // under every body for its whole life, and a connection thread's
    // touched stack stays resident (writer: 2 pages, tests/residency.rs).
    #[inline(never)]
    fn run(&self, job: Job) {
        let Job { name, body, .. } = job;
        // A user callback may panic here (a trace hook, a request body's
        // reader). Each body's guards turn the unwind into a closed
        // connection or a failed dial; the panic stops at the body's edge
        // and the thread lives on.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(body)) {
            log::error!(
                "nethttp: thread {name} ended by a panic: {}",
                panic_message(payload.as_ref())
            );
        }
        self.working.fetch_sub(1, Ordering::SeqCst);
    }

    /// After a body given in `epoch`: waits as a spare for the next one, or
    /// `None` when this thread should end (no room, the wait timed out, or
    /// the spares were ended, now or while the body ran).
    #[inline(never)]
    fn park(&self, epoch: u64) -> Option<Job> {
        {
            let mut s = self.spares.lock();
            if !s.open || s.epoch != epoch || s.parked >= self.max_spares {
                return None;
            }
            s.parked += 1;
        }
        let wake = match self.from_pool.recv_timeout(self.spare_timeout) {
            Ok(wake) => wake,
            Err(RecvTimeoutError::Timeout) => {
                // Work or a stop order may have been sent for us (as for
                // any parked spare) just as the wait ran out; under the
                // lock, whatever was sent is in the channel.
                let mut s = self.spares.lock();
                match self.from_pool.try_recv() {
                    Ok(wake) => wake,
                    Err(_) => {
                        s.parked -= 1;
                        return None;
                    }
                }
            }
            // The sender lives in `self`.
            Err(RecvTimeoutError::Disconnected) => return None,
        };
        match wake {
            Wake::Run(job) => {
                rename(&job.name);
                Some(job)
            }
            Wake::Stop => None,
        }
    }

    /// Ends every parked spare now, and every thread at work when its body
    /// returns (`close_idle_connections`); with `for_good` (the transport
    /// is gone) no thread parks any more.
    pub(crate) fn end_spares(&self, for_good: bool) {
        let mut s = self.spares.lock();
        for _ in 0..s.parked {
            let _ = self.to_spares.send(Wake::Stop);
        }
        s.parked = 0;
        s.epoch += 1;
        if for_good {
            s.open = false;
        }
    }
}

/// Gives a spare its new work's name where the kernel keeps it
/// (`/proc/self/task/*/comm`, what leak tests read); std's
/// `thread::current().name()` keeps the first one.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn rename(name: &str) {
    if let Ok(name) = std::ffi::CString::new(name) {
        // The kernel truncates to 15 bytes, as std's own naming does.
        let _ = rustix::thread::set_name(&name);
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn rename(_: &str) {}

/// Decrements the crate-wide count when the thread ends, even by panic.
struct Census;

impl Drop for Census {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
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
    use std::time::Instant;

    const LIMIT: Duration = Duration::from_secs(10);

    fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + LIMIT;
        while !cond() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Spawns a body that reports its kernel thread id and then waits for
    /// `go` (or returns at once if `go` is `None`).
    fn spawn_reporting(
        t: &Arc<Threads>,
        name: &str,
        go: Option<crossbeam_channel::Receiver<()>>,
    ) -> i32 {
        let (tid_tx, tid_rx) = crossbeam_channel::bounded(1);
        t.spawn(name.into(), move || {
            let _ = tid_tx.send(rustix::thread::gettid().as_raw_nonzero().get());
            if let Some(go) = go {
                let _ = go.recv();
            }
        })
        .unwrap();
        tid_rx.recv_timeout(LIMIT).expect("body never ran")
    }

    fn thread_exists(tid: i32) -> bool {
        std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
    }

    fn comm(tid: i32) -> String {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
            .unwrap_or_default()
            .trim_end()
            .to_string()
    }

    #[test]
    fn counts_until_the_body_ends_and_no_spares_without_a_timeout() {
        let t = Threads::new(64 * 1024, Duration::ZERO, 4);
        let (go, wait) = crossbeam_channel::bounded::<()>(0);
        let tid = spawn_reporting(&t, "nethttp-test", Some(wait));
        assert_eq!(t.working(), 1);
        drop(go);
        assert!(wait_until(|| t.working() == 0), "body did not finish");
        assert!(wait_until(|| !thread_exists(tid)), "thread did not end");
        assert_eq!(t.spares(), 0);
    }

    #[test]
    fn a_spare_runs_the_next_body_under_its_name() {
        let t = Threads::new(64 * 1024, LIMIT, 4);
        let first = spawn_reporting(&t, "nethttp-r1", None);
        assert!(wait_until(|| t.spares() == 1 && t.working() == 0));
        let (go, wait) = crossbeam_channel::bounded::<()>(0);
        let second = spawn_reporting(&t, "nethttp-w2", Some(wait));
        assert_eq!(first, second, "the spare did not take the work");
        assert_eq!((t.working(), t.spares()), (1, 0));
        assert_eq!(comm(second), "nethttp-w2");
        drop(go);
        assert!(wait_until(|| t.spares() == 1 && t.working() == 0));
        t.end_spares(true);
        assert_eq!(t.spares(), 0);
        assert!(wait_until(|| !thread_exists(first)), "spare did not end");
    }

    #[test]
    fn a_transient_body_ends_its_thread_but_may_run_on_a_spare() {
        let t = Threads::new(64 * 1024, LIMIT, 4);
        let (tid_tx, tid_rx) = crossbeam_channel::bounded(1);
        t.spawn_transient("nethttp-d1".into(), move || {
            let _ = tid_tx.send(rustix::thread::gettid().as_raw_nonzero().get());
        })
        .unwrap();
        let dial = tid_rx.recv_timeout(LIMIT).expect("body never ran");
        assert!(wait_until(|| !thread_exists(dial)), "a dial thread parked");
        assert_eq!((t.working(), t.spares()), (0, 0));
        // A spare left by a connection thread takes a dial, and ends.
        let conn = spawn_reporting(&t, "nethttp-r2", None);
        assert!(wait_until(|| t.spares() == 1));
        let (tid_tx, tid_rx) = crossbeam_channel::bounded(1);
        t.spawn_transient("nethttp-d3".into(), move || {
            let _ = tid_tx.send(rustix::thread::gettid().as_raw_nonzero().get());
        })
        .unwrap();
        assert_eq!(tid_rx.recv_timeout(LIMIT).expect("body never ran"), conn);
        assert!(wait_until(|| !thread_exists(conn)));
        assert_eq!((t.working(), t.spares()), (0, 0));
    }

    #[test]
    fn a_spare_ends_after_its_timeout() {
        let t = Threads::new(64 * 1024, Duration::from_millis(50), 4);
        let tid = spawn_reporting(&t, "nethttp-test", None);
        assert!(
            wait_until(|| !thread_exists(tid)),
            "spare outlived its timeout"
        );
        assert_eq!((t.working(), t.spares()), (0, 0));
    }

    #[test]
    fn end_spares_ends_parked_ones_and_those_at_work() {
        let t = Threads::new(64 * 1024, LIMIT, 4);
        let parked = spawn_reporting(&t, "nethttp-a", None);
        assert!(wait_until(|| t.spares() == 1));
        // A second body at work while the spares end: the spare takes it,
        // so start a third thread's body alongside.
        let (go, wait) = crossbeam_channel::bounded::<()>(0);
        let busy = spawn_reporting(&t, "nethttp-b", Some(wait.clone()));
        let busy2 = spawn_reporting(&t, "nethttp-c", Some(wait));
        assert_eq!(busy, parked);
        t.end_spares(false);
        drop(go);
        assert!(wait_until(|| !thread_exists(busy) && !thread_exists(busy2)));
        assert_eq!((t.working(), t.spares()), (0, 0));
        // Not for good: later work parks again.
        let later = spawn_reporting(&t, "nethttp-d", None);
        assert!(wait_until(|| t.spares() == 1));
        t.end_spares(true);
        assert!(wait_until(|| !thread_exists(later)));
        // For good: nothing parks any more.
        let last = spawn_reporting(&t, "nethttp-e", None);
        assert!(wait_until(|| !thread_exists(last)));
        assert_eq!(t.spares(), 0);
    }

    #[test]
    fn at_most_max_spares_park() {
        let t = Threads::new(64 * 1024, LIMIT, 2);
        let (go, wait) = crossbeam_channel::bounded::<()>(0);
        let tids: Vec<i32> = (0..3)
            .map(|i| spawn_reporting(&t, &format!("nethttp-{i}"), Some(wait.clone())))
            .collect();
        drop(go);
        assert!(wait_until(|| t.working() == 0));
        assert!(wait_until(|| tids
            .iter()
            .filter(|&&tid| thread_exists(tid))
            .count()
            == 2));
        assert_eq!(t.spares(), 2);
        t.end_spares(true);
        assert!(wait_until(|| tids.iter().all(|&tid| !thread_exists(tid))));
    }

    #[test]
    fn a_panicking_body_leaves_a_spare() {
        let t = Threads::new(64 * 1024, LIMIT, 1);
        t.spawn("nethttp-panic".into(), || panic!("from a test body"))
            .unwrap();
        assert!(wait_until(|| t.working() == 0 && t.spares() == 1));
        let tid = spawn_reporting(&t, "nethttp-after", None);
        assert!(wait_until(|| t.spares() == 1));
        t.end_spares(true);
        assert!(wait_until(|| !thread_exists(tid)));
    }
}
