#!/bin/bash
# proxy_vs_nginx.sh -- pbxgate against nginx as a TLS reverse proxy on this
# machine, alternately in one run, same cert, same upstream, one worker each:
#   1. requests/s for 1 KiB keep-alive GETs (wrk)
#   2. new TLS connections/s (wrk -H 'Connection: close')
#   3. RSS growth per idle keep-alive TLS connection with N held
# and the ratio pbxgate/nginx for each. A benchmark, not a test: it never
# fails on a figure. Needs nginx (nginx-light), wrk, python3, openssl.
#
# Usage: tests/bench/proxy_vs_nginx.sh [-b BIN] [-d SECONDS] [-r ROUNDS] [-n CONNS] [-o FILE] [-S] [-F]
#   -b  pbxgate binary (default build/pbxgate)     -d  seconds per wrk run (10)
#   -r  alternating rounds, best kept (3)           -n  idle connections held (3000)
#   -o  also write the results as a Markdown table to FILE
#   -S  run wrk, the upstream and the proxy in this script's session
#       instead of one session each (see SESSIONS below)
#   -F  the upstream serves the 1 KiB from a file instead of from memory
#       (the session-3 arrangement; see UPSTREAM below)
# WRK_THREADS=N in the environment gives wrk N threads (default 1).
set -euo pipefail

cd "$(dirname "$0")/../.."
BIN=build/pbxgate DUR=10 ROUNDS=3 CONNS=3000 OUT="" SESSIONS=own UPSTREAM=memory
while getopts "b:d:r:n:o:SF" o; do
	case $o in
	b) BIN=$OPTARG ;; d) DUR=$OPTARG ;; r) ROUNDS=$OPTARG ;;
	n) CONNS=$OPTARG ;; o) OUT=$OPTARG ;; S) SESSIONS=shared ;; F) UPSTREAM="file" ;;
	*) sed -n '2,20p' "$0"; exit 2 ;;
	esac
done
# SESSIONS: with the kernel's autogroup scheduling on (Debian's default),
# each session is one scheduling group. Deployed, the gateway and the PBX
# are separate services (systemd gives each its own cgroup), so by default
# wrk, the upstream and the proxy each get a session of their own; -S puts
# all three in this script's one group instead. Both proxies always run
# the same way.
# Called only in a subshell (&, $(...)): exec keeps $! the program's own PID.
own() { if [ "$SESSIONS" = own ]; then exec setsid "$@"; else exec "$@"; fi; }

for t in nginx wrk openssl setsid /usr/bin/python3; do
	command -v "$t" >/dev/null || { echo "bench: $t not found (apt-get install -y nginx-light wrk openssl python3)" >&2; exit 1; }
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((CONNS + 200)) ] || { echo "bench: ulimit -n $(ulimit -n) too low for $CONNS connections" >&2; exit 1; }

tmp=$(mktemp -d /tmp/pbxgate-bench.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {	# PORT PID: bounded wait until something accepts on PORT
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Same ECDSA P-256 certificate for both proxies.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
chmod 644 "$tmp/cert.pem"

nginx_user=""
[ "$(id -u)" -eq 0 ] && nginx_user="user nobody nogroup;"
common_nginx="daemon off; master_process on; $nginx_user
worker_rlimit_nofile 65536; error_log $tmp/%s.err warn; pid $tmp/%s.pid;
events { worker_connections 16384; }"

# UPSTREAM: one nginx worker shared by both proxies. What is measured is
# the proxy, so the upstream must not be what sets the rate: on two cores
# wrk and the upstream share one core while the proxy has the other, and
# with the upstream serving a file (open, fstat, read, close per request;
# about 7 us) that core, not the proxy, was the limit, so both proxies ran
# at the same rate whatever their cost. By default the upstream answers
# the same 1 KiB from memory (nginx's 'return'), which leaves the proxy
# the busiest process; -F restores the file for comparison.
UP=$(free_port)
mkdir -p "$tmp/www" && head -c 1024 /dev/zero | tr '\0' 'x' >"$tmp/www/1k" && chmod -R a+rX "$tmp/www"
if [ "$UPSTREAM" = file ]; then
	up_site="root $tmp/www;"
else
	up_site="location = /1k { default_type application/octet-stream; return 200 '$(cat "$tmp/www/1k")'; }"
fi
# shellcheck disable=SC2059
printf "$common_nginx
worker_processes 1;
http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path $tmp/up_body; proxy_temp_path $tmp/up_proxy;
  fastcgi_temp_path $tmp/up_fcgi; uwsgi_temp_path $tmp/up_uwsgi; scgi_temp_path $tmp/up_scgi;
  server { listen 127.0.0.1:$UP reuseport backlog=4096; $up_site } }\n" up up >"$tmp/up.conf"
own nginx -e "$tmp/up.err" -p "$tmp" -c "$tmp/up.conf" & pids+=($!)
UP_MASTER=$!
wait_port "$UP" $! || { echo "bench: upstream nginx did not start: $(cat "$tmp/up.err")" >&2; exit 1; }
UP_WORKER=$(ps -o pid= --ppid "$UP_MASTER" | head -1 | tr -d ' ')

# nginx as the TLS reverse proxy: worker_processes 1, upstream keepalive,
# and the same job as pbxgate: the forwarding headers it sends upstream
# (X-Forwarded-*, X-Real-IP, Forwarded) and the security headers it adds
# to every answer (HSTS, nosniff, Referrer-Policy, frame-ancestors).
NG=$(free_port)
# shellcheck disable=SC2059
printf "$common_nginx
worker_processes 1;
http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path $tmp/ng_body; proxy_temp_path $tmp/ng_proxy;
  fastcgi_temp_path $tmp/ng_fcgi; uwsgi_temp_path $tmp/ng_uwsgi; scgi_temp_path $tmp/ng_scgi;
  ssl_protocols TLSv1.2 TLSv1.3; ssl_prefer_server_ciphers off;
  ssl_session_cache off; ssl_session_tickets off;
  upstream pbx { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$NG ssl reuseport backlog=4096;
    ssl_certificate $tmp/cert.pem; ssl_certificate_key $tmp/key.pem;
    location / { proxy_pass http://pbx; proxy_http_version 1.1;
      proxy_set_header Connection \"\"; proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr; proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Real-IP \$remote_addr; proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header Forwarded 'for=\$remote_addr;proto=https;host=\"\$host\"';
      add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;
      add_header X-Content-Type-Options nosniff always; add_header Referrer-Policy same-origin always;
      add_header Content-Security-Policy \"frame-ancestors 'self'\" always; } } }\n" ng ng >"$tmp/ng.conf"

# pbxgate: workers 1, limits opened up for the held connections, and the
# same requests per client connection as nginx's keepalive_requests above
# (the default, 1000, would cost pbxgate a full handshake, on both sides,
# every 1,000 requests of each wrk connection).
PG=$(free_port) PGA=$(free_port)
cat >"$tmp/pg.conf" <<EOF
listen 127.0.0.1:$PG
admin_listen 127.0.0.1:$PGA
tls_cert $tmp/cert.pem
tls_key $tmp/key.pem
upstream http://127.0.0.1:$UP
workers 1
idle_timeout 300s
max_requests_per_connection 1000000
max_connections $((CONNS + 1000))
max_connections_per_ip $((CONNS + 1000))
EOF

have_pg=1
if [ ! -x "$BIN" ]; then
	echo "bench: $BIN not built; measuring nginx only" >&2
	have_pg=0
elif ! "$BIN" check -c "$tmp/pg.conf" >"$tmp/pg.check" 2>&1; then
	echo "bench: pbxgate check failed; measuring nginx only:" >&2
	cat "$tmp/pg.check" >&2
	have_pg=0
fi

PROXY_PID=""
start_proxy() {	# nginx|pbxgate
	if [ "$1" = nginx ]; then
		own nginx -e "$tmp/ng.err" -p "$tmp" -c "$tmp/ng.conf" & PROXY_PID=$!
		PORT=$NG
	else
		own "$BIN" run -c "$tmp/pg.conf" 2>>"$tmp/pg.err" & PROXY_PID=$!
		PORT=$PG
	fi
	pids+=("$PROXY_PID")
	wait_port "$PORT" "$PROXY_PID" || { echo "bench: $1 did not start" >&2; tail -n 20 "$tmp"/ng.err "$tmp"/pg.err 2>/dev/null >&2; exit 1; }
	# Warm up (first handshakes, lazy allocations) and check it proxies.
	wrk -t1 -c4 -d1s "https://127.0.0.1:$PORT/1k" >"$tmp/warm" 2>&1
	grep -q 'Non-2xx' "$tmp/warm" && { echo "bench: $1 answers non-2xx" >&2; cat "$tmp/warm" >&2; exit 1; }
	return 0
}
stop_proxy() {
	kill -TERM "$PROXY_PID" 2>/dev/null || true
	wait "$PROXY_PID" 2>/dev/null || true
}
# The process holding the connections: nginx's single worker (the master
# holds none); pbxgate is one process.
mem_pid() {
	if [ "$1" = nginx ]; then ps -o pid= --ppid "$PROXY_PID" | head -1 | tr -d ' '; else echo "$PROXY_PID"; fi
}

wrk_rps() {	# PORT ARGS... -> prints "requests/s requests"; errors to stderr
	local out
	shift
	out=$(own wrk -t"${WRK_THREADS:-1}" -d"${DUR}s" "$@" 2>&1)
	if echo "$out" | grep -qE 'Non-2xx|Socket errors'; then
		echo "$out" | grep -E 'Non-2xx|Socket errors' | sed 's/^/    wrk: /' >&2
	fi
	echo "$out" | awk '/requests in/ {n = $1} /^Requests\/sec:/ {r = $2} END {print r, n}'
}
# CPU time (user + system, all threads) of a process, in clock ticks.
idle_ticks() { awk '/^cpu / {print $5 + $6; exit}' /proc/stat; }
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }

declare -A KA TLS MEM CPU UCPU IDLE
KA_RATIOS=""	# pbxgate/nginx keep-alive rate of each round
best() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN {print (a > b) ? a : b}'; }
per_request() {	# TICKS REQUESTS -> microseconds of CPU per request
	awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN {if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print ""}'
}
least() { if [ -z "${1:-}" ]; then echo "$2"; else awk -v a="$1" -v b="$2" 'BEGIN {print (a < b) ? a : b}'; fi; }

measure() {	# nginx|pbxgate
	local who=$1 ka tls before after wp line t0 t1 u0 u1 i0 i1 kan us uus idle
	start_proxy "$who"
	wp=$(mem_pid "$who")
	t0=$(cpu_ticks "$wp") u0=$(cpu_ticks "$UP_WORKER") i0=$(idle_ticks)
	read -r ka kan < <(wrk_rps "$PORT" -c64 "https://127.0.0.1:$PORT/1k")
	t1=$(cpu_ticks "$wp") u1=$(cpu_ticks "$UP_WORKER") i1=$(idle_ticks)
	read -r tls _ < <(wrk_rps "$PORT" -c16 -H 'Connection: close' "https://127.0.0.1:$PORT/1k")
	KA[$who]=$(best "${KA[$who]:-0}" "${ka:-0}")
	TLS[$who]=$(best "${TLS[$who]:-0}" "${tls:-0}")
	ROUND_KA[$who]=${ka:-0}
	# the proxy's own CPU per keep-alive request: its cost without the
	# scheduling of three processes on the machine's cores
	us=$(per_request $((t1 - t0)) "${kan:-0}")
	[ -n "$us" ] && CPU[$who]=$(least "${CPU[$who]:-}" "$us")
	# the upstream's, to show which process sets the rate
	uus=$(per_request $((u1 - u0)) "${kan:-0}")
	[ -n "$uus" ] && UCPU[$who]=$(least "${UCPU[$who]:-}" "$uus")
	# the share of the machine left idle: near 0 when the three processes
	# keep both cores busy and the rate follows their summed cost
	idle=$(awk -v t=$((i1 - i0)) -v hz="$(getconf CLK_TCK)" -v c="$(nproc)" -v d="$DUR" \
		'BEGIN {printf "%.0f", 100 * t / hz / c / d}')
	IDLE[$who]="${IDLE[$who]:-}${IDLE[$who]:+ }$idle"
	before=$(rss_kib "$wp")
	coproc HOLD { /usr/bin/python3 tests/bench/hold_conns.py "$PORT" "$CONNS" /1k; }
	read -r -t 300 line <&"${HOLD[0]}" || line="TIMEOUT"
	after=$(rss_kib "$wp")
	eval "exec ${HOLD[1]}>&-"
	wait "$HOLD_PID" 2>/dev/null || true
	local held=${line#READY }; held=${held%% *}
	if [[ $line == READY* ]] && [ "$held" -gt 0 ]; then
		local per
		per=$(awk -v a="$after" -v b="$before" -v n="$held" 'BEGIN {printf "%.1f", (a - b) / n}')
		MEM[$who]=$(least "${MEM[$who]:-}" "$per")
		printf '  %-8s %10s req/s keep-alive (%s us CPU/req, upstream %s, %s%% idle)  %8s TLS conn/s  RSS %s -> %s KiB, %s held: %s KiB/conn\n' \
			"$who" "$ka" "${us:-?}" "${uus:-?}" "$idle" "$tls" "$before" "$after" "$held" "$per"
	else
		printf '  %-8s %10s req/s keep-alive (%s us CPU/req, upstream %s, %s%% idle)  %8s TLS conn/s  idle-connection test failed: %s\n' \
			"$who" "$ka" "${us:-?}" "${uus:-?}" "$idle" "$tls" "$line"
	fi
	stop_proxy
}

load() { cut -d' ' -f1 /proc/loadavg; }
load0=$(load)
echo "pbxgate vs nginx: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average $load0"
if awk -v l="$load0" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
	echo "warning: the machine is busy (load $load0 on $(nproc) cores): figures will be noisy" >&2
fi
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'), wrk -t${WRK_THREADS:-1} -d${DUR}s (-c64 keep-alive, -c16 Connection: close), $CONNS idle connections, best of $ROUNDS rounds, sessions: $SESSIONS, upstream answers from $UPSTREAM"
for r in $(seq "$ROUNDS"); do
	echo "round $r"
	declare -A ROUND_KA=()
	measure nginx
	if [ "$have_pg" -eq 1 ]; then
		measure pbxgate
		KA_RATIOS="$KA_RATIOS $(awk -v a="${ROUND_KA[pbxgate]}" -v b="${ROUND_KA[nginx]}" \
			'BEGIN {if (b > 0) printf "%.2f", a / b; else print "0"}')"
	fi
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

ratio() {
	case "${1:-}${2:-}" in *[!0-9.]*|"") echo "n/a"; return ;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}
P_KA=${KA[pbxgate]:-n/a} P_TLS=${TLS[pbxgate]:-n/a} P_MEM=${MEM[pbxgate]:-n/a} P_CPU=${CPU[pbxgate]:-n/a}
table=$(cat <<EOF
| figure | nginx | pbxgate | pbxgate/nginx | target |
|---|---|---|---|---|
| 1 KiB keep-alive GETs, requests/s | ${KA[nginx]} | $P_KA | $(ratio "$P_KA" "${KA[nginx]}") | >= 1.0 |
| the same, median of the rounds' ratios (${KA_RATIOS# }) | | | $(echo "$KA_RATIOS" | median) | |
| proxy CPU per keep-alive request, us (user + system) | ${CPU[nginx]:-n/a} | $P_CPU | $(ratio "$P_CPU" "${CPU[nginx]:-}") | <= 1.0 |
| the upstream's CPU per request behind each, us | ${UCPU[nginx]:-n/a} | ${UCPU[pbxgate]:-n/a} | | |
| machine idle during each round's keep-alive run, % | ${IDLE[nginx]:-n/a} | ${IDLE[pbxgate]:-n/a} | | |
| new TLS connections/s | ${TLS[nginx]} | $P_TLS | $(ratio "$P_TLS" "${TLS[nginx]}") | >= 1.0 |
| RSS per idle keep-alive TLS connection, KiB | ${MEM[nginx]:-n/a} | $P_MEM | $(ratio "$P_MEM" "${MEM[nginx]:-}") | <= 1.0 |
EOF
)
echo
echo "$table"
if [ -n "$OUT" ]; then
	{
		echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average $load0 before, $(load) after; nginx $(nginx -v 2>&1 | sed 's/.*\///'); wrk -t${WRK_THREADS:-1} -d${DUR}s; $CONNS idle connections; best of $ROUNDS rounds; sessions: $SESSIONS; upstream answers from $UPSTREAM."
		echo
		echo "$table"
	} >"$OUT"
	echo "written to $OUT"
fi
