//! `reqwest` blocking: one `Client` shared by every worker thread; the I/O
//! runs on a tokio runtime thread behind it. Built with rustls (ring) and no
//! built-in roots: in the `-tls` and `-h2` modes it trusts `COMPARE_CA` only.
//!
//! Built with its `http2` feature (hyper's h2) for the `-h2` modes, where it
//! negotiates (ALPN `h2`, `http/1.1`, reqwest's default with that feature)
//! and every response must be `HTTP/2.0`. Every other mode uses
//! `http1_only()`, which offers ALPN `http/1.1` alone, as the build without
//! the feature did.

use nethttp_compare::{Res, compare_ca, drain, main_for};
use reqwest::{
    Certificate, Version,
    blocking::{Client, Response},
};

struct Reqwest {
    client: Client,
    /// No idle pool and `Connection: close` on every request (fresh).
    fresh: Client,
    /// A `-h2` mode: every response must be HTTP/2.
    h2: bool,
}

impl nethttp_compare::Client for Reqwest {
    type Worker = ();
    type Held = Response;

    fn worker(&self) {}

    fn get(&self, _: &mut (), url: &str, buf: &mut [u8]) -> Res<u64> {
        let resp = self.client.get(url).send()?.error_for_status()?;
        if self.h2 && resp.version() != Version::HTTP_2 {
            return Err(
                format!("-h2 mode, but the response came over {:?}", resp.version()).into(),
            );
        }
        Ok(drain(resp, buf)?)
    }

    fn get_fresh(&self, _: &mut (), url: &str, buf: &mut [u8]) -> Res<u64> {
        let resp = self
            .fresh
            .get(url)
            .header("Connection", "close")
            .send()?
            .error_for_status()?;
        Ok(drain(resp, buf)?)
    }

    fn hold(&self, url: &str) -> Res<Response> {
        Ok(self.client.get(url).send()?.error_for_status()?)
    }

    fn release(&self, resp: Response, buf: &mut [u8]) -> Res<u64> {
        Ok(drain(resp, buf)?)
    }

    fn proto(&self) -> &'static str {
        if self.h2 { "h2" } else { "http/1.1" }
    }
}

fn main() {
    main_for("reqwest", |args| {
        let per_host = args.threads.max(2);
        let mut client = Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(per_host);
        if !args.h2 {
            client = client.http1_only();
        }
        let mut fresh = Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .http1_only();
        if args.tls
            && let Some(pem) = compare_ca()?
        {
            for cert in Certificate::from_pem_bundle(&pem)? {
                client = client.add_root_certificate(cert.clone());
                fresh = fresh.add_root_certificate(cert);
            }
        }
        Ok(Reqwest {
            client: client.build()?,
            fresh: fresh.build()?,
            h2: args.h2,
        })
    });
}
