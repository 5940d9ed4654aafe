#!/usr/bin/env bash
# Per-request cost profile of each client against the benchmark's nginx:
# context switches, CPU time (perf stat, software counters) and syscalls by
# type (strace -f -c), each measured at two request counts and differenced,
# so start-up, warm-up and exit costs cancel out and what is left is the cost
# of one request.
#
#   benches/compare/profile.sh [--clients "raw nethttp ureq reqwest go"]
#                              [--modes "seq fresh conc"]
#                              (also seq-tls, fresh-tls, conc-tls, and
#                              seq-h2, conc-h2, conc128-h2: ureq sits those
#                              out, raw runs its HTTP/1.1 TLS loop there)
#                              [--placements "two-cpu one-cpu"]
#
# strace slows every syscall down, so its run is used for counts only; the
# CPU time and context switches come from separate runs under perf stat.
# Installs nginx, openssl, strace and linux-perf with apt-get when missing.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
clients="raw nethttp ureq reqwest go"
modes="seq fresh conc"
placements="two-cpu one-cpu"
while [ $# -gt 0 ]; do
    case "$1" in
        --clients) clients="$2"; shift ;;
        --modes) modes="$2"; shift ;;
        --placements) placements="$2"; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '==> %s\n' "$*" >&2; }
# shellcheck source=nginx.sh
. "$here/nginx.sh"
ensure_nginx
command -v strace >/dev/null 2>&1 || apt_install strace
command -v perf >/dev/null 2>&1 || apt_install linux-perf || true
have_perf=0
if perf stat -e context-switches true >/dev/null 2>&1; then have_perf=1; fi

cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bin="$here/target/release"
if [[ " $clients " == *" go "* ]]; then
    if ! command -v go >/dev/null 2>&1 && [ -x /usr/lib/go-1.19/bin/go ]; then
        PATH="$PATH:/usr/lib/go-1.19/bin"
    fi
    if command -v go >/dev/null 2>&1; then
        (cd "$here/go" && GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off \
            GOCACHE="${GOCACHE:-$here/target/gocache}" go build -o "$bin/compare-go" .)
    else
        clients="$(echo " $clients " | sed 's/ go / /g')"
    fi
fi
start_nginx taskset -c 0
export COMPARE_NO_SAMPLER=1

# mode -> "threads small big"
params() {
    case "$1" in
        seq|seq-tls|seq-h2) echo "1 2000 10000" ;;
        conc|conc-tls|conc-h2) echo "16 200 1000" ;;
        conc128-h2) echo "128 25 125" ;;
        fresh) echo "1 300 1300" ;;
        fresh-tls) echo "1 100 400" ;;
        *) echo "profile.sh: mode $1 not profiled" >&2; return 1 ;;
    esac
}
# Requests a run makes, warm-up included (the harness warms each thread up
# with count/20 requests, at least 1 and at most 200).
total() {
    local threads=$1 count=$2 warm=$(($2 / 20))
    [ "$warm" -lt 1 ] && warm=1
    [ "$warm" -gt 200 ] && warm=200
    echo $((threads * (count + warm)))
}
perf_val() { awk -F, -v ev="$2" '$3 == ev { print $1 }' "$1"; }
strace_calls() {
    awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $NF, $4 }' "$1"
}

printf '%-8s %-8s %-6s %9s %9s %9s  %s\n' client placement mode "ctxsw/req" "cpu-us/req" "sys/req" "syscalls per request (strace -f -c)"
for mode in $modes; do
    read -r threads small big <<<"$(params "$mode")"
    n=$(($(total "$threads" "$big") - $(total "$threads" "$small")))
    for placement in $placements; do
        case "$placement" in two-cpu) cpu=1 ;; *) cpu=0 ;; esac
        for client in $clients; do
            # ureq 3 has no HTTP/2.
            if [ "$client" = ureq ] && [[ "$mode" == *-h2 ]]; then continue; fi
            url="$(mode_url "$mode" "$client")"
            ctx="-" cpu_us="-"
            if [ "$have_perf" = 1 ]; then
                for c in "$small" "$big"; do
                    perf stat -x, -e context-switches,task-clock -o "$tmp/perf-$c" \
                        taskset -c "$cpu" "$bin/compare-$client" "$mode" "$url" "$threads" "$c" >/dev/null
                done
                ctx=$(awk -v a="$(perf_val "$tmp/perf-$small" context-switches)" \
                    -v b="$(perf_val "$tmp/perf-$big" context-switches)" -v n="$n" \
                    'BEGIN { printf "%.2f", (b - a) / n }')
                cpu_us=$(awk -v a="$(perf_val "$tmp/perf-$small" task-clock)" \
                    -v b="$(perf_val "$tmp/perf-$big" task-clock)" -v n="$n" \
                    'BEGIN { printf "%.1f", (b - a) * 1000 / n }')
            fi
            for c in "$small" "$big"; do
                strace -f -c -o "$tmp/strace-$c" taskset -c "$cpu" \
                    "$bin/compare-$client" "$mode" "$url" "$threads" "$c" >/dev/null
            done
            summary=$(join -a1 -a2 -e 0 -o 0,1.2,2.2 \
                <(strace_calls "$tmp/strace-$small" | sort) \
                <(strace_calls "$tmp/strace-$big" | sort) |
                awk -v n="$n" '{ d = ($3 - $2) / n; if (d >= 0.05) printf "%s %.2f\n", $1, d }' |
                sort -k2 -nr)
            sys_total=$(echo "$summary" | awk '{ s += $2 } END { printf "%.1f", s }')
            detail=$(echo "$summary" | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
            printf '%-8s %-8s %-6s %9s %9s %9s  %s\n' "$client" "$placement" "$mode" "$ctx" "$cpu_us" "$sys_total" "$detail"
        done
    done
done
