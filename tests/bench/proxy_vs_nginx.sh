#!/bin/bash
# proxy_vs_nginx.sh -- pbxgate against nginx and HAProxy as TLS reverse
# proxies on this machine, in turn in one run, same cert, same upstream, one
# worker each, each at the settings a careful operator uses (TLS 1.2 and
# 1.3, session tickets on, a session cache where the proxy has one):
#   1. requests/s for 1 KiB keep-alive GETs (wrk)
#   2. new TLS connections/s (wrk -H 'Connection: close': wrk keeps one SSL
#      object per connection and offers its session again, so this mixes
#      full and resumed handshakes as the proxy's tickets allow)
#   3. full handshakes/s and resumed handshakes/s, TLS 1.3 and 1.2, each
#      alone (tests/tools/tls_reuse: -f a fresh client each time; without,
#      one SSL object that resumes; HS_CLIENTS in parallel, default 2)
#   4. RSS growth per idle keep-alive TLS connection with N held
# and the ratio pbxgate/nginx and pbxgate/HAProxy for each. A benchmark,
# not a test: it never fails on a figure. Needs nginx (nginx-light),
# haproxy, wrk, python3, openssl (tests/install-deps bench) and a build
# with -Dtests=true (for tests/tools/tls_reuse beside the binary).
#
# With -I N, instead: user-space instructions per handshake of each kind
# and per keep-alive request, counted by callgrind over N handshakes (one
# client) in each proxy's whole process tree. Instruction counts do not
# move with the machine's load, as rates and CPU times do (+-40 % here);
# they leave out the kernel (system calls, wake-ups, loopback), which the
# rates and CPU times include. Needs valgrind.
#
# Usage: tests/bench/proxy_vs_nginx.sh [-b BIN] [-d SECONDS] [-r ROUNDS] [-n CONNS] [-o FILE] [-S] [-F] [-I N]
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
BIN=build/pbxgate DUR=10 ROUNDS=3 CONNS=3000 OUT="" SESSIONS=own UPSTREAM=memory INSTR=0
while getopts "b:d:r:n:o:SFI:" o; do
	case $o in
	b) BIN=$OPTARG ;; d) DUR=$OPTARG ;; r) ROUNDS=$OPTARG ;;
	n) CONNS=$OPTARG ;; o) OUT=$OPTARG ;; S) SESSIONS=shared ;; F) UPSTREAM="file" ;;
	I) INSTR=$OPTARG ;;
	*) sed -n '2,35p' "$0"; exit 2 ;;
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

tools=(nginx haproxy wrk openssl setsid /usr/bin/python3)
[ "$INSTR" != 0 ] && tools+=(valgrind callgrind_control)
for t in "${tools[@]}"; do
	command -v "$t" >/dev/null || { echo "bench: $t not found (tests/install-deps bench)" >&2; exit 1; }
done
TLS_REUSE=$(dirname "$BIN")/tests/tools/tls_reuse
[ -x "$TLS_REUSE" ] || { echo "bench: $TLS_REUSE not built (meson setup with -Dtests=true)" >&2; exit 1; }
HS_CLIENTS=${HS_CLIENTS:-2} HS_N=${HS_N:-1500}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((CONNS + 200)) ] || { echo "bench: ulimit -n $(ulimit -n) too low for $CONNS connections" >&2; exit 1; }

. tests/bench/bench_lib.sh
bench_init bench

# Same ECDSA P-256 certificate for every proxy.
bench_cert ec ec
cat "$tmp/ec.pem" "$tmp/ec.key" >"$tmp/haproxy.pem"	# HAProxy's crt: both in one file

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
own nginx -e "$tmp/up.err" -p "$tmp" -c "$tmp/up.conf" & bench_track $!
UP_MASTER=$!
wait_port "$UP" $! || { echo "bench: upstream nginx did not start: $(cat "$tmp/up.err")" >&2; exit 1; }
UP_WORKER=$(ps -o pid= --ppid "$UP_MASTER" | head -1 | tr -d ' ')

# nginx as the TLS reverse proxy: worker_processes 1, upstream keepalive,
# session tickets on (its default) and a shared session cache, and the same
# job as pbxgate: the forwarding headers it sends upstream (X-Forwarded-*,
# X-Real-IP, Forwarded) and the security headers it adds to every answer
# (HSTS, nosniff, Referrer-Policy, frame-ancestors).
NG=$(free_port)
# shellcheck disable=SC2059
printf "$common_nginx
worker_processes 1;
http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path $tmp/ng_body; proxy_temp_path $tmp/ng_proxy;
  fastcgi_temp_path $tmp/ng_fcgi; uwsgi_temp_path $tmp/ng_uwsgi; scgi_temp_path $tmp/ng_scgi;
  ssl_protocols TLSv1.2 TLSv1.3; ssl_prefer_server_ciphers off;
  ssl_session_cache shared:SSL:10m; ssl_session_tickets on; ssl_session_timeout 1h;
  upstream pbx { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$NG ssl reuseport backlog=4096;
    ssl_certificate $tmp/ec.pem; ssl_certificate_key $tmp/ec.key;
    location / { proxy_pass http://pbx; proxy_http_version 1.1;
      proxy_set_header Connection \"\"; proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr; proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Real-IP \$remote_addr; proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header Forwarded 'for=\$remote_addr;proto=https;host=\"\$host\"';
      add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;
      add_header X-Content-Type-Options nosniff always; add_header Referrer-Policy same-origin always;
      add_header Content-Security-Policy \"frame-ancestors 'self'\" always; } } }\n" ng ng >"$tmp/ng.conf"

# HAProxy the same way: one thread, TLS 1.2+1.3, tickets and its session
# cache at their defaults (on), upstream connections reused, the same
# forwarding and security headers.
HA=$(free_port)
cat >"$tmp/ha.cfg" <<EOF
global
  nbthread 1
  maxconn $((CONNS + 1000))
  ssl-default-bind-options ssl-min-ver TLSv1.2
  tune.ssl.default-dh-param 2048
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  http-reuse always
frontend fe
  bind 127.0.0.1:$HA ssl crt $tmp/haproxy.pem alpn http/1.1
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  http-request set-header X-Real-IP %[src]
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header Forwarded "for=%[src];proto=https;host=\"%[req.hdr(host)]\""
  http-response set-header Strict-Transport-Security "max-age=31536000; includeSubDomains"
  http-response set-header X-Content-Type-Options nosniff
  http-response set-header Referrer-Policy same-origin
  http-response set-header Content-Security-Policy "frame-ancestors 'self'"
  default_backend pbx
backend pbx
  server up 127.0.0.1:$UP
EOF
haproxy -c -f "$tmp/ha.cfg" >"$tmp/ha.check" 2>&1 || { echo "bench: haproxy config refused:" >&2; cat "$tmp/ha.check" >&2; exit 1; }

# pbxgate: workers 1, limits opened up for the held connections, and the
# same requests per client connection as nginx's keepalive_requests above
# (the default, 1000, would cost pbxgate a full handshake, on both sides,
# every 1,000 requests of each wrk connection).
PG=$(free_port) PGA=$(free_port)
cat >"$tmp/pg.conf" <<EOF
listen 127.0.0.1:$PG
admin_listen 127.0.0.1:$PGA
tls_cert $tmp/ec.pem
tls_key $tmp/ec.key
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
VG=()	# -I: the proxy runs under callgrind (instr_count below)
start_proxy() {	# nginx|haproxy|pbxgate
	if [ "$1" = nginx ]; then
		own "${VG[@]}" nginx -e "$tmp/ng.err" -p "$tmp" -c "$tmp/ng.conf" & PROXY_PID=$!
		PORT=$NG
	elif [ "$1" = haproxy ]; then
		own "${VG[@]}" haproxy -db -f "$tmp/ha.cfg" 2>>"$tmp/ha.err" & PROXY_PID=$!
		PORT=$HA
	else
		own "${VG[@]}" "$BIN" run -c "$tmp/pg.conf" 2>>"$tmp/pg.err" & PROXY_PID=$!
		PORT=$PG
	fi
	bench_track "$PROXY_PID"
	wait_port "$PORT" "$PROXY_PID" $(( ${#VG[@]} > 0 ? 120 : 20 )) || { echo "bench: $1 did not start" >&2; tail -n 20 "$tmp"/ng.err "$tmp"/ha.err "$tmp"/pg.err 2>/dev/null >&2; exit 1; }
	# Warm up (first handshakes, lazy allocations) and check it proxies.
	# (not under callgrind: -I counts a fixed load, and wrk's is its
	# duration's)
	[ ${#VG[@]} -gt 0 ] && return 0
	wrk -t1 -c4 -d1s "https://127.0.0.1:$PORT/1k" >"$tmp/warm" 2>&1
	grep -q 'Non-2xx' "$tmp/warm" && { echo "bench: $1 answers non-2xx" >&2; cat "$tmp/warm" >&2; exit 1; }
	return 0
}
stop_proxy() {
	bench_stop "$PROXY_PID"
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
# The machine's idle clock ticks; a server's CPU and memory are those of
# its whole process tree (bench_lib.sh): nginx's master and worker,
# HAProxy's one process, pbxgate's parent, key process and network child.
idle_ticks() { awk '/^cpu / {print $5 + $6; exit}' /proc/stat; }

declare -A KA TLS MEM CPU UCPU IDLE HS ROUND_RATE HS_RATIOS
KA_RATIOS=""	# pbxgate/nginx keep-alive rate of each round
best() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN {print (a > b) ? a : b}'; }
per_request() {	# TICKS REQUESTS -> microseconds of CPU per request
	awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN {if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print ""}'
}
least() { if [ -z "${1:-}" ]; then echo "$2"; else awk -v a="$1" -v b="$2" 'BEGIN {print (a < b) ? a : b}'; fi; }

# Handshakes/s of one kind (full: a fresh client each time; resumed: one
# SSL object offering its session) at one version, summed over HS_CLIENTS
# clients in parallel. A resumed run where the proxy did not resume every
# connection after the first is said on stderr.
hs_rate() {	# PORT full|resumed 1.2|1.3 -> handshakes/s
	local i flag="" hp=()
	[ "$2" = full ] && flag=-f
	for i in $(seq "$HS_CLIENTS"); do
		(own "$TLS_REUSE" $flag -v "$3" -n "$HS_N" "$1" >"$tmp/hs.$i" 2>&1) & hp+=($!)
	done
	for i in "${hp[@]}"; do wait "$i" || true; done
	for i in $(seq "$HS_CLIENTS"); do
		if [ "$2" = resumed ] && ! grep -q "^resumed $((HS_N - 1)) of $HS_N " "$tmp/hs.$i"; then
			echo "    $3 $2: $(head -c 200 "$tmp/hs.$i")" >&2
		fi
	done
	sed -n 's/.*(\([0-9]*\) handshakes\/s)$/\1/p' "$tmp"/hs.* | awk '{s += $1} END {printf "%.0f", s}'
	rm -f "$tmp"/hs.*
}

measure() {	# nginx|haproxy|pbxgate
	local who=$1 ka tls before after line t0 t1 u0 u1 i0 i1 kan us uus idle ROUND_HS=""
	start_proxy "$who"
	t0=$(tree_cpu_ticks "$PROXY_PID") u0=$(tree_cpu_ticks "$UP_WORKER") i0=$(idle_ticks)
	read -r ka kan < <(wrk_rps "$PORT" -c64 "https://127.0.0.1:$PORT/1k")
	t1=$(tree_cpu_ticks "$PROXY_PID") u1=$(tree_cpu_ticks "$UP_WORKER") i1=$(idle_ticks)
	read -r tls _ < <(wrk_rps "$PORT" -c16 -H 'Connection: close' "https://127.0.0.1:$PORT/1k")
	local kind v rate
	for kind in full resumed; do
		for v in 1.3 1.2; do
			rate=$(hs_rate "$PORT" "$kind" "$v")
			HS[$who,$kind,$v]=$(best "${HS[$who,$kind,$v]:-0}" "$rate")
			ROUND_RATE[$who,$kind,$v]=$rate
			ROUND_HS="$ROUND_HS $kind/$v $rate"
		done
	done
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
	before=$(tree_rss_kib "$PROXY_PID")
	coproc HOLD { /usr/bin/python3 tests/bench/hold_conns.py "$PORT" "$CONNS" /1k; }
	read -r -t 300 line <&"${HOLD[0]}" || line="TIMEOUT"
	after=$(tree_rss_kib "$PROXY_PID")
	eval "exec ${HOLD[1]}>&-"
	wait "$HOLD_PID" 2>/dev/null || true
	local held=${line#READY }; held=${held%% *}
	if [[ $line == READY* ]] && [ "$held" -gt 0 ]; then
		local per
		per=$(awk -v a="$after" -v b="$before" -v n="$held" 'BEGIN {printf "%.1f", (a - b) / n}')
		MEM[$who]=$(least "${MEM[$who]:-}" "$per")
		printf '  %-8s %10s req/s keep-alive (%s us CPU/req, upstream %s, %s%% idle)  %8s TLS conn/s  RSS %s -> %s KiB, %s held: %s KiB/conn\n    handshakes/s:%s\n' \
			"$who" "$ka" "${us:-?}" "${uus:-?}" "$idle" "$tls" "$before" "$after" "$held" "$per" "$ROUND_HS"
	else
		printf '  %-8s %10s req/s keep-alive (%s us CPU/req, upstream %s, %s%% idle)  %8s TLS conn/s  idle-connection test failed: %s\n    handshakes/s:%s\n' \
			"$who" "$ka" "${us:-?}" "${uus:-?}" "$idle" "$tls" "$line" "$ROUND_HS"
	fi
	stop_proxy
}

ratio() {
	case "${1:-}${2:-}" in *[!0-9.]*|"") echo "n/a"; return ;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}
row() {	# LABEL NGINX HAPROXY PBXGATE TARGET
	echo "| $1 | ${2:-n/a} | ${3:-n/a} | ${4:-n/a} | $(ratio "${4:-}" "${2:-}") | $(ratio "${4:-}" "${3:-}") | $5 |"
}

# -I: instructions of the proxy's whole process tree (nginx's master and
# worker, HAProxy's process, pbxgate's parent, key process and network
# child), all of its life under callgrind: started, warmed up (first
# handshakes, lazy allocations), the measured load, stopped. The same run
# without the measured load is subtracted, which leaves the load alone
# without asking the processes anything while they run (callgrind_control
# cannot reach a worker that dropped privileges, as nginx's does).
instr_life() {	# nginx|haproxy|pbxgate with-load|warm-only LOAD... -> instructions
	local who=$1 what=$2 p n pids
	shift 2
	# nginx's worker writes its file as the user it dropped to
	rm -rf "$tmp/cg" && mkdir -m 1777 "$tmp/cg"
	VG=(valgrind --tool=callgrind --trace-children=yes --vgdb=no
		"--log-file=$tmp/cg/log.%p" "--callgrind-out-file=$tmp/cg/out.%p")
	start_proxy "$who"
	VG=()
	local load=("${@//@PORT@/$PORT}")
	"$TLS_REUSE" -n 20 "$PORT" >/dev/null 2>&1 || true
	[ "$what" = with-load ] && { "${load[@]}" >"$tmp/instr.out" 2>&1 || true; }
	pids=$(tree_pids "$PROXY_PID")
	stop_proxy
	# each process of the tree writes its file as it exits: bounded wait
	n=$(echo "$pids" | wc -w)
	for _ in $(seq 300); do
		[ "$(cat "$tmp"/cg/out.* 2>/dev/null | grep -c '^totals:')" -ge "$n" ] && break
		sleep 0.1
	done
	cat "$tmp"/cg/out.* | awk '/^totals:/ {s += $2} END {printf "%.0f", s}'
}
instr_count() {	# nginx|haproxy|pbxgate LOAD... -> instructions of LOAD
	local a b
	a=$(instr_life "$1" warm-only "${@:2}")
	b=$(instr_life "$1" with-load "${@:2}")
	awk -v a="$a" -v b="$b" 'BEGIN {printf "%.0f", b - a}'
}
instr_main() {
	local who kind v flag t per n
	declare -A IPH
	echo "pbxgate vs nginx and HAProxy, instructions (callgrind): $(date -u '+%Y-%m-%d %H:%M UTC'); $VERSIONS; $INSTR handshakes per kind, one client; keep-alive: $((INSTR * 10)) GETs on one connection"
	for who in nginx haproxy pbxgate; do
		[ "$who" = pbxgate ] && [ "$have_pg" -ne 1 ] && continue
		for kind in full resumed; do
			flag=""; [ "$kind" = full ] && flag=-f
			for v in 1.3 1.2; do
				t=$(instr_count "$who" "$TLS_REUSE" $flag -v "$v" -n "$INSTR" @PORT@)
				if [ "$kind" = resumed ] && ! grep -q "^resumed $((INSTR - 1)) of $INSTR " "$tmp/instr.out"; then
					echo "  $who $kind $v: $(head -c 200 "$tmp/instr.out")" >&2
				fi
				per=$(awk -v t="$t" -v n="$INSTR" 'BEGIN {printf "%.0f", t / n}')
				IPH[$who,$kind,$v]=$per
				echo "  $who $kind TLS $v: $per instructions per handshake"
			done
		done
		n=$((INSTR * 10))
		t=$(instr_count "$who" /usr/bin/python3 tests/bench/keepalive_gets.py @PORT@ "$n" /1k)
		grep -q "^ok $n\$" "$tmp/instr.out" || { echo "  $who keep-alive: $(head -c 200 "$tmp/instr.out")" >&2; n=0; }
		per=$(awk -v t="$t" -v n="$n" 'BEGIN {if (n > 0) printf "%.0f", t / n}')
		IPH[$who,ka]=$per
		echo "  $who keep-alive: ${per:-?} instructions per request"
	done
	table=$(
		echo "| user-space instructions (callgrind) | nginx | HAProxy | pbxgate | pbxgate/nginx | pbxgate/HAProxy | target |"
		echo "|---|---|---|---|---|---|---|"
		row "per 1 KiB keep-alive GET" "${IPH[nginx,ka]:-}" "${IPH[haproxy,ka]:-}" "${IPH[pbxgate,ka]:-}" "<= 1.0"
		for kind in full resumed; do
			for v in 1.3 1.2; do
				row "per $kind handshake, TLS $v (with its GET)" "${IPH[nginx,$kind,$v]:-}" \
					"${IPH[haproxy,$kind,$v]:-}" "${IPH[pbxgate,$kind,$v]:-}" "<= 1.0"
			done
		done
	)
	echo
	echo "$table"
	if [ -n "$OUT" ]; then
		{ echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'); $VERSIONS; callgrind, $INSTR handshakes per kind, one client, each on a freshly started proxy."; echo; echo "$table"; } >"$OUT"
		echo "written to $OUT"
	fi
}

load() { cut -d' ' -f1 /proc/loadavg; }
load0=$(load)
echo "pbxgate vs nginx and HAProxy: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average $load0"
if awk -v l="$load0" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
	echo "warning: the machine is busy (load $load0 on $(nproc) cores): figures will be noisy" >&2
fi
VERSIONS="nginx $(nginx -v 2>&1 | sed 's/.*\///'), HAProxy $(haproxy -v | awk 'NR == 1 {print $3}'), OpenSSL $(openssl version | awk '{print $2}')"
if [ "$INSTR" != 0 ]; then
	instr_main
	exit 0
fi
echo "$VERSIONS; wrk -t${WRK_THREADS:-1} -d${DUR}s (-c64 keep-alive, -c16 Connection: close), handshakes: $HS_CLIENTS clients x $HS_N, $CONNS idle connections, best of $ROUNDS rounds, sessions: $SESSIONS, upstream answers from $UPSTREAM"
for r in $(seq "$ROUNDS"); do
	echo "round $r"
	declare -A ROUND_KA=()
	measure nginx
	measure haproxy
	if [ "$have_pg" -eq 1 ]; then
		measure pbxgate
		KA_RATIOS="$KA_RATIOS $(awk -v a="${ROUND_KA[pbxgate]}" -v b="${ROUND_KA[nginx]}" \
			'BEGIN {if (b > 0) printf "%.2f", a / b; else print "0"}')"
		# each round's handshake ratios too: the best of a few rounds
		# favours whichever server had one lucky round on a noisy machine
		for kind in full resumed; do
			for v in 1.3 1.2; do
				HS_RATIOS[$kind,$v]="${HS_RATIOS[$kind,$v]:-} $(awk \
					-v a="${ROUND_RATE[pbxgate,$kind,$v]:-0}" -v b="${ROUND_RATE[nginx,$kind,$v]:-0}" \
					'BEGIN {if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b}')"
			done
		done
	fi
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

hs_rows() {
	local kind v
	for kind in full resumed; do
		for v in 1.3 1.2; do
			row "$kind handshakes/s, TLS $v" "${HS[nginx,$kind,$v]:-}" "${HS[haproxy,$kind,$v]:-}" \
				"${HS[pbxgate,$kind,$v]:-}" ">= 1.0"
			echo "| the same, median of the rounds' pbxgate/nginx ratios ($(echo ${HS_RATIOS[$kind,$v]:-})) | | | | $(echo "${HS_RATIOS[$kind,$v]:-}" | median) | | |"
		done
	done
}
table=$(
	echo "| figure | nginx | HAProxy | pbxgate | pbxgate/nginx | pbxgate/HAProxy | target |"
	echo "|---|---|---|---|---|---|---|"
	row "1 KiB keep-alive GETs, requests/s" "${KA[nginx]:-}" "${KA[haproxy]:-}" "${KA[pbxgate]:-}" ">= 1.0"
	echo "| the same, median of the rounds' pbxgate/nginx ratios (${KA_RATIOS# }) | | | | $(echo "$KA_RATIOS" | median) | | |"
	row "proxy CPU per keep-alive request, us (user + system)" "${CPU[nginx]:-}" "${CPU[haproxy]:-}" "${CPU[pbxgate]:-}" "<= 1.0"
	echo "| the upstream's CPU per request behind each, us | ${UCPU[nginx]:-n/a} | ${UCPU[haproxy]:-n/a} | ${UCPU[pbxgate]:-n/a} | | | |"
	echo "| machine idle during each round's keep-alive run, % | ${IDLE[nginx]:-n/a} | ${IDLE[haproxy]:-n/a} | ${IDLE[pbxgate]:-n/a} | | | |"
	row "new TLS connections/s (wrk, Connection: close)" "${TLS[nginx]:-}" "${TLS[haproxy]:-}" "${TLS[pbxgate]:-}" ">= 1.0"
	hs_rows
	row "RSS per idle keep-alive TLS connection, KiB" "${MEM[nginx]:-}" "${MEM[haproxy]:-}" "${MEM[pbxgate]:-}" "<= 1.0"
)
echo
echo "$table"
if [ -n "$OUT" ]; then
	{
		echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average $load0 before, $(load) after; $VERSIONS; wrk -t${WRK_THREADS:-1} -d${DUR}s; handshakes: $HS_CLIENTS clients x $HS_N; $CONNS idle connections; best of $ROUNDS rounds; sessions: $SESSIONS; upstream answers from $UPSTREAM."
		echo
		echo "$table"
	} >"$OUT"
	echo "written to $OUT"
fi
