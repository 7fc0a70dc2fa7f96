"""A tiny WSGI app that needs nothing but Python's standard library.

Served by `npm start` (or `servestack serve examples/hello`): pages come from a pool of
Python workers, /static/ straight from the proxy.
"""
import json
import os
import time

COUNT = 0
PROGRESS = {"chunks": 0}


def application(environ, start_response):
    global COUNT
    COUNT += 1
    path = environ.get("PATH_INFO", "/")
    if path == "/":
        body = PAGE.format(pid=os.getpid(), count=COUNT).encode("utf-8")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/api/info":
        info = {
            "pid": os.getpid(),
            "handled": COUNT,
            "remote_addr": environ.get("REMOTE_ADDR"),
            "scheme": environ.get("wsgi.url_scheme"),
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "forwarded_proto": environ.get("HTTP_X_FORWARDED_PROTO"),
            "forwarded_host": environ.get("HTTP_X_FORWARDED_HOST"),
            "real_ip": environ.get("HTTP_X_REAL_IP"),
            "host": environ.get("HTTP_HOST"),
            "worker": os.environ.get("SERVESTACK_WORKER_ID"),
        }
        return json_response(start_response, info)
    if path == "/api/headers":
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        return json_response(start_response, headers)
    if path == "/api/big":
        # 50 MiB in 64 KiB chunks; /api/progress tells how far the generator got.
        start_response("200 OK", [("Content-Type", "application/octet-stream")])

        def chunks():
            PROGRESS["chunks"] = 0
            for _ in range(800):
                PROGRESS["chunks"] += 1
                yield b"x" * 65536

        return chunks()
    if path == "/api/progress":
        return json_response(start_response, PROGRESS)
    if path == "/api/echo":
        data = environ["wsgi.input"].read()
        import hashlib

        return json_response(start_response, {"length": len(data), "sha256": hashlib.sha256(data).hexdigest(), "method": environ["REQUEST_METHOD"]})
    if path == "/api/sleep":
        seconds = float(environ.get("QUERY_STRING", "").partition("=")[2] or "1")
        time.sleep(seconds)
        return json_response(start_response, {"slept": seconds, "pid": os.getpid()})
    if path == "/api/stream":
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])

        def chunks():
            for i in range(5):
                yield ("part %d at %.3f\n" % (i, time.time())).encode()
                time.sleep(0.2)

        return chunks()
    body = b"not found\n"
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def json_response(start_response, data):
    body = json.dumps(data).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


PAGE = """<!doctype html>
<html>
  <head>
    <meta charset="utf-8">
    <title>Hello from ServeStack</title>
    <link rel="stylesheet" href="/static/style.css">
  </head>
  <body>
    <h1>Hello from ServeStack</h1>
    <p>This page came from Python worker pid {pid} (its request number {count}).</p>
    <p>The stylesheet came straight from the proxy. Reload to see the workers take turns.</p>
    <p><a href="/api/info">/api/info</a> shows what the app sees of the request.</p>
  </body>
</html>
"""
