//! Dialling (Go's `dialConn`), as steps over a [`Socket`]: [`resolve`] the
//! host to dial (the proxy's, when there is one), [`connect`] to the first
//! address that answers (happy eyeballs, `connect.rs`), go through the
//! proxy ([`tunnel`] with HTTP `CONNECT`, or a SOCKS handshake,
//! `socks.rs`), and [`secure`] it with TLS for https. This layer knows
//! nothing of pooling: the transport calls [`dial`] and takes the stream.

mod connect;
mod socks;
pub(crate) mod tls;

use std::{
    fmt,
    io::{self, BufReader, Read, Write},
    net::{IpAddr, SocketAddr, ToSocketAddrs},
    sync::Arc,
    time::{Duration, Instant},
};

use http::header;

use crate::proxy::{ProxyKind, ProxyTarget};
use crate::{
    Error, ErrorKind,
    config::Config,
    h1::head::{HeadError, HeaderSlots, read_response_head},
    net::Connector,
    phase::{self, Phase},
    route::{self, ConnKey, Scheme},
    stream::{self, Socket, Stream},
    threads::Threads,
    trace::ClientTrace,
};

/// What one dial runs with besides the key.
pub(crate) struct DialCtx<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) trace: Option<&'a Arc<dyn ClientTrace>>,
    /// The request's deadline, when it dials on its own thread.
    pub(crate) deadline: Option<Instant>,
    /// The transport's threads, for threads that race addresses.
    pub(crate) threads: &'a Arc<Threads>,
}

impl DialCtx<'_> {
    fn trace(&self) -> Option<&dyn ClientTrace> {
        self.trace.map(|t| &**t)
    }
}

/// Dials `key`: the steps of the module doc, each bounded by its own
/// timeout and by the request's deadline. `offer` is the ALPN list to
/// offer over TLS (`None`: the TLS configuration's own); `protocols` are
/// those the caller can speak.
pub(crate) fn dial(
    key: &ConnKey,
    ctx: &DialCtx<'_>,
    offer: Option<&[&[u8]]>,
    protocols: &[&[u8]],
) -> Result<Stream, Error> {
    let cfg = ctx.cfg;
    let phase = Phase::Connecting(key);
    let sock = open(key, ctx).map_err(|e| match &key.proxy {
        // A proxy that cannot be reached is the proxy's failure; a
        // timeout stays a timeout.
        Some(p) if e.kind() != ErrorKind::Timeout => e.reclassify(
            ErrorKind::Proxy,
            format_args!("{} proxy {} unreachable", p.url.scheme(), p.url),
        ),
        _ => e,
    })?;
    let mut stream = Stream::plain(sock).map_err(|e| socket_error(key, e))?;
    if let Some(proxy) = &key.proxy {
        stream = through_proxy(stream, key, proxy, ctx)?;
    }
    match key.scheme {
        Scheme::Http => Ok(stream),
        Scheme::Https => {
            let timeout = phase::bound(ctx.deadline, cfg.tls_handshake_timeout, phase)?;
            let target = format!("{}:{}", key.host, key.port);
            let hs = (key.bare_host(), &target as &dyn fmt::Display, timeout);
            secure(stream, hs, cfg, offer, protocols, ctx.trace())
        }
    }
}

/// The proxy's part of the dial on `stream`, the proxy's connection: TLS
/// to an https proxy, then a `CONNECT` tunnel for an https target (plain
/// http goes to HTTP proxies in absolute form), or a SOCKS handshake.
/// Every failure but a timeout is the proxy's, and names it.
fn through_proxy(
    mut stream: Stream,
    key: &ConnKey,
    proxy: &ProxyTarget,
    ctx: &DialCtx<'_>,
) -> Result<Stream, Error> {
    let cfg = ctx.cfg;
    let phase = Phase::Connecting(key);
    if proxy.kind == ProxyKind::Https {
        let timeout = phase::bound(ctx.deadline, cfg.tls_handshake_timeout, phase)?;
        let host = proxy.url.host_str().map_or("", route::bare);
        let hs = (host, &proxy.url as &dyn fmt::Display, timeout);
        let h1: &[&[u8]] = &[tls::ALPN_HTTP1];
        stream =
            secure(stream, hs, cfg, Some(h1), h1, ctx.trace()).map_err(|e| match e.kind() {
                ErrorKind::Timeout => e,
                _ => e.reclassify(ErrorKind::Proxy, format_args!("https proxy {}", proxy.url)),
            })?;
        // The proxy's protocol is not the target's.
        stream.alpn = None;
    }
    let tunnels = proxy.kind.is_socks() || key.scheme == Scheme::Https;
    if !tunnels {
        return Ok(stream);
    }
    let timeout = phase::bound(ctx.deadline, cfg.connect_timeout, phase)?;
    let _ = stream.read.set_read_timeout(timeout);
    let _ = stream.write.set_write_timeout(timeout);
    if proxy.kind.is_socks() {
        through_socks(&mut stream, key, proxy, ctx)?;
    } else {
        tunnel(&mut stream, key, proxy, cfg)?;
    }
    let _ = stream.read.set_read_timeout(None);
    let _ = stream.write.set_write_timeout(None);
    Ok(stream)
}

/// The first hop's socket: the Unix socket when the transport has one,
/// else the resolved addresses of the proxy (or the target) through the
/// built-in or the user's dialer, within the connect timeout.
fn open(key: &ConnKey, ctx: &DialCtx<'_>) -> Result<Socket, Error> {
    let cfg = ctx.cfg;
    let timeout = phase::bound(ctx.deadline, cfg.connect_timeout, Phase::Connecting(key))?;
    let attempts = connect::Attempts {
        tcp: cfg.tcp,
        delay: cfg.happy_eyeballs_delay,
        until: timeout.map(|t| Instant::now() + t),
        trace: ctx.trace.cloned(),
        threads: ctx.threads.clone(),
    };
    let res = match &cfg.connector {
        Connector::Unix(path) => attempts.unix(path).map_err(|e| (e, "unix")),
        connector => {
            let (host, port) = key.dial_host_port();
            let mut addrs = resolve(route::bare(host), port, cfg, ctx.trace())?;
            if let Some(local) = cfg.tcp.local_address {
                // Go's filterAddrList: only the local address's family.
                addrs.retain(|a| a.is_ipv4() == local.is_ipv4());
                if addrs.is_empty() {
                    return Err(Error::new(
                        ErrorKind::Connect,
                        format!("dial tcp {key}: no address of the local address {local}'s family"),
                    ));
                }
            }
            match connector {
                Connector::Custom(d) => attempts.custom(d, &addrs),
                _ => attempts.tcp(&addrs),
            }
            .map_err(|e| (e, "tcp"))
        }
    };
    res.map_err(|(e, net)| {
        let kind = if stream::is_timeout(&e) {
            ErrorKind::Timeout
        } else {
            ErrorKind::Connect
        };
        let what = match cfg.connector.unix_path() {
            Some(path) => format!("dial unix {}", path.display()),
            None => format!("dial {net} {key}"),
        };
        Error::new(kind, what).with_source(e)
    })
}

/// The error for a socket that failed after it connected.
fn socket_error(key: &ConnKey, e: io::Error) -> Error {
    Error::new(ErrorKind::Connect, format!("dial {key}")).with_source(e)
}

/// TLS on `stream` (with the transport's TLS configuration) for `hs`: the
/// server name, who errors name, and the handshake's timeout.
fn secure(
    stream: Stream,
    hs: (&str, &dyn fmt::Display, Option<Duration>),
    cfg: &Config,
    offer: Option<&[&[u8]]>,
    protocols: &[&[u8]],
    trace: Option<&dyn ClientTrace>,
) -> Result<Stream, Error> {
    let (host, peer, timeout) = hs;
    #[cfg(feature = "native-roots")]
    if let Some(why) = &cfg.native_roots_error {
        return Err(Error::new(ErrorKind::Tls, why.clone()));
    }
    let config = match (&cfg.tls_config, cfg.accept_invalid_certs) {
        (Some(c), _) => c.clone(),
        (None, true) => tls::insecure_config()?,
        (None, false) => tls::default_config()?,
    };
    tls::connect(
        stream, host, peer, &config, timeout, offer, protocols, trace,
    )
}

/// Names to addresses, with the `dns_start`/`dns_done` hooks: the
/// transport's `resolve` overrides first, then its resolver, else the
/// system's. IP literals skip all of it.
fn resolve(
    host: &str,
    port: u16,
    cfg: &Config,
    trace: Option<&dyn ClientTrace>,
) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if let Some(t) = trace {
        t.dns_start(host);
    }
    let res = match (cfg.resolve_overrides.get(host), &cfg.resolver) {
        (Some(addrs), _) => Ok(addrs.clone()),
        (None, Some(r)) => r.resolve(host, port),
        (None, None) => (host, port)
            .to_socket_addrs()
            .map(Iterator::collect::<Vec<_>>),
    };
    let addrs = match &res {
        Ok(a) => a.as_slice(),
        Err(_) => &[],
    };
    if let Some(t) = trace {
        t.dns_done(addrs);
    }
    match res {
        Ok(a) if !a.is_empty() => Ok(a),
        Ok(_) => Err(Error::new(
            ErrorKind::Dns,
            format!("lookup {host}: no addresses"),
        )),
        Err(e) => Err(Error::new(ErrorKind::Dns, format!("lookup {host}")).with_source(e)),
    }
}

/// The SOCKS handshake for the target of `key` on `sock`. SOCKS5 and
/// SOCKS4 resolve the target here (its first address; SOCKS4 its first
/// IPv4 address); `socks5h` and `socks4a` send the name. Every failure is
/// the proxy's (kind `Proxy`, naming it), but for a timeout.
fn through_socks(
    s: &mut Stream,
    key: &ConnKey,
    proxy: &ProxyTarget,
    ctx: &DialCtx<'_>,
) -> Result<(), Error> {
    let fail = |what: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::Proxy,
            format!(
                "{} proxy {} to {}:{}: {what}",
                proxy.url.scheme(),
                proxy.url,
                key.host,
                key.port
            ),
        )
    };
    let host = key.bare_host();
    let target_ip = host
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, key.port));
    let resolved;
    let target = match (proxy.kind, target_ip) {
        (_, Some(addr)) => socks::Target::Addr(addr),
        (ProxyKind::Socks5h | ProxyKind::Socks4a, None) => socks::Target::Name(host, key.port),
        (kind, None) => {
            let addrs = resolve(host, key.port, ctx.cfg, ctx.trace())?;
            resolved = addrs
                .into_iter()
                .find(|a| kind != ProxyKind::Socks4 || a.is_ipv4())
                .ok_or_else(|| fail(&"socks4 needs an IPv4 address for the target"))?;
            socks::Target::Addr(resolved)
        }
    };
    let res = match proxy.kind {
        ProxyKind::Socks4 | ProxyKind::Socks4a => {
            let user = proxy.credentials.as_ref().map_or(&[][..], |c| &c.user[..]);
            socks::socks4(s, target, user)
        }
        _ => socks::socks5(s, target, proxy.credentials.as_ref()),
    };
    res.map_err(|e| match e {
        socks::SocksError::Io(io) if stream::is_timeout(&io) => Error::new(
            ErrorKind::Timeout,
            format!(
                "{} proxy {}: no answer in time",
                proxy.url.scheme(),
                proxy.url
            ),
        ),
        e => fail(&e),
    })
}

/// Opens a tunnel to the https target through an HTTP proxy (RFC 9110
/// §9.3.6 CONNECT). A refusal is [`ErrorKind::Proxy`] with the proxy's
/// status.
fn tunnel<S: Read + Write>(
    s: &mut S,
    key: &ConnKey,
    proxy: &ProxyTarget,
    cfg: &Config,
) -> Result<(), Error> {
    let authority = format!("{}:{}", key.host, key.port);
    let fail = |what: String| {
        Error::new(
            ErrorKind::Proxy,
            format!("CONNECT {authority} via {}: {what}", proxy.url),
        )
    };
    let mut req = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: nethttp/{}\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes();
    let mut line = |name: &[u8], value: &[u8]| {
        req.extend_from_slice(name);
        req.extend_from_slice(b": ");
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
    };
    // The proxy URL's credentials win over a header of the same name
    // (Go's rule); the host is the target's.
    let auth = &proxy.authorization;
    for (name, value) in cfg.proxy.extra_headers() {
        let skip = name == header::HOST || (auth.is_some() && name == header::PROXY_AUTHORIZATION);
        if !skip {
            line(name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if let Some(auth) = auth {
        line(b"Proxy-Authorization", auth.as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    s.write_all(&req)
        .and_then(|()| s.flush())
        .map_err(|e| fail(format!("write: {e}")))?;
    let mut reader = BufReader::new(&mut *s);
    let head = read_response_head(
        &mut reader,
        cfg.max_response_header_bytes,
        &mut HeaderSlots::new(),
    )
    .map_err(|e| match e {
        HeadError::Io(io) if stream::is_timeout(&io) => Error::new(
            ErrorKind::Timeout,
            format!("CONNECT {authority} via {}: no answer in time", proxy.url),
        ),
        e => fail(format!("reading the proxy's answer: {e}")),
    })?;
    if !head.status.is_success() {
        return Err(fail(format!("proxy refused with {}", head.status)));
    }
    if !reader.buffer().is_empty() {
        return Err(fail(
            "proxy sent bytes before the tunnel was used".to_string(),
        ));
    }
    Ok(())
}
