# bench_lib.sh -- what the benchmark scripts share, sourced by them:
#   . "$(dirname "$0")/bench_lib.sh"; bench_init NAME
# A scratch directory ($tmp) removed at exit with every process registered
# with bench_track; free ports; bounded waits; throwaway certificates; the
# CPU time and memory of a server with all its processes (nginx's master
# and workers, pbxgate's parent, key process and network child), so that a
# figure never reads one process of several.

bench_pids=()

bench_init() {	# NAME: makes $tmp and the exit trap
	tmp=$(mktemp -d "/tmp/pbxgate-$1.XXXXXX")
	chmod 755 "$tmp"	# servers that drop privileges read their files here
	trap bench_cleanup EXIT
}

bench_cleanup() {
	local p
	for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}

bench_track() {	# PID: killed and reaped at exit
	bench_pids+=("$1")
}

bench_stop() {	# PID: stop a tracked process now (TERM, reap) and forget it,
		# so that the exit trap never signals a PID the system reused
	local p kept=()
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	for p in "${bench_pids[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
	bench_pids=("${kept[@]}")
}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {	# PORT PID [SECONDS]: bounded wait (default 20 s) until
		# something accepts on PORT
	local _
	for _ in $(seq $((${3:-20} * 20))); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

bench_cert() {	# ec|rsa NAME: $tmp/NAME.pem and $tmp/NAME.key for localhost
	local alg=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
	[ "$1" = rsa ] && alg=(-newkey rsa:2048)
	openssl req -x509 "${alg[@]}" -nodes -keyout "$tmp/$2.key" \
		-out "$tmp/$2.pem" -days 2 -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
	chmod 600 "$tmp/$2.key"
	chmod 644 "$tmp/$2.pem"
}

tree_pids() {	# PID: PID and its descendants, one per line
	local p
	echo "$1"
	for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		tree_pids "$p"
	done
}

tree_cpu_ticks() {	# PID: user + system clock ticks of the whole tree
	local p t=0 v
	for p in $(tree_pids "$1"); do
		v=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

tree_rss_kib() {	# PID: resident KiB of the whole tree
	local p t=0 v
	for p in $(tree_pids "$1"); do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

bench_login_cookie() {	# PORT HOST PASSWORD: signs user "bench" in through the
			# login form (rd /1k) and prints its session cookie
	/usr/bin/python3 - "$1" "$2" "$3" <<'EOF'
import re, ssl, sys, urllib.parse, http.client
port, host, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl._create_unverified_context()
c = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
c.request("GET", "/_pbxgate/login")
r = c.getresponse(); body = r.read()
csrf = [v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie" and v.startswith("__Host-pbxgate-csrf=")][0]
tok = re.search(rb'name="csrf" value="([0-9a-f]+)"', body).group(1).decode()
c.request("POST", "/_pbxgate/login", urllib.parse.urlencode({"csrf": tok, "rd": "/1k", "username": "bench", "password": pw}),
          {"Content-Type": "application/x-www-form-urlencoded", "Cookie": csrf})
r = c.getresponse(); r.read()
assert r.status == 303, r.status
print([v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie" and v.startswith("__Host-pbxgate=")][0])
EOF
}
