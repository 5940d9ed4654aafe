//! `reqwest` blocking: one `Client` shared by every worker thread; the I/O
//! runs on a tokio runtime thread behind it.

use nethttp_compare::{Res, drain, main_for};
use reqwest::blocking::{Client, Response};

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
        let client = Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(per_host)
            .build()?;
        let fresh = Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()?;
        Ok(Reqwest { client, fresh })
    });
}
