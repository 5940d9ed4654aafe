//! The transport's settings, shared read-only by every layer below it.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use crate::{
    net::{Connector, Hook, Resolve, TcpOptions},
    proxy::Proxy,
};

/// Settings fixed when a [`Transport`](crate::Transport) is built. Read by the
/// pool, dial threads and connection threads; never written after build.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) max_idle_conns: usize,
    pub(crate) max_idle_conns_per_host: usize,
    pub(crate) max_conns_per_host: usize,
    pub(crate) pool_wait_timeout: Option<Duration>,
    pub(crate) idle_conn_timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) tls_handshake_timeout: Option<Duration>,
    pub(crate) response_header_timeout: Option<Duration>,
    /// How long a response's head (once the request is written) or body
    /// may go without a byte (`TransportBuilder::read_timeout`); `None`:
    /// no bound.
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) expect_continue_timeout: Duration,
    pub(crate) max_response_header_bytes: usize,
    pub(crate) disable_keep_alives: bool,
    pub(crate) disable_compression: bool,
    pub(crate) thread_stack_size: usize,
    /// How long a thread whose work is done stays parked for the next
    /// connection or dial; zero keeps no spares.
    pub(crate) spare_thread_timeout: Duration,
    /// `None`: the crate's default (webpki roots, ring, ALPN http/1.1).
    pub(crate) tls_config: Option<Arc<rustls::ClientConfig>>,
    /// Set only through `danger_accept_invalid_certs`.
    pub(crate) accept_invalid_certs: bool,
    /// Trust the platform's store instead of webpki-roots.
    #[cfg(feature = "native-roots")]
    pub(crate) native_roots: bool,
    /// Why the platform store could not be loaded; https dials fail with it.
    #[cfg(feature = "native-roots")]
    pub(crate) native_roots_error: Option<String>,
    /// Which requests go through which proxy.
    pub(crate) proxy: Proxy,
    /// Which protocols https offers (ALPN) and whether http speaks h2c.
    pub(crate) protocols: Protocols,
    pub(crate) http2_initial_stream_window: u32,
    pub(crate) http2_initial_connection_window: u32,
    pub(crate) http2_ping_interval: Option<Duration>,
    pub(crate) http2_ping_timeout: Duration,
    /// `resolve(host, addrs)` overrides, by lower-case host without
    /// brackets; consulted before `resolver`.
    pub(crate) resolve_overrides: HashMap<String, Vec<SocketAddr>>,
    /// The user's resolver; `None`: the system's (`getaddrinfo`).
    pub(crate) resolver: Option<Hook<dyn Resolve>>,
    /// How sockets are made.
    pub(crate) connector: Connector,
    pub(crate) tcp: TcpOptions,
    /// When the other address family's first attempt starts (RFC 8305's
    /// "Connection Attempt Delay", Go's `fallbackDelay`); `None`: addresses
    /// are tried one at a time.
    pub(crate) happy_eyeballs_delay: Option<Duration>,
}

/// What the transport speaks (API.md, "HTTP/2").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocols {
    /// https offers `h2, http/1.1` and speaks what the server picks (Go's
    /// `ForceAttemptHTTP2`); http speaks HTTP/1.1. A caller's TLS
    /// configuration keeps its own ALPN list.
    Negotiate,
    /// HTTP/1.1 only: ALPN `http/1.1` (Go: `TLSNextProto = {}`).
    Http1Only,
    /// HTTP/2 without negotiation: h2c for http, ALPN `h2` only for https.
    Http2PriorKnowledge,
}

/// Default stack for connection and dial threads. The threads parse heads
/// and run trace hooks, nothing recursive; untouched stack pages cost no RSS.
pub(crate) const DEFAULT_STACK: usize = 128 * 1024;

/// The least stack a connection or dial thread gets, whatever
/// `thread_stack_size` asks for (API.md, "Safety rules"). Measured on
/// 2026-12-03 (rustc 1.95, rustls 0.23, webpki 0.103): the deepest thread
/// is the dial thread's TLS handshake, inside webpki's certificate parsing
/// and its recursive chain building (about 4 KiB per intermediate). In a
/// debug build (opt-level 0, as a user's `cargo build` compiles
/// dependencies) a leaf signed by its root needs 60 KiB, three
/// intermediates 76 KiB (84 over TLS 1.2), and the longest chain webpki
/// accepts (six intermediates, TLS 1.2) 96 KiB; an optimised build needs
/// under 20 KiB for all of them. The floor adds 16 KiB for trace hooks.
pub(crate) const MIN_STACK: usize = 112 * 1024;

impl Default for Config {
    fn default() -> Config {
        Config {
            max_idle_conns: 100,
            max_idle_conns_per_host: 2,
            max_conns_per_host: 0,
            pool_wait_timeout: None,
            idle_conn_timeout: Some(Duration::from_secs(90)),
            connect_timeout: Some(Duration::from_secs(30)),
            tls_handshake_timeout: Some(Duration::from_secs(10)),
            response_header_timeout: None,
            read_timeout: None,
            expect_continue_timeout: Duration::from_secs(1),
            max_response_header_bytes: 1 << 20,
            disable_keep_alives: false,
            disable_compression: false,
            thread_stack_size: DEFAULT_STACK,
            spare_thread_timeout: Duration::from_secs(1),
            tls_config: None,
            accept_invalid_certs: false,
            #[cfg(feature = "native-roots")]
            native_roots: false,
            #[cfg(feature = "native-roots")]
            native_roots_error: None,
            proxy: Proxy::none(),
            protocols: Protocols::Negotiate,
            // Go's transportDefaultStreamFlow and transportDefaultConnFlow.
            http2_initial_stream_window: 4 << 20,
            http2_initial_connection_window: 1 << 30,
            http2_ping_interval: None,
            http2_ping_timeout: Duration::from_secs(15),
            resolve_overrides: HashMap::new(),
            resolver: None,
            connector: Connector::Tcp,
            tcp: TcpOptions::default(),
            happy_eyeballs_delay: Some(Duration::from_millis(300)),
        }
    }
}
