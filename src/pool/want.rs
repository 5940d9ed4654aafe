//! [`Want`]: one request's wait for a connection (Go's `wantConn`), and
//! [`Got`], what it gets.
//!
//! A dial, a connection released by another request, and the requester
//! giving up (cancel, deadline, pool-wait timeout) race for the same want.
//! The pool lock decides the winner: `done` is only read and written while
//! that lock is held, so exactly one of them flips it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crossbeam_channel::{Receiver, Sender};

use crate::{Error, trace::ClientTrace};

/// A connection handed to a request, with what `got_conn` reports.
#[derive(Debug)]
pub(crate) struct Got<C> {
    pub(crate) conn: C,
    /// It served a request before.
    pub(crate) reused: bool,
    /// It came from the idle list (not from a dial, nor straight from the
    /// request that released it).
    pub(crate) was_idle: bool,
    /// How long it sat idle (zero unless `was_idle`).
    pub(crate) idle_time: Duration,
}

/// One request's pending wait for a connection to `key`.
pub(crate) struct Want<C, K> {
    pub(crate) key: K,
    /// The requester's trace, for the hooks of a dial made for it.
    pub(crate) trace: Option<Arc<dyn ClientTrace>>,
    /// Served or abandoned. Read and written only under the pool lock.
    done: AtomicBool,
    /// A dial was started for this want (so a deadline that fires now
    /// fired while connecting). Set by whoever starts the dial.
    pub(crate) dial_started: AtomicBool,
    /// Capacity 1, and at most one send (guarded by `done`): never blocks.
    tx: Sender<Result<Got<C>, Error>>,
    pub(crate) rx: Receiver<Result<Got<C>, Error>>,
}

impl<C, K> Want<C, K> {
    pub(crate) fn new(key: K, trace: Option<Arc<dyn ClientTrace>>) -> Arc<Want<C, K>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        Arc::new(Want {
            key,
            trace,
            done: AtomicBool::new(false),
            dial_started: AtomicBool::new(false),
            tx,
            rx,
        })
    }

    /// Still waiting. Caller holds the pool lock.
    pub(crate) fn is_pending_locked(&self) -> bool {
        !self.done.load(Ordering::Relaxed)
    }

    /// Marks the want done; false if it already was. Caller holds the pool lock.
    pub(crate) fn finish_locked(&self) -> bool {
        !self.done.swap(true, Ordering::Relaxed)
    }

    /// Delivers `result` if the want is still pending; otherwise hands the
    /// result back. Caller holds the pool lock.
    pub(crate) fn deliver_locked(
        &self,
        result: Result<Got<C>, Error>,
    ) -> Result<(), Result<Got<C>, Error>> {
        if !self.finish_locked() {
            return Err(result);
        }
        // Capacity 1 and first send: cannot be full. The receiver lives in
        // `self`, so it cannot be disconnected either.
        self.tx.try_send(result).map_err(|e| e.into_inner())
    }
}

impl<C, K: std::fmt::Debug> std::fmt::Debug for Want<C, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Want")
            .field("key", &self.key)
            .field("done", &self.done.load(Ordering::Relaxed))
            .finish()
    }
}
