//! `raw`: the limit. A hand-written HTTP/1.1 keep-alive loop on
//! `std::net::TcpStream`: one prebuilt request written with one `write`,
//! the response head read into a 16 KiB buffer, `Content-Length` parsed, the
//! body read to its length. One connection per worker thread, no pool, no
//! other threads.

use nethttp_compare::{Client, Res, main_for};
use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::Mutex,
};

struct Target {
    addr: String,
    path: String,
    host: String,
}

fn parse_url(url: &str) -> Res<Target> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("raw supports http:// URLs only")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    Ok(Target {
        addr,
        path: path.to_string(),
        host: host.to_string(),
    })
}

struct Raw {
    target: Target,
    keep_alive_req: Vec<u8>,
    close_req: Vec<u8>,
    /// Idle mode: connections whose responses were read, kept open.
    parked: Mutex<Vec<Conn>>,
}

/// One keep-alive connection and its read buffer.
struct Conn {
    sock: TcpStream,
    buf: Box<[u8]>,
    /// Bytes `buf[start..end]` are read but not consumed.
    start: usize,
    end: usize,
}

impl Conn {
    fn open(addr: &str) -> Res<Conn> {
        let sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        Ok(Conn {
            sock,
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

impl Client for Raw {
    type Worker = Option<Conn>;
    type Held = (Conn, u64);

    fn worker(&self) -> Option<Conn> {
        None
    }

    fn get(&self, w: &mut Option<Conn>, _url: &str, out: &mut [u8]) -> Res<u64> {
        if w.is_none() {
            *w = Some(Conn::open(&self.target.addr)?);
        }
        let conn = w.as_mut().expect("just opened");
        conn.exchange(&self.keep_alive_req, out)
    }

    fn get_fresh(&self, _w: &mut Option<Conn>, _url: &str, out: &mut [u8]) -> Res<u64> {
        let mut conn = Conn::open(&self.target.addr)?;
        conn.exchange(&self.close_req, out)
    }

    fn hold(&self, _url: &str) -> Res<(Conn, u64)> {
        let mut conn = Conn::open(&self.target.addr)?;
        conn.sock.write_all(&self.keep_alive_req)?;
        let len = conn.read_head()?;
        Ok((conn, len))
    }

    fn release(&self, (mut conn, len): (Conn, u64), out: &mut [u8]) -> Res<u64> {
        let n = conn.read_body(len, out)?;
        self.parked.lock().expect("parked").push(conn);
        Ok(n)
    }
}

fn main() {
    main_for("raw", |args| {
        let target = parse_url(&args.url)?;
        let req = |extra: &str| {
            format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: raw\r\nAccept: */*\r\n{extra}\r\n",
                target.path, target.host
            )
            .into_bytes()
        };
        Ok(Raw {
            keep_alive_req: req(""),
            close_req: req("Connection: close\r\n"),
            target,
            parked: Mutex::new(Vec::new()),
        })
    });
}
