//! [`Want`]: one request's wait for a connection (Go's `wantConn`).
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

use crate::{Error, conn::PersistConn, route::ConnKey, trace::ClientTrace};

/// A connection handed to a request, with what `got_conn` reports.
#[derive(Debug)]
pub(crate) struct Got {
    pub(crate) conn: PersistConn,
    pub(crate) reused: bool,
    pub(crate) was_idle: bool,
    pub(crate) idle_time: Duration,
}

/// One request's pending wait for a connection.
pub(crate) struct Want {
    pub(crate) key: ConnKey,
    /// The requester's trace, for the dial hooks (DNS, connect).
    pub(crate) trace: Option<Arc<dyn ClientTrace>>,
    /// Served or abandoned. Read and written only under the pool lock.
    done: AtomicBool,
    /// A dial was started for this want (so a deadline that fires now
    /// fired while connecting). Set by the pool when it starts the dial.
    pub(crate) dial_started: AtomicBool,
    /// Capacity 1, and at most one send (guarded by `done`): never blocks.
    tx: Sender<Result<Got, Error>>,
    pub(crate) rx: Receiver<Result<Got, Error>>,
}

impl Want {
    pub(crate) fn new(key: ConnKey, trace: Option<Arc<dyn ClientTrace>>) -> Arc<Want> {
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
        result: Result<Got, Error>,
    ) -> Result<(), Result<Got, Error>> {
        if !self.finish_locked() {
            return Err(result);
        }
        // Capacity 1 and first send: cannot be full. The receiver lives in
        // `self`, so it cannot be disconnected either.
        self.tx.try_send(result).map_err(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Want {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Want")
            .field("key", &self.key)
            .field("done", &self.done.load(Ordering::Relaxed))
            .finish()
    }
}
