//! `nethttp`: a blocking, thread-based HTTP/1.1 client built the way Go's
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
//! Calls go down this table only (see `docs/ARCHITECTURE.md`):
//!
//! | layer | module | Go | owns |
//! |---|---|---|---|
//! | `Client` | `client` | `http.Client` | default headers, the whole-exchange deadline |
//! | `Transport` | `transport` | `http.Transport` | connection keys, `get_conn`, the retry rule |
//! | pool | `pool` | `idleConn`, `wantConn` | idle lists, LRU, per-host counts, waiters |
//! | dial | `dial` | `dialConn` | DNS, TCP connect, the dial thread |
//! | `PersistConn` | `conn` | `persistConn` | one connection, its reader and writer threads |
//! | h1 | `h1` | `transfer.go`, `chunked.go` | pure codecs |
//! | body | `body` | `bodyEOFSignal` | the caller's view of the response body |
//! | trace | `trace` | `httptrace` | the hook trait |
//!
//! # Threads
//!
//! Each pooled connection owns two threads, `nethttp-r<id>` (reader) and
//! `nethttp-w<id>` (writer). Dials run on short-lived `nethttp-d<id>`
//! threads. [`live_threads`] and [`Transport::stats`] count them exactly.
//!
//! ```text
//!  caller ──writech──▶ writer thread ──▶ socket (write half)
//!    │  ◀──reply (only on failure)──┘
//!    ├───reqch───▶ reader thread ◀── socket (read half, idle peek)
//!    │  ◀──reply── (head + read half handed over in the body)
//!    └─ body read to EOF ──▶ read half back to the reader, conn to the pool
//!       body dropped early ──▶ connection closed, both threads exit
//! ```
//!
//! A response body read to its end hands its connection back to the pool;
//! one dropped early closes the connection and both of its threads exit.
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
mod into_url;
mod message;
mod pool;
mod proxy;
mod route;
mod stream;
mod threads;
mod trace;
mod transport;

pub use http;
pub use url::Url;

pub use body::{Body, ResponseBody};
pub use cancel::CancelToken;
pub use client::{
    Client, ClientBuilder, Redirect, RedirectAction, RedirectPolicy, RequestBuilder, get, head,
    post,
};
pub use error::{Error, ErrorKind, Result};
pub use into_url::IntoUrl;
pub use message::{Request, Response};
pub use proxy::Proxy;
pub use threads::live_threads;
pub use trace::{ClientTrace, GotConnInfo};
pub use transport::PoolStats;
pub use transport::{Transport, TransportBuilder};

/// The README's examples, compiled as doctests (`no_run`: they need servers).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
