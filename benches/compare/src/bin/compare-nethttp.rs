//! `nethttp`: one `Client` shared by every worker thread; two OS threads per
//! pooled connection. In the `-tls` modes both transports get one rustls
//! config that trusts `COMPARE_CA` only (nethttp's default roots when unset).

use nethttp::{Client, Proxy, Response, Transport};
use nethttp_compare::{Res, compare_ca, drain, main_for, rustls_config};

struct NetHttp {
    /// Keep-alive client (seq, conc, download, idle).
    client: Client,
    /// `disable_keep_alives(true)`: every request on a new connection, sent
    /// with `Connection: close` (fresh).
    fresh: Client,
}

impl nethttp_compare::Client for NetHttp {
    type Worker = ();
    type Held = Response;

    fn worker(&self) {}

    fn get(&self, _: &mut (), url: &str, buf: &mut [u8]) -> Res<u64> {
        let resp = self.client.get(url).send()?;
        check(&resp)?;
        Ok(drain(resp, buf)?)
    }

    fn get_fresh(&self, _: &mut (), url: &str, buf: &mut [u8]) -> Res<u64> {
        let resp = self.fresh.get(url).send()?;
        check(&resp)?;
        Ok(drain(resp, buf)?)
    }

    fn hold(&self, url: &str) -> Res<Response> {
        let resp = self.client.get(url).send()?;
        check(&resp)?;
        Ok(resp)
    }

    fn release(&self, resp: Response, buf: &mut [u8]) -> Res<u64> {
        Ok(drain(resp, buf)?)
    }
}

fn check(resp: &Response) -> Res<()> {
    if resp.status() != 200 {
        return Err(format!("status {}", resp.status()).into());
    }
    Ok(())
}

fn main() {
    main_for("nethttp", |args| {
        // Keep every connection the run opens: `threads` of them (conc: 16,
        // idle: 200), as the other clients do.
        let per_host = args.threads.max(2);
        let mut transport = Transport::builder()
            .proxy(Proxy::none())
            .max_idle_conns(0)
            .max_idle_conns_per_host(per_host);
        let mut fresh = Transport::builder()
            .proxy(Proxy::none())
            .disable_keep_alives(true);
        if args.tls
            && let Some(pem) = compare_ca()?
        {
            let config = rustls_config(&pem)?;
            transport = transport.tls_config(config.clone());
            fresh = fresh.tls_config(config);
        }
        Ok(NetHttp {
            client: Client::builder().transport(transport.build()).build()?,
            fresh: Client::builder().transport(fresh.build()).build()?,
        })
    });
}
