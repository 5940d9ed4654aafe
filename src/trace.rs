//! Tracing hooks: Go's `httptrace.ClientTrace` as a trait.
//!
//! Hooks never change behaviour and are never called while the crate holds
//! a lock. They run on whichever thread reached the event (the caller's,
//! a dial thread, or a connection's reader or writer thread), so an
//! implementation must be cheap and must not block.
//!
//! A hook that panics leaks nothing and hangs nobody. On the caller's
//! thread the panic unwinds to the caller, every pool slot released. On a
//! dial thread the dial fails; on a connection's thread the connection
//! closes; either way the request waiting on it gets an error of kind
//! [`Io`](crate::ErrorKind::Io) that says a callback panicked (unless its
//! response had already arrived), and it is not retried.

use std::{io, net::SocketAddr, time::Duration};

use http::{HeaderMap, StatusCode};

use crate::Error;

/// Hooks called at the milestones of one request. Every method has an empty
/// default, so implement only what you need.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use nethttp::{ClientTrace, GotConnInfo};
///
/// #[derive(Default)]
/// struct Reuse(Mutex<Vec<bool>>);
/// impl ClientTrace for Reuse {
///     fn got_conn(&self, info: &GotConnInfo) {
///         self.0.lock().unwrap().push(info.reused);
///     }
/// }
/// let trace = Arc::new(Reuse::default());
/// # let _ = trace;
/// ```
pub trait ClientTrace: Send + Sync {
    /// Before a connection is looked up or dialled; `host_port` is the key's
    /// `host:port`.
    fn get_conn(&self, host_port: &str) {
        let _ = host_port;
    }
    /// A connection was obtained, once per attempt (twice when a dead reused
    /// connection forces a retry). There is no hook for failing to get one:
    /// that is the request's error.
    fn got_conn(&self, info: &GotConnInfo) {
        let _ = info;
    }
    /// The connection was returned to the pool (`None`), or could not be
    /// (`Some(reason)`). Called before the read that delivered the body's
    /// last byte returns.
    fn put_idle_conn(&self, err: Option<&Error>) {
        let _ = err;
    }
    /// The first byte of the response head arrived.
    fn got_first_response_byte(&self) {}
    /// An interim 1xx response (other than 100, which has its own hook)
    /// arrived before the final one.
    fn got_1xx_response(&self, status: StatusCode, headers: &HeaderMap) {
        let _ = (status, headers);
    }
    /// A DNS lookup begins (never for IP-literal hosts).
    fn dns_start(&self, host: &str) {
        let _ = host;
    }
    /// A DNS lookup ended with these addresses (empty on failure).
    fn dns_done(&self, addrs: &[SocketAddr]) {
        let _ = addrs;
    }
    /// A TCP connect to `addr` begins.
    fn connect_start(&self, addr: SocketAddr) {
        let _ = addr;
    }
    /// A TCP connect to `addr` ended, with the error if it failed.
    fn connect_done(&self, addr: SocketAddr, err: Option<&io::Error>) {
        let _ = (addr, err);
    }
    /// A TLS handshake begins (once per dial).
    fn tls_handshake_start(&self) {}
    /// A TLS handshake ended, with the error if it failed.
    fn tls_handshake_done(&self, err: Option<&Error>) {
        let _ = err;
    }
    /// The request head was written: flushed, when a body streams after it
    /// (written on the connection's writer thread); or, for a request with
    /// nothing to stream, which the caller's thread writes itself, just
    /// before it goes out (as Go's does before its flush), so always before
    /// any byte of the response.
    fn wrote_headers(&self) {}
    /// The request carries `Expect: 100-continue` and the body waits for the
    /// server's `100 Continue` (or the `expect_continue_timeout`).
    fn wait_100_continue(&self) {}
    /// The server answered `100 Continue`.
    fn got_100_continue(&self) {}
    /// The whole request was written, or writing it failed.
    fn wrote_request(&self, err: Option<&Error>) {
        let _ = err;
    }
}

/// What [`ClientTrace::got_conn`] learns about the connection a request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GotConnInfo {
    /// The connection's id; its threads are named `nethttp-r<id>` and
    /// `nethttp-w<id>`.
    pub conn_id: u64,
    /// The connection served an earlier request (Go's documented meaning).
    /// A connection dialled for a request that was served first by another
    /// one, and handed to the next request or the idle pool unused, is not
    /// reused (Go 1.19 reports `true` for it).
    pub reused: bool,
    /// The connection came from the idle pool.
    pub was_idle: bool,
    /// How long it sat idle (zero unless `was_idle`).
    pub idle_time: Duration,
    /// Our end of the connection.
    pub local_addr: SocketAddr,
    /// The server's end.
    pub remote_addr: SocketAddr,
    /// The protocol the connection speaks: `HTTP_11` or `HTTP_2`.
    pub version: http::Version,
}
