"""keepalive_gets.py PORT N PATH -- N GETs of PATH, one after the other, on
one keep-alive TLS connection to 127.0.0.1:PORT (certificate not checked:
the benchmarks' throwaway one). Prints "ok N", or what went wrong: a fixed
load for proxy_vs_nginx.sh -I, where wrk's depends on its duration."""
import http.client
import ssl
import sys


def main():
    port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ctx = ssl._create_unverified_context()
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    for i in range(n):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            print(f"request {i + 1}: status {r.status}")
            return 1
    c.close()
    print(f"ok {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
