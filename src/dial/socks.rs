//! SOCKS client handshakes: SOCKS5 (RFC 1928) with username/password
//! authentication (RFC 1929), SOCKS4 and its SOCKS4a name extension, as a
//! pure codec over any `Read + Write`.
//!
//! Nothing here opens sockets, spawns threads or keeps time: the caller
//! connects to the proxy, sets the socket's timeouts, and hands the stream
//! over. A read timeout comes back as [`SocksError::Io`] with its
//! `io::Error` untouched, so the caller can still tell it is a timeout.
//!
//! Exact reads: each reply is read with `read_exact` into a buffer of
//! exactly that reply's size (for SOCKS5's variable-length `BND.ADDR`, the
//! size is learnt from the bytes before it), never more. The proxy may send
//! the destination's first bytes (a TLS server hello, say) in the same
//! segment as its reply; those belong to the caller and must still be
//! unread on the stream when a handshake returns.
//!
//! Each message goes out in one `write_all` and a `flush`, so a buffered
//! stream sends it and no message is split across writes by this code.

// The dialler is being wired to this module separately; until it calls in,
// only the tests use these items.

use std::{
    fmt,
    io::{self, Read, Write},
    net::SocketAddr,
};

use crate::proxy::Credentials;

const V5: u8 = 0x05;
const METHOD_NONE: u8 = 0x00;
const METHOD_USER_PASS: u8 = 0x02;
const METHOD_NO_ACCEPTABLE: u8 = 0xFF;
/// RFC 1929's sub-negotiation version, not the SOCKS version.
const USER_PASS_VERSION: u8 = 0x01;
const CMD_CONNECT: u8 = 0x01;
const ATYP_V4: u8 = 0x01;
const ATYP_NAME: u8 = 0x03;
const ATYP_V6: u8 = 0x04;
const V4: u8 = 0x04;
/// SOCKS4 replies carry version 0, not 4.
const V4_REPLY: u8 = 0x00;
const V4_GRANTED: u8 = 0x5A;

/// Where the proxy should connect.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// An address resolved here.
    Addr(SocketAddr),
    /// A host name for the proxy to resolve (socks5h, socks4a). No brackets.
    Name(&'a str, u16),
}

/// Why a handshake failed.
#[derive(Debug)]
pub(crate) enum SocksError {
    /// The stream failed (a read timeout included, kept intact), or the
    /// proxy closed it mid-reply (kind `UnexpectedEof`).
    Io(io::Error),
    /// The proxy answered but would not connect; the reply code in words.
    Refused(String),
    /// No acceptable authentication method, credentials needed but not
    /// given, or the proxy rejected them.
    Auth(String),
    /// The proxy spoke something that is not SOCKS, or our own input
    /// cannot be put on the wire (caught before anything is written).
    Protocol(String),
}

impl fmt::Display for SocksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The messages are built here from codes and lengths only, never
        // from credential bytes, so they are safe to print.
        match self {
            SocksError::Io(e) => write!(f, "socks handshake: {e}"),
            SocksError::Refused(m) | SocksError::Auth(m) | SocksError::Protocol(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for SocksError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SocksError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for SocksError {
    fn from(e: io::Error) -> Self {
        SocksError::Io(e)
    }
}

/// `return Err(SocksError::$kind(format!(...)))`, on one line.
macro_rules! bail {
    ($kind:ident, $($msg:tt)+) => {
        return Err(SocksError::$kind(format!($($msg)+)))
    };
}

/// RFC 1928 + RFC 1929 `CONNECT` to `target`. With `creds`, offers both
/// methods 0x00 (no auth) and 0x02 (username/password) and lets the proxy
/// choose; without, offers only 0x00.
///
/// An empty password is sent as PLEN 0 (RFC 1929 asks for 1..=255, but
/// many proxies accept it and refusing here would rule those out). An
/// empty user name is only an error if the proxy picks 0x02. A proxy that
/// picks 0x02 when no credentials were given gets [`SocksError::Auth`]
/// (it needs credentials), not `Protocol`.
pub(crate) fn socks5<S: Read + Write>(
    s: &mut S,
    target: Target<'_>,
    creds: Option<&Credentials>,
) -> Result<(), SocksError> {
    // Everything that can be wrong with our own input is caught before the
    // first write, so bad input never leaves a half-spoken handshake.
    let request = socks5_request(target)?;
    let auth = creds.map(auth_request).transpose()?;

    let greeting: &[u8] = match creds {
        Some(_) => &[V5, 2, METHOD_NONE, METHOD_USER_PASS],
        None => &[V5, 1, METHOD_NONE],
    };
    send(s, greeting)?;
    let [ver, method] = read_array(s)?;
    check_version("socks5", ver, V5)?;
    match (method, creds, auth) {
        (METHOD_NONE, _, _) => {}
        (METHOD_USER_PASS, Some(c), _) if c.user.is_empty() => {
            bail!(
                Auth,
                "socks5: proxy requires a user name and password; the user name is empty"
            )
        }
        (METHOD_USER_PASS, Some(_), Some(auth)) => {
            send(s, &auth)?;
            let [ver, status] = read_array(s)?;
            check_version("socks5 auth", ver, USER_PASS_VERSION)?;
            if status != 0 {
                bail!(
                    Auth,
                    "socks5: proxy rejected the user name and password ({status:#04x})"
                )
            }
        }
        (METHOD_USER_PASS, _, _) => {
            bail!(
                Auth,
                "socks5: proxy requires a user name and password; none were given"
            )
        }
        (METHOD_NO_ACCEPTABLE, _, _) => {
            bail!(
                Auth,
                "socks5: proxy accepted none of the offered authentication methods"
            )
        }
        (m, _, _) => bail!(
            Protocol,
            "socks5: proxy chose auth method {m:#04x}, not offered"
        ),
    }

    send(s, &request)?;
    // VER and REP first, on their own: some proxies send only these
    // before closing on failure, and the refusal is the useful error.
    let [ver, rep] = read_array(s)?;
    check_version("socks5", ver, V5)?;
    if rep != 0 {
        bail!(Refused, "socks5: {}", socks5_reply(rep))
    }
    let [_rsv, atyp] = read_array(s)?;
    let addr_len = match atyp {
        ATYP_V4 => 4,
        ATYP_V6 => 16,
        ATYP_NAME => usize::from(read_array::<1, _>(s)?[0]),
        other => bail!(
            Protocol,
            "socks5: proxy replied with unknown address type {other:#04x}"
        ),
    };
    // BND.ADDR and BND.PORT. addr_len is at most 255, so the slice is
    // always in bounds.
    let mut rest = [0u8; 255 + 2];
    read_exact(s, &mut rest[..addr_len + 2])?;
    Ok(())
}

/// SOCKS4 `CONNECT` to `target`: IPv4 only for [`Target::Addr`] (IPv6 is
/// a [`SocksError::Protocol`] error), SOCKS4a for [`Target::Name`] (IP
/// 0.0.0.1, then the name NUL-terminated). `user_id` is the USERID field
/// (may be empty), sent NUL-terminated, so it must not contain a NUL.
pub(crate) fn socks4<S: Read + Write>(
    s: &mut S,
    target: Target<'_>,
    user_id: &[u8],
) -> Result<(), SocksError> {
    // A NUL inside a NUL-terminated field would end it early and turn the
    // rest into a different request.
    if user_id.contains(&0) {
        bail!(Protocol, "socks4: user id contains a NUL byte")
    }
    let (port, ip, name) = match target {
        Target::Addr(SocketAddr::V4(a)) => (a.port(), a.ip().octets(), None),
        Target::Addr(SocketAddr::V6(_)) => {
            bail!(
                Protocol,
                "socks4: cannot connect to an IPv6 address (use socks5)"
            )
        }
        Target::Name(host, port) => {
            check_name("socks4", host)?;
            if host.as_bytes().contains(&0) {
                bail!(Protocol, "socks4: host name contains a NUL byte")
            }
            // 0.0.0.x with x != 0 is how SOCKS4a says "the name follows".
            (port, [0, 0, 0, 1], Some(host))
        }
    };
    let mut req = Vec::with_capacity(8 + user_id.len() + 1 + 256);
    req.extend_from_slice(&[V4, CMD_CONNECT]);
    req.extend_from_slice(&port.to_be_bytes());
    req.extend_from_slice(&ip);
    req.extend_from_slice(user_id);
    req.push(0);
    if let Some(host) = name {
        req.extend_from_slice(host.as_bytes());
        req.push(0);
    }
    send(s, &req)?;

    // The reply is 8 bytes; VN and CD first, as for SOCKS5.
    let [vn, cd] = read_array(s)?;
    check_version("socks4", vn, V4_REPLY)?;
    if cd != V4_GRANTED {
        bail!(Refused, "socks4: {}", socks4_reply(cd))
    }
    let _port_and_ip: [u8; 6] = read_array(s)?;
    Ok(())
}

/// The SOCKS5 `CONNECT` request for `target`.
fn socks5_request(target: Target<'_>) -> Result<Vec<u8>, SocksError> {
    let mut req = Vec::with_capacity(4 + 1 + 255 + 2);
    req.extend_from_slice(&[V5, CMD_CONNECT, 0x00]);
    let port = match target {
        Target::Addr(SocketAddr::V4(a)) => {
            req.push(ATYP_V4);
            req.extend_from_slice(&a.ip().octets());
            a.port()
        }
        Target::Addr(SocketAddr::V6(a)) => {
            req.push(ATYP_V6);
            req.extend_from_slice(&a.ip().octets());
            a.port()
        }
        Target::Name(host, port) => {
            req.extend_from_slice(&[ATYP_NAME, check_name("socks5", host)?]);
            req.extend_from_slice(host.as_bytes());
            port
        }
    };
    req.extend_from_slice(&port.to_be_bytes());
    Ok(req)
}

/// The RFC 1929 request. Only the 255-byte ceiling is checked here: an
/// empty user name matters only if the proxy picks this method.
fn auth_request(c: &Credentials) -> Result<Vec<u8>, SocksError> {
    // The messages name the field and never its contents.
    let too_long =
        |what: &str| SocksError::Protocol(format!("socks5: {what} is longer than 255 bytes"));
    let ulen = u8::try_from(c.user.len()).map_err(|_| too_long("user name"))?;
    let plen = u8::try_from(c.pass.len()).map_err(|_| too_long("password"))?;
    let mut req = Vec::with_capacity(3 + c.user.len() + c.pass.len());
    req.extend_from_slice(&[USER_PASS_VERSION, ulen]);
    req.extend_from_slice(&c.user);
    req.push(plen);
    req.extend_from_slice(&c.pass);
    Ok(req)
}

/// A host name's length as one byte: 1..=255, as SOCKS5's length prefix
/// needs (SOCKS4a has no limit, but no DNS name is longer either).
fn check_name(version: &str, host: &str) -> Result<u8, SocksError> {
    match u8::try_from(host.len()) {
        Ok(len) if len > 0 => Ok(len),
        _ => bail!(
            Protocol,
            "{version}: host name must be 1 to 255 bytes, not {}",
            host.len()
        ),
    }
}

fn check_version(what: &str, got: u8, want: u8) -> Result<(), SocksError> {
    if got != want {
        bail!(
            Protocol,
            "{what}: proxy answered with version {got:#04x}, not {want:#04x}"
        )
    }
    Ok(())
}

/// One whole message, then a flush so a buffered stream sends it now.
fn send<S: Write>(s: &mut S, msg: &[u8]) -> io::Result<()> {
    s.write_all(msg)?;
    s.flush()
}

fn read_array<const N: usize, S: Read>(s: &mut S) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    read_exact(s, &mut buf)?;
    Ok(buf)
}

/// `read_exact`, with an early close said in words ("failed to fill whole
/// buffer" means nothing to a user) but keeping its kind. Other errors,
/// timeouts above all, pass through untouched.
fn read_exact<S: Read>(s: &mut S, buf: &mut [u8]) -> io::Result<()> {
    s.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "proxy closed the connection before its reply was complete",
            )
        } else {
            e
        }
    })
}

/// RFC 1928 section 6's REP field.
fn socks5_reply(rep: u8) -> String {
    let words = match rep {
        0x01 => "general SOCKS server failure",
        0x02 => "connection not allowed by ruleset",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused by destination host",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        other => return format!("unknown reply code {other:#04x}"),
    };
    words.to_owned()
}

/// SOCKS4's CD field.
fn socks4_reply(cd: u8) -> String {
    let words = match cd {
        0x5B => "request rejected or failed",
        0x5C => "request rejected: the proxy could not reach identd on the client",
        0x5D => "request rejected: identd reported a different user id",
        other => return format!("unknown reply code {other:#04x}"),
    };
    words.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// The proxy's side: what it sends, and what it was sent, one entry
    /// per `write` call. `trickle` makes reads return at most one byte, so
    /// every reply is split at every point.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        writes: Vec<Vec<u8>>,
        flushes: usize,
        trickle: bool,
    }

    impl Duplex {
        fn new(input: &[u8], trickle: bool) -> Self {
            Duplex {
                input: Cursor::new(input.to_vec()),
                writes: Vec::new(),
                flushes: 0,
                trickle,
            }
        }
        fn rest(&self) -> &[u8] {
            &self.input.get_ref()[self.input.position() as usize..]
        }
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = if self.trickle {
                buf.len().min(1)
            } else {
                buf.len()
            };
            self.input.read(&mut buf[..n])
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    fn creds(user: &str, pass: &str) -> Credentials {
        Credentials {
            user: user.as_bytes().to_vec(),
            pass: pass.as_bytes().to_vec(),
        }
    }

    fn v4() -> Target<'static> {
        Target::Addr("192.0.2.7:443".parse().unwrap())
    }
    const V4_REQ: &[u8] = &[5, 1, 0, 1, 192, 0, 2, 7, 1, 187];
    const OK_V4: &[u8] = &[5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90];
    const TRAIL: &[u8] = b"TRAIL";
    const ALICE_AUTH: &[u8] = b"\x01\x05alice\x06s3cret";

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    type Outcome = (Result<(), SocksError>, Vec<Vec<u8>>);

    /// Runs `f` over `input` whole and trickled; checks both agree, that
    /// each message was one write and one flush, and that on success
    /// exactly `TRAIL` is left unread. Returns the result and the writes.
    fn run(input: &[u8], f: impl Fn(&mut Duplex) -> Result<(), SocksError>) -> Outcome {
        let [whole, trickled] = [false, true].map(|trickle| {
            let mut d = Duplex::new(input, trickle);
            let r = f(&mut d);
            assert_eq!(d.flushes, d.writes.len());
            if r.is_ok() {
                assert_eq!(d.rest(), TRAIL, "over- or under-read");
            }
            (r, d.writes)
        });
        assert_eq!(format!("{whole:?}"), format!("{trickled:?}"));
        whole
    }

    fn run5(input: &[u8], target: Target<'_>, creds: Option<&Credentials>) -> Outcome {
        run(input, |d| socks5(d, target, creds))
    }

    fn run4(input: &[u8], target: Target<'_>, user: &[u8]) -> Outcome {
        run(input, |d| socks4(d, target, user))
    }

    #[test]
    fn socks5_no_auth_exact_bytes() {
        let v6: Target<'_> = Target::Addr("[2001:db8::1]:8080".parse().unwrap());
        // 2001:0db8:0000:0000:0000:0000:0000:0001, port 8080.
        let v6_req: &[u8] = &[
            5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1f, 0x90,
        ];
        let name_req = cat(&[&[5, 1, 0, 3, 11], b"example.com", &[1, 187]]);
        for (target, req) in [
            (v4(), V4_REQ),
            (v6, v6_req),
            (Target::Name("example.com", 443), &name_req),
        ] {
            let (r, w) = run5(&cat(&[&[5, 0], OK_V4, TRAIL]), target, None);
            r.unwrap();
            assert_eq!(w, [&[5u8, 1, 0][..], req]);
        }
    }

    #[test]
    fn socks5_with_creds() {
        let c = creds("alice", "s3cret");
        let (r, w) = run5(&cat(&[&[5, 2, 1, 0], OK_V4, TRAIL]), v4(), Some(&c));
        r.unwrap();
        assert_eq!(w, [&[5u8, 2, 0, 2][..], ALICE_AUTH, V4_REQ]);
        // The proxy may waive authentication even when we offer it.
        let (r, w) = run5(&cat(&[&[5, 0], OK_V4, TRAIL]), v4(), Some(&c));
        r.unwrap();
        assert_eq!(w, [&[5u8, 2, 0, 2][..], V4_REQ]);
        // An empty password goes out as PLEN 0.
        let (r, w) = run5(
            &cat(&[&[5, 2, 1, 0], OK_V4, TRAIL]),
            v4(),
            Some(&creds("alice", "")),
        );
        r.unwrap();
        assert_eq!(w[1], b"\x01\x05alice\x00");
    }

    #[test]
    fn socks5_reply_addresses_consumed_exactly() {
        let name = cat(&[&[5, 0, 0, 3, 4], b"prox", &[0, 80]]);
        let mut v6 = vec![5, 0, 0, 4];
        v6.extend_from_slice(&[7; 16]);
        v6.extend_from_slice(&[0, 80]);
        let empty_name: &[u8] = &[5, 0, 0, 3, 0, 0, 80];
        for reply in [&name[..], &v6, empty_name] {
            run5(&cat(&[&[5, 0], reply, TRAIL]), v4(), None).0.unwrap();
        }
    }

    #[test]
    fn socks5_refusals_in_words() {
        let words = [
            "general SOCKS server failure",
            "connection not allowed by ruleset",
            "network unreachable",
            "host unreachable",
            "connection refused by destination host",
            "TTL expired",
            "command not supported",
            "address type not supported",
        ];
        for (code, want) in (1u8..=8).zip(words).chain([(9, "unknown reply code 0x09")]) {
            // Only VER and REP: a refusal must not wait for the rest.
            match run5(&[5, 0, 5, code], v4(), None).0 {
                Err(SocksError::Refused(m)) => assert_eq!(m, format!("socks5: {want}")),
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn socks5_auth_and_protocol_errors() {
        let c = creds("alice", "s3cret");
        let auth =
            |r: Result<(), SocksError>| assert!(matches!(r, Err(SocksError::Auth(_))), "{r:?}");
        let proto =
            |r: Result<(), SocksError>| assert!(matches!(r, Err(SocksError::Protocol(_))), "{r:?}");
        auth(run5(&[5, 0xFF], v4(), None).0);
        auth(run5(&[5, 0xFF], v4(), Some(&c)).0);
        auth(run5(&[5, 2, 1, 1], v4(), Some(&c)).0);
        auth(run5(&[5, 2], v4(), None).0);
        // Empty user chosen for 0x02: nothing beyond the greeting is sent.
        let (r, w) = run5(&[5, 2], v4(), Some(&creds("", "pw")));
        auth(r);
        assert_eq!(w.len(), 1);
        proto(run5(&[4, 0], v4(), None).0);
        proto(run5(&[5, 2, 5, 0], v4(), Some(&c)).0);
        proto(run5(&[5, 0, 4, 0, 0, 1], v4(), None).0);
        proto(run5(&[5, 0, 5, 0, 0, 2, 0, 0, 0, 0, 0, 0], v4(), None).0);
        proto(run5(&[5, 1], v4(), Some(&c)).0);
        proto(run5(&[5, 3], v4(), None).0);
    }

    #[test]
    fn bad_input_rejected_before_writing() {
        let long = "a".repeat(256);
        let c = creds("alice", "s3cret");
        let long_user = creds(&long, "pw");
        let long_pass = creds("u", &long);
        let cases: [(Target<'_>, Option<&Credentials>); 4] = [
            (Target::Name("", 80), None),
            (Target::Name(&long, 80), Some(&c)),
            (v4(), Some(&long_user)),
            (v4(), Some(&long_pass)),
        ];
        for (target, cr) in cases {
            let (r, w) = run5(&[5, 0], target, cr);
            assert!(matches!(r, Err(SocksError::Protocol(_))), "{r:?}");
            assert!(w.is_empty());
        }
        let v6 = Target::Addr("[::1]:80".parse().unwrap());
        for (target, user) in [
            (v6, &b""[..]),
            (v4(), b"a\0b"),
            (Target::Name("a\0b", 80), b""),
        ] {
            let (r, w) = run4(&[0, 0x5A], target, user);
            assert!(matches!(r, Err(SocksError::Protocol(_))), "{r:?}");
            assert!(w.is_empty());
        }
    }

    #[test]
    fn socks4_and_4a_exact_bytes() {
        let ok: &[u8] = &[0, 0x5A, 0, 0, 0, 0, 0, 0];
        let (r, w) = run4(&cat(&[ok, TRAIL]), v4(), b"bob");
        r.unwrap();
        assert_eq!(w, [cat(&[&[4, 1, 1, 187, 192, 0, 2, 7], b"bob\0"])]);
        let (r, w) = run4(&cat(&[ok, TRAIL]), Target::Name("example.com", 80), b"");
        r.unwrap();
        assert_eq!(w, [cat(&[&[4, 1, 0, 80, 0, 0, 0, 1, 0], b"example.com\0"])]);
    }

    #[test]
    fn socks4_refusals() {
        let cases = [
            (0x5B, "request rejected or failed"),
            (0x5C, "identd on the client"),
            (0x5D, "identd reported a different user id"),
            (0x42, "unknown reply code 0x42"),
        ];
        for (code, want) in cases {
            match run4(&[0, code], v4(), b"").0 {
                Err(SocksError::Refused(m)) => {
                    assert!(m.starts_with("socks4: ") && m.contains(want), "{m}")
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert!(matches!(
            run4(&[4, 0x5A], v4(), b"").0,
            Err(SocksError::Protocol(_))
        ));
    }

    #[test]
    fn every_truncation_is_unexpected_eof() {
        let c = creds("alice", "s3cret");
        let with_auth = cat(&[&[5, 2, 1, 0, 5, 0, 0, 3, 4], b"prox", &[0, 80]]);
        let no_auth = cat(&[&[5, 0], OK_V4]);
        type Handshake<'a> = &'a dyn Fn(&mut Duplex) -> Result<(), SocksError>;
        let cases: [(&[u8], Handshake<'_>); 3] = [
            (&with_auth, &|d| socks5(d, v4(), Some(&c))),
            (&no_auth, &|d| socks5(d, v4(), None)),
            (&[0, 0x5A, 0, 0, 0, 0, 0, 0], &|d| socks4(d, v4(), b"u")),
        ];
        for (script, f) in cases {
            for cut in 0..script.len() {
                for trickle in [false, true] {
                    match f(&mut Duplex::new(&script[..cut], trickle)) {
                        Err(SocksError::Io(e)) => {
                            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof)
                        }
                        other => panic!("{script:?} cut at {cut}: {other:?}"),
                    }
                }
            }
        }
    }

    /// Reference decoder: the length of a successful reply script at the
    /// start of `b`, if there is one.
    fn model5(b: &[u8], creds: bool) -> Option<usize> {
        let mut i = 0;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = b.get(i..i + n)?;
            i += n;
            Some(s)
        };
        match take(2)? {
            [5, 0] => {}
            [5, 2] if creds => (take(2)? == [1, 0]).then_some(())?,
            _ => return None,
        }
        let head = take(4)?;
        (head[0] == 5 && head[1] == 0).then_some(())?;
        let n = match head[3] {
            1 => 4,
            4 => 16,
            3 => usize::from(take(1)?[0]),
            _ => return None,
        };
        take(n + 2)?;
        Some(i)
    }

    #[test]
    fn random_replies_match_the_model() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let c = creds("alice", "s3cret");
        let seeds: [&[u8]; 4] = [
            &cat(&[&[5, 0], OK_V4]),
            &cat(&[&[5, 2, 1, 0, 5, 0, 0, 3, 4], b"prox", &[0, 80]]),
            &cat(&[&[5, 0, 5, 0, 0, 4], &[1; 16], &[0, 80]]),
            &[0, 0x5A, 0, 0, 0, 0, 0, 0],
        ];
        // Successes per handshake kind: the loop must reach both outcomes.
        let mut oks = [0; 3];
        for _ in 0..5000 {
            let mut input = seeds[next() as usize % seeds.len()].to_vec();
            let rate = 1 + next() % 16;
            for b in &mut input {
                if next() % rate == 0 {
                    *b = next() as u8;
                }
            }
            if next() % 4 == 0 {
                input.truncate(next() as usize % (input.len() + 1));
            }
            for _ in 0..next() % 8 {
                input.push(next() as u8);
            }
            let trickle = next() % 2 == 0;
            for (with_creds, ok) in [false, true].into_iter().zip(&mut oks) {
                let mut d = Duplex::new(&input, trickle);
                let r = socks5(&mut d, v4(), with_creds.then_some(&c));
                *ok += usize::from(r.is_ok());
                let want = model5(&input, with_creds);
                assert_eq!(r.is_ok(), want.is_some(), "{input:?} {r:?}");
                if let Some(n) = want {
                    assert_eq!(d.input.position() as usize, n, "{input:?}");
                }
            }
            let mut d = Duplex::new(&input, trickle);
            let r = socks4(&mut d, v4(), b"u");
            let ok4 = input.len() >= 8 && input[..2] == [0, 0x5A];
            assert_eq!(r.is_ok(), ok4, "{input:?} {r:?}");
            oks[2] += usize::from(ok4);
            if ok4 {
                assert_eq!(d.input.position(), 8);
            }
        }
        assert!(oks.iter().all(|&n| n > 100 && n < 2500), "{oks:?}");
    }

    #[test]
    fn messages_never_show_credentials() {
        let c = creds("alice", "s3cret");
        for input in [
            &[5u8, 2, 1, 1][..],
            &[5, 2, 1, 0, 5, 5],
            &[5, 0xFF],
            &[5, 2, 2, 0],
        ] {
            let e = socks5(&mut Duplex::new(input, false), v4(), Some(&c)).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains("alice") && !shown.contains("s3cret"),
                "{shown}"
            );
        }
        let e = socks5(&mut Duplex::new(&[5, 2, 1, 1], false), v4(), Some(&c)).unwrap_err();
        assert!(matches!(e, SocksError::Auth(_)));
    }

    #[test]
    fn socks5_over_a_real_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || -> io::Result<()> {
            let (mut c, _) = listener.accept()?;
            c.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut greeting = [0; 4];
            c.read_exact(&mut greeting)?;
            assert_eq!(greeting, [5, 2, 0, 2]);
            c.write_all(&[5, 2])?;
            let mut auth = [0; 14];
            c.read_exact(&mut auth)?;
            assert_eq!(auth, ALICE_AUTH);
            c.write_all(&[1, 0])?;
            let mut req = [0; 18];
            c.read_exact(&mut req)?;
            assert_eq!(
                req[..],
                cat(&[&[5, 1, 0, 3, 11], b"example.com", &[1, 187]])
            );
            // The reply and the destination's first byte in one segment.
            c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, b'X'])?;
            let mut echo = [0; 1];
            c.read_exact(&mut echo)?;
            c.write_all(&echo)
        });
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        socks5(
            &mut s,
            Target::Name("example.com", 443),
            Some(&creds("alice", "s3cret")),
        )
        .unwrap();
        let mut b = [0; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"X");
        s.write_all(b"y").unwrap();
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"y");
        server.join().unwrap().unwrap();
    }
}
