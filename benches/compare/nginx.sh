# Sourced by run.sh and profile.sh: starts nginx from Debian on a free port
# of 127.0.0.1 with the benchmark's configuration, in a temp dir removed at
# exit. Needs say(). ensure_nginx sets $nginx_bin (apt-get installs nginx
# when missing); start_nginx [PREFIX...] (PREFIX, e.g. `taskset -c 0`, runs
# nginx) sets $tmp, $port, $nginx_pid and $base.

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${apt_updated:-}" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    apt-get install -y -qq "$@" >/dev/null
}

ensure_nginx() {
    nginx_bin="$(command -v nginx || true)"
    if [ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ]; then nginx_bin=/usr/sbin/nginx; fi
    if [ -z "$nginx_bin" ]; then
        say "installing nginx (Debian)"
        apt_install nginx
        # The package may start a system nginx on port 80; ours runs apart.
        if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx >/dev/null 2>&1 || true; fi
        nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
    fi
}

tmp="$(mktemp -d /tmp/nethttp-bench.XXXXXX)"
nginx_pid=""
cleanup() {
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill "$nginx_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_nginx() {
    port=$((20000 + RANDOM % 20000))
    while port_busy "$port"; do port=$((port + 1)); done

    # nginx's worker runs as an unprivileged user: it must reach the files.
    chmod 755 "$tmp"
    mkdir -p "$tmp/www" "$tmp/tmp"
    truncate -s 256M "$tmp/www/256m"
    cat "$tmp/www/256m" >/dev/null   # into the page cache before any client reads it
    cat >"$tmp/nginx.conf" <<EOF
    worker_processes 1;
    pid $tmp/nginx.pid;
    error_log $tmp/error.log warn;
    worker_rlimit_nofile 65536;
    events { worker_connections 8192; }
    http {
        access_log off;
        keepalive_requests 1000000;
        keepalive_timeout 300;
        sendfile on;
        default_type application/octet-stream;
        client_body_temp_path $tmp/tmp/body;
        proxy_temp_path $tmp/tmp/proxy;
        fastcgi_temp_path $tmp/tmp/fastcgi;
        uwsgi_temp_path $tmp/tmp/uwsgi;
        scgi_temp_path $tmp/tmp/scgi;
        server {
            listen 127.0.0.1:$port;
            location = /13b { return 200 "hello, world\n"; }
            location = /256m { root $tmp/www; }
        }
    }
EOF
    "$@" "$nginx_bin" -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/error.log"
    for _ in $(seq 100); do
        [ -s "$tmp/nginx.pid" ] && port_busy "$port" && break
        sleep 0.05
    done
    nginx_pid="$(cat "$tmp/nginx.pid")"
    port_busy "$port" || { cat "$tmp/error.log" >&2; echo "nginx did not start" >&2; exit 1; }
    say "nginx $("$nginx_bin" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$port (pid $nginx_pid)"
    base="http://127.0.0.1:$port"
}
