//! [`ConnKey`]: which requests may share a connection (Go's `connectMethodKey`).

use std::fmt;

use url::Url;

use crate::{
    Error, ErrorKind,
    proxy::{Proxy, ProxyTarget},
};

/// The scheme a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scheme {
    Http,
    Https,
}

/// Connections are pooled per key: two requests with equal keys may share a
/// connection (Go's `connectMethodKey`).
///
/// Through an HTTP proxy, plain-http requests to every host share the
/// proxy's connections (`host` is empty, `port` 0: the proxy is the
/// peer); https requests tunnel with CONNECT, one tunnel per target.
/// Through a SOCKS proxy every connection is a tunnel to one target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ConnKey {
    pub(crate) scheme: Scheme,
    /// Target host as it appears in the URL (IPv6 literals keep their
    /// brackets); empty for plain http through a proxy.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) proxy: Option<ProxyTarget>,
}

impl ConnKey {
    /// The key for a request URL sent as `proxy` says; an unsupported
    /// scheme or a missing host is [`ErrorKind::InvalidUrl`], a custom
    /// proxy function's bad answer [`ErrorKind::Proxy`].
    pub(crate) fn new(url: &Url, proxy: &Proxy) -> Result<ConnKey, Error> {
        let mut key = ConnKey::for_url(url)?;
        let Some(target) = proxy.proxy_for(url)? else {
            return Ok(key);
        };
        if key.scheme == Scheme::Http && !target.kind.is_socks() {
            key.host.clear();
            key.port = 0;
        }
        key.proxy = Some(target.into_owned());
        Ok(key)
    }

    /// Plain http through an HTTP proxy: requests use the absolute form.
    pub(crate) fn is_proxied_http(&self) -> bool {
        self.scheme == Scheme::Http && self.proxy.as_ref().is_some_and(|p| !p.kind.is_socks())
    }

    /// Where the TCP connection goes: the proxy, or the target.
    pub(crate) fn dial_host_port(&self) -> (&str, u16) {
        match &self.proxy {
            Some(p) => (
                p.url.host_str().unwrap_or(""),
                p.url.port_or_known_default().unwrap_or(80),
            ),
            None => (&self.host, self.port),
        }
    }

    /// The key for a request URL without a proxy.
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
        // The URL's own serialization of its host: one exact copy.
        let host = match url.host_str() {
            Some(h) => h.to_owned(),
            None => return Err(Error::new(ErrorKind::InvalidUrl, "no host in request URL")),
        };
        let port = match url.port_or_known_default() {
            Some(p) => p,
            None => return Err(Error::new(ErrorKind::InvalidUrl, "no port for URL scheme")),
        };
        Ok(ConnKey {
            scheme,
            host,
            port,
            proxy: None,
        })
    }

    /// The target host without IPv6 brackets, as TLS names want it.
    pub(crate) fn bare_host(&self) -> &str {
        bare(&self.host)
    }

    /// The host dialled is a name, not an IP literal: reaching it takes a
    /// DNS lookup (which the dial's `resolve` skips for a literal).
    pub(crate) fn needs_dns(&self) -> bool {
        bare(self.dial_host_port().0)
            .parse::<std::net::IpAddr>()
            .is_err()
    }
}

/// A host without IPv6 brackets, as DNS and `SocketAddr` want it.
pub(crate) fn bare(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The `host:port` dialled, as the `get_conn` trace hook reports it (Go's
/// `connectMethod.addr`): the proxy's when there is one.
impl fmt::Display for ConnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (host, port) = self.dial_host_port();
        write!(f, "{host}:{port}")
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
        // The host as the URL serializes it: IPv4 spellings agree.
        let v4 = k("http://127.1:8080/").unwrap();
        assert_eq!((v4.host.as_str(), v4.port), ("127.0.0.1", 8080));
        assert_eq!(v4, k("http://0x7f.0.0.1:8080/").unwrap());
        assert_eq!(k("ftp://x/").unwrap_err().kind(), ErrorKind::InvalidUrl);
        assert_eq!(k("file:///etc").unwrap_err().kind(), ErrorKind::InvalidUrl);
    }

    fn k_direct(s: &str) -> ConnKey {
        ConnKey::for_url(&Url::parse(s).unwrap()).unwrap()
    }

    #[test]
    fn proxied_keys() {
        let proxy = Proxy::all("http://u:p@proxy.local:3128").unwrap();
        let k = |s: &str| ConnKey::new(&Url::parse(s).unwrap(), &proxy).unwrap();
        // Plain http to any host shares the proxy's connections.
        assert_eq!(k("http://a.example/"), k("http://b.example:8080/x"));
        assert!(k("http://a.example/").is_proxied_http());
        assert_eq!(k("http://a.example/").to_string(), "proxy.local:3128");
        // https tunnels per target.
        assert_ne!(k("https://a.example/"), k("https://b.example/"));
        assert!(!k("https://a.example/").is_proxied_http());
        // Other credentials, other connections.
        let other = Proxy::all("http://v:p@proxy.local:3128").unwrap();
        let url = Url::parse("http://a.example/").unwrap();
        assert_ne!(ConnKey::new(&url, &other).unwrap(), k("http://a.example/"));
        // SOCKS tunnels per target, plain http included, keyed by proxy.
        let socks = Proxy::all("socks5://proxy.local").unwrap();
        let s = |u: &str, p: &Proxy| ConnKey::new(&Url::parse(u).unwrap(), p).unwrap();
        assert_ne!(
            s("http://a.example/", &socks),
            s("http://b.example/", &socks)
        );
        assert!(!s("http://a.example/", &socks).is_proxied_http());
        assert_eq!(
            s("http://a.example/", &socks).to_string(),
            "proxy.local:1080"
        );
        let socks_h = Proxy::all("socks5h://proxy.local").unwrap();
        assert_ne!(
            s("http://a.example/", &socks),
            s("http://a.example/", &socks_h)
        );
        assert_ne!(
            s("http://a.example/", &socks),
            ConnKey::for_url(&url).unwrap()
        );
        // A custom function's choice; a bad one is the proxy's error.
        let custom = Proxy::custom(|u: &Url| {
            (u.host_str() == Some("via.example")).then(|| Url::parse("socks5://p.local:9").unwrap())
        });
        assert_eq!(s("http://via.example/", &custom).to_string(), "p.local:9");
        assert_eq!(
            s("http://direct.example/", &custom),
            k_direct("http://direct.example/")
        );
        let bad = Proxy::custom(|_: &Url| Url::parse("ftp://p.local").ok());
        assert_eq!(
            ConnKey::new(&url, &bad).unwrap_err().kind(),
            ErrorKind::Proxy
        );
    }
}
