//! close-race: the "GET then at once POST" loop of issue 12, item 2, for
//! nethttp; `close-race.sh` runs it and Go's client against the same server
//! (`close-race/main.go`), which closes every connection right after a
//! complete keep-alive response.
//!
//! `close-race URL N` prints one line: `nethttp n=N get_failures=.. post_failures=..`.

use std::{env, process::exit};

fn main() {
    let args: Vec<String> = env::args().collect();
    let (Some(url), Some(n)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: close-race URL N");
        exit(2);
    };
    let client = nethttp::Client::new();
    let (mut get_fail, mut post_fail) = (0, 0);
    for _ in 0..n {
        if client.get(url).send().and_then(|r| r.bytes()).is_err() {
            get_fail += 1;
        }
        if client
            .post(url)
            .body("x")
            .send()
            .and_then(|r| r.bytes())
            .is_err()
        {
            post_fail += 1;
        }
    }
    println!("nethttp n={n} get_failures={get_fail} post_failures={post_fail}");
}
