//! What lies beneath a connection: the [`Socket`] and the two hooks that
//! make one, [`Resolve`] (names to addresses) and [`Dial`] (an address to a
//! socket). A leaf: the transport's settings hold the hooks, the dial layer
//! calls them, the stream layer reads and writes the socket.

mod socket;

use std::{
    fmt, io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

pub use socket::Socket;
pub(crate) use socket::{NO_ADDR, Peer};

/// Turns a host name into addresses (Go's `net.Resolver`), for
/// [`TransportBuilder::resolver`](crate::TransportBuilder::resolver).
///
/// Called on the thread that dials, once per new connection to a host
/// name (IP literals skip it). The addresses are used as returned, ports
/// included, in order; happy eyeballs races their families. The URL's
/// host still drives the `Host` header, TLS's server name and the pool.
/// Closures implement it.
///
/// ```
/// use std::net::SocketAddr;
/// let t = nethttp::Transport::builder()
///     .resolver(|host: &str, port: u16| -> std::io::Result<Vec<SocketAddr>> {
///         match host {
///             "api.internal" => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
///             _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "unknown host")),
///         }
///     })
///     .build();
/// # let _ = t;
/// ```
pub trait Resolve: Send + Sync {
    /// The addresses of `host` (no IPv6 brackets) for `port`. An error or
    /// an empty list fails the dial with kind [`Dns`](crate::ErrorKind::Dns).
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

impl<F> Resolve for F
where
    F: Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync,
{
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        self(host, port)
    }
}

/// Connects to one address (Go's `Transport.DialContext`, per address), for
/// [`TransportBuilder::dialer`](crate::TransportBuilder::dialer).
///
/// Called on the thread that dials, once per address tried. `timeout`, when
/// set, is what remains of the connect timeout for this address; honour it.
/// The returned socket carries TLS when the URL is https, and the
/// connection's two threads read and write it. An error fails the dial
/// with kind [`Connect`](crate::ErrorKind::Connect) (kind
/// [`Proxy`](crate::ErrorKind::Proxy) when `addr` is a proxy's). With
/// [`unix_socket`](crate::TransportBuilder::unix_socket) set, no dialer is
/// called. Closures implement it.
///
/// ```
/// use std::{net::{SocketAddr, TcpStream}, time::Duration};
/// let t = nethttp::Transport::builder()
///     .dialer(|addr: SocketAddr, timeout: Option<Duration>| -> std::io::Result<nethttp::Socket> {
///         let tcp = match timeout {
///             Some(t) => TcpStream::connect_timeout(&addr, t)?,
///             None => TcpStream::connect(addr)?,
///         };
///         Ok(tcp.into())
///     })
///     .build();
/// # let _ = t;
/// ```
pub trait Dial: Send + Sync {
    /// A connected socket to `addr`, within `timeout` when one is given.
    fn dial(&self, addr: SocketAddr, timeout: Option<Duration>) -> io::Result<Socket>;
}

impl<F> Dial for F
where
    F: Fn(SocketAddr, Option<Duration>) -> io::Result<Socket> + Send + Sync,
{
    fn dial(&self, addr: SocketAddr, timeout: Option<Duration>) -> io::Result<Socket> {
        self(addr, timeout)
    }
}

/// A user's hook as the settings hold it: shared, and `Debug` without
/// asking the hook to be.
pub(crate) struct Hook<T: ?Sized>(pub(crate) Arc<T>);

impl<T: ?Sized> Clone for Hook<T> {
    fn clone(&self) -> Self {
        Hook(self.0.clone())
    }
}

impl<T: ?Sized> fmt::Debug for Hook<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook(..)")
    }
}

impl<T: ?Sized> std::ops::Deref for Hook<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// How the transport makes a connection's socket: its own TCP dialer, a
/// user's [`Dial`], or one Unix socket for every request.
#[derive(Debug, Clone, Default)]
pub(crate) enum Connector {
    #[default]
    Tcp,
    Custom(Hook<dyn Dial>),
    Unix(PathBuf),
}

impl Connector {
    /// The Unix socket every request goes to, if that is the mode.
    pub(crate) fn unix_path(&self) -> Option<&Path> {
        match self {
            Connector::Unix(p) => Some(p),
            _ => None,
        }
    }
}

/// Options for every TCP socket, whoever dialled it; only the built-in
/// dialer can bind the local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpOptions {
    /// Bind to this local address before connecting (port chosen by the OS).
    pub(crate) local_address: Option<std::net::IpAddr>,
    /// `SO_KEEPALIVE` with this idle time (and interval), or off.
    pub(crate) keepalive: Option<Duration>,
    /// `TCP_NODELAY`: small request heads must not wait for Nagle.
    pub(crate) nodelay: bool,
}

impl Default for TcpOptions {
    fn default() -> TcpOptions {
        TcpOptions {
            local_address: None,
            keepalive: None,
            nodelay: true,
        }
    }
}
