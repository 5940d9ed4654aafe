//! `nethttp`: one `Client` shared by every worker thread; two OS threads per
//! pooled connection. In the `-tls` modes both transports get one rustls
//! config that trusts `COMPARE_CA` only (nethttp's default roots when unset),
//! with ALPN `http/1.1`. In the `-h2` modes the transport is the default one
//! (it negotiates: ALPN `h2`, `http/1.1`, nethttp's own list, on the same
//! roots), every response must be `HTTP/2.0`, and the sampler reads
//! `Transport::stats()` (connections, threads).

use nethttp::{Client, Proxy, Response, Transport, http::Version};
use nethttp_compare::{
    PoolPeek, Probe, Res, compare_ca, drain, main_for, rustls_config, rustls_config_alpn,
};

struct NetHttp {
    /// Keep-alive client (seq, conc, download, idle, the `-h2` modes).
    client: Client,
    /// Its transport, for `stats()`.
    transport: Transport,
    /// `disable_keep_alives(true)`: every request on a new connection, sent
    /// with `Connection: close` (fresh).
    fresh: Client,
    /// A `-h2` mode: every response must be HTTP/2.
    h2: bool,
}

impl nethttp_compare::Client for NetHttp {
    type Worker = ();
    type Held = Response;

    fn worker(&self) {}

    fn get(&self, _: &mut (), url: &str, buf: &mut [u8]) -> Res<u64> {
        let resp = self.client.get(url).send()?;
        check(&resp)?;
        if self.h2 && resp.version() != Version::HTTP_2 {
            return Err(
                format!("-h2 mode, but the response came over {:?}", resp.version()).into(),
            );
        }
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

    fn proto(&self) -> &'static str {
        if self.h2 { "h2" } else { "http/1.1" }
    }

    fn probe(&self) -> Option<Probe> {
        let t = self.transport.clone();
        Some(Box::new(move || {
            let s = t.stats();
            PoolPeek {
                conns: s.conns,
                threads: s.threads,
            }
        }))
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
            let config = if args.h2 {
                // What nethttp offers by default, on COMPARE_CA's roots.
                rustls_config_alpn(&pem, &[b"h2", b"http/1.1"])?
            } else {
                rustls_config(&pem)?
            };
            transport = transport.tls_config(config.clone());
            fresh = fresh.tls_config(config);
        }
        let transport = transport.build();
        Ok(NetHttp {
            client: Client::builder().transport(transport.clone()).build()?,
            transport,
            fresh: Client::builder().transport(fresh.build()).build()?,
            h2: args.h2,
        })
    });
}
