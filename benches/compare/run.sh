#!/usr/bin/env bash
# Side-by-side benchmark of nethttp against ureq 3, reqwest (blocking), Go's
# net/http (when Go is available) and a raw std::net::TcpStream loop, all
# against one nginx from Debian on 127.0.0.1; the -tls modes do the same over
# HTTPS (a throwaway CA and certificate made with openssl at start, raw being
# a rustls StreamOwned loop there); the -h2 modes do seq and conc over HTTP/2
# (TLS, ALPN h2) on a third nginx port, for nethttp, reqwest and Go (ureq 3
# has no HTTP/2 and sits them out), raw running its HTTP/1.1 TLS loop there
# as their baseline.
#
#   benches/compare/run.sh            full run: pinned, interleaved rounds,
#                                     medians, ratios to raw, results JSON,
#                                     docs/benchmarks.md table + chart
#   benches/compare/run.sh --smoke    every client x mode once with tiny
#                                     counts, no pinning (CI); non-zero exit
#                                     on any failure
#
# Options: --rounds N (default 5), --clients "raw nethttp ureq reqwest go",
#          --modes "seq conc fresh download idle seq-tls conc-tls fresh-tls
#          download-tls seq-h2 conc-h2 conc128-h2", --out DIR (results),
#          --chart FILE (default docs/benchmarks.png), --no-go, --no-chart.
# Counts (env): SEQ_N=20000 CONC_T=16 CONC_N=2000 FRESH_N=3000 DL_N=4 IDLE_N=200
#               FRESH_TLS_N=1000 (the other -tls modes use the plain counts)
#               CONC128_T=128 CONC128_N=250 (conc128-h2: threads, requests
#               per thread); seq-h2 and conc-h2 use SEQ_N and CONC_T x CONC_N
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

smoke=0
rounds=5
clients="raw nethttp ureq reqwest go"
modes="seq conc fresh download idle seq-tls conc-tls fresh-tls download-tls seq-h2 conc-h2 conc128-h2"
out="$here/results"
chart="$root/docs/benchmarks.png"
want_go=1
want_chart=1
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --rounds) rounds="$2"; shift ;;
        --clients) clients="$2"; shift ;;
        --modes) modes="$2"; shift ;;
        --out) out="$2"; shift ;;
        --chart) chart="$2"; shift ;;
        --no-go) want_go=0 ;;
        --no-chart) want_chart=0 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done
for mode in $modes; do
    case "$mode" in
        seq|conc|fresh|download|idle|seq-tls|conc-tls|fresh-tls|download-tls) ;;
        seq-h2|conc-h2|conc128-h2) ;;
        *) echo "unknown mode: $mode (idle has no -tls variant; the -h2 modes are seq-h2 conc-h2 conc128-h2)" >&2; exit 2 ;;
    esac
done

SEQ_N="${SEQ_N:-20000}"
CONC_T="${CONC_T:-16}"
CONC_N="${CONC_N:-2000}"
FRESH_N="${FRESH_N:-3000}"
DL_N="${DL_N:-4}"   # one 256 MiB transfer takes ~0.1 s: too short to time alone
IDLE_N="${IDLE_N:-200}"
FRESH_TLS_N="${FRESH_TLS_N:-1000}"   # a full handshake each: ~1 ms
CONC128_T="${CONC128_T:-128}"   # nginx's HTTP/2 stream limit per connection
CONC128_N="${CONC128_N:-250}"   # x 128 threads = 32000, as conc's 16 x 2000
if [ "$smoke" = 1 ]; then
    rounds=1
    SEQ_N=200 CONC_T=4 CONC_N=50 FRESH_N=20 DL_N=1 IDLE_N=20 FRESH_TLS_N=20
    # conc128-h2 keeps its 128 threads (128 streams at once is its point).
    CONC128_N=4
    want_chart=0
fi

say() { printf '==> %s\n' "$*" >&2; }

# shellcheck source=nginx.sh
. "$here/nginx.sh"

# --- tools -------------------------------------------------------------------
ensure_nginx
case " $clients " in *" go "*) ;; *) want_go=0 ;; esac
# Debian's golang-1.19-go without the golang-go symlinks (as .ci/run
# installs it): use it.
if [ "$want_go" = 1 ] && ! command -v go >/dev/null 2>&1 && [ -x /usr/lib/go-1.19/bin/go ]; then
    PATH="$PATH:/usr/lib/go-1.19/bin"
fi
if [ "$want_go" = 1 ] && ! command -v go >/dev/null 2>&1 && [ "$smoke" = 0 ]; then
    say "installing Go (Debian golang-go) for the net/http client"
    apt_install golang-go || say "golang-go not installable: running without Go"
fi
if [ "$want_go" = 1 ] && ! command -v go >/dev/null 2>&1; then
    want_go=0
fi
if [ "$want_go" = 0 ]; then
    clients="$(echo " $clients " | sed 's/ go / /g')"
fi
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [ "$want_chart" = 1 ] && [ ! -f "$font" ]; then
    apt_install fonts-dejavu-core || true
fi

# --- build -------------------------------------------------------------------
# The library revision that gets built (src/ may have uncommitted changes).
nethttp_rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$root" status --porcelain -- src Cargo.toml 2>/dev/null)" ]; then
    nethttp_rev="$nethttp_rev+uncommitted-src"
fi
say "building benches/compare (release) against nethttp $nethttp_rev"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bin="$here/target/release"
if [ "$want_go" = 1 ]; then
    say "building the Go client ($(go version))"
    (cd "$here/go" && GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off \
        GOCACHE="${GOCACHE:-$here/target/gocache}" go build -o "$bin/compare-go" .)
fi

# --- nginx -------------------------------------------------------------------
ncpu="$(nproc)"
server_pin=()
if [ "$smoke" = 0 ]; then
    server_pin=(taskset -c 0)
fi
start_nginx "${server_pin[@]}"
tls_info="$(tls_probe)"
say "TLS port, as openssl s_client sees it: $tls_info"
h2_info="$(h2_probe)"
say "ALPN chosen for h2,http/1.1 (openssl s_client): $h2_info"

# --- runs --------------------------------------------------------------------
if [ "$smoke" = 1 ]; then
    placements="none"
    out="$tmp/results"
elif [ "$ncpu" -ge 2 ]; then
    placements="two-cpu one-cpu"
else
    say "one CPU only: the two-CPU placement is skipped"
    placements="one-cpu"
fi
mkdir -p "$out"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
results="$out/results-$stamp.jsonl"
: >"$results"

# mode client -> "url threads count"
args_for() {
    local url
    url="$(mode_url "$1" "$2")"
    case "$1" in
        seq|seq-tls|seq-h2) echo "$url 1 $SEQ_N" ;;
        conc|conc-tls|conc-h2) echo "$url $CONC_T $CONC_N" ;;
        conc128-h2) echo "$url $CONC128_T $CONC128_N" ;;
        fresh) echo "$url 1 $FRESH_N" ;;
        fresh-tls) echo "$url 1 $FRESH_TLS_N" ;;
        download|download-tls) echo "$url 1 $DL_N" ;;
        idle) echo "$url $IDLE_N 1" ;;
        *) echo "unknown mode $1" >&2; return 1 ;;
    esac
}

failures=0
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
read -r -a client_list <<<"$clients"
nclients=${#client_list[@]}
for placement in $placements; do
    case "$placement" in
        two-cpu) pin=(taskset -c 1) ;;
        one-cpu) pin=(taskset -c 0) ;;
        *) pin=() ;;
    esac
    for round in $(seq "$rounds"); do
        say "placement $placement, round $round/$rounds"
        for mode in $modes; do
            # Idle measures memory, not speed: once per round, first placement.
            if [ "$mode" = idle ] && [ "$placement" = one-cpu ] && [[ "$placements" == *two-cpu* ]]; then
                continue
            fi
            # Interleaved: every client once per mode per round, the starting
            # client rotating from round to round.
            for i in $(seq 0 $((nclients - 1))); do
                client="${client_list[$(((i + round - 1) % nclients))]}"
                # ureq 3 has no HTTP/2.
                if [ "$client" = ureq ] && [[ "$mode" == *-h2 ]]; then continue; fi
                # shellcheck disable=SC2046
                if line="$(timeout 600 "${pin[@]}" "$bin/compare-$client" $mode $(args_for "$mode" "$client") 2>"$tmp/err")"; then
                    line="${line%\}},\"placement\":\"$placement\",\"round\":$round}"
                    # A variant binary (compare-nethttpold: an older build,
                    # for an A/B run) reports as nethttp: name it after itself.
                    case "$client" in nethttp?*) line="${line/\"nethttp\"/\"$client\"}" ;; esac
                    echo "$line" >>"$results"
                    if [ "$smoke" = 1 ]; then echo "$line"; fi
                else
                    failures=$((failures + 1))
                    echo "FAILED: $client $mode ($placement, round $round): $(tail -3 "$tmp/err")" >&2
                fi
            done
        done
    done
done

# --- report ------------------------------------------------------------------
meta="$out/meta-$stamp.json"
{
    printf '{"date":"%s",' "$(date -u +%Y-%m-%d)"
    printf '"cpu":"%s",' "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //;s/"//g')"
    printf '"ncpu":%s,' "$ncpu"
    printf '"mem":"%s",' "$(free -g | awk '/Mem:/{print $2" GiB"}')"
    printf '"kernel":"%s",' "$(uname -r)"
    printf '"nginx":"%s",' "$("$nginx_bin" -v 2>&1 | sed 's/.*\///')"
    printf '"rustc":"%s",' "$(rustc --version)"
    printf '"go":"%s",' "$( [ "$want_go" = 1 ] && go version | awk '{print $3}' || echo none)"
    printf '"nethttp":"%s",' "$nethttp_rev"
    printf '"counts":"seq %s, conc %sx%s, fresh %s, download 256 MiB x%s, idle %s conns; fresh-tls %s; conc128-h2 %sx%s",' \
        "$SEQ_N" "$CONC_T" "$CONC_N" "$FRESH_N" "$DL_N" "$IDLE_N" "$FRESH_TLS_N" "$CONC128_T" "$CONC128_N"
    printf '"tls":"%s",' "$tls_info"
    printf '"alpn":"%s",' "$h2_info"
    printf '"loadavg_start":"%s","loadavg_end":"%s",' "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '"rounds":%s,"smoke":%s}\n' "$rounds" "$smoke"
} >"$meta"

report_args=("$results" --meta "$meta" --json "$out/summary-$stamp.json")
if [ "$want_chart" = 1 ] && [ -f "$font" ]; then
    report_args+=(--chart "$chart" --font "$font")
fi
if [ "$smoke" = 0 ]; then
    report_args+=(--md "$out/table-$stamp.md")
fi
"$bin/compare-report" "${report_args[@]}"
say "results: $results"

if [ "$smoke" = 1 ]; then
    expected=0
    for mode in $modes; do
        for client in "${client_list[@]}"; do
            if [ "$client" = ureq ] && [[ "$mode" == *-h2 ]]; then continue; fi
            expected=$((expected + 1))
        done
    done
    got=$(wc -l <"$results")
    if [ "$failures" -gt 0 ] || [ "$got" -ne "$expected" ]; then
        echo "smoke: $failures failure(s), $got of $expected runs reported" >&2
        exit 1
    fi
    echo "smoke: $got passed, 0 failed"
fi
[ "$failures" -eq 0 ]
