//! Dialling (Go's `dialConn`): DNS, the TCP connect with its timeout, and
//! (when it lands) the TLS handshake. This layer knows nothing of pooling:
//! the pool's dial thread calls [`dial`] and takes the result.

use std::{
    io,
    net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs},
};

use crate::{
    Error, ErrorKind,
    config::Config,
    conn::stream::Stream,
    trace::ClientTrace,
    transport::key::{ConnKey, Scheme},
};

/// Resolves `key`'s host, connects to the first address that answers and
/// returns the split stream.
pub(crate) fn dial(
    key: &ConnKey,
    cfg: &Config,
    trace: Option<&dyn ClientTrace>,
) -> Result<Stream, Error> {
    if key.scheme == Scheme::Https {
        return Err(Error::new(
            ErrorKind::Tls,
            format!("dial {key}: https is not supported yet by this build"),
        ));
    }
    let addrs = resolve(key, trace)?;
    let tcp = connect(key, &addrs, cfg, trace)?;
    // Small request heads must not wait for Nagle's algorithm.
    let _ = tcp.set_nodelay(true);
    Stream::plain(tcp)
        .map_err(|e| Error::new(ErrorKind::Connect, format!("dial {key}: {e}")).with_source(e))
}

/// DNS, with the `dns_start`/`dns_done` hooks; IP literals skip both.
fn resolve(key: &ConnKey, trace: Option<&dyn ClientTrace>) -> Result<Vec<SocketAddr>, Error> {
    let host = key.bare_host();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, key.port)]);
    }
    if let Some(t) = trace {
        t.dns_start(host);
    }
    let res = (host, key.port)
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
        Err(e) => Err(Error::new(ErrorKind::Dns, format!("lookup {host}: {e}")).with_source(e)),
    }
}

/// Tries each address in turn within `connect_timeout`.
fn connect(
    key: &ConnKey,
    addrs: &[SocketAddr],
    cfg: &Config,
    trace: Option<&dyn ClientTrace>,
) -> Result<TcpStream, Error> {
    let mut last: Option<io::Error> = None;
    for &addr in addrs {
        if let Some(t) = trace {
            t.connect_start(addr);
        }
        let res = match cfg.connect_timeout {
            Some(d) if !d.is_zero() => TcpStream::connect_timeout(&addr, d),
            _ => TcpStream::connect(addr),
        };
        if let Some(t) = trace {
            t.connect_done(addr, res.as_ref().err());
        }
        match res {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address to dial"));
    let kind = if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    Err(Error::new(kind, format!("dial tcp {key}: {e}")).with_source(e))
}
