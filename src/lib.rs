//! `nethttp`: a blocking, thread-based HTTP/1.1 and HTTP/2 client built the way Go's
//! `net/http` `Client` and `Transport` are built, for programs that are not
//! async.
//!
//! ```no_run
//! let body = nethttp::get("http://127.0.0.1:8080/")?.text()?;
//! # Ok::<(), nethttp::Error>(())
//! ```
//!
//! # Layers
//!
//! Top layer first; a module imports only modules below it (CI checks it
//! from the imports: `.ci/layers.py`). See `docs/ARCHITECTURE.md`.
//!
//! | module | Go | owns |
//! |---|---|---|
//! | `fuzz` | — | entry points for the fuzz targets (feature `_fuzz`) |
//! | `client` | `http.Client` | redirects, cookies, default headers, the whole-exchange deadline |
//! | `multipart` | `mime/multipart` | `multipart/form-data` request bodies (feature `multipart`) |
//! | `upgrade` | `errCallerOwnsConn` | `Response::upgrade`: a 101's socket to the caller as [`Upgraded`] |
//! | `transport` | `http.Transport` | the exchange, the retry rule, driving the pool, dialling and starting connections |
//! | `h2conn` | `http2ClientConn` | one HTTP/2 connection: many streams over its reader and writer threads |
//! | `conn` | `persistConn` | one HTTP/1 connection: its reader and writer threads, the body's end |
//! | `dial` | `dialConn`, `dialParallel` | resolving, connecting (happy eyeballs), proxies (`CONNECT`, SOCKS, TLS to https proxies), the TLS handshake |
//! | `pool` | `idleConn`, `wantConn` | idle lists, LRU, per-host counts, waiters: a passive state machine |
//! | `stream` | `net.Conn`, `tls.Conn` | the socket's read and write halves, plain and TLS |
//! | `message` | `http.Request`, `http.Response` | the values that cross the transport |
//! | `body` | `bodyEOFSignal`, `gzipReader` | the response body over a source; decoding (gzip, deflate, br, zstd); the size limit |
//! | `h2` | `h2_bundle.go` (framer, hpack) | pure HTTP/2 codecs: frames, HPACK, flow control, settings, heads |
//! | `h1` | `transfer.go`, `chunked.go` | pure HTTP/1.1 codecs |
//! | `config` | `Transport` fields | the transport's settings |
//! | `net` | `net.Conn`, `net.Resolver`, `DialContext` | [`Socket`] (TCP or Unix) and the [`Resolve`] and [`Dial`] hooks |
//! | `route` | `connectMethodKey` | which requests may share a connection |
//! | `proxy` | `ProxyFromEnvironment` | which proxy a request takes |
//! | `into_url` | — | what the API takes as a URL |
//! | `close_reason` | `errConnBroken`, … | why a connection closes |
//! | `phase` | — | the phases a cancel or deadline interrupts, and their errors |
//! | `cancel` | `Request.Cancel` | [`CancelToken`] |
//! | `trace` | `httptrace` | the hook trait |
//! | `threads` | — | the one spawn point and the thread counts |
//! | `error` | `url.Error` | [`Error`] and its kinds |
//!
//! # Threads
//!
//! Each pooled connection owns two threads, `nethttp-r<id>` (reader) and
//! `nethttp-w<id>` (writer). A dial runs on the caller's thread when
//! nothing needs watching while it blocks, otherwise on a short-lived
//! `nethttp-d<id>` thread. A thread whose work is done waits briefly as a
//! spare for the transport's next connection or dial
//! ([`TransportBuilder::spare_thread_timeout`]). [`live_threads`] and
//! [`Transport::stats`] count them exactly.
//!
//! ```text
//!  caller ──(no body to stream: one send, no wait)──▶ socket (write half)
//!    ├──writech──▶ writer thread ──▶ socket (streamed bodies, the rest)
//!    │  ◀──reply (on failure; on success when a header timer waits)──┘
//!    ├───reqch───▶ reader thread ◀── socket (read half, idle peek)
//!    │  ◀──reply── (head + read half handed over in the body)
//!    └─ body read to EOF ──▶ read half back to the reader, conn to the pool
//!       body dropped early ──▶ connection closed, both threads done
//! ```
//!
//! A response body read to its end hands its connection back to the pool;
//! one dropped early closes the connection and frees both of its threads.
//! Forgetting to "close" a body cannot leak anything.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod body;
mod cancel;
mod client;
mod close_reason;
mod config;
mod conn;
mod dial;
mod error;
#[cfg(feature = "_fuzz")]
#[doc(hidden)]
pub mod fuzz;
mod h1;
mod h2;
mod h2conn;
mod into_url;
mod message;
#[cfg(feature = "multipart")]
pub mod multipart;
mod net;
mod phase;
mod pool;
mod proxy;
mod route;
mod stream;
mod threads;
mod trace;
mod transport;
mod upgrade;

pub use http;
pub use url::Url;

pub use body::{Body, ResponseBody};
pub use cancel::CancelToken;
pub use client::CookieJar;
pub use client::{
    Client, ClientBuilder, Redirect, RedirectAction, RedirectPolicy, RequestBuilder, get, head,
    post,
};
pub use error::{Error, ErrorKind, Result};
pub use into_url::IntoUrl;
pub use message::{Request, Response, RoundTripper};
pub use net::{Dial, Resolve, Socket};
pub use proxy::Proxy;
pub use threads::live_threads;
pub use trace::{ClientTrace, GotConnInfo};
pub use transport::PoolStats;
pub use transport::{Transport, TransportBuilder};
pub use upgrade::Upgraded;

/// The README's examples, compiled as doctests (`no_run`: they need servers).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
