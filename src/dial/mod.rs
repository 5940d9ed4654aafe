//! Dialling (Go's `dialConn`), as steps over a [`Socket`]: [`resolve`] the
//! host to dial (the proxy's, when there is one), [`connect`] to the first
//! address that answers, [`tunnel`] through an HTTP proxy for https
//! (`CONNECT`), and [`secure`] it with TLS for https. This layer knows
//! nothing of pooling: the transport calls [`dial`] and takes the stream.

mod socks;
pub(crate) mod tls;

use std::{
    io::{self, BufReader, Write},
    net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs},
    time::{Duration, Instant},
};

use crate::proxy::{ProxyKind, ProxyTarget};
use crate::{
    Error, ErrorKind,
    config::Config,
    h1::head::{HeadError, HeaderSlots, read_response_head},
    phase::{self, Phase},
    route::{self, ConnKey, Scheme},
    stream::{self, Socket, Stream},
    trace::ClientTrace,
};

/// Dials `key`: the steps of the module doc, each bounded by its own
/// timeout and by `deadline` (the request's, when it dials on its own
/// thread). `offer` is the ALPN list to offer over TLS (`None`: the TLS
/// configuration's own); `protocols` are those the caller can speak.
pub(crate) fn dial(
    key: &ConnKey,
    cfg: &Config,
    trace: Option<&dyn ClientTrace>,
    deadline: Option<Instant>,
    offer: Option<&[&[u8]]>,
    protocols: &[&[u8]],
) -> Result<Stream, Error> {
    if let Some(p) = key.proxy.as_ref().filter(|p| p.kind != ProxyKind::Http) {
        return Err(Error::new(
            ErrorKind::Proxy,
            format!("{} proxies are not dialled yet", p.url.scheme()),
        ));
    }
    let phase = Phase::Connecting(key);
    let (host, port) = key.dial_host_port();
    let sock = resolve(route::bare(host), port, trace)
        .and_then(|addrs| {
            let timeout = phase::bound(deadline, cfg.connect_timeout, phase)?;
            connect(key, &addrs, timeout, trace)
        })
        .map_err(|e| match &key.proxy {
            // A proxy that cannot be reached is the proxy's failure; a
            // timeout stays a timeout.
            Some(p) if e.kind() != ErrorKind::Timeout => e.reclassify(
                ErrorKind::Proxy,
                format_args!("proxy {} unreachable", p.url),
            ),
            _ => e,
        })?;
    match (key.scheme, &key.proxy) {
        (Scheme::Http, _) => plain(sock, key),
        (Scheme::Https, proxy) => {
            if let Some(proxy) = proxy {
                let timeout = phase::bound(deadline, cfg.connect_timeout, phase)?;
                tunnel(&sock, key, proxy, cfg, timeout)?;
            }
            let timeout = phase::bound(deadline, cfg.tls_handshake_timeout, phase)?;
            secure(sock, key, cfg, timeout, offer, protocols, trace)
        }
    }
}

/// The error for a socket that failed after it connected.
fn socket_error(key: &ConnKey, e: io::Error) -> Error {
    Error::new(ErrorKind::Connect, format!("dial {key}")).with_source(e)
}

/// Plain http: the socket split into its halves.
fn plain(sock: Socket, key: &ConnKey) -> Result<Stream, Error> {
    Stream::plain(sock).map_err(|e| socket_error(key, e))
}

/// https: the TLS handshake on the socket (with the transport's TLS
/// configuration), then the session split into its halves.
fn secure(
    sock: Socket,
    key: &ConnKey,
    cfg: &Config,
    timeout: Option<Duration>,
    offer: Option<&[&[u8]]>,
    protocols: &[&[u8]],
    trace: Option<&dyn ClientTrace>,
) -> Result<Stream, Error> {
    let local = sock.local_addr().map_err(|e| socket_error(key, e))?;
    let remote = sock.peer_addr().map_err(|e| socket_error(key, e))?;
    #[cfg(feature = "native-roots")]
    if let Some(why) = &cfg.native_roots_error {
        return Err(Error::new(ErrorKind::Tls, why.clone()));
    }
    let config = match (&cfg.tls_config, cfg.accept_invalid_certs) {
        (Some(c), _) => c.clone(),
        (None, true) => tls::insecure_config()?,
        (None, false) => tls::default_config()?,
    };
    let parts = tls::connect(sock, key, &config, timeout, offer, protocols, trace)?;
    Ok(Stream::tls(parts, local, remote))
}

/// DNS, with the `dns_start`/`dns_done` hooks; IP literals skip both.
fn resolve(
    host: &str,
    port: u16,
    trace: Option<&dyn ClientTrace>,
) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if let Some(t) = trace {
        t.dns_start(host);
    }
    let res = (host, port)
        .to_socket_addrs()
        .map(Iterator::collect::<Vec<_>>);
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

/// Tries each address in turn within `timeout` (each).
fn connect(
    key: &ConnKey,
    addrs: &[SocketAddr],
    timeout: Option<Duration>,
    trace: Option<&dyn ClientTrace>,
) -> Result<Socket, Error> {
    let mut last: Option<io::Error> = None;
    for &addr in addrs {
        if let Some(t) = trace {
            t.connect_start(addr);
        }
        let res = match timeout {
            Some(d) => TcpStream::connect_timeout(&addr, d),
            _ => TcpStream::connect(addr),
        };
        if let Some(t) = trace {
            t.connect_done(addr, res.as_ref().err());
        }
        match res {
            Ok(s) => {
                // Small request heads must not wait for Nagle's algorithm.
                let _ = s.set_nodelay(true);
                return Ok(Socket::from(s));
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address to dial"));
    let kind = if stream::is_timeout(&e) {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    Err(Error::new(kind, format!("dial tcp {key}")).with_source(e))
}

/// Opens a tunnel to the https target through an HTTP proxy (RFC 9110
/// §9.3.6 CONNECT). A refusal is [`ErrorKind::Proxy`] with the proxy's
/// status.
fn tunnel(
    tcp: &Socket,
    key: &ConnKey,
    proxy: &ProxyTarget,
    cfg: &Config,
    timeout: Option<Duration>,
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
    if let Some(auth) = &proxy.authorization {
        req.extend_from_slice(b"Proxy-Authorization: ");
        req.extend_from_slice(auth.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    let _ = tcp.set_read_timeout(timeout);
    (&mut &*tcp)
        .write_all(&req)
        .map_err(|e| fail(format!("write: {e}")))?;
    let mut reader = BufReader::new(tcp);
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
    let _ = tcp.set_read_timeout(None);
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
