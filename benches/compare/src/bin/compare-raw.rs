//! `raw`: the limit. A hand-written HTTP/1.1 keep-alive loop on
//! `std::net::TcpStream`: one prebuilt request written with one `write`,
//! the response head read into a 16 KiB buffer, `Content-Length` parsed, the
//! body read to its length. One connection per worker thread, no pool, no
//! other threads.
//!
//! In the `-tls` modes the same loop runs over a rustls
//! `StreamOwned<ClientConnection, TcpStream>` (the ring provider, the CA in
//! `COMPARE_CA` as the only root, ALPN `http/1.1`): the handshake happens on
//! the first write, records are read and written on the caller's thread.
//!
//! raw speaks no HTTP/2: in the `-h2` modes it runs that same HTTP/1.1 TLS
//! loop (run.sh gives it the HTTP/1.1 TLS port's URL), the baseline of the
//! `-h2` rows' ratios.

use nethttp_compare::{Client, Res, compare_ca, main_for, rustls_config};
use rustls::{ClientConfig, ClientConnection, StreamOwned, pki_types::ServerName};
use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{Arc, Mutex},
};

struct Target {
    addr: String,
    path: String,
    host: String,
}

fn parse_url(url: &str, tls: bool) -> Res<Target> {
    let (scheme, port) = if tls {
        ("https://", 443)
    } else {
        ("http://", 80)
    };
    let rest = url
        .strip_prefix(scheme)
        .ok_or_else(|| format!("raw supports {scheme} URLs only in this mode"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    Ok(Target {
        addr,
        path: path.to_string(),
        host: host.to_string(),
    })
}

/// How a connection is opened: plain TCP, or TLS over it.
trait Dial: Sync {
    type Stream: Read + Write + Send;
    fn dial(&self, addr: &str) -> Res<Self::Stream>;
}

fn connect(addr: &str) -> Res<TcpStream> {
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    Ok(sock)
}

struct Plain;

impl Dial for Plain {
    type Stream = TcpStream;
    fn dial(&self, addr: &str) -> Res<TcpStream> {
        connect(addr)
    }
}

struct Tls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl Dial for Tls {
    type Stream = StreamOwned<ClientConnection, TcpStream>;
    fn dial(&self, addr: &str) -> Res<Self::Stream> {
        let conn = ClientConnection::new(self.config.clone(), self.name.clone())?;
        Ok(StreamOwned::new(conn, connect(addr)?))
    }
}

struct Raw<D: Dial> {
    target: Target,
    dial: D,
    keep_alive_req: Vec<u8>,
    close_req: Vec<u8>,
    /// Idle mode: connections whose responses were read, kept open.
    parked: Mutex<Vec<Conn<D::Stream>>>,
}

/// One keep-alive connection and its read buffer.
struct Conn<S> {
    sock: S,
    buf: Box<[u8]>,
    /// Bytes `buf[start..end]` are read but not consumed.
    start: usize,
    end: usize,
}

impl<S: Read + Write> Conn<S> {
    fn open<D: Dial<Stream = S>>(dial: &D, addr: &str) -> Res<Conn<S>> {
        Ok(Conn {
            sock: dial.dial(addr)?,
            buf: vec![0u8; 16 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
        })
    }

    /// Reads a response head; returns the Content-Length.
    fn read_head(&mut self) -> Res<u64> {
        loop {
            if let Some(i) = find_head_end(&self.buf[self.start..self.end]) {
                let head = &self.buf[self.start..self.start + i];
                if !head.starts_with(b"HTTP/1.1 200") {
                    return Err(format!(
                        "unexpected response: {}",
                        String::from_utf8_lossy(&head[..head.len().min(40)])
                    )
                    .into());
                }
                let len = content_length(head).ok_or("response without Content-Length")?;
                self.start += i + 4;
                return Ok(len);
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                return Err("response head too large".into());
            }
            let n = self.sock.read(&mut self.buf[self.end..])?;
            if n == 0 {
                return Err("connection closed before the response head".into());
            }
            self.end += n;
        }
    }

    /// Reads `len` body bytes: first what is buffered, then straight from
    /// the socket into `out` (discarded).
    fn read_body(&mut self, len: u64, out: &mut [u8]) -> Res<u64> {
        let buffered = ((self.end - self.start) as u64).min(len);
        self.start += buffered as usize;
        let mut left = len - buffered;
        while left > 0 {
            let want = (left as usize).min(out.len());
            let n = self.sock.read(&mut out[..want])?;
            if n == 0 {
                return Err("connection closed in the body".into());
            }
            left -= n as u64;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(len)
    }

    fn exchange(&mut self, req: &[u8], out: &mut [u8]) -> Res<u64> {
        self.sock.write_all(req)?;
        let len = self.read_head()?;
        self.read_body(len, out)
    }
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

fn content_length(head: &[u8]) -> Option<u64> {
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
            return std::str::from_utf8(&line[15..]).ok()?.trim().parse().ok();
        }
    }
    None
}

impl<D: Dial> Client for Raw<D> {
    type Worker = Option<Conn<D::Stream>>;
    type Held = (Conn<D::Stream>, u64);

    fn worker(&self) -> Self::Worker {
        None
    }

    fn get(&self, w: &mut Self::Worker, _url: &str, out: &mut [u8]) -> Res<u64> {
        if w.is_none() {
            *w = Some(Conn::open(&self.dial, &self.target.addr)?);
        }
        let conn = w.as_mut().expect("just opened");
        conn.exchange(&self.keep_alive_req, out)
    }

    fn get_fresh(&self, _w: &mut Self::Worker, _url: &str, out: &mut [u8]) -> Res<u64> {
        let mut conn = Conn::open(&self.dial, &self.target.addr)?;
        conn.exchange(&self.close_req, out)
    }

    fn hold(&self, _url: &str) -> Res<Self::Held> {
        let mut conn = Conn::open(&self.dial, &self.target.addr)?;
        conn.sock.write_all(&self.keep_alive_req)?;
        let len = conn.read_head()?;
        Ok((conn, len))
    }

    fn release(&self, (mut conn, len): Self::Held, out: &mut [u8]) -> Res<u64> {
        let n = conn.read_body(len, out)?;
        self.parked.lock().expect("parked").push(conn);
        Ok(n)
    }

    fn count_sockets(&self) -> bool {
        false
    }
}

impl<D: Dial> Raw<D> {
    fn new(target: Target, dial: D) -> Raw<D> {
        let req = |extra: &str| {
            format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: raw\r\nAccept: */*\r\n{extra}\r\n",
                target.path, target.host
            )
            .into_bytes()
        };
        Raw {
            keep_alive_req: req(""),
            close_req: req("Connection: close\r\n"),
            target,
            dial,
            parked: Mutex::new(Vec::new()),
        }
    }
}

fn main() {
    // The stream type is chosen before main_for parses the arguments; a bad
    // command line falls through to main_for, which reports it.
    let tls = nethttp_compare::Args::parse(std::env::args().skip(1)).is_ok_and(|a| a.tls);
    if !tls {
        main_for("raw", |args| {
            Ok(Raw::new(parse_url(&args.url, false)?, Plain))
        });
        return;
    }
    main_for("raw", |args| {
        let target = parse_url(&args.url, true)?;
        let pem = compare_ca()?.ok_or("raw: the -tls modes need COMPARE_CA (a CA's PEM file)")?;
        // The host without its port (IPv4 or a DNS name; no IPv6 literal).
        let host = target
            .host
            .rsplit_once(':')
            .map_or(&*target.host, |(h, _)| h);
        let name = ServerName::try_from(host.to_string())?;
        let dial = Tls {
            config: rustls_config(&pem)?,
            name,
        };
        Ok(Raw::new(target, dial))
    });
}
