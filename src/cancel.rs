//! [`CancelToken`]: cancel a request from another thread.

use std::{fmt, sync::Arc};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

/// Cancels the requests it was given to, from any thread, at any stage: the
/// wait for a pooled connection, the dial, the wait for response headers and
/// the body read.
///
/// Clones share one state: cancelling any clone cancels them all. A token
/// stays cancelled; a request started with a cancelled token fails at once
/// with [`ErrorKind::Canceled`](crate::ErrorKind::Canceled).
///
/// ```
/// let token = nethttp::CancelToken::new();
/// let other = token.clone();
/// assert!(!token.is_canceled());
/// other.cancel();
/// assert!(token.is_canceled());
/// ```
#[derive(Clone)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

struct Inner {
    /// Dropped (set to `None`) by `cancel`; dropping the only sender
    /// disconnects `rx`, which wakes every `select!` that waits on it.
    tx: Mutex<Option<Sender<()>>>,
    rx: Receiver<()>,
}

impl CancelToken {
    /// A new token, not cancelled.
    pub fn new() -> CancelToken {
        let (tx, rx) = crossbeam_channel::bounded(0);
        CancelToken {
            inner: Arc::new(Inner {
                tx: Mutex::new(Some(tx)),
                rx,
            }),
        }
    }

    /// Cancels every request using this token (or a clone of it).
    pub fn cancel(&self) {
        self.inner.tx.lock().take();
    }

    /// Whether [`cancel`](CancelToken::cancel) has been called.
    pub fn is_canceled(&self) -> bool {
        self.inner.tx.lock().is_none()
    }

    /// A receiver that becomes ready (disconnected) once the token is
    /// cancelled; for use in `select!`.
    ///
    /// It also disconnects when the last clone of the token is dropped, so
    /// a wait must hold the token, never the receiver alone: only
    /// [`cancel`](CancelToken::cancel) may cancel (API.md, "Safety rules").
    /// Hence the borrow.
    pub(crate) fn receiver(&self) -> &Receiver<()> {
        &self.inner.rx
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("canceled", &self.is_canceled())
            .finish()
    }
}
