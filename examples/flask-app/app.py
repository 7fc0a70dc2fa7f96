"""A small Flask app for ServeStack's examples and integration tests.

Every route exists to show (or test) one thing a proxy + worker pool must get right.
State is in memory and per worker process on purpose: with 2 workers, /api/whoami and
/api/count show which process answered.
"""
import hashlib
import os
import threading
import time

from flask import Flask, Response, jsonify, render_template, request, stream_with_context

app = Flask(__name__)

_lock = threading.Lock()  # workers may run threads; keep the counters consistent
_items = [{"id": 1, "name": "first item"}]
_count = 0


@app.before_request
def _count_request():
    global _count
    with _lock:
        _count += 1


@app.get("/")
def index():
    # url_for('static', ...) in the template builds /static/... links that the proxy
    # serves from the folder without reaching Python.
    return render_template("index.html", pid=os.getpid(), items=list(_items))


@app.get("/api/items")
def list_items():
    return jsonify(list(_items))


@app.post("/api/items")
def add_item():
    data = request.get_json(silent=True) or request.form
    name = (data.get("name") or "").strip() if data else ""
    if not name:
        return jsonify(error='send {"name": "..."} as JSON or a form field'), 400
    with _lock:
        item = {"id": max((i["id"] for i in _items), default=0) + 1, "name": name}
        _items.append(item)
    return jsonify(item), 201


@app.get("/api/whoami")
def whoami():
    # What the app saw: tests check the proxy's forwarding headers and that the worker
    # runtime trusted them (scheme, host, remote address).
    forwarded = {k: v for k, v in request.headers.items() if k.lower().startswith("x-forwarded-")}
    return jsonify(
        pid=os.getpid(),
        remote_addr=request.remote_addr,
        scheme=request.scheme,
        host=request.host,
        url=request.url,
        forwarded=forwarded,
    )


@app.get("/api/count")
def count():
    # Requests this worker process has handled, this one included.
    return jsonify(pid=os.getpid(), count=_count)


@app.route("/echo", methods=["GET", "POST"])
def echo():
    fields = list(request.form.items(multi=True)) if request.method == "POST" else None
    return render_template("echo.html", fields=fields, pid=os.getpid())


@app.get("/slow")
def slow():
    try:
        seconds = float(request.args.get("s", "1"))
    except ValueError:
        return jsonify(error="s must be a number of seconds"), 400
    seconds = min(max(seconds, 0.0), 60.0)  # bounded: a test typo must not hang a worker
    time.sleep(seconds)
    return jsonify(pid=os.getpid(), slept=seconds)


@app.get("/stream")
def stream():
    def chunks():
        for i in range(5):
            yield f"chunk {i} from {os.getpid()}\n"
            time.sleep(0.1)

    return Response(stream_with_context(chunks()), mimetype="text/plain")


@app.post("/upload")
def upload():
    # Read the raw body in pieces so a large upload never sits in memory whole.
    digest = hashlib.sha256()
    length = 0
    while True:
        chunk = request.stream.read(64 * 1024)
        if not chunk:
            break
        digest.update(chunk)
        length += len(chunk)
    return jsonify(sha256=digest.hexdigest(), length=length)


if __name__ == "__main__":
    # Without ServeStack: Flask's development server (it serves /static/ itself).
    app.run(host="127.0.0.1", port=5000)
