#!/bin/bash
# handshakes.sh -- new TLS connections/s (full handshakes, no resumption)
# of two pbxgate binaries, alternately in one run: BEFORE (e.g. the build of
# the commit before the key process, keys in the network process) and AFTER
# (keys in the key process). For ECDSA P-256 and RSA 2048 certificates, TLS
# 1.3 and TLS 1.2; best of ROUNDS for each; prints the AFTER/BEFORE ratio. A
# benchmark, not a test: it never fails on a figure. Needs openssl.
#
# Usage: tests/bench/handshakes.sh -B BEFORE_BIN [-b AFTER_BIN] [-d SECONDS] [-r ROUNDS] [-c CLIENTS] [-o FILE]
#   -B  the binary to compare against (required; build it from the previous
#       commit in a second build dir: there is no switch for in-process keys)
#   -b  the binary measured (default build/pbxgate)  -d  seconds per run (5)
#   -r  alternating rounds, best kept (3)            -c  parallel clients (2)
#   -o  also write the results as a Markdown table to FILE
# Each client is `openssl s_time -new`: connect, full handshake, close (the
# TLS equivalent of a request with Connection: close), as fast as it can.
set -euo pipefail

cd "$(dirname "$0")/../.."
BEFORE="" AFTER=build/pbxgate DUR=5 ROUNDS=3 CLIENTS=2 OUT=""
while getopts "B:b:d:r:c:o:" o; do
	case $o in
	B) BEFORE=$OPTARG ;; b) AFTER=$OPTARG ;; d) DUR=$OPTARG ;;
	r) ROUNDS=$OPTARG ;; c) CLIENTS=$OPTARG ;; o) OUT=$OPTARG ;;
	*) sed -n '2,17p' "$0"; exit 2 ;;
	esac
done
[ -n "$BEFORE" ] && [ -x "$BEFORE" ] && [ -x "$AFTER" ] || { sed -n '2,17p' "$0"; exit 2; }

. tests/bench/bench_lib.sh
bench_init hs
bench_cert ec ec
bench_cert rsa rsa

PORT=$(free_port) ADMIN=$(free_port) UP=$(free_port)
for k in ec rsa; do
	cat >"$tmp/$k.conf" <<EOF
listen 127.0.0.1:$PORT
admin_listen 127.0.0.1:$ADMIN
tls_cert $tmp/$k.pem
tls_key $tmp/$k.key
upstream http://127.0.0.1:$UP
workers 1
max_connections 100000
max_connections_per_ip 100000
max_established_per_ip 100000
EOF
done

# BIN KEY VERSION -> "connections/s CPU-microseconds-per-connection": all
# clients together; the CPU is the server's, all its processes included. On
# a busy machine the rate follows the load; the CPU per handshake does not.
measure() {
	local i n=0 t c0 c1 pid clients=()
	"$1" run -c "$tmp/$2.conf" >/dev/null 2>>"$tmp/pg.err" & pid=$!
	bench_track "$pid"
	wait_port "$PORT" "$pid" || { echo "bench: $1 did not start" >&2; tail -n 20 "$tmp/pg.err" >&2; exit 1; }
	c0=$(tree_cpu_ticks "$pid")
	for i in $(seq "$CLIENTS"); do
		openssl s_time -connect "127.0.0.1:$PORT" -new -"$3" -time "$DUR" \
			>"$tmp/st.$i" 2>&1 & clients+=($!)
	done
	wait "${clients[@]}" 2>/dev/null || true
	c1=$(tree_cpu_ticks "$pid")
	bench_stop "$pid"
	for i in $(seq "$CLIENTS"); do
		t=$(awk '/connections in [0-9.]+ real seconds/ {print $1}' "$tmp/st.$i" | tail -1)
		n=$((n + ${t:-0}))
	done
	awk -v n="$n" -v d="$DUR" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
	    'BEGIN {printf "%.0f %.0f\n", n / d, (n > 0) ? (c * 1e6 / hz) / n : 0}'
}

declare -A BEST CPU
best() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN {print (a > b) ? a : b}'; }
least() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN {print (a == 0 || (b > 0 && b < a)) ? b : a}'; }
for r in $(seq "$ROUNDS"); do
	for k in ec rsa; do
		for v in tls1_3 tls1_2; do
			for which in before after; do
				bin=$BEFORE; [ "$which" = after ] && bin=$AFTER
				read -r rate us < <(measure "$bin" "$k" "$v")
				echo "round $r $k $v $which: $rate/s, $us us CPU/handshake" >&2
				BEST[$k.$v.$which]=$(best "${BEST[$k.$v.$which]:-0}" "$rate")
				CPU[$k.$v.$which]=$(least "${CPU[$k.$v.$which]:-0}" "$us")
			done
		done
	done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
table="| certificate | TLS | conn/s, keys in the network process | conn/s, key process | rate ratio | server CPU us/handshake, before | after | CPU ratio (before/after) |
|---|---|---|---|---|---|---|---|"
for k in ec rsa; do
	for v in tls1_3 tls1_2; do
		b=${BEST[$k.$v.before]} a=${BEST[$k.$v.after]}
		cb=${CPU[$k.$v.before]} ca=${CPU[$k.$v.after]}
		name=$([ "$k" = ec ] && echo "ECDSA P-256" || echo "RSA 2048")
		table+="
| $name | ${v#tls} | $b | $a | $(ratio "$a" "$b") | $cb | $ca | $(ratio "$cb" "$ca") |"
	done
done
echo "${table//1_/1.}"
[ -n "$OUT" ] && echo "${table//1_/1.}" >"$OUT"
exit 0
