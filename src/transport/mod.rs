//! [`Transport`]: one HTTP exchange at a time over pooled connections (Go's
//! `http.Transport`). It chooses the connection key, gets a connection from
//! the pool, and retries a request that a dead keep-alive connection ate.
//! It never parses bytes (that is `h1`) and never follows redirects or keeps
//! cookies (that is the `Client`).

mod conns;

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use http::{HeaderMap, Method, header};

use crate::{
    Error, ErrorKind, GotConnInfo, Proxy, Request, Response,
    config::Config,
    conn::{
        Outgoing,
        msg::{ConnError, Failure, ResponseParts},
    },
    error::Redacted,
    net::{Connector, Dial, Hook, Resolve},
    route::ConnKey,
    transport::conns::{Conn, Conns, WaitCtx},
};

/// A snapshot of one transport's pool, exact at the moment of the call.
///
/// ```
/// let t = nethttp::Transport::new();
/// assert_eq!(t.stats(), nethttp::PoolStats::default()); // building starts nothing
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Open connections: `idle + in_use`.
    pub conns: usize,
    /// Connections in the idle lists.
    pub idle: usize,
    /// Connections serving a request, including those whose response body
    /// the caller still holds.
    pub in_use: usize,
    /// Dials under way.
    pub dialing: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
    /// Threads of this transport at work: two per open connection plus
    /// running dial threads (and, while a custom [`Dial`] races two address
    /// families, one per family). Spares are not included.
    pub threads: usize,
    /// Threads of this transport parked as spares: a closed connection's
    /// threads, kept for the next connection or dial for at most
    /// [`spare_thread_timeout`](TransportBuilder::spare_thread_timeout).
    /// [`live_threads()`](crate::live_threads) counts them.
    pub spare_threads: usize,
    /// HTTP/2 streams open in this transport, held response bodies
    /// included (an HTTP/2 connection is `in_use` while it has one).
    pub streams: usize,
}

/// Pooled HTTP/1.1 connections and the exchange over them. Cheap to clone:
/// clones share one pool. `Send + Sync`.
///
/// Building a transport starts no thread. Dropping the last clone closes
/// its idle connections; connections in use close when their responses are
/// released.
///
/// ```
/// use std::time::Duration;
/// let t = nethttp::Transport::builder()
///     .max_conns_per_host(4)
///     .idle_conn_timeout(Some(Duration::from_secs(30)))
///     .build();
/// assert_eq!(t.stats().threads, 0);
/// let client = nethttp::Client::builder().transport(t.clone()).build()?;
/// # let _ = client;
/// # Ok::<(), nethttp::Error>(())
/// ```
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    conns: Arc<Conns>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.conns.shut_down();
    }
}

impl Transport {
    /// A transport with the default settings.
    pub fn new() -> Transport {
        Transport::builder().build()
    }

    /// Starts configuring a transport.
    pub fn builder() -> TransportBuilder {
        TransportBuilder {
            cfg: Config::default(),
            proxy: None,
        }
    }

    /// A snapshot of the pool and this transport's threads, exact at the
    /// moment of the call.
    pub fn stats(&self) -> PoolStats {
        self.inner.conns.stats()
    }

    /// Closes every idle connection now. Connections in use at this moment
    /// close instead of returning to the pool when released, until the next
    /// request starts.
    pub fn close_idle_connections(&self) {
        self.inner.conns.close_idle_connections();
    }

    /// Runs one exchange: no redirects, no cookies. The response body holds
    /// the connection until it is read to its end or dropped.
    pub fn round_trip(&self, req: Request) -> crate::Result<Response> {
        let deadline = req.timeout.map(|t| Instant::now() + t);
        self.round_trip_until(req, deadline)
    }

    /// [`round_trip`](Transport::round_trip) with the whole-exchange
    /// deadline already decided (by the client).
    /// Every error carries the request's URL (Go's `url.Error`).
    pub(crate) fn round_trip_until(
        &self,
        mut req: Request,
        deadline: Option<Instant>,
    ) -> crate::Result<Response> {
        // The exchange borrows the URL; it moves into the response (or labels
        // the error) only once the exchange is over: no copy per request.
        match self.exchange(&mut req, deadline) {
            Ok(parts) => {
                let head = (parts.head.status, parts.head.version, parts.head.headers);
                Ok(Response::new(
                    head,
                    parts.content_length,
                    parts.body,
                    req.url,
                ))
            }
            Err(e) => Err(e.with_url(&req.url)),
        }
    }

    /// One request, retried on a new connection when Go's rule allows:
    /// the response head with its body. Takes the request's body.
    fn exchange(
        &self,
        req: &mut Request,
        deadline: Option<Instant>,
    ) -> crate::Result<ResponseParts> {
        let cfg = self.inner.conns.config();
        let key = ConnKey::new(&req.url, &cfg.proxy)?;
        if req.cancel.as_ref().is_some_and(|c| c.is_canceled()) {
            return Err(Error::new(
                ErrorKind::Canceled,
                "request canceled before it started",
            ));
        }
        // Plain http through a proxy carries the proxy's credentials and
        // headers; the request's own headers win.
        if key.is_proxied_http() {
            if !req.headers.contains_key(header::PROXY_AUTHORIZATION) {
                if let Some(auth) = key.proxy.as_ref().and_then(|p| p.authorization.clone()) {
                    req.headers.insert(header::PROXY_AUTHORIZATION, auth);
                }
            }
            let extra = cfg.proxy.extra_headers();
            for name in extra.keys() {
                if !req.headers.contains_key(name) {
                    for value in extra.get_all(name) {
                        req.headers.append(name, value.clone());
                    }
                }
            }
        }
        let body = std::mem::take(&mut req.body);
        let Request {
            method,
            url,
            headers,
            trace,
            cancel,
            ..
        } = &*req;
        // Go's rule: ask for compression unless told not to, unless the
        // caller chose an encoding, asked for a range (a slice of a
        // compressed stream cannot be decoded) or sent HEAD.
        let accept_encoding = crate::body::ACCEPT_ENCODING.filter(|_| {
            !cfg.disable_compression
                && !headers.contains_key(header::ACCEPT_ENCODING)
                && !headers.contains_key(header::RANGE)
                && method != Method::HEAD
        });

        let replayable = body.is_replayable();
        let mut body = Some(body);
        let mut not_processed = 0;
        loop {
            if let Some(t) = trace {
                t.get_conn(&key.to_string());
            }
            let got = self.inner.conns.get_conn(
                &key,
                &WaitCtx {
                    cancel: cancel.as_ref(),
                    deadline,
                    trace: trace.clone(),
                },
            )?;
            if let Some(t) = trace {
                // The hook may panic: the connection must not stay checked
                // out (in use) for good.
                let unused = PutBackOnUnwind(&got.conn);
                t.got_conn(&GotConnInfo {
                    conn_id: got.conn.id(),
                    reused: got.reused,
                    was_idle: got.was_idle,
                    idle_time: got.idle_time,
                    local_addr: got.conn.local_addr(),
                    remote_addr: got.conn.remote_addr(),
                    version: got.conn.version(),
                });
                std::mem::forget(unused);
            }
            // A replayable body is cloned per attempt (cheap: shared bytes).
            let attempt_body = match &body {
                Some(b) if replayable => b.try_clone(),
                _ => body.take(),
            };
            let Some(attempt_body) = attempt_body else {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    "request body already consumed",
                ));
            };
            let out = Outgoing {
                method,
                url,
                via_proxy: key.is_proxied_http(),
                headers,
                body: attempt_body,
                accept_encoding,
                cancel: cancel.as_ref(),
                deadline,
                trace: trace.as_ref(),
            };
            let sent = match &got.conn {
                Conn::H1(h1) => h1.round_trip(out),
                Conn::H2(h2) => h2.round_trip(out),
            };
            match sent {
                Ok(parts) => return Ok(decode_body(parts, accept_encoding.is_some())),
                Err(ConnError { err, class }) => {
                    if class == Failure::NotProcessed {
                        not_processed += 1;
                    }
                    if not_processed <= MAX_NOT_PROCESSED_RETRIES
                        && should_retry(got.reused, class, method, headers, replayable)
                    {
                        log::debug!(
                            "nethttp: retrying {method} {} on a new connection: {err}",
                            Redacted(url)
                        );
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }
}

/// A connection just checked out, while user code (the `got_conn` hook)
/// runs before the request takes it: if that code unwinds, the connection
/// goes back to the pool (it is unused and healthy) instead of staying in
/// use for good. Forgotten once the hook returns.
struct PutBackOnUnwind<'a>(&'a Conn);

impl Drop for PutBackOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.put_back_unused();
    }
}

/// Go's `gzipReader` hookup, for every encoding this build decodes: when
/// we asked for compression (`asked`) and got one encoding we decode, the
/// body is decoded and the headers that described the encoded bytes go.
/// Stacked encodings ("gzip, br", or two `Content-Encoding` fields) and
/// unknown ones are left as they came, headers and all.
fn decode_body(mut parts: ResponseParts, asked: bool) -> ResponseParts {
    if !asked || parts.body.is_empty() {
        return parts;
    }
    let mut values = parts.head.headers.get_all(header::CONTENT_ENCODING).iter();
    let encoding = match (values.next(), values.next()) {
        (Some(value), None) => crate::body::Encoding::parse(value.as_bytes()),
        _ => None,
    };
    if let Some(encoding) = encoding {
        parts.head.headers.remove(header::CONTENT_ENCODING);
        parts.head.headers.remove(header::CONTENT_LENGTH);
        parts.content_length = None;
        parts.body = parts.body.decode(encoding);
    }
    parts
}

/// Go's `persistConn.shouldRetryRequest`: a request that failed on a
/// *reused* connection before any response byte is tried again when nothing
/// of it was written, or when it is idempotent and its body can be sent
/// again. A fresh connection's failure is the server's answer; a streamed
/// body is never sent twice.
/// How many times a request the server did not process (HTTP/2 GOAWAY,
/// REFUSED_STREAM) is sent again before its error is returned: a server
/// that refuses every stream must not keep a request looping.
const MAX_NOT_PROCESSED_RETRIES: u32 = 6;

fn should_retry(
    reused: bool,
    class: Failure,
    method: &Method,
    headers: &HeaderMap,
    replayable: bool,
) -> bool {
    if !replayable {
        return false;
    }
    // Not processed by the server (HTTP/2 GOAWAY, REFUSED_STREAM): safe on
    // any connection (Go's `http2canRetryError`).
    if class == Failure::NotProcessed {
        return true;
    }
    if !reused {
        return false;
    }
    match class {
        Failure::NothingWritten => true,
        Failure::BeforeResponse => is_idempotent(method, headers),
        Failure::Other | Failure::NotProcessed => false,
    }
}

/// Go's `Request.isReplayable` method rule.
fn is_idempotent(method: &Method, headers: &HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) || headers.contains_key("idempotency-key")
        || headers.contains_key("x-idempotency-key")
}

impl crate::RoundTripper for Transport {
    fn round_trip(&self, req: Request) -> crate::Result<Response> {
        Transport::round_trip(self, req)
    }
}

impl Default for Transport {
    fn default() -> Self {
        Transport::new()
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Transport`]. Every setting has Go's default.
#[derive(Debug, Clone)]
pub struct TransportBuilder {
    cfg: Config,
    /// `None`: read the environment when the transport is built.
    proxy: Option<Proxy>,
}

impl TransportBuilder {
    /// Most idle connections kept across all hosts; the least recently used
    /// is closed beyond it. `0` means no limit. Defaults to 100.
    pub fn max_idle_conns(mut self, n: usize) -> Self {
        self.cfg.max_idle_conns = n;
        self
    }

    /// Most idle connections kept per host; a released connection beyond it
    /// is closed. Defaults to 2 (`0` also means 2, as in Go).
    pub fn max_idle_conns_per_host(mut self, n: usize) -> Self {
        self.cfg.max_idle_conns_per_host = n;
        self
    }

    /// Most connections per host, dialling and idle and in use together;
    /// requests beyond it wait for one (first come, first served).
    /// `0` means no limit. Defaults to 0.
    pub fn max_conns_per_host(mut self, n: usize) -> Self {
        self.cfg.max_conns_per_host = n;
        self
    }

    /// How long a request waits for a connection before failing with
    /// [`ErrorKind::PoolTimeout`]. Defaults to `None`: forever, as Go.
    pub fn pool_wait_timeout(mut self, t: Option<Duration>) -> Self {
        self.cfg.pool_wait_timeout = t;
        self
    }

    /// How long an idle connection stays in the pool. Defaults to 90 s.
    pub fn idle_conn_timeout(mut self, t: Option<Duration>) -> Self {
        self.cfg.idle_conn_timeout = t;
        self
    }

    /// Bound on a TCP connect. Defaults to 30 s.
    pub fn connect_timeout(mut self, t: Option<Duration>) -> Self {
        self.cfg.connect_timeout = t;
        self
    }

    /// Bound on a TLS handshake. Defaults to 10 s.
    pub fn tls_handshake_timeout(mut self, t: Option<Duration>) -> Self {
        self.cfg.tls_handshake_timeout = t;
        self
    }

    /// Bound on the wait for response headers after the request is written.
    /// Defaults to `None`.
    pub fn response_header_timeout(mut self, t: Option<Duration>) -> Self {
        self.cfg.response_header_timeout = t;
        self
    }

    /// How long each read may stall: the wait for the response head once
    /// the request is written, and each read of the body, fail with
    /// [`ErrorKind::Timeout`] (naming the phase) when no byte arrives for
    /// this long (reqwest's `read_timeout`, ureq's per-read timeouts). A
    /// stall timer, not a deadline: a slow body whose bytes keep coming
    /// never times out (bound the whole exchange with the client's
    /// `timeout`). HTTP/1 closes the connection after such a timeout;
    /// HTTP/2 resets the stream (`RST_STREAM CANCEL`) and keeps the
    /// connection. Does not bound an upgraded connection. `None` or zero:
    /// no bound. Defaults to `None`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = nethttp::Transport::builder()
    ///     .read_timeout(Some(Duration::from_secs(30)))
    ///     .build();
    /// # drop(t);
    /// ```
    pub fn read_timeout(mut self, t: Option<Duration>) -> Self {
        self.cfg.read_timeout = t.filter(|d| !d.is_zero());
        self
    }

    /// How long a request with `Expect: 100-continue` waits for the server's
    /// `100 Continue` before sending its body anyway. Defaults to 1 s.
    pub fn expect_continue_timeout(mut self, t: Duration) -> Self {
        self.cfg.expect_continue_timeout = t;
        self
    }

    /// Largest response head accepted ([`ErrorKind::HeaderTooLarge`] beyond).
    /// Defaults to 1 MiB.
    pub fn max_response_header_bytes(mut self, n: usize) -> Self {
        self.cfg.max_response_header_bytes = n;
        self
    }

    /// One connection per request: requests carry `Connection: close` and
    /// nothing is pooled. Defaults to false.
    pub fn disable_keep_alives(mut self, yes: bool) -> Self {
        self.cfg.disable_keep_alives = yes;
        self
    }

    /// Do not ask for gzip. Defaults to false.
    pub fn disable_compression(mut self, yes: bool) -> Self {
        self.cfg.disable_compression = yes;
        self
    }

    /// The TLS configuration for `https` URLs, used as given: custom roots,
    /// client certificates, platform verifiers. Its ALPN list decides the
    /// protocol (`h2`, `http/1.1`, or empty for HTTP/1.1); a server that
    /// picks another is refused. [`http1_only`](Self::http1_only) and
    /// [`http2_prior_knowledge`](Self::http2_prior_knowledge) override the
    /// list for each connection, leaving the configuration as it is.
    /// Defaults to webpki-roots with the ring provider, offering `h2` and
    /// `http/1.1`.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.cfg.tls_config = Some(config);
        self
    }

    /// Accept any server certificate: expired, self-signed, for another
    /// name. **Dangerous**: anyone on the path can read and change the
    /// traffic. For tests against throwaway servers only. Ignored when a
    /// [`tls_config`](Self::tls_config) is given. Defaults to false.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.cfg.accept_invalid_certs = yes;
        self
    }

    /// Trust the platform's certificate store (as `SSL_CERT_FILE`,
    /// `SSL_CERT_DIR` or the system name it) instead of webpki-roots.
    /// Read when the transport is built; ignored when a
    /// [`tls_config`](Self::tls_config) is given. Defaults to false.
    #[cfg(feature = "native-roots")]
    pub fn native_roots(mut self, yes: bool) -> Self {
        self.cfg.native_roots = yes;
        self
    }

    /// Stack size of the threads this transport starts (two per connection,
    /// one per dial). Defaults to 128 KiB. Anything below 112 KiB is raised
    /// to 112 KiB: the TLS handshake on a dial thread of a debug build
    /// needs up to 96 KiB (the longest certificate chain webpki accepts,
    /// over TLS 1.2), and trace hooks run on these threads too. Stack pages
    /// a thread never touches cost no memory, so a large size is cheap.
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.cfg.thread_stack_size = bytes.max(crate::config::MIN_STACK);
        self
    }

    /// How long a thread whose work is done (a closed connection's reader
    /// or writer, a finished dial) stays parked as a *spare*, to serve the
    /// transport's next connection or dial without starting a thread.
    /// Defaults to 1 s; `Duration::ZERO` keeps no spares, so a closed
    /// connection's threads exit.
    ///
    /// At most `2 × max_idle_conns_per_host` spares are kept.
    /// [`close_idle_connections`](Transport::close_idle_connections) ends
    /// them at once, and so does dropping the transport; threads at work
    /// then end when their work does. Spares show in
    /// [`PoolStats::spare_threads`] and in [`live_threads()`](crate::live_threads),
    /// not in [`PoolStats::threads`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = nethttp::Transport::builder()
    ///     .spare_thread_timeout(Duration::ZERO)
    ///     .build();
    /// assert_eq!(t.stats().spare_threads, 0);
    /// ```
    pub fn spare_thread_timeout(mut self, t: Duration) -> Self {
        self.cfg.spare_thread_timeout = t;
        self
    }

    /// Speak HTTP/1.1 only: https offers ALPN `http/1.1` alone (Go:
    /// `TLSNextProto = {}`), on a copy of any [`tls_config`](Self::tls_config).
    ///
    /// ```
    /// let t = nethttp::Transport::builder().http1_only().build();
    /// # drop(t);
    /// ```
    pub fn http1_only(mut self) -> Self {
        self.cfg.protocols = crate::config::Protocols::Http1Only;
        self
    }

    /// Speak HTTP/2 without negotiating it: h2c (cleartext, RFC 9113 §3.3)
    /// for `http://`, ALPN `h2` alone for `https://`. A server that does
    /// not speak HTTP/2 fails the request (kind `Tls` or `Protocol`); there
    /// is no fallback.
    ///
    /// ```
    /// let t = nethttp::Transport::builder().http2_prior_knowledge().build();
    /// # drop(t);
    /// ```
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.cfg.protocols = crate::config::Protocols::Http2PriorKnowledge;
        self
    }

    /// The receive window each HTTP/2 stream advertises: how much of a
    /// response body the server may send before the body is read. Default
    /// 4 MiB (Go's `transportDefaultStreamFlow`); at most 2^31 - 1.
    pub fn http2_initial_stream_window(mut self, bytes: u32) -> Self {
        self.cfg.http2_initial_stream_window = bytes.clamp(1, (1 << 31) - 1);
        self
    }

    /// The receive window of a whole HTTP/2 connection, raised to with the
    /// first WINDOW_UPDATE (RFC 9113 §6.9.2). Default 1 GiB (Go's
    /// `transportDefaultConnFlow`); at least 65,535, at most 2^31 - 1.
    pub fn http2_initial_connection_window(mut self, bytes: u32) -> Self {
        self.cfg.http2_initial_connection_window = bytes.clamp(65_535, (1 << 31) - 1);
        self
    }

    /// Sends a PING on an HTTP/2 connection that received no frame for
    /// this long, and closes it if the answer takes longer than
    /// [`http2_ping_timeout`](Self::http2_ping_timeout) (Go's
    /// `ReadIdleTimeout`). Default `None`: no PINGs.
    pub fn http2_ping_interval(mut self, every: Option<Duration>) -> Self {
        self.cfg.http2_ping_interval = every.filter(|d| !d.is_zero());
        self
    }

    /// How long an HTTP/2 PING may go unanswered before the connection is
    /// closed (Go's `PingTimeout`). Default 15 s.
    pub fn http2_ping_timeout(mut self, t: Duration) -> Self {
        self.cfg.http2_ping_timeout = t;
        self
    }

    /// Connects to `addrs` instead of resolving `host` (curl's `--resolve`
    /// and `--connect-to`): each address is dialled with its own port,
    /// whatever port the URL names. The URL's host still drives the `Host`
    /// header, TLS's server name and certificate check, and the pool. Host
    /// names match case-insensitively; IPv6 literals may be given with or
    /// without brackets. Calling it again for a host replaces its list.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// let t = nethttp::Transport::builder()
    ///     .resolve("example.com", [SocketAddr::from(([127, 0, 0, 1], 8443))])
    ///     .build();
    /// // https://example.com/ now connects to 127.0.0.1:8443 and checks
    /// // the certificate of example.com.
    /// # let _ = t;
    /// ```
    pub fn resolve(mut self, host: &str, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        let host = crate::route::bare(host).to_ascii_lowercase();
        self.cfg
            .resolve_overrides
            .insert(host, addrs.into_iter().collect());
        self
    }

    /// Resolves host names with `resolver` instead of the system's
    /// resolver. [`resolve`](TransportBuilder::resolve) overrides still
    /// come first.
    pub fn resolver(mut self, resolver: impl Resolve + 'static) -> Self {
        self.cfg.resolver = Some(Hook(Arc::new(resolver)));
        self
    }

    /// Makes sockets with `dialer` instead of the built-in TCP dialer: one
    /// call per address tried, to the target or its proxy. Its TCP sockets
    /// get [`tcp_nodelay`](TransportBuilder::tcp_nodelay) and
    /// [`tcp_keepalive`](TransportBuilder::tcp_keepalive) like any other;
    /// [`local_address`](TransportBuilder::local_address) is the dialer's
    /// business. Replaces [`unix_socket`](TransportBuilder::unix_socket).
    pub fn dialer(mut self, dialer: impl Dial + 'static) -> Self {
        self.cfg.connector = Connector::Custom(Hook(Arc::new(dialer)));
        self
    }

    /// Sends every request to the Unix domain socket at `path` (curl's
    /// `--unix-socket`): no name is resolved, the URL's host goes in the
    /// `Host` header (and TLS's server name, for https), and connections
    /// pool by the URL's host as usual. Replaces
    /// [`dialer`](TransportBuilder::dialer).
    ///
    /// ```no_run
    /// // Docker's API, on its socket.
    /// let t = nethttp::Transport::builder()
    ///     .unix_socket("/var/run/docker.sock")
    ///     .build();
    /// let client = nethttp::Client::builder().transport(t).build()?;
    /// let version = client.get("http://docker/version").send()?.text()?;
    /// # let _ = version;
    /// # Ok::<(), nethttp::Error>(())
    /// ```
    pub fn unix_socket(mut self, path: impl AsRef<Path>) -> Self {
        self.cfg.connector = Connector::Unix(path.as_ref().to_path_buf());
        self
    }

    /// Binds each TCP connection the built-in dialer makes to this local
    /// IP address (the port is the OS's choice). Only addresses of the
    /// same family are dialled. Default: `None`, the OS's choice.
    pub fn local_address(mut self, addr: Option<IpAddr>) -> Self {
        self.cfg.tcp.local_address = addr;
        self
    }

    /// TCP keep-alive probes after this long idle, and then at this
    /// interval (Go's `Dialer.KeepAlive`); `None` leaves them off. Default
    /// `None`.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.cfg.tcp.keepalive = idle;
        self
    }

    /// `TCP_NODELAY` on every TCP connection. Default `true`: small request
    /// heads and HTTP/2 frames go out at once instead of waiting for
    /// Nagle's algorithm.
    pub fn tcp_nodelay(mut self, yes: bool) -> Self {
        self.cfg.tcp.nodelay = yes;
        self
    }

    /// Happy eyeballs (RFC 8305, as Go does it): when a name resolves to
    /// both IPv6 and IPv4 addresses, the addresses of the first one's
    /// family are tried in turn, and after `delay` those of the other family
    /// start in parallel; the first connection made wins and the others
    /// close. `None` tries every address one at a time. Default 300 ms (Go's
    /// `fallbackDelay`). The built-in dialer races on the dialling thread
    /// itself; a custom [`dialer`](TransportBuilder::dialer) races on a
    /// thread per family, counted like every other.
    pub fn happy_eyeballs_delay(mut self, delay: Option<Duration>) -> Self {
        self.cfg.happy_eyeballs_delay = delay;
        self
    }

    /// Which proxy requests go through. Defaults to [`Proxy::from_env`],
    /// read when the transport is built.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Builds the transport. Starts no thread.
    pub fn build(mut self) -> Transport {
        self.cfg.proxy = self.proxy.unwrap_or_else(Proxy::from_env);
        #[cfg(feature = "native-roots")]
        if self.cfg.native_roots && self.cfg.tls_config.is_none() {
            match crate::dial::tls::native_roots_config() {
                Ok(c) => self.cfg.tls_config = Some(c),
                // No silent fallback to other roots: https dials fail with this.
                Err(e) => self.cfg.native_roots_error = Some(e.message().to_string()),
            }
        }
        Transport {
            inner: Arc::new(Inner {
                conns: Conns::new(Arc::new(self.cfg)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_stacks_never_go_below_the_floor() {
        let size = |asked| {
            Transport::builder()
                .thread_stack_size(asked)
                .cfg
                .thread_stack_size
        };
        assert_eq!(size(1), 112 * 1024);
        assert_eq!(size(48 * 1024), 112 * 1024);
        assert_eq!(size(112 * 1024), 112 * 1024);
        assert_eq!(size(1 << 20), 1 << 20);
        assert_eq!(Transport::builder().cfg.thread_stack_size, 128 * 1024);
    }

    #[test]
    fn retry_rule_matches_go() {
        let none = HeaderMap::new();
        let mut key = HeaderMap::new();
        key.insert("idempotency-key", "abc".parse().unwrap());
        use Failure::*;
        let cases = [
            // reused, class, method, headers, replayable, retry
            (false, NothingWritten, Method::GET, &none, true, false),
            (true, NothingWritten, Method::POST, &none, true, true),
            (true, NothingWritten, Method::POST, &none, false, false),
            (true, BeforeResponse, Method::GET, &none, true, true),
            (true, BeforeResponse, Method::HEAD, &none, true, true),
            (true, BeforeResponse, Method::POST, &none, true, false),
            (true, BeforeResponse, Method::POST, &key, true, true),
            (true, BeforeResponse, Method::POST, &key, false, false),
            (true, Other, Method::GET, &none, true, false),
            (false, BeforeResponse, Method::GET, &none, true, false),
        ];
        for (reused, class, method, headers, replayable, want) in cases {
            assert_eq!(
                should_retry(reused, class, &method, headers, replayable),
                want,
                "{reused} {class:?} {method} replayable={replayable}"
            );
        }
    }
}
