#!/bin/bash
# integrity.sh -- what hashing response bodies costs: a 1 MiB asset fetched N
# times over one keep-alive connection on a path covered by known_bad
# (/electron/), on a pinned path (/webclient/, integrity manifest, enforce:
# the asset is held whole until judged) and on an unhashed path, in turn in
# the same run, best of ROUNDS, and the ratios to unhashed (target >= 0.9);
# then a 50 MB installer once each way (pinned: streamed with its tail
# withheld), in MB/s. A benchmark, not a test: it
# never fails on a figure. Needs openssl, curl and /usr/bin/python3; the
# upstream is Python's http.server, which bounds both sides alike.
#
# Usage: tests/bench/integrity.sh [-b BIN] [-n N] [-r ROUNDS]
#   -b  the binary (default build/pbxgate)  -n  1 MiB fetches per round (200)
#   -r  rounds, best kept (3)
set -euo pipefail

cd "$(dirname "$0")/../.."
BIN=build/pbxgate N=200 ROUNDS=3
while getopts "b:n:r:" o; do
	case $o in
	b) BIN=$OPTARG ;; n) N=$OPTARG ;; r) ROUNDS=$OPTARG ;;
	*) sed -n '2,14p' "$0"; exit 2 ;;
	esac
done
[ -x "$BIN" ] || { sed -n '2,14p' "$0"; exit 2; }

tmp=$(mktemp -d /tmp/pbxgate-integrity.XXXXXX)
GW_PID="" UP_PID=""
cleanup() {
	[ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
	[ -n "$UP_PID" ] && kill "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {	# PORT: bounded wait until something accepts on it
	for _ in $(seq 200); do
		/usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" \
			2>/dev/null && return 0
		sleep 0.05
	done
	echo "integrity.sh: nothing listens on port $1" >&2
	exit 1
}

mkdir -p "$tmp/www/electron/windows" "$tmp/www/plain" "$tmp/www/webclient"
head -c $((1024 * 1024)) /dev/urandom >"$tmp/www/plain/asset.bin"
head -c $((50 * 1000 * 1000)) /dev/urandom >"$tmp/www/plain/installer.msi"
cp "$tmp/www/plain/asset.bin" "$tmp/www/plain/installer.msi" "$tmp/www/electron/windows/"
cp "$tmp/www/plain/asset.bin" "$tmp/www/plain/installer.msi" "$tmp/www/webclient/"
for f in asset.bin installer.msi; do
	printf '%s %s /webclient/%s application/octet-stream\n' \
		"$(sha256sum <"$tmp/www/webclient/$f" | cut -d' ' -f1)" \
		"$(stat -c %s "$tmp/www/webclient/$f")" "$f"
done >"$tmp/integrity.manifest"
# a list that holds some hash, not these files': every body is hashed whole
head -c 64 /dev/urandom | sha256sum | sed 's/-$/unrelated/' >"$tmp/list.sha256"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=localhost -addext subjectAltName=DNS:localhost \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

UP=$(free_port) GW=$(free_port)
(cd "$tmp/www" && exec /usr/bin/python3 -c '
import http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$UP") &
UP_PID=$!
cat >"$tmp/gw.conf" <<CONF
listen 127.0.0.1:$GW
tls_cert $tmp/cert.pem
tls_key $tmp/key.pem
upstream http://127.0.0.1:$UP
workers 1
access_log off
known_bad $tmp/list.sha256
integrity $tmp/integrity.manifest
integrity_mode enforce
CONF
"$BIN" run -c "$tmp/gw.conf" 2>"$tmp/gw.err" &
GW_PID=$!
wait_port "$UP"
wait_port "$GW"

# seconds for N fetches of URL on one connection (curl reuses it)
fetch_n() {
	local url=$1 n=$2 args=()
	for _ in $(seq "$n"); do args+=("$url" -o /dev/null); done
	local t0 t1
	t0=$(date +%s.%N)
	curl -sf --cacert "$tmp/cert.pem" "${args[@]}"
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

base=https://localhost:$GW
best_h=0 best_p=0 best_u=0
for r in $(seq "$ROUNDS"); do
	th=$(fetch_n "$base/electron/windows/asset.bin" "$N")
	tp=$(fetch_n "$base/webclient/asset.bin" "$N")
	tu=$(fetch_n "$base/plain/asset.bin" "$N")
	h=$(echo "$N / $th" | bc -l) p=$(echo "$N / $tp" | bc -l) u=$(echo "$N / $tu" | bc -l)
	printf 'round %d: known_bad %.1f MiB/s, pinned %.1f MiB/s, unhashed %.1f MiB/s\n' \
		"$r" "$h" "$p" "$u"
	(( $(echo "$h > $best_h" | bc -l) )) && best_h=$h
	(( $(echo "$p > $best_p" | bc -l) )) && best_p=$p
	(( $(echo "$u > $best_u" | bc -l) )) && best_u=$u
done
printf '1 MiB asset, best of %d: known_bad %.1f MiB/s (ratio %.3f), pinned %.1f MiB/s (ratio %.3f), unhashed %.1f MiB/s (target >= 0.9)\n' \
	"$ROUNDS" "$best_h" "$(echo "$best_h / $best_u" | bc -l)" "$best_p" \
	"$(echo "$best_p / $best_u" | bc -l)" "$best_u"
th=$(fetch_n "$base/electron/windows/installer.msi" 1)
tp=$(fetch_n "$base/webclient/installer.msi" 1)
tu=$(fetch_n "$base/plain/installer.msi" 1)
printf '50 MB installer: known_bad %.1f MB/s, pinned %.1f MB/s, unhashed %.1f MB/s\n' \
	"$(echo "50 / $th" | bc -l)" "$(echo "50 / $tp" | bc -l)" "$(echo "50 / $tu" | bc -l)"
