#!/bin/bash
# login_stores.sh -- successful logins per second with the user store on
# SQLite and on PostgreSQL (issue 17), same binary, same Argon2id cost (the
# default unless -A), in alternating rounds, and their ratio. Each login is
# one Argon2id verification plus the store's writes (sign-in audit row,
# regulation counter, session row); the cost setting decides most of it, so
# the ratio tells what the database adds. PostgreSQL 15 runs from a
# temporary directory (initdb, pg_ctl) with fsync on, as deployed; SQLite
# runs with its defaults (WAL, the gateway's own settings).
# A benchmark, not a test: it never fails on a figure.
#
# Usage: tests/bench/login_stores.sh [-b BIN] [-d SECONDS] [-r ROUNDS] [-c CLIENTS] [-A COST] [-o FILE]
#   -b  pbxgate binary (default build/pbxgate)  -d  seconds per round (8)
#   -r  rounds (3)                               -c  login clients (4)
#   -A  argon2 cost line, e.g. "m=64 t=1 p=1" (default: pbxgate's default)
#   -o  also append the results as a Markdown section to FILE
set -euo pipefail

cd "$(dirname "$0")/../.."
BIN=build/pbxgate DUR=8 ROUNDS=3 CLIENTS=4 COST="" OUT=""
while getopts "b:d:r:c:A:o:" o; do
	case $o in
	b) BIN=$OPTARG ;; d) DUR=$OPTARG ;; r) ROUNDS=$OPTARG ;;
	c) CLIENTS=$OPTARG ;; A) COST=$OPTARG ;; o) OUT=$OPTARG ;;
	*) sed -n '2,17p' "$0"; exit 2 ;;
	esac
done
PY=/usr/bin/python3 PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/initdb" ] || { echo "bench: postgresql-15 not found (apt-get install -y postgresql-15)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "bench: pbxgate binary $BIN not found (build it, or pass -b)" >&2; exit 1; }

. tests/bench/bench_lib.sh
bench_init loginstores

# PostgreSQL as an unprivileged user when run as root (initdb refuses
# root), in a directory of its own that also holds its socket.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
PGD=$tmp/pgd
mkdir -m 755 "$PGD" && { [ "$(id -u)" -ne 0 ] || chown nobody "$PGD"; }
as_pg "$PGBIN/initdb" -D "$PGD/data" -A trust -U pbxgate -E UTF8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGD/data" -l "$PGD/server.log" -w -t 30 \
	-o "-k $PGD -c listen_addresses=''" start >/dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$PGD/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true; bench_cleanup' EXIT

bench_cert ec ec
PASSWORD="bench password $(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf 'allow path ^/_pbxgate/\ndefault deny\n' >"$tmp/login.policy"

start_gw() {	# NAME USER_DB: config, user, gateway; sets PORT_<NAME>, PID_<NAME>
	local name=$1 db=$2 port admin gw _
	port=$(free_port) admin=$(free_port)
	{
		echo "listen 127.0.0.1:$port"
		echo "admin_listen 127.0.0.1:$admin"
		echo "tls_cert $tmp/ec.pem"
		echo "tls_key $tmp/ec.key"
		echo "upstream http://127.0.0.1:9"
		echo "workers 1"
		echo "user_db $db"
		echo "secret_key $tmp/$name.secret"
		echo "public_url https://localhost:$port"
		echo "policy $tmp/login.policy"
		echo "login_max_failures 1000"
		[ -n "$COST" ] && echo "argon2 $COST"
	} >"$tmp/$name.conf"
	printf '%s\n' "$PASSWORD" | "$BIN" user add bench -c "$tmp/$name.conf" >/dev/null
	"$BIN" run -c "$tmp/$name.conf" >"$tmp/$name.log" 2>&1 & gw=$!
	bench_track "$gw"
	wait_port "$port" "$gw" || { echo "bench: pbxgate ($name) did not start: $(cat "$tmp/$name.log")" >&2; exit 1; }
	for _ in $(seq 400); do	# listening comes before the user store is open
		[ "$(curl -s "http://127.0.0.1:$admin/healthz" 2>/dev/null)" = ok ] && break
		kill -0 "$gw" 2>/dev/null || { echo "bench: pbxgate ($name) exited: $(cat "$tmp/$name.log")" >&2; exit 1; }
		sleep 0.05
	done
	printf -v "PORT_$name" %s "$port"
	printf -v "PID_$name" %s "$gw"
}

psql -X -q "postgresql:///postgres?host=$PGD&user=pbxgate" -c "CREATE DATABASE bench" >/dev/null
start_gw sqlite "$tmp/users.db"
start_gw pg "postgresql:///bench?host=$PGD&user=pbxgate"

storm() {	# PORT: one round, prints logins/s
	$PY tests/bench/login_storm.py --port "$1" --user bench --password "$PASSWORD" \
		--clients "$CLIENTS" --duration "$DUR" | $PY -c 'import json,sys; d=json.load(sys.stdin); print("%.1f %d" % (d["rate"], d["other"]))'
}

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
storm "$PORT_sqlite" >/dev/null; storm "$PORT_pg" >/dev/null	# warm both up
best_s=0 best_p=0 rows=""
for r in $(seq "$ROUNDS"); do
	read -r s se < <(storm "$PORT_sqlite")
	read -r p pe < <(storm "$PORT_pg")
	echo "round $r: sqlite $s logins/s ($se errors), postgresql $p logins/s ($pe errors)"
	rows+="| $r | $s | $p | $(awk -v a="$p" -v b="$s" 'BEGIN { printf "%.2f", a / b }') |"$'\n'
	best_s=$(awk -v a="$s" -v b="$best_s" 'BEGIN { print (a > b) ? a : b }')
	best_p=$(awk -v a="$p" -v b="$best_p" 'BEGIN { print (a > b) ? a : b }')
done
ratio=$(awk -v a="$best_p" -v b="$best_s" 'BEGIN { printf "%.2f", a / b }')
echo "== best: sqlite $best_s, postgresql $best_p logins/s; ratio $ratio"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "$OUT" ]; then
	{
		echo
		echo "### $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
		echo
		echo "\`tests/bench/login_stores.sh -r $ROUNDS -d $DUR -c $CLIENTS${COST:+ -A \"$COST\"}\`; argon2 ${COST:-default}."
		echo
		echo "| round | SQLite logins/s | PostgreSQL logins/s | ratio |"
		echo "|---|---|---|---|"
		printf '%s' "$rows"
		echo "| best | $best_s | $best_p | $ratio |"
	} >>"$OUT"
fi
