//! [`Socket`]: the byte stream beneath a connection, plain or under TLS.
//! Everything above (the halves, the TLS session, the dial's steps) works
//! through it, so a Unix socket or a custom dialer's stream joins here
//! without touching them.

use std::{
    io::{self, Read, Write},
    mem::MaybeUninit,
    net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream},
    os::unix::net::UnixStream,
    time::Duration,
};

/// A connected socket, as a [`Dial`](crate::Dial) returns it: TCP or a Unix
/// domain socket. Both carry plain HTTP or TLS, pool and idle alike.
///
/// ```
/// use std::net::{TcpListener, TcpStream};
/// let l = TcpListener::bind("127.0.0.1:0")?;
/// let sock = nethttp::Socket::from(TcpStream::connect(l.local_addr()?)?);
/// assert!(matches!(sock, nethttp::Socket::Tcp(_)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum Socket {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix domain stream socket. Its addresses read as `0.0.0.0:0`
    /// wherever nethttp reports one (`GotConnInfo`, trace hooks).
    Unix(UnixStream),
}

/// The address nethttp reports for a Unix socket's ends (API.md).
pub(crate) const NO_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// `$body` on whichever stream `$sock` holds, bound as `$s`.
macro_rules! each {
    ($sock:expr, $s:ident => $body:expr) => {
        match $sock {
            Socket::Tcp($s) => $body,
            Socket::Unix($s) => $body,
        }
    };
}

impl Socket {
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_read_timeout(t))
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_write_timeout(t))
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        each!(self, s => s.shutdown(how))
    }

    /// The local address; `0.0.0.0:0` for a Unix socket.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.local_addr(),
            Socket::Unix(_) => Ok(NO_ADDR),
        }
    }

    /// The peer's address; `0.0.0.0:0` for a Unix socket.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.peer_addr(),
            Socket::Unix(_) => Ok(NO_ADDR),
        }
    }

    /// Sends what fits in the socket's buffer now, without waiting
    /// (`send` with `MSG_DONTWAIT`, per call: the socket's other handles
    /// stay blocking). `WouldBlock` when nothing fits.
    pub(crate) fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        let sock = each!(self, s => socket2::SockRef::from(s));
        loop {
            match sock.send_with_flags(buf, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                res => return res,
            }
        }
    }

    /// Blocks until the socket has a byte to read, EOF or an error, taking
    /// nothing (`MSG_PEEK`), for at most its read timeout.
    pub(crate) fn wait_readable(&self) -> io::Result<()> {
        let sock = each!(self, s => socket2::SockRef::from(s));
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        sock.recv_with_flags(&mut byte, libc::MSG_PEEK).map(drop)
    }

    /// What the peer has sent by now, without waiting and without taking
    /// anything (`recv` with `MSG_PEEK | MSG_DONTWAIT`, per call: unlike
    /// `O_NONBLOCK` it leaves the socket's other handles blocking). Safe
    /// from any thread, while another blocks in a read.
    pub(crate) fn look(&self) -> Peer {
        let sock = each!(self, s => socket2::SockRef::from(s));
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        loop {
            return match sock.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
                Ok(0) => Peer::Closed,
                Ok(_) => Peer::Spoke,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Peer::Quiet,
                Err(_) => Peer::Closed,
            };
        }
    }
}

/// What a look at a socket that neither waits nor takes anything saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// Nothing has arrived.
    Quiet,
    /// Bytes arrived.
    Spoke,
    /// The peer closed its side (or the socket failed).
    Closed,
}

impl From<TcpStream> for Socket {
    fn from(s: TcpStream) -> Socket {
        Socket::Tcp(s)
    }
}

impl From<UnixStream> for Socket {
    fn from(s: UnixStream) -> Socket {
        Socket::Unix(s)
    }
}

impl Read for &Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => (&*s).read(buf))
    }
}

impl Write for &Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => (&*s).write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        each!(self, s => (&*s).flush())
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}
