#!/bin/bash
# sites_load.sh -- what loading a configuration of many sites costs, the
# part of a reload that exists today (sites are checked, not yet served):
# S sites, each with its own ECDSA certificate, policy naming a user, and
# SQLite user store of U users, timed through `pbxgate check`, which parses
# the file, builds every site's TLS context and policy and reads every
# store's user names; best and median of ROUNDS, wall and CPU seconds. The
# issue's target for a reload is 1 s for 100 sites of 100 users. A
# benchmark, not a test: it never fails on a figure. Needs openssl and
# /usr/bin/python3 (for the CSV). Not measured: opening each store's
# in-memory tables (auth_open), which `run` will add once it serves sites.
#
# Usage: tests/bench/sites_load.sh [-b BIN] [-s SITES] [-u USERS] [-r ROUNDS]
#   -b  the binary (default build/pbxgate)  -s  sites (100)
#   -u  users per site (100)  -r  rounds (5)
set -euo pipefail

cd "$(dirname "$0")/../.."
BIN=build/pbxgate S=100 U=100 ROUNDS=5
while getopts "b:s:u:r:" o; do
	case $o in
	b) BIN=$OPTARG ;; s) S=$OPTARG ;; u) U=$OPTARG ;; r) ROUNDS=$OPTARG ;;
	*) sed -n '2,16p' "$0"; exit 2 ;;
	esac
done
[ -x "$BIN" ] || { sed -n '2,16p' "$0"; exit 2; }
BIN=$(realpath "$BIN")
. tests/bench/bench_lib.sh
bench_init sites

conf=$tmp/sites.conf
/usr/bin/python3 - "$U" >"$tmp/users.csv" <<'EOF'
import sys
print("name,role,email,groups")
for i in range(int(sys.argv[1])):
    print("user%d,user,," % i)
EOF
printf 'listen 127.0.0.1:1\nupstream http://127.0.0.1:2\n' >"$conf"
for i in $(seq 1 "$S"); do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$tmp/s$i.key" -out "$tmp/s$i.pem" -days 2 \
		-subj "/CN=s$i.example" -addext "subjectAltName=DNS:s$i.example" \
		2>/dev/null
	chmod 600 "$tmp/s$i.key"
	printf 'allow user user1 path ^/admin/\ndefault allow\n' >"$tmp/s$i.policy"
	cat >>"$conf" <<EOF
site s$i {
	server_name s$i.example
	tls_cert s$i.pem
	tls_key s$i.key
	policy s$i.policy
	user_db s$i.db
	public_url https://s$i.example
}
EOF
	"$BIN" user import "$tmp/users.csv" -c "$conf" --site "s$i" >/dev/null
done

"$BIN" check -c "$conf" 2>"$tmp/check.err" ||
	{ cat "$tmp/check.err"; exit 1; }	# time a valid file only
wall=() cpu=()
for r in $(seq 1 "$ROUNDS"); do
	out=$( { /usr/bin/time -f '%e %U %S' "$BIN" check -c "$conf" 2>&1 >/dev/null; } 2>&1 | tail -1)
	read -r w u s <<<"$out"
	wall+=("$w")
	cpu+=("$(echo "$u + $s" | bc)")
done
sorted() { printf '%s\n' "$@" | sort -n; }
mid=$(( (ROUNDS + 1) / 2 ))
echo "sites=$S users/site=$U rounds=$ROUNDS"
echo "check wall s: best $(sorted "${wall[@]}" | head -1) median $(sorted "${wall[@]}" | sed -n "${mid}p")"
echo "check cpu s:  best $(sorted "${cpu[@]}" | head -1) median $(sorted "${cpu[@]}" | sed -n "${mid}p")"
