//! `ureq` 3: one `Agent` shared by every worker thread; I/O on the caller's
//! thread, no threads of its own.

use nethttp_compare::{Res, drain, main_for};
use ureq::{Agent, Body, http::Response};

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
        let per_host = args.threads.max(2);
        let agent: Agent = Agent::config_builder()
            .proxy(None)
            .max_idle_connections(per_host.max(10))
            .max_idle_connections_per_host(per_host)
            .build()
            .into();
        Ok(Ureq { agent })
    });
}
