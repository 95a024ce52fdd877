#!/bin/bash
# tickets.sh -- resumed TLS handshakes/s across two gateways sharing
# tls_ticket_key_file (issue 17 item 4). One wrk-like client (one SSL object
# kept across connections, tests/tools/tls_reuse) either resumes on gateway A
# alone ("same") or alternates A and B ("cross": every resumption opens a
# ticket the other gateway made). Best of ROUNDS alternating runs for TLS 1.3
# and 1.2; prints handshakes/s and cross/same (expected ~1.0). A benchmark,
# not a test: it never fails on a figure (only when a run did not resume).
#
# Usage: tests/bench/tickets.sh [-b BIN] [-n CONNECTIONS] [-r ROUNDS]
#   -b  pbxgate binary (build/pbxgate)  -n  connections per run (2000)
#   -r  alternating rounds, best kept (3)
set -euo pipefail

cd "$(dirname "$0")/../.."
BIN=build/pbxgate N=2000 ROUNDS=3
while getopts "b:n:r:" o; do
	case $o in
	b) BIN=$OPTARG ;; n) N=$OPTARG ;; r) ROUNDS=$OPTARG ;;
	*) sed -n '2,13p' "$0"; exit 2 ;;
	esac
done
REUSE=$(dirname "$BIN")/tests/tools/tls_reuse
[ -x "$BIN" ] && [ -x "$REUSE" ] || { echo "build $BIN and $REUSE first (-Dtests=true)" >&2; exit 2; }

. tests/bench/bench_lib.sh
bench_init tickets
bench_cert ec ec
openssl rand 32 >"$tmp/tickets.key"
chmod 600 "$tmp/tickets.key"
mkdir "$tmp/www" && echo ok >"$tmp/www/index.html"

UP=$(free_port)
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$UP" \
	>/dev/null 2>&1 &
bench_track $!
wait_port "$UP" $! || { echo "upstream did not start" >&2; exit 1; }

start_gw() {	# NAME -> sets PORT_<NAME>
	local port admin
	port=$(free_port) admin=$(free_port)
	cat >"$tmp/$1.conf" <<EOF
listen 127.0.0.1:$port
admin_listen 127.0.0.1:$admin
tls_cert $tmp/ec.pem
tls_key $tmp/ec.key
tls_ticket_key_file $tmp/tickets.key
upstream http://127.0.0.1:$UP
workers 1
access_log off
max_connections 100000
max_connections_per_ip 100000
max_established_per_ip 100000
EOF
	"$BIN" run -c "$tmp/$1.conf" 2>"$tmp/$1.err" &
	bench_track $!
	wait_port "$port" $! || { cat "$tmp/$1.err" >&2; exit 1; }
	printf -v "PORT_$1" '%s' "$port"
}
start_gw A
start_gw B

rate() {	# VERSION same|cross -> handshakes/s
	local out
	if [ "$2" = cross ]; then
		out=$("$REUSE" -v "$1" -n "$N" -p "$PORT_B" "$PORT_A")
	else
		out=$("$REUSE" -v "$1" -n "$N" "$PORT_A")
	fi
	case $out in
	"resumed $((N - 1)) of $N "*) ;;
	*) echo "$2 TLS $1: not every connection resumed: $out" >&2; exit 1 ;;
	esac
	sed 's/.*(\([0-9]*\) handshakes.*/\1/' <<<"$out"
}

echo "resumed handshakes/s, one client, $N connections, best of $ROUNDS (nproc $(nproc), load $(cut -d' ' -f1 /proc/loadavg))"
for v in 1.3 1.2; do
	best_same=0 best_cross=0
	for _ in $(seq "$ROUNDS"); do
		s=$(rate "$v" same) c=$(rate "$v" cross)
		[ "$s" -gt "$best_same" ] && best_same=$s
		[ "$c" -gt "$best_cross" ] && best_cross=$c
	done
	printf 'TLS %s  same (A only) %6d/s  cross (A<->B) %6d/s  cross/same %s\n' \
		"$v" "$best_same" "$best_cross" \
		"$(awk -v c="$best_cross" -v s="$best_same" 'BEGIN { printf "%.2f", c / s }')"
done
