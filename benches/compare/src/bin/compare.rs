//! `compare <client> <mode> <url> <threads> <count>`: runs the binary of that
//! client (`compare-<client>`, next to this one) in place of this process, so
//! each client is measured in a process that links only its own code.

use std::{os::unix::process::CommandExt, process::Command};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(client) = args.next() else {
        eprintln!("{}", nethttp_compare::USAGE);
        std::process::exit(2);
    };
    let me = std::env::current_exe().expect("current_exe");
    let bin = me.with_file_name(format!("compare-{client}"));
    if client == "go" {
        eprintln!("the Go client is benches/compare/go (built by run.sh as compare-go)");
    }
    let err = Command::new(&bin).args(args).exec();
    eprintln!("cannot run {}: {err}", bin.display());
    std::process::exit(2);
}
