//! [`CloseReason`]: why a connection closes, or may not carry another
//! request, as one typed value (ureq-proto's `CloseReason`), so that no
//! code has to inspect an error's kind or words to tell. A leaf module.

use std::fmt;

/// Why a connection closes or is not pooled. Each variant says where the
/// rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    // The exchange does not allow another request (RFC 9112 §9.3).
    /// The request or the response carried `Connection: close`
    /// (RFC 9112 §9.6).
    ConnectionClose,
    /// An HTTP/1.0 response without `Connection: keep-alive` (RFC 9112
    /// §9.3), or an older version.
    Http10,
    /// The body ran until the server closed (RFC 9112 §6.3, rule 8).
    CloseDelimited,
    /// `Transfer-Encoding` together with `Content-Length`, or on HTTP/1.0:
    /// faulty framing, closed after the message (RFC 9112 §6.1, §6.3
    /// rule 3).
    SuspectFraming,
    /// `101 Switching Protocols`: the connection speaks another protocol.
    SwitchingProtocols,
    /// The transport disables keep-alives (Go's `DisableKeepAlives`).
    KeepAlivesDisabled,

    // The exchange went wrong, or ended early.
    /// The request was not written in full (Go's `wroteRequest`).
    RequestNotWritten,
    /// The server closed the connection (FIN or TLS `close_notify`).
    PeerClosed,
    /// The server sent bytes nobody asked for: past the body, or while
    /// the connection was idle (Go's "Unsolicited response received").
    UnsolicitedBytes,
    /// The response body was dropped before its end (Go's
    /// `earlyCloseFn`).
    BodyDropped,
    /// The request was canceled through its token.
    Canceled,
    /// The request's (or the client's) deadline passed.
    DeadlineExceeded,
    /// No response head came within `response_header_timeout`.
    HeaderTimeout,
    /// A response's head or body stalled for the transport's
    /// `read_timeout`.
    ReadTimeout,
    /// The caller took the connection over after a `101 Switching
    /// Protocols` (`Response::upgrade`; Go's `errCallerOwnsConn`): it left
    /// the pool and its threads exited, but its socket stays open, owned
    /// by the caller's `Upgraded`. The one reason that does not shut the
    /// socket down.
    CallerOwnsConn,
    /// A user callback (a trace hook, a request body's reader) panicked on
    /// one of the connection's threads.
    CallbackPanicked,
    /// One of the connection's threads ended.
    ThreadExited,
    /// Something failed: a read or a write, the response's framing, a
    /// check a layer above the body made. The error is kept beside the
    /// reason.
    Failed,

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
            CloseReason::ConnectionClose => "Connection: close",
            CloseReason::Http10 => "HTTP/1.0 response without keep-alive",
            CloseReason::CloseDelimited => "the body ran to the connection's close",
            CloseReason::SuspectFraming => "suspect framing (Transfer-Encoding)",
            CloseReason::SwitchingProtocols => "101 Switching Protocols",
            CloseReason::KeepAlivesDisabled => "keep-alives disabled",
            CloseReason::RequestNotWritten => "request was not fully written",
            CloseReason::PeerClosed => "the server closed the connection",
            CloseReason::UnsolicitedBytes => "the server sent bytes unasked",
            CloseReason::BodyDropped => "response body dropped before EOF",
            CloseReason::Canceled => "request canceled",
            CloseReason::DeadlineExceeded => "deadline exceeded",
            CloseReason::HeaderTimeout => "timeout awaiting response headers",
            CloseReason::ReadTimeout => "read timeout",
            CloseReason::CallerOwnsConn => "upgraded: the caller owns the connection",
            CloseReason::CallbackPanicked => {
                "a callback panicked on a nethttp thread while serving a request"
            }
            CloseReason::ThreadExited => "connection thread exited",
            CloseReason::Failed => "failed",
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

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.explain())
    }
}
