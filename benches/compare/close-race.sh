#!/usr/bin/env bash
# The race of issue 12, item 2, measured: a server that closes each
# connection right after a complete keep-alive response (as tinyproxy does),
# and the loop "GET, then at once POST", N rounds, for nethttp and for Go's
# net/http, interleaved against the same server in the same run. Each line
# counts the requests that failed; a POST that meets a dead pooled
# connection is not retried, so post_failures is the race.
#
#   benches/compare/close-race.sh [ROUNDS] [N]     (defaults: 5 rounds of 200)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rounds="${1:-5}"
n="${2:-200}"
export PATH="$PATH:/usr/lib/go-1.19/bin:/usr/lib/go/bin"
command -v go >/dev/null || { echo "close-race.sh needs Go (Debian golang-go)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --bin close-race
bin="${CARGO_TARGET_DIR:-$here/target}/release"
(cd "$here/close-race" && GOCACHE="${GOCACHE:-$here/target/gocache}" go build -o "$bin/close-race-go" .)

"$bin/close-race-go" server > "$bin/close-race-server.out" &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 100); do
    grep -q listening "$bin/close-race-server.out" 2>/dev/null && break
    sleep 0.05
done
url="http://$(awk '/listening/ {print $2}' "$bin/close-race-server.out")/"
echo "server $url; $rounds rounds of $n x (GET, POST); $(nproc) CPUs"
for _ in $(seq "$rounds"); do
    "$bin/close-race" "$url" "$n"
    "$bin/close-race-go" client "$url" "$n"
done
