"""ASGI side of the ServeStack worker runtime (stdlib only).

One asyncio loop in the main thread runs every request of this worker as a task;
a reader thread turns channel frames into loop callbacks. The worker says it is
ready only after the app's lifespan startup has finished, so no request reaches
an app that is still starting.
"""

import asyncio
import json
import os
import sys
import threading
import traceback
from urllib.parse import unquote

# Requests one ASGI worker takes at once; the arbiter still prefers the least busy.
CAPACITY = 100


class HttpRequest:
    __slots__ = ("rid", "head", "queue", "body_done", "response_done", "disconnected", "started", "status", "headers", "writable")

    def __init__(self, rid, head):
        self.rid = rid
        self.head = head
        self.queue = asyncio.Queue()
        self.body_done = not head.get("hasBody")
        self.response_done = asyncio.Event()
        self.disconnected = False
        self.started = False
        self.status = None
        self.headers = None
        self.writable = asyncio.Event()  # cleared while the client reads slower than the app sends
        self.writable.set()


def build_scope(head, state):
    path = head["path"]
    headers = [[k.encode("latin-1"), v.encode("latin-1")] for k, v in head["headers"]]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": head["httpVersion"],
        "method": head["method"],
        "scheme": head["scheme"],
        "path": unquote(path),
        "raw_path": path.encode("latin-1", "replace"),
        "query_string": head["query"].encode("latin-1", "replace"),
        "root_path": "",
        "headers": headers,
        "client": (head["remoteAddr"], head["remotePort"]),
        "server": (head["serverName"], head["serverPort"]),
        "state": dict(state),
    }


async def lifespan(app, state, phase, events):
    """Runs the app's lifespan protocol; an app without one is fine (as uvicorn's 'auto')."""
    if phase == "startup":
        queue = asyncio.Queue()
        done = asyncio.get_running_loop().create_future()
        events["queue"] = queue

        async def receive():
            return await queue.get()

        async def send(message):
            kind = message["type"]
            if kind in ("lifespan.startup.complete", "lifespan.shutdown.complete") and not done.done():
                done.set_result(None)
            elif kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
                sys.stderr.write("servestack: lifespan %s: %s\n" % (kind, message.get("message", "")))
                if not done.done():
                    done.set_result(None)

        async def runner():
            try:
                await app({"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}, receive, send)
            except Exception:
                pass  # an app that does not speak lifespan raises here; that is allowed
            if not done.done():
                done.set_result(None)

        events["task"] = asyncio.ensure_future(runner())
        await queue.put({"type": "lifespan.startup"})
        await done
        events["done"] = None
    else:
        queue = events.get("queue")
        task = events.get("task")
        if queue is None or task is None or task.done():
            return
        await queue.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        except Exception:
            pass


def run(app, channel, control, w, send_ready):
    """w: the worker module (frame constants, encode_head)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    requests = {}
    state = {}
    stopping = {"flag": False, "event": None}

    async def handle(req):
        rid = req.rid

        async def receive():
            if req.disconnected:
                return {"type": "http.disconnect"}
            if req.body_done and req.queue.empty():
                await req.response_done.wait()
                return {"type": "http.disconnect"}
            return await req.queue.get()

        async def send(message):
            kind = message["type"]
            if req.disconnected:
                return
            if kind == "http.response.start":
                req.status = int(message["status"])
                req.headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in message.get("headers", [])]
            elif kind == "http.response.body":
                if not req.writable.is_set():
                    await req.writable.wait()
                    if req.disconnected:
                        return
                body = message.get("body", b"")
                more = message.get("more_body", False)
                frames = []
                if not req.started:
                    frames.append((w.F_START, rid, w.encode_head(req.status or 200, req.headers or [])))
                    req.started = True
                if body:
                    frames.append((w.F_CHUNK, rid, bytes(body)))
                if not more:
                    frames.append((w.F_END, rid, b""))
                    req.response_done.set()
                channel.send(*frames)

        try:
            await app(build_scope(req.head, state), receive, send)
            if not req.response_done.is_set():
                if not req.started:
                    channel.send((w.F_START, rid, w.encode_head(req.status or 500, req.headers or [])), (w.F_END, rid, b""))
                else:
                    channel.send((w.F_END, rid, b""))
        except Exception:
            traceback.print_exc()
            sys.stderr.flush()
            if not req.started:
                body = b"Internal Server Error\n"
                channel.send(
                    (w.F_START, rid, w.encode_head(500, [["content-type", "text/plain; charset=utf-8"], ["content-length", str(len(body))]])),
                    (w.F_CHUNK, rid, body),
                    (w.F_END, rid, b""),
                )
            elif not req.response_done.is_set():
                channel.send((w.F_END, rid, b'{"error":true}'))
        finally:
            req.response_done.set()
            requests.pop(rid, None)
            if stopping["flag"] and not requests and stopping["event"] is not None:
                stopping["event"].set()

    def on_frame(ftype, rid, payload):
        if ftype == w.F_REQUEST:
            req = HttpRequest(rid, json.loads(payload))
            requests[rid] = req
            if req.body_done:
                req.queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
            loop.create_task(handle(req))
        elif ftype == w.F_BODY:
            req = requests.get(rid)
            if req is not None:
                req.queue.put_nowait({"type": "http.request", "body": payload, "more_body": True})
        elif ftype == w.F_BODY_END:
            req = requests.get(rid)
            if req is not None:
                req.body_done = True
                req.queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        elif ftype == w.F_ABORT:
            req = requests.get(rid)
            if req is not None:
                req.disconnected = True
                req.queue.put_nowait({"type": "http.disconnect"})
                req.writable.set()
        elif ftype == w.F_PAUSE:
            req = requests.get(rid)
            if req is not None:
                req.writable.clear()
        elif ftype == w.F_RESUME:
            req = requests.get(rid)
            if req is not None:
                req.writable.set()
        elif ftype == w.F_STOP:
            stopping["flag"] = True
            if not requests:
                stopping["event"].set()
        elif ftype == w.F_DUMP_STACK:
            import faulthandler

            sys.stderr.write("servestack: stack of every thread of worker pid %d:\n" % os.getpid())
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            for task in asyncio.all_tasks(loop):
                task.print_stack(file=sys.stderr)
            sys.stderr.flush()
        # F_REVOKE is never sent to an ASGI worker: it never queues requests.

    def reader(source):
        for ftype, rid, payload in source.frames():
            loop.call_soon_threadsafe(on_frame, ftype, rid, payload)
        os._exit(0)  # the arbiter is gone: never outlive it

    async def main():
        stopping["event"] = asyncio.Event()
        events = {}
        await lifespan(app, state, "startup", events)
        send_ready()
        # Requests on the data channel, Abort/Pause/Resume/DumpStack on the control one.
        threading.Thread(target=reader, args=(channel,), name="servestack-reader", daemon=True).start()
        threading.Thread(target=reader, args=(control,), name="servestack-control", daemon=True).start()
        await stopping["event"].wait()
        await lifespan(app, state, "shutdown", events)

    loop.run_until_complete(main())
