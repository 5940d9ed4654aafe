//! The TLS handshake (on the dial thread, before the connection's threads
//! exist) and the client configurations. The session's two halves, once
//! the handshake is done, are `stream::tls`'s.
//!
//! The handshake runs over a [`Stream`], not a socket: a plain one, or a
//! TLS session already up (TLS in TLS: an https target through an https
//! proxy, the second handshake inside the first session).

use std::{
    fmt, io,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use rustls::{
    ClientConfig, ClientConnection, RootCertStore,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::WebPkiSupportedAlgorithms,
    pki_types::{CertificateDer, ServerName, UnixTime},
};

use crate::{
    Error, ErrorKind,
    stream::{self, Stream, tls::TlsParts},
    trace::ClientTrace,
};

/// HTTP/1.1's ALPN name.
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// HTTP/2's ALPN name (RFC 9113 §3.2).
pub(crate) const ALPN_H2: &[u8] = b"h2";

/// The default client configuration: the ring provider (explicitly, so it
/// works whether or not the application installed a process default), the
/// webpki-roots trust anchors, ALPN `h2, http/1.1` (each dial offers the
/// transport's own list). Built once per process.
pub(crate) fn default_config() -> Result<Arc<ClientConfig>, Error> {
    static DEFAULT: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = config_builder()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(with_alpn(config)))
        })
        .clone()
        .map_err(|e| Error::new(ErrorKind::Tls, e))
}

/// The default configuration with the platform's trust store (the files
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` name, else the system's) instead of
/// webpki-roots. Loaded at each call: the caller keeps the result.
#[cfg(feature = "native-roots")]
pub(crate) fn native_roots_config() -> Result<Arc<ClientConfig>, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_string(), |e| e.to_string());
        return Err(Error::new(
            ErrorKind::Tls,
            format!("no usable certificates in the platform trust store: {why}"),
        ));
    }
    let config = config_builder()
        .map_err(|e| Error::new(ErrorKind::Tls, e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(with_alpn(config)))
}

/// A configuration that accepts any certificate: for
/// `TransportBuilder::danger_accept_invalid_certs` only.
pub(crate) fn insecure_config() -> Result<Arc<ClientConfig>, Error> {
    let provider = rustls::crypto::ring::default_provider();
    let verifier = AcceptAnyCert(provider.signature_verification_algorithms);
    let config = config_builder()
        .map_err(|e| Error::new(ErrorKind::Tls, e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(with_alpn(config)))
}

fn config_builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls configuration: {e}"))
}

fn with_alpn(mut config: ClientConfig) -> ClientConfig {
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    config
}

/// Runs the TLS handshake for `host` (a bare host: no IPv6 brackets; the
/// TLS server name) over `lower`, on the dial thread, and returns the TLS
/// stream (its addresses are `lower`'s). `lower` may itself be a TLS
/// stream (an https proxy's): the new session then runs inside it. Fires
/// the handshake trace hooks once. `offer` replaces the configuration's
/// ALPN list for this connection (`None` keeps it); `protocols` are the
/// ALPN protocols the caller can speak: a server that chooses another
/// fails the handshake. Errors name `peer`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn connect(
    lower: Stream,
    host: &str,
    peer: &dyn fmt::Display,
    config: &Arc<ClientConfig>,
    timeout: Option<Duration>,
    offer: Option<&[&[u8]]>,
    protocols: &[&[u8]],
    trace: Option<&dyn ClientTrace>,
) -> Result<Stream, Error> {
    let (local, remote) = (lower.local_addr, lower.remote_addr);
    let hs = Handshake {
        host,
        peer,
        config,
        timeout,
        offer,
        protocols,
    };
    let parts = traced(trace, || hs.run(lower))?;
    Ok(Stream::tls(parts, local, remote))
}

/// `handshake` between the trace's start and done hooks.
fn traced(
    trace: Option<&dyn ClientTrace>,
    handshake: impl FnOnce() -> Result<TlsParts, Error>,
) -> Result<TlsParts, Error> {
    if let Some(t) = trace {
        t.tls_handshake_start();
    }
    let res = handshake();
    if let Some(t) = trace {
        t.tls_handshake_done(res.as_ref().err());
    }
    res
}

/// One client handshake's inputs.
struct Handshake<'a> {
    /// The TLS server name.
    host: &'a str,
    /// Who errors name: the connection key (`host:port`), or the host.
    peer: &'a dyn fmt::Display,
    config: &'a Arc<ClientConfig>,
    timeout: Option<Duration>,
    offer: Option<&'a [&'a [u8]]>,
    protocols: &'a [&'a [u8]],
}

impl Handshake<'_> {
    /// The handshake over `lower`, then the session split over it. The
    /// handshake's deadline bounds the lower stream's reads (and the
    /// socket's writes) while it runs; both are cleared after.
    fn run(&self, mut lower: Stream) -> Result<TlsParts, Error> {
        let peer = self.peer;
        let host = self.host.to_string();
        let name = ServerName::try_from(host.clone()).map_err(|e| {
            Error::new(ErrorKind::Tls, format!("invalid server name {host:?}: {e}"))
        })?;
        let alpn = match self.offer {
            Some(list) => list.iter().map(|p| p.to_vec()).collect(),
            None => self.config.alpn_protocols.clone(),
        };
        let mut conn =
            ClientConnection::new_with_alpn(self.config.clone(), name, alpn).map_err(|e| {
                Error::new(ErrorKind::Tls, format!("tls setup for {peer}")).with_source(e)
            })?;
        let deadline = self
            .timeout
            .filter(|t| !t.is_zero())
            .map(|t| Instant::now() + t);
        let timed_out = || {
            Error::new(
                ErrorKind::Timeout,
                format!("tls handshake with {peer} timed out"),
            )
        };
        while conn.is_handshaking() || conn.wants_write() {
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(timed_out()),
                },
                None => None,
            };
            let _ = lower.read.set_read_timeout(left);
            let _ = lower.write.set_write_timeout(left);
            match conn.complete_io(&mut lower) {
                Ok(_) => {}
                Err(e) if stream::is_timeout(&e) => return Err(timed_out()),
                Err(e) => return Err(handshake_error(peer, e)),
            }
        }
        let _ = lower.read.set_read_timeout(None);
        let _ = lower.write.set_write_timeout(None);
        // The caller acts on the protocol chosen; one it cannot speak fails
        // the handshake here.
        if let Some(p) = conn.alpn_protocol() {
            if !self.protocols.contains(&p) {
                return Err(Error::new(
                    ErrorKind::Tls,
                    format!(
                        "{peer} chose ALPN protocol {:?}, which this client does not speak",
                        String::from_utf8_lossy(p)
                    ),
                ));
            }
        }
        TlsParts::new(lower, conn).map_err(|e| setup_error(peer, e))
    }
}

/// A failure to set a session up around the handshake (not in it).
fn setup_error(peer: &dyn fmt::Display, e: io::Error) -> Error {
    Error::new(ErrorKind::Tls, format!("tls setup for {peer}")).with_source(e)
}

/// A failed handshake: what went wrong in our words (the rustls or I/O
/// error stays reachable as the source, not repeated).
fn handshake_error(peer: &dyn fmt::Display, e: io::Error) -> Error {
    let why = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => reason(tls),
        None if e.kind() == io::ErrorKind::UnexpectedEof => "the server closed the connection",
        None => "the connection failed",
    };
    Error::new(ErrorKind::Tls, format!("tls handshake with {peer}: {why}")).with_source(e)
}

/// Why a handshake failed, for the message (Go's x509 wording where it has
/// one).
fn reason(e: &rustls::Error) -> &'static str {
    use rustls::{CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired"
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet"
        }
        E::InvalidCertificate(C::UnknownIssuer) => {
            "the server's certificate is signed by an unknown authority"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the server's certificate is not valid for this host name"
        }
        E::InvalidCertificate(C::Revoked) => "the server's certificate has been revoked",
        E::InvalidCertificate(_) => "the server's certificate is invalid",
        E::AlertReceived(_) => "the server refused the handshake (alert received)",
        E::NoCertificatesPresented => "the server presented no certificate",
        E::PeerIncompatible(_) => "the server supports no protocol version or cipher we offer",
        _ => "the handshake failed",
    }
}

/// Accepts every certificate (still checks handshake signatures).
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}
