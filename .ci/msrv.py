#!/usr/bin/env python3
"""Checks the minimum supported Rust version without a second toolchain.

Every package the build can pull in (all features, dev-dependencies
included, as locked in Cargo.lock) must declare a `rust-version` no newer
than ours. A package that declares none is listed but not fatal: crates.io
has old crates without the field, and they build on old compilers.

The other two halves of the check run elsewhere: Cargo's resolver 3
(edition 2024) prefers versions whose rust-version fits ours when the lock
file is written, and clippy's `incompatible_msrv` lint (denied in CI through
`clippy::all`) rejects standard-library APIs newer than ours.
"""
import json
import subprocess
import sys


def version(v):
    """"1.85" and "1.85.0" compare equal."""
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    root_id = meta["resolve"]["root"]
    packages = {p["id"]: p for p in meta["packages"]}
    ours = packages[root_id]["rust_version"]
    if not ours:
        sys.exit("error: Cargo.toml has no rust-version")
    # Everything reachable from the root in the resolved graph.
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    seen, todo = set(), [root_id]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(d["pkg"] for d in nodes[pid]["deps"])
    too_new, undeclared = [], []
    for pid in sorted(seen - {root_id}):
        p = packages[pid]
        rv = p.get("rust_version")
        if rv is None:
            undeclared.append(f"{p['name']} {p['version']}")
        elif version(rv) > version(ours):
            too_new.append(f"{p['name']} {p['version']} needs Rust {rv}")
    print(f"MSRV {ours}: {len(seen) - 1} packages checked, {len(undeclared)} declare no rust-version")
    if too_new:
        print("error: dependencies newer than our MSRV:", *too_new, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
