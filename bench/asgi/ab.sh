#!/bin/bash
# Interleaved A/B of the ASGI runtime, end to end: FastAPI hello (bench/asgi/app.py), 2 workers,
# wrk -t2 -c64 -d8s after a 2 s warm-up, ROUNDS rounds of: ServeStack from BEFORE_DIST (a copy of an
# older dist/), ServeStack from AFTER_DIST, nginx -> uvicorn (uvloop, httptools, unix socket).
# Prints req/s, p99 and CPU µs per request per program for each run. Needs wrk, nginx, uvicorn.
# usage: BEFORE_DIST=/tmp/old-dist AFTER_DIST=dist ROUNDS=5 bench/asgi/ab.sh
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/servestack-asgi-ab.XXXXXX)
mkdir -p $W/app $W/ngx/temp && cp $HERE/app.py $W/app/
sed "s|/tmp/ab|$W|g" $HERE/nginx.conf > $W/ngx/nginx.conf
ROUNDS=${ROUNDS:-5}
APP=$W/app
run_wrk() { # url name rootpid...
  local url=$1 name=$2; shift 2
  wrk -t2 -c64 -d2s "$url" >/dev/null 2>&1
  local c0; c0=$(for p in "$@"; do python3 $HERE/cpu.py $p; done | tr '\n' ' ')
  local out; out=$(wrk -t2 -c64 -d8s --latency "$url" 2>&1)
  local c1; c1=$(for p in "$@"; do python3 $HERE/cpu.py $p; done | tr '\n' ' ')
  python3 - "$name" "$c0" "$c1" "$out" <<'PY'
import sys, re, collections
name, c0, c1, out = sys.argv[1:]
def parse(s):
    t = collections.Counter()
    for kv in s.split():
        k, v = kv.rsplit(":", 1); t[k] += int(v)
    return t
a, b = parse(c0), parse(c1)
reqs = int(re.search(r"(\d+) requests in", out).group(1)); rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
p99 = re.search(r"99%\s+(\S+)", out).group(1); errs = "non-2xx!" if "Non-2xx" in out else ""
cpu = " ".join("%s=%.0fus" % (k, (b[k] - a[k]) / 100 / reqs * 1e6) for k in sorted(b))
print(name, rps, p99, cpu, errs)
PY
}
wait_up() { for i in $(seq 1 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; echo "not up: $1"; return 1; }
ss() { # name dist env...
  local name=$1 dist=$2; shift 2
  mkdir -p $W/run-$name
  env "$@" XDG_RUNTIME_DIR=$W/run-$name node $dist/cli.js serve $APP --port 18301 --python /usr/bin/python3 --workers 2 >/dev/null 2>$W/$name.err &
  local pid=$!
  wait_up http://127.0.0.1:18301/ && run_wrk http://127.0.0.1:18301/ $name $pid
  kill $pid; wait $pid 2>/dev/null
}
uv() {
  rm -f $W/uv.sock
  (cd $APP && exec /usr/bin/python3 -m uvicorn --uds $W/uv.sock --workers 2 --loop uvloop --http httptools --no-access-log --log-level warning app:app) 2>$W/uv.err &
  local upid=$!
  /usr/sbin/nginx -p $W/ngx -c $W/ngx/nginx.conf -e $W/ngx/error.log &
  local npid=$!
  wait_up http://127.0.0.1:18302/ && run_wrk http://127.0.0.1:18302/ nginx+uvicorn $upid $npid
  kill -QUIT $npid; kill $upid; wait $npid $upid 2>/dev/null
}
for r in $(seq 1 $ROUNDS); do
  echo "# round $r $(cut -d' ' -f1-3 /proc/loadavg)"
  ss before $BEFORE_DIST
  ss after $AFTER_DIST
  uv
done
