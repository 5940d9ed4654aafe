//! [`ConnKey`]: which requests may share a connection (Go's `connectMethodKey`).

use std::fmt;

use url::Url;

use crate::{Error, ErrorKind};

/// The scheme a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scheme {
    Http,
    Https,
}

/// Connections are pooled per key: two requests with equal keys may share a
/// connection. A proxy, when proxies land, becomes part of the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ConnKey {
    pub(crate) scheme: Scheme,
    /// Host as it appears in the URL (IPv6 literals keep their brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl ConnKey {
    /// The key for a request URL; an unsupported scheme or a missing host is
    /// [`ErrorKind::InvalidUrl`].
    pub(crate) fn for_url(url: &Url) -> Result<ConnKey, Error> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!("unsupported protocol scheme {other:?}"),
                ));
            }
        };
        let host = match url.host() {
            Some(h) => h.to_string(),
            None => return Err(Error::new(ErrorKind::InvalidUrl, "no host in request URL")),
        };
        let port = match url.port_or_known_default() {
            Some(p) => p,
            None => return Err(Error::new(ErrorKind::InvalidUrl, "no port for URL scheme")),
        };
        Ok(ConnKey { scheme, host, port })
    }

    /// The host without IPv6 brackets, as DNS and `SocketAddr` want it.
    pub(crate) fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// `host:port`, as the `get_conn` trace hook reports it.
impl fmt::Display for ConnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let k = |s: &str| ConnKey::for_url(&Url::parse(s).unwrap());
        let a = k("http://Example.com/a").unwrap();
        assert_eq!(a, k("http://example.com:80/b?c").unwrap());
        assert_eq!(a.to_string(), "example.com:80");
        assert_ne!(a, k("https://example.com/").unwrap());
        let v6 = k("http://[::1]:8080/").unwrap();
        assert_eq!(
            (v6.to_string().as_str(), v6.bare_host()),
            ("[::1]:8080", "::1")
        );
        assert_eq!(k("ftp://x/").unwrap_err().kind(), ErrorKind::InvalidUrl);
        assert_eq!(k("file:///etc").unwrap_err().kind(), ErrorKind::InvalidUrl);
    }
}
