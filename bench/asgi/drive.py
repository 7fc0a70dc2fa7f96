"""Speaks the worker protocol to one worker process, as the arbiter does (socketpairs on
fds 3 and 4): N GET requests with K in flight, after a warm-up; prints the worker's CPU
and the wall time per request. Linux only (/proc). --profile OUT writes a cProfile of
the worker (pstats format) when it stops.

usage: python3 bench/asgi/drive.py RUNTIME_DIR APP_DIR TARGET N K [--profile OUT]
  e.g. python3 bench/asgi/drive.py dist/python bench/asgi app:app 6000 32"""
import json, os, socket, struct, subprocess, sys, time

H = struct.Struct(">IBI")
runtime, appdir, target, n, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
env = dict(os.environ)
a3, b3 = socket.socketpair()
a4, b4 = socket.socketpair()
pre = []
if "--profile" in sys.argv:
    # The worker leaves by os._exit: dump the profile just before.
    pre = ["-c", "import cProfile, os, sys; out = os.environ['PROF_OUT']; sys.argv = sys.argv[1:]; sys.path.insert(0, os.path.dirname(sys.argv[0])); import servestack_worker as w; p = cProfile.Profile(); x = os._exit; os._exit = lambda c: (p.disable(), p.dump_stats(out), x(c)); p.enable(); w.main(sys.argv[1:])"]
    env["PROF_OUT"] = sys.argv[sys.argv.index("--profile") + 1]
def child():
    os.dup2(b3.fileno(), 3); os.dup2(b4.fileno(), 4)
proc = subprocess.Popen([sys.executable, "-u"] + pre + [os.path.join(runtime, "servestack_worker.py"), "--app", target, "--cwd", appdir],
                        preexec_fn=child, pass_fds=(3, 4), env=env)
b3.close(); b4.close()
head = json.dumps({"method": "GET", "path": "/", "query": "", "headers": [["host", "127.0.0.1:8000"], ["user-agent", "wrk"], ["x-forwarded-for", "127.0.0.1"], ["x-forwarded-proto", "http"], ["x-forwarded-host", "127.0.0.1:8000"], ["x-forwarded-port", "8000"], ["x-real-ip", "127.0.0.1"]],
                   "scheme": "http", "serverName": "127.0.0.1", "serverPort": 8000, "remoteAddr": "127.0.0.1", "remotePort": 50000, "httpVersion": "1.1", "hasBody": False}).encode()
buf = bytearray()
def frames():
    global buf
    while True:
        chunk = a3.recv(1 << 20)
        if not chunk: raise SystemExit("worker closed")
        buf += chunk
        out = []; pos = 0
        while len(buf) - pos >= 9:
            l, t, r = H.unpack_from(buf, pos)
            if len(buf) - pos - 9 < l: break
            out.append((t, r, bytes(buf[pos + 9:pos + 9 + l]))); pos += 9 + l
        del buf[:pos]
        if out: return out
def cpu():
    with open("/proc/%d/stat" % proc.pid) as f:
        p = f.read().rsplit(")", 1)[1].split()
    return (int(p[11]) + int(p[12])) / os.sysconf("SC_CLK_TCK")
while True:
    if any(t == 16 for t, _, _ in frames()): break
def run(count):
    sent = done = 0; rid = 1; bodies = 0
    while sent < min(k, count):
        a3.sendall(H.pack(len(head), 1, rid) + head); rid += 1; sent += 1
    while done < count:
        out = []
        for t, r, p in frames():
            if t == 20:
                done += 1
                if sent < count:
                    out.append(H.pack(len(head), 1, rid) + head); rid += 1; sent += 1
            elif t == 19: bodies += 1
        if out: a3.sendall(b"".join(out))
    return bodies
run(min(2000, n))  # warm up
c0 = cpu(); t0 = time.perf_counter()
run(n)
c1 = cpu(); t1 = time.perf_counter()
print("%s k=%d: worker CPU %.1f us/req, wall %.1f us/req" % (runtime, k, (c1 - c0) / n * 1e6, (t1 - t0) / n * 1e6))
a3.sendall(H.pack(0, 5, 0))
proc.wait(timeout=20)
