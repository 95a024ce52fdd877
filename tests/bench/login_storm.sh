#!/bin/bash
# login_storm.sh -- what logins cost pbxgate (issue 4, item 9):
#   1. successful logins per second at the default Argon2id cost
#      (m=64 MiB, t=3, p=4; login_threads 2), C clients posting the right
#      password in a loop (tests/bench/login_storm.py);
#   2. p99 latency of proxied keep-alive requests carrying a session cookie
#      (wrk --latency) during such a login storm, divided by the p99 without
#      it (target <= 1.2), as the median of R alternating rounds.
# A benchmark, not a test: it never fails on a figure. Needs wrk, nginx
# (nginx-light, the fast upstream), python3, openssl.
#
# Usage: tests/bench/login_storm.sh [-b BIN] [-d SECONDS] [-r ROUNDS] [-c CLIENTS] [-n NICE] [-a] [-p] [-l MS] [-s] [-o FILE]
#   -b  pbxgate binary (default build/pbxgate)   -d  seconds per wrk run (10)
#   -r  rounds (3)                                -c  login clients (4)
#   -n  experiment: renice the gateway's 2 login-pool threads (the serving
#       process's threads at SCHED_IDLE, see gateway/tpool.c) to NICE; libargon2's
#       lane threads inherit it. Shows what a lower-priority pool would give.
#   -a  experiment: pin the 2 login-pool threads (and so libargon2's lane
#       threads) to the last CPU: Argon2 limited to one core
#   -p  run nginx, pbxgate, wrk and the login clients at nice -10 (needs root):
#       shields the figures from other work on a shared machine
#   -l  paced load: each wrk connection waits MS ms between requests (wrk
#       delay() in Lua), so the proxy is not saturated and p99 shows what the
#       storm adds to a request, not queueing (default 1: about 10,000 req/s
#       offered, a fifth of what one worker can do here). -l 0 saturates the
#       proxy (wrk as fast as it can): p99 is then mostly queueing and any CPU
#       the logins use shows up in it; reported beside the paced figure
#   -s  experiment: the storm goes to a second pbxgate process (same store),
#       so only the machine is shared: tells in-process effects from CPU/cache
#   -o  also append the results as a Markdown section to FILE
# WRK_CONNS=N sets wrk's connections (default 16).
set -euo pipefail

cd "$(dirname "$0")/../.."
BIN=build/pbxgate DUR=10 ROUNDS=3 CLIENTS=4 OUT="" NICE="" PRIO="" PACE=1 SEPARATE="" PIN=""
while getopts "b:d:r:c:n:apl:so:" o; do
	case $o in
	b) BIN=$OPTARG ;; d) DUR=$OPTARG ;; r) ROUNDS=$OPTARG ;;
	c) CLIENTS=$OPTARG ;; n) NICE=$OPTARG ;; p) PRIO="nice -n -10" ;; l) PACE=$OPTARG ;; s) SEPARATE=1 ;; a) PIN=1 ;; o) OUT=$OPTARG ;;
	*) sed -n '2,29p' "$0"; exit 2 ;;
	esac
done
WRK_CONNS=${WRK_CONNS:-16}
PY=/usr/bin/python3

for t in nginx wrk openssl $PY; do
	command -v "$t" >/dev/null || { echo "bench: $t not found (apt-get install -y nginx-light wrk openssl python3)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "bench: pbxgate binary $BIN not found (build it, or pass -b)" >&2; exit 1; }

. tests/bench/bench_lib.sh
bench_init loginbench

wait_file() {	# FILE PID: bounded wait until FILE exists
	local _
	for _ in $(seq 600); do
		[ -e "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

echo "== load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
	echo "warning: the machine is busy; latency figures will be noisy" >&2
fi

bench_cert ec ec

# The fast upstream: nginx serving a static 1 KiB file.
UP=$(free_port)
mkdir -p "$tmp/www" && head -c 1024 /dev/zero | tr '\0' 'x' >"$tmp/www/1k" && chmod -R a+rX "$tmp/www"
nginx_user=""
[ "$(id -u)" -eq 0 ] && nginx_user="user nobody nogroup;"
cat >"$tmp/up.conf" <<EOF
daemon off; master_process on; $nginx_user
worker_processes 1; error_log $tmp/up.err warn; pid $tmp/up.pid;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path $tmp/b; proxy_temp_path $tmp/p; fastcgi_temp_path $tmp/f;
  uwsgi_temp_path $tmp/u; scgi_temp_path $tmp/s;
  server { listen 127.0.0.1:$UP; root $tmp/www; } }
EOF
$PRIO nginx -e "$tmp/up.err" -p "$tmp" -c "$tmp/up.conf" & bench_track $!
wait_port "$UP" $! || { echo "bench: upstream nginx did not start: $(cat "$tmp/up.err")" >&2; exit 1; }

# The gateway: login needed for /1k (password level: no TOTP in a benchmark),
# Argon2 and login pool at their defaults.
PORT=$(free_port) ADMIN=$(free_port)
cat >"$tmp/login.policy" <<EOF
allow path ^/_pbxgate/
login path ^/1k\$
default deny
EOF
cat >"$tmp/pbxgate.conf" <<EOF
listen 127.0.0.1:$PORT
admin_listen 127.0.0.1:$ADMIN
tls_cert $tmp/ec.pem
tls_key $tmp/ec.key
upstream http://127.0.0.1:$UP
workers 1
user_db $tmp/users.db
public_url https://localhost:$PORT
policy $tmp/login.policy
login_max_failures 1000
EOF
PASSWORD="bench password $(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$PASSWORD" | "$BIN" user add bench -c "$tmp/pbxgate.conf" >/dev/null
$PRIO "$BIN" run -c "$tmp/pbxgate.conf" >"$tmp/gw.log" 2>&1 & GW=$!; bench_track "$GW"
wait_port "$PORT" $GW || { echo "bench: pbxgate did not start: $(cat "$tmp/gw.log")" >&2; exit 1; }
for _ in $(seq 400); do	# listening comes before the user store is open
	[ "$(curl -s "http://127.0.0.1:$ADMIN/healthz" 2>/dev/null)" = ok ] && break
	kill -0 $GW 2>/dev/null || { echo "bench: pbxgate exited: $(cat "$tmp/gw.log")" >&2; exit 1; }
	sleep 0.05
done
if [ -n "$NICE$PIN" ]; then
	# The pool lives in the serving process, a child of the one started
	# (gateway/privsep.c); its threads are those at SCHED_IDLE (policy 5,
	# field 41 of stat; gateway/tpool.c).
	tids=()
	for task in /proc/[0-9]*/task/[0-9]*; do
		[ "$(awk '{print $4}' "${task%/task/*}/stat" 2>/dev/null)" = "$GW" ] || continue
		[ "$(sed 's/.*) //' "$task/stat" 2>/dev/null | awk '{print $39}')" = 5 ] && tids+=("${task##*/}")
	done
	[ "${#tids[@]}" -eq 2 ] || { echo "bench: expected 2 login-pool threads, found ${#tids[@]}" >&2; exit 1; }
	if [ -n "$NICE" ]; then
		renice -n "$NICE" -p "${tids[@]}" >/dev/null
		echo "== experiment: login-pool threads ${tids[*]} reniced to $NICE"
	fi
	if [ -n "$PIN" ]; then
		for t in "${tids[@]}"; do taskset -p -c $(($(nproc) - 1)) "$t" >/dev/null; done
		echo "== experiment: login-pool threads pinned to CPU $(($(nproc) - 1))"
	fi
fi

# One session for wrk: a real login through the form.
COOKIE=$(bench_login_cookie "$PORT" 127.0.0.1 "$PASSWORD")
code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "https://127.0.0.1:$PORT/1k")
[ "$code" = 200 ] || { echo "bench: the session does not reach /1k (HTTP $code)" >&2; exit 1; }

printf 'function delay() return %d end\n' "$PACE" >"$tmp/pace.lua"
STORM_PORT=$PORT
if [ -n "$SEPARATE" ]; then
	STORM_PORT=$(free_port)
	sed -e "s/^listen .*/listen 127.0.0.1:$STORM_PORT/" -e "/^admin_listen/d" \
		"$tmp/pbxgate.conf" >"$tmp/storm.conf"
	$PRIO "$BIN" run -c "$tmp/storm.conf" >"$tmp/gw2.log" 2>&1 & GW2=$!; bench_track "$GW2"
	wait_port "$STORM_PORT" $GW2 || { echo "bench: second pbxgate did not start: $(cat "$tmp/gw2.log")" >&2; exit 1; }
	echo "== experiment: the storm goes to a second pbxgate (pid $GW2, port $STORM_PORT)"
fi
storm() {	# SECONDS [READY_FILE]: prints the storm's JSON line
	$PRIO $PY tests/bench/login_storm.py --port "$STORM_PORT" --user bench --password "$PASSWORD" \
		--clients "$CLIENTS" --duration "$1" ${2:+--ready "$2"}
}
p99_ms() {	# wrk's 99% latency in ms
	awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
		if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.3f", v }'
}
rps() { awk '/^Requests\/sec:/ { printf "%.0f", $2 }'; }
wrk_run() {
	$PRIO wrk -t1 -c"$WRK_CONNS" -d"${DUR}s" --latency -s "$tmp/pace.lua" -H "Cookie: $COOKIE" "https://127.0.0.1:$PORT/1k"
}

echo "== logins per second at the default Argon2 cost ($CLIENTS clients, ${DUR}s)"
storm 1 >/dev/null	# warm-up: the first Argon2 runs fault in their 64 MiB
solo=$(storm "$DUR")
echo "$solo"
LOGINS=$(echo "$solo" | $PY -c 'import json,sys; print(json.load(sys.stdin)["rate"])')

base=() during=() ratios=() base_rps=() during_rps=() during_logins=()
wrk -t1 -c"$WRK_CONNS" -d1s -H "Cookie: $COOKIE" "https://127.0.0.1:$PORT/1k" >/dev/null
for r in $(seq "$ROUNDS"); do
	out=$(wrk_run)
	b=$(echo "$out" | p99_ms); base+=("$b"); base_rps+=("$(echo "$out" | rps)")
	rm -f "$tmp/ready"
	storm $((DUR + 4)) "$tmp/ready" >"$tmp/storm.json" & SP=$!; bench_track "$SP"
	wait_file "$tmp/ready" $SP || { echo "bench: the login storm did not start" >&2; exit 1; }
	out=$(wrk_run)
	wait $SP
	d=$(echo "$out" | p99_ms); during+=("$d"); during_rps+=("$(echo "$out" | rps)")
	during_logins+=("$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["rate"])' "$tmp/storm.json")")
	ratio=$(awk -v a="$d" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
	ratios+=("$ratio")
	echo "round $r: p99 without storm ${b} ms (${base_rps[-1]} req/s), during storm ${d} ms (${during_rps[-1]} req/s, ${during_logins[-1]} logins/s): ratio $ratio"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
MB=$(median "${base[@]}") MD=$(median "${during[@]}") MR=$(median "${ratios[@]}")
BB=$(printf '%s\n' "${base[@]}" | sort -g | head -1) BD=$(printf '%s\n' "${during[@]}" | sort -g | head -1)
BR=$(awk -v a="$BD" -v b="$BB" 'BEGIN { printf "%.2f", a / b }')
MBR=$(median "${base_rps[@]}") MDR=$(median "${during_rps[@]}") MDL=$(median "${during_logins[@]}")
echo
echo "logins/s at the default Argon2 cost (m=64 MiB, t=3, p=4; login_threads 2${NICE:+; pool reniced to $NICE}): $LOGINS"
echo "proxied p99 without storm: $MB ms ($MBR req/s); during storm: $MD ms ($MDR req/s; $MDL logins/s)"
echo "p99 ratio (median of $ROUNDS rounds): $MR; best p99 during / best p99 without: $BD / $BB = $BR (target <= 1.2)"

if [ -n "$OUT" ]; then
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	{
		echo
		echo "### $(date -u +%Y-%m-%d), $(nproc) cores, $cpu: login storm${PIN:+ (experiment: login pool pinned to one CPU)}${NICE:+ (experiment: login pool reniced to $NICE)}${SEPARATE:+ (experiment: storm on a second pbxgate process)}"
		echo
		echo "Run: $(date -u +%H:%M) UTC; $("$BIN" --version 2>/dev/null | head -1 || echo '?'), binary built $(date -u -r "$BIN" +%H:%M) UTC (tree HEAD then: $(git rev-parse --short HEAD 2>/dev/null || echo '?'));"
		echo "$CLIENTS login clients; wrk -t1 -c$WRK_CONNS -d${DUR}s --latency$( [ "$PACE" -gt 0 ] && echo ", paced: $PACE ms between requests per connection (-l)"); $ROUNDS rounds;"
		echo "load average before the run: $load${PRIO:+; run at nice -10 (-p)}."
		echo
		echo "| figure | value | target |"
		echo "|---|---|---|"
		echo "| successful logins/s, default Argon2id (m=64 MiB, t=3, p=4), login_threads 2 | $LOGINS | |"
		echo "| proxied p99 without a storm, ms ($MBR req/s) | $MB | |"
		echo "| proxied p99 during the storm, ms ($MDR req/s, $MDL logins/s) | $MD | |"
		echo "| p99 during / p99 without (median of rounds: ${ratios[*]}) | $MR | <= 1.2 |"
		echo "| best p99 during / best p99 without ($BD / $BB ms) | $BR | <= 1.2 |"
	} >>"$OUT"
	echo "appended to $OUT"
fi
