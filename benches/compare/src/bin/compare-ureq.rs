//! `ureq` 3: one `Agent` shared by every worker thread; I/O on the caller's
//! thread, no threads of its own. In the `-tls` modes its rustls trusts
//! `COMPARE_CA` only (ureq's default, webpki-roots, when unset). ureq 3
//! speaks no HTTP/2: it refuses the `-h2` modes (run.sh leaves it out there).

use nethttp_compare::{Res, compare_ca, drain, main_for};
use std::sync::Arc;
use ureq::{
    Agent, Body,
    http::Response,
    tls::{PemItem, RootCerts, TlsConfig, parse_pem},
};

struct Ureq {
    agent: Agent,
}

impl nethttp_compare::Client for Ureq {
    type Worker = ();
    type Held = Response<Body>;

    fn worker(&self) {}

    fn get(&self, _: &mut (), url: &str, buf: &mut [u8]) -> Res<u64> {
        let resp = self.agent.get(url).call()?;
        Ok(drain(resp.into_body().into_reader(), buf)?)
    }

    fn get_fresh(&self, _: &mut (), url: &str, buf: &mut [u8]) -> Res<u64> {
        // ureq closes (never pools) a connection whose request said `close`.
        let resp = self.agent.get(url).header("Connection", "close").call()?;
        Ok(drain(resp.into_body().into_reader(), buf)?)
    }

    fn hold(&self, url: &str) -> Res<Response<Body>> {
        Ok(self.agent.get(url).call()?)
    }

    fn release(&self, resp: Response<Body>, buf: &mut [u8]) -> Res<u64> {
        Ok(drain(resp.into_body().into_reader(), buf)?)
    }
}

fn main() {
    main_for("ureq", |args| {
        if args.h2 {
            return Err(format!("ureq 3 has no HTTP/2: mode {} is not for it", args.mode).into());
        }
        let per_host = args.threads.max(2);
        let mut config = Agent::config_builder()
            .proxy(None)
            .max_idle_connections(per_host.max(10))
            .max_idle_connections_per_host(per_host);
        if args.tls
            && let Some(pem) = compare_ca()?
        {
            let mut certs = Vec::new();
            for item in parse_pem(&pem) {
                if let PemItem::Certificate(cert) = item? {
                    certs.push(cert);
                }
            }
            let roots = RootCerts::Specific(Arc::new(certs));
            config = config.tls_config(TlsConfig::builder().root_certs(roots).build());
        }
        let agent: Agent = config.build().into();
        Ok(Ureq { agent })
    });
}
