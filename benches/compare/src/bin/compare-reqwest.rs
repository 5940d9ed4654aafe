//! `reqwest` blocking: one `Client` shared by every worker thread; the I/O
//! runs on a tokio runtime thread behind it. Built with rustls (ring) and no
//! built-in roots: in the `-tls` modes it trusts `COMPARE_CA` only.

use nethttp_compare::{Res, compare_ca, drain, main_for};
use reqwest::{
    Certificate,
    blocking::{Client, Response},
};

struct Reqwest {
    client: Client,
    /// No idle pool and `Connection: close` on every request (fresh).
    fresh: Client,
}

impl nethttp_compare::Client for Reqwest {
    type Worker = ();
    type Held = Response;

    fn worker(&self) {}

    fn get(&self, _: &mut (), url: &str, buf: &mut [u8]) -> Res<u64> {
        let resp = self.client.get(url).send()?.error_for_status()?;
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
}

fn main() {
    main_for("reqwest", |args| {
        let per_host = args.threads.max(2);
        let mut client = Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(per_host);
        let mut fresh = Client::builder().no_proxy().pool_max_idle_per_host(0);
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
        })
    });
}
