#!/bin/bash
# sites_keepalive.sh -- what serving many sites costs a request (issue 17:
# "session check cost and proxied keep-alive throughput with 100 sites
# configured vs one site", target at least 0.97). Two gateways, the same
# binary: one whose file has a single site, one with S sites (each with its
# own certificate, policy and SQLite store); in both, site s1 answers to
# "localhost" and needs a session for /1k (`login path`), so every request
# is routed (SNI, Host), judged by s1's policy and its session cookie
# checked (the in-memory tables) before it is proxied to nginx serving a
# static 1 KiB file. wrk keeps 16 connections alive for D seconds against
# each gateway in turn, R alternating rounds; reported: requests/s and the
# gateway's CPU per request (its whole process tree), and their ratios.
# A benchmark, not a test: it never fails on a figure. Needs wrk, nginx,
# openssl, curl, /usr/bin/python3.
#
# Usage: tests/bench/sites_keepalive.sh [-b BIN] [-s SITES] [-d SECONDS] [-r ROUNDS] [-o FILE]
#   -b  pbxgate binary (build/pbxgate)  -s  sites in the big file (100)
#   -d  seconds per wrk run (8)         -r  rounds (3)
#   -o  also append the results as a Markdown section to FILE
set -euo pipefail

cd "$(dirname "$0")/../.."
BIN=build/pbxgate S=100 DUR=8 ROUNDS=3 OUT=""
while getopts "b:s:d:r:o:" o; do
	case $o in
	b) BIN=$OPTARG ;; s) S=$OPTARG ;; d) DUR=$OPTARG ;; r) ROUNDS=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) sed -n '2,19p' "$0"; exit 2 ;;
	esac
done
PY=/usr/bin/python3
for t in nginx wrk openssl curl $PY; do
	command -v "$t" >/dev/null || { echo "bench: $t not found (apt-get install -y nginx-light wrk openssl curl python3)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "bench: pbxgate binary $BIN not found (build it, or pass -b)" >&2; exit 1; }
BIN=$(realpath "$BIN")

. tests/bench/bench_lib.sh
bench_init siteska

# The upstream: nginx serving a static 1 KiB file.
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
nginx -e "$tmp/up.err" -p "$tmp" -c "$tmp/up.conf" & bench_track $!
wait_port "$UP" $! || { echo "bench: upstream nginx did not start: $(cat "$tmp/up.err")" >&2; exit 1; }

# Site i: its certificate, policy and store. s1 is "localhost".
site() {	# I DIR: writes the site block to stdout, its files to DIR
	local i=$1 d=$2 name="s$1.example"
	[ "$i" -eq 1 ] && name=localhost
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$d/s$i.key" -out "$d/s$i.pem" -days 2 \
		-subj "/CN=$name" -addext "subjectAltName=DNS:$name" 2>/dev/null
	chmod 600 "$d/s$i.key"
	printf 'allow path ^/_pbxgate/\nlogin path ^/1k$\ndefault deny\n' >"$d/s$i.policy"
	cat <<EOF
site s$i {
	server_name $name
	tls_cert $d/s$i.pem
	tls_key $d/s$i.key
	policy $d/s$i.policy
	user_db $d/s$i.db
	public_url https://$name
}
EOF
}

PASSWORD="bench password $(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
start_gw() {	# NAME SITES: sets PORT_<NAME>, PID_<NAME>, COOKIE_<NAME>
	local name=$1 n=$2 d="$tmp/$1" port admin gw i cookie _
	mkdir -p "$d" && chmod 755 "$d"
	port=$(free_port) admin=$(free_port)
	{
		echo "listen 127.0.0.1:$port"
		echo "admin_listen 127.0.0.1:$admin"
		echo "upstream http://127.0.0.1:$UP"
		echo "workers 1"
		echo "secret_key $d/secret.key"
		echo "argon2 m=64 t=1 p=1"	# one login per gateway: not what is measured
		for i in $(seq 1 "$n"); do site "$i" "$d"; done
	} >"$d/pbxgate.conf"
	printf '%s\n' "$PASSWORD" | "$BIN" user add bench --site s1 -c "$d/pbxgate.conf" >/dev/null
	"$BIN" run -c "$d/pbxgate.conf" >"$d/gw.log" 2>&1 & gw=$!
	bench_track "$gw"
	wait_port "$port" "$gw" || { echo "bench: pbxgate ($name) did not start: $(cat "$d/gw.log")" >&2; exit 1; }
	for _ in $(seq 1200); do	# listening comes before the stores are open
		[ "$(curl -s "http://127.0.0.1:$admin/healthz" 2>/dev/null)" = ok ] && break
		kill -0 "$gw" 2>/dev/null || { echo "bench: pbxgate ($name) exited: $(cat "$d/gw.log")" >&2; exit 1; }
		sleep 0.05
	done
	cookie=$(bench_login_cookie "$port" localhost "$PASSWORD")
	code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "https://localhost:$port/1k")
	[ "$code" = 200 ] || { echo "bench: the session does not reach /1k on $name (HTTP $code)" >&2; exit 1; }
	printf -v "PORT_$name" %s "$port"
	printf -v "PID_$name" %s "$gw"
	printf -v "COOKIE_$name" %s "$cookie"
}

echo "== setting up: 1 site, then $S sites"
start_gw one 1
start_gw many "$S"

run() {	# NAME: one wrk run; prints "requests/s cpu_us_per_request"
	local port pid cookie t0 t1 out rps
	port=PORT_$1 pid=PID_$1 cookie=COOKIE_$1
	t0=$(tree_cpu_ticks "${!pid}")
	out=$(wrk -t1 -c16 -d"${DUR}s" -H "Cookie: ${!cookie}" "https://localhost:${!port}/1k")
	t1=$(tree_cpu_ticks "${!pid}")
	if grep -q "Non-2xx" <<<"$out"; then echo "bench: non-2xx answers on $1" >&2; exit 1; fi
	rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	awk -v r="$rps" -v t="$((t1 - t0))" -v d="$DUR" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.0f %.2f\n", r, t * 1e6 / hz / (r * d) }'
}

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
run one >/dev/null; run many >/dev/null	# warm-up
rows="" best1=0 bestn=0 cpu1=1e9 cpun=1e9
for r in $(seq "$ROUNDS"); do
	read -r a ac < <(run one)
	read -r b bc < <(run many)
	echo "round $r: 1 site $a req/s ($ac us CPU/req), $S sites $b req/s ($bc us CPU/req)"
	rows+="| $r | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }') | $ac | $bc |"$'\n'
	best1=$(awk -v x="$a" -v y="$best1" 'BEGIN { print (x > y) ? x : y }')
	bestn=$(awk -v x="$b" -v y="$bestn" 'BEGIN { print (x > y) ? x : y }')
	cpu1=$(awk -v x="$ac" -v y="$cpu1" 'BEGIN { print (x < y) ? x : y }')
	cpun=$(awk -v x="$bc" -v y="$cpun" 'BEGIN { print (x < y) ? x : y }')
done
ratio=$(awk -v a="$best1" -v b="$bestn" 'BEGIN { printf "%.2f", b / a }')
cratio=$(awk -v a="$cpu1" -v b="$cpun" 'BEGIN { printf "%.2f", a / b }')
echo "== best: 1 site $best1 req/s, $S sites $bestn req/s: ratio $ratio (target >= 0.97); least CPU/request $cpu1 vs $cpun us: ratio $cratio"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "$OUT" ]; then
	{
		echo
		echo "### $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
		echo
		echo "\`tests/bench/sites_keepalive.sh -s $S -r $ROUNDS -d $DUR\`: wrk -t1 -c16, session cookie on every request."
		echo
		echo "| round | 1 site, req/s | $S sites, req/s | ratio | 1 site, CPU us/req | $S sites, CPU us/req |"
		echo "|---|---|---|---|---|---|"
		printf '%s' "$rows"
		echo "| best | $best1 | $bestn | $ratio | $cpu1 | $cpun |"
	} >>"$OUT"
fi
