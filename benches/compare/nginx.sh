# Sourced by run.sh and profile.sh: starts nginx from Debian on three free
# ports of 127.0.0.1 with the benchmark's configuration, in a temp dir
# removed at exit: plain HTTP on one, HTTPS (HTTP/1.1 only) on the second,
# HTTPS with HTTP/2 (`ssl http2`: ALPN h2 or http/1.1) on the third, with a
# throwaway CA and server certificate that openssl makes at start. Needs
# say(). ensure_nginx sets $nginx_bin (apt-get installs nginx, and openssl,
# when missing); start_nginx [PREFIX...] (PREFIX, e.g. `taskset -c 0`, runs
# nginx) sets $tmp, $port, $tls_port, $h2_port, $nginx_pid, $base
# (http://...), $tls_base and $h2_base (https://...) and exports COMPARE_CA
# (the CA's PEM file, which every client trusts in the -tls and -h2 modes);
# then mode_url MODE [CLIENT] prints the URL a benchmark mode fetches.

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
    if ! command -v openssl >/dev/null 2>&1; then
        say "installing openssl (Debian) for the TLS certificates"
        apt_install openssl
    fi
}

# make_certs DIR: a throwaway CA (ca.pem) and a server certificate signed by
# it (server.pem, server.key) for IP 127.0.0.1 and DNS localhost, all ECDSA
# P-256, valid for two days.
make_certs() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/ca.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca_ext
[dn]
CN = nethttp benchmark CA (throwaway)
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
    openssl req -x509 -new -config "$dir/ca.cnf" -days 2 -nodes \
        -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>"$dir/openssl.log"
    openssl req -new -nodes -subj "/CN=localhost" \
        -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>>"$dir/openssl.log"
    openssl x509 -req -in "$dir/server.csr" -days 2 \
        -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
        -extfile "$dir/ca.cnf" -extensions server_ext \
        -out "$dir/server.pem" 2>>"$dir/openssl.log" ||
        { cat "$dir/openssl.log" >&2; echo "cannot make the TLS certificates" >&2; exit 1; }
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

# pick_ports: three free ports below the kernel's ephemeral range, so that
# no client connection's local port can hold ours (bind() would fail with
# "Address already in use" although nothing listens there).
pick_ports() {
    local lo
    lo="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
    [ "$lo" -gt 12000 ] 2>/dev/null || lo=32768
    port=$((10000 + RANDOM % (lo - 12000)))
    while port_busy "$port"; do port=$((port + 1)); done
    tls_port=$((port + 1))
    while port_busy "$tls_port"; do tls_port=$((tls_port + 1)); done
    h2_port=$((tls_port + 1))
    while port_busy "$h2_port"; do h2_port=$((h2_port + 1)); done
}

# all_ports_up: nginx listens on the three ports.
all_ports_up() { port_busy "$port" && port_busy "$tls_port" && port_busy "$h2_port"; }

start_nginx() {
    make_certs "$tmp/tls"

    # nginx's worker runs as an unprivileged user: it must reach the files.
    chmod 755 "$tmp"
    mkdir -p "$tmp/www" "$tmp/tmp"
    truncate -s 256M "$tmp/www/256m"
    cat "$tmp/www/256m" >/dev/null   # into the page cache before any client reads it
    # A port can still be taken between the check and nginx's bind: then
    # try another pair.
    local attempt
    for attempt in 1 2 3; do
        pick_ports
        write_nginx_conf
        rm -f "$tmp/nginx.pid"
        "$@" "$nginx_bin" -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/error.log" && break
        say "nginx could not start on $port/$tls_port/$h2_port (attempt $attempt)"
    done
    for _ in $(seq 100); do
        [ -s "$tmp/nginx.pid" ] && all_ports_up && break
        sleep 0.05
    done
    nginx_pid="$(cat "$tmp/nginx.pid")"
    all_ports_up ||
        { cat "$tmp/error.log" >&2; echo "nginx did not start" >&2; exit 1; }
    say "nginx $("$nginx_bin" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$port, TLS on 127.0.0.1:$tls_port, TLS+h2 on 127.0.0.1:$h2_port (pid $nginx_pid)"
    base="http://127.0.0.1:$port"
    tls_base="https://127.0.0.1:$tls_port"
    h2_base="https://127.0.0.1:$h2_port"
    export COMPARE_CA="$tmp/tls/ca.pem"
}

# write_nginx_conf: the benchmark's nginx configuration for
# $port/$tls_port/$h2_port.
write_nginx_conf() {
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
        # The same two locations over TLS (1.3 and 1.2 allowed; every client
        # here picks 1.3). No session resumption: no cache, no tickets (and
        # no TLS 1.3 NewSessionTicket messages), so every new connection
        # makes a full handshake whichever client it is (Go's client keeps
        # no sessions by default, the rustls ones do). The server's cipher
        # order puts TLS_AES_128_GCM_SHA256 first, so that every client gets
        # it (rustls would pick AES-256-GCM, Go AES-128-GCM).
        # sendfile does not apply: nginx encrypts in user space.
        server {
            listen 127.0.0.1:$tls_port ssl;
            ssl_certificate $tmp/tls/server.pem;
            ssl_certificate_key $tmp/tls/server.key;
            ssl_protocols TLSv1.2 TLSv1.3;
            ssl_prefer_server_ciphers on;
            ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
            ssl_session_cache off;
            ssl_session_tickets off;
            ssl_conf_command NumTickets 0;
            location = /13b { return 200 "hello, world\n"; }
            location = /256m { root $tmp/www; }
        }
        # The same again with HTTP/2 (the -h2 modes), on a port of its own so
        # that the -tls modes above stay HTTP/1.1 whatever a client offers.
        # ALPN h2 is preferred; a client offering http/1.1 alone gets it.
        # nginx 1.22's HTTP/2 defaults: 128 concurrent streams per
        # connection (http2_max_concurrent_streams), and keepalive_requests /
        # keepalive_timeout above bound a connection's requests and idle
        # time (they replaced http2_max_requests / http2_idle_timeout in
        # 1.19.7).
        server {
            listen 127.0.0.1:$h2_port ssl http2;
            ssl_certificate $tmp/tls/server.pem;
            ssl_certificate_key $tmp/tls/server.key;
            ssl_protocols TLSv1.2 TLSv1.3;
            ssl_prefer_server_ciphers on;
            ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
            ssl_session_cache off;
            ssl_session_tickets off;
            ssl_conf_command NumTickets 0;
            location = /13b { return 200 "hello, world\n"; }
            location = /256m { root $tmp/www; }
        }
    }
EOF
}

# mode_url MODE [CLIENT]: the URL MODE fetches from this nginx: /256m for
# download, /13b for the others, on the TLS port for the -tls modes and on
# the TLS+h2 port for the -h2 modes, except for raw, which has no HTTP/2
# and runs its -tls loop on the HTTP/1.1 TLS port there (the -h2 rows'
# baseline).
mode_url() {
    local url=$base
    case "$1" in
        *-tls) url=$tls_base ;;
        *-h2) if [ "${2:-}" = raw ]; then url=$tls_base; else url=$h2_base; fi ;;
    esac
    case "${1%-tls}" in
        download) echo "$url/256m" ;;
        *) echo "$url/13b" ;;
    esac
}

# tls_probe: what the TLS port negotiates with `openssl s_client`, e.g.
# "TLSv1.3 TLS_AES_256_GCM_SHA384, resumption off" (for the run's metadata).
tls_probe() {
    local out first reused
    out="$(openssl s_client -connect "127.0.0.1:$tls_port" -servername localhost \
        -CAfile "$COMPARE_CA" -verify_return_error -reconnect </dev/null 2>/dev/null || true)"
    first="$(sed -n 's/^New, \([^,]*\), Cipher is \(.*\)/\1 \2/p' <<<"$out" | head -1)"
    if grep -q '^Reused,' <<<"$out"; then reused=on; else reused=off; fi
    echo "${first:-?}, resumption $reused"
}

# h2_probe: what ALPN the TLS+h2 port and the HTTP/1.1 TLS port choose for
# a client offering h2 and http/1.1, e.g. "h2 port: h2; TLS port: http/1.1"
# (for the run's metadata).
h2_probe() {
    local p name out alpn res=""
    for p in "h2:$h2_port" "TLS:$tls_port"; do
        name=${p%%:*}
        out="$(openssl s_client -connect "127.0.0.1:${p#*:}" -servername localhost \
            -CAfile "$COMPARE_CA" -verify_return_error -alpn h2,http/1.1 </dev/null 2>/dev/null || true)"
        alpn="$(sed -n 's/^ALPN protocol: //p' <<<"$out" | head -1)"
        if [ -z "$alpn" ] && grep -q 'No ALPN negotiated' <<<"$out"; then alpn=none; fi
        res="${res:+$res; }$name port: ${alpn:-?}"
    done
    echo "$res"
}
