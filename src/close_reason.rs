//! [`CloseReason`]: why a connection closes, or may not carry another
//! request, as one typed value (ureq-proto's `CloseReason`), so that no
//! code has to inspect an error's kind or words to tell. A leaf module.

use std::fmt;

use crate::{Error, ErrorKind};

/// Why a connection closes or is not pooled. Each variant says where the
/// rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The transport disables keep-alives (Go's `DisableKeepAlives`).
    KeepAlivesDisabled,

    // The exchange went wrong.
    /// The server closed the connection (FIN or TLS `close_notify`).
    PeerClosed,
    /// The server sent bytes nobody asked for: past the body, or while
    /// the connection was idle (Go's "Unsolicited response received").
    UnsolicitedBytes,
    /// The server closed the connection or sent bytes unasked while its
    /// last response was still being read (the reader saw it first).
    PeerActedMeanwhile,

    // The pool refused it (Go's `tryPutIdleConn` errors).
    /// The transport was dropped.
    TransportDropped,
    /// `close_idle_connections` was called, and no request has started
    /// since (Go's `errCloseIdle`).
    CloseIdleRequested,
    /// The connection closed meanwhile (Go's `errConnBroken`).
    Broken,
    /// The pool does not hold it in use (Go: "connection not in use").
    NotInUse,
    /// `max_idle_conns_per_host` idle connections to its host already
    /// (Go's `errTooManyIdleHost`).
    TooManyIdleForHost,
    /// Evicted as the least recently used beyond `max_idle_conns` (Go's
    /// `errTooManyIdle`).
    TooManyIdle,
    /// Idle past `idle_conn_timeout` (Go's `errIdleConnTimeout`).
    IdleTimeout,
    /// The pool closed it with every idle connection
    /// (`close_idle_connections`, or the transport dropped).
    ClosedIdle,
}

impl CloseReason {
    /// A short explanation, for logs, trace hooks and error messages.
    pub(crate) fn explain(self) -> &'static str {
        match self {
            CloseReason::KeepAlivesDisabled => "keep-alives disabled",
            CloseReason::PeerClosed => "the server closed the connection",
            CloseReason::UnsolicitedBytes => "the server sent bytes unasked",
            CloseReason::PeerActedMeanwhile => {
                "the server closed the connection or spoke while its response was read"
            }
            CloseReason::TransportDropped => "transport dropped",
            CloseReason::CloseIdleRequested => "close_idle_connections was called",
            CloseReason::Broken => "connection broken",
            CloseReason::NotInUse => "connection not in use",
            CloseReason::TooManyIdleForHost => "too many idle connections for host",
            CloseReason::TooManyIdle => "too many idle connections",
            CloseReason::IdleTimeout => "idle connection timed out",
            CloseReason::ClosedIdle => "idle connection closed by the pool",
        }
    }
}

impl CloseReason {
    /// As an error (kind `Io`), for a connection closed for this reason.
    pub(crate) fn into_error(self) -> Error {
        Error::new(ErrorKind::Io, self.explain())
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.explain())
    }
}
