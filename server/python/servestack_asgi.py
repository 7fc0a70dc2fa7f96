"""ASGI side of the ServeStack worker runtime (stdlib only; uvloop on request).

One event loop in the main thread runs every request of this worker as a task. The
channels, the contract and the frame dispatcher are servestack_channel's, as for the
WSGI worker: on POSIX the loop reads both channels itself (add_reader), elsewhere a
reader thread per channel hands frames to the loop. Frames sent during one loop turn
leave in one write. The worker says it is ready only after the app's lifespan startup
has finished, so no request reaches an app that is still starting.
"""

import asyncio
import collections
import os
import sys
import traceback
from urllib.parse import unquote

import servestack_channel as ch
from servestack_channel import F_CHUNK, F_END, F_REVOKED, F_START, encode_head

# Requests one ASGI worker takes at once; the arbiter still prefers the least busy.
CAPACITY = 100

LOOP_ENV = "SERVESTACK_ASGI_LOOP"


def new_event_loop():
    """asyncio's own loop unless SERVESTACK_ASGI_LOOP=uvloop asks for uvloop (when the
    interpreter has it). Measured with a FastAPI hello, uvloop cost this runtime more CPU
    per request, not less (docs/worker-contract.md): the runtime reads and writes its
    channels itself, and uvloop's speed is in the transports it does not use. An app
    whose own network I/O goes through asyncio transports may still gain from it."""
    choice = os.environ.get(LOOP_ENV, "asyncio")
    if choice not in ("asyncio", "uvloop"):
        sys.stderr.write("servestack: %s=%r is not one of asyncio, uvloop; using asyncio\n" % (LOOP_ENV, choice))
        choice = "asyncio"
    try:
        import uvloop
    except ImportError:
        uvloop = None
    if choice == "uvloop":
        if uvloop is not None:
            return uvloop.new_event_loop(), "uvloop %s (%s=uvloop)" % (getattr(uvloop, "__version__", ""), LOOP_ENV)
        sys.stderr.write("servestack: %s=uvloop but this interpreter has no uvloop; using asyncio\n" % LOOP_ENV)
    loop = asyncio.new_event_loop()
    name = "asyncio (%s)" % type(loop).__name__
    if uvloop is not None and choice != "uvloop":
        name += "; uvloop is installed, %s=uvloop would use it" % LOOP_ENV
    return loop, name


class HttpRequest:
    __slots__ = (
        "rid", "head", "task", "messages", "body_done", "final_given", "waiter", "disconnected",
        "running", "revoked", "started", "finished", "status", "headers", "resume",
    )

    def __init__(self, rid, head):
        self.rid = rid
        self.head = head
        self.task = None
        self.messages = None  # body pieces not yet received by the app
        self.body_done = not head["hasBody"]
        self.final_given = False  # the app has had the message with more_body False
        self.waiter = None  # the future a waiting receive() sleeps on, made only then
        self.disconnected = False
        self.running = False  # the app has been called
        self.revoked = False
        self.started = False  # the response head went out
        self.finished = False
        self.status = None
        self.headers = ()
        self.resume = None  # a future while the proxy's buffers are full (Pause)


def wake(req):
    waiter = req.waiter
    if waiter is not None:
        req.waiter = None
        if not waiter.done():
            waiter.set_result(None)


def build_scope(head, state):
    path = head["path"]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": head["httpVersion"],
        "method": head["method"],
        "scheme": head["scheme"],
        "path": unquote(path) if "%" in path else path,
        "raw_path": path.encode("latin-1", "replace"),
        "query_string": head["query"].encode("latin-1", "replace"),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in head["headers"]],
        "client": (head["remoteAddr"], head["remotePort"]),
        "server": (head["serverName"], head["serverPort"]),
        "state": state.copy(),
    }


def decode_headers(headers):
    return [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers]


INTERNAL_ERROR = b"Internal Server Error\n"
INTERNAL_ERROR_HEAD = encode_head(500, [["content-type", "text/plain; charset=utf-8"], ["content-length", str(len(INTERNAL_ERROR))]])


class Runtime:
    """The frame handler of an ASGI worker (see servestack_channel.dispatcher); every
    on_* runs on the loop's thread."""

    def __init__(self, app, loop, writer):
        self.app = app
        self.loop = loop
        self.writer = writer
        self.requests = {}  # rid -> HttpRequest, from its Request frame to its End
        self.revoked = ch.BoundedIdSet()  # revoked before the data channel brought it
        self.aborted = ch.BoundedIdSet()  # aborted before the data channel brought it
        self.state = {}  # the lifespan state; each request's scope has a copy
        self.stopping = False
        self.stopped = loop.create_future()

    # ── a request's run ──
    async def handle(self, req):
        if req.revoked:
            return  # given back to the arbiter before it ran
        req.running = True
        rid = req.rid
        loop = self.loop
        send_frames = self.writer.send

        async def receive():
            while True:
                if req.disconnected:
                    return {"type": "http.disconnect"}
                messages = req.messages
                if messages:
                    message = messages.popleft()
                    return message
                if req.body_done:
                    if not req.final_given:
                        req.final_given = True
                        return {"type": "http.request", "body": b"", "more_body": False}
                    if req.finished:
                        return {"type": "http.disconnect"}
                # Wait for a body piece, the body's end, the response's end or the client leaving.
                waiter = req.waiter = loop.create_future()
                await waiter

        async def send(message):
            if req.disconnected:
                return
            kind = message["type"]
            if kind == "http.response.body":
                while req.resume is not None:
                    await req.resume
                    if req.disconnected:
                        return
                if req.finished:
                    return
                body = message.get("body", b"")
                more = message.get("more_body", False)
                frames = []
                if not req.started:
                    req.started = True
                    frames.append((F_START, rid, encode_head(req.status or 200, decode_headers(req.headers))))
                if body:
                    frames.append((F_CHUNK, rid, bytes(body)))
                if not more:
                    req.finished = True
                    frames.append((F_END, rid, b""))
                    wake(req)
                if frames:
                    send_frames(*frames)
            elif kind == "http.response.start":
                req.status = int(message["status"])
                req.headers = message.get("headers", ())

        failed = False
        try:
            await self.app(build_scope(req.head, self.state), receive, send)
        except Exception:
            failed = True
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            if not req.finished:
                # The arbiter holds the request until its End, whatever happened.
                req.finished = True
                if req.started:
                    # Failed after its head went out: the proxy cuts the connection.
                    send_frames((F_END, rid, b'{"error":true}' if failed else b""))
                elif req.disconnected:
                    send_frames((F_END, rid, b""))
                elif failed:
                    send_frames((F_START, rid, INTERNAL_ERROR_HEAD), (F_CHUNK, rid, INTERNAL_ERROR), (F_END, rid, b""))
                else:
                    # The app returned without a body: the status it set, or 500.
                    send_frames((F_START, rid, encode_head(req.status or 500, decode_headers(req.headers))), (F_END, rid, b""))
            wake(req)
            self.requests.pop(rid, None)
            if self.stopping and not self.requests and not self.stopped.done():
                self.stopped.set_result(None)

    # ── frames (servestack_channel.dispatcher) ──
    def on_request(self, rid, head):
        if self.revoked.take(rid):
            return  # the arbiter has it back already
        if self.aborted.take(rid):
            self.writer.send((F_END, rid, b""))  # the client left before it was read
            return
        req = HttpRequest(rid, head)
        self.requests[rid] = req
        req.task = self.loop.create_task(self.handle(req))

    def on_body(self, rid, payload):
        req = self.requests.get(rid)
        if req is not None:
            message = {"type": "http.request", "body": payload, "more_body": True}
            if req.messages is None:
                req.messages = collections.deque()
            req.messages.append(message)
            wake(req)

    def on_body_end(self, rid, payload):
        req = self.requests.get(rid)
        if req is not None:
            req.body_done = True
            wake(req)

    def on_abort(self, rid, payload):
        req = self.requests.get(rid)
        if req is None:
            self.aborted.add(rid)
            return
        req.disconnected = True
        wake(req)
        self.release(req)

    def on_pause(self, rid, payload):
        req = self.requests.get(rid)
        if req is not None and req.resume is None:
            req.resume = self.loop.create_future()

    def on_resume(self, rid, payload):
        req = self.requests.get(rid)
        if req is not None:
            self.release(req)

    def release(self, req):
        resume = req.resume
        if resume is not None:
            req.resume = None
            if not resume.done():
                resume.set_result(None)

    def on_revoke(self, rid, payload):
        # The arbiter does not send Revoke to an ASGI worker (it runs what it gets at
        # once). One that arrives anyway is honoured while the app has not been called
        # (the request is still unread, or its task has not run), else ignored: the
        # request runs to its End as usual.
        req = self.requests.get(rid)
        if req is None:
            self.revoked.add(rid)
        elif not req.running:
            req.revoked = True
            del self.requests[rid]
        else:
            return
        self.writer.send((F_REVOKED, rid, b""))
        if self.stopping and not self.requests and not self.stopped.done():
            self.stopped.set_result(None)

    def on_stop(self, rid, payload):
        self.stopping = True
        if not self.requests and not self.stopped.done():
            self.stopped.set_result(None)

    def on_dump_stack(self, rid, payload):
        def tasks(err):
            for task in asyncio.all_tasks(self.loop):
                task.print_stack(file=err)

        ch.dump_stacks(tasks)
        import servestack_debug

        servestack_debug.send_stack_report(self.writer, rid)


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


def run(app, channel, control, send_ready):
    loop, loop_name = new_event_loop()
    asyncio.set_event_loop(loop)
    sys.stderr.write("servestack: ASGI worker pid %d runs on %s; channels read by %s\n" % (os.getpid(), loop_name, "the loop" if ch.IO == "select" else "threads"))
    sys.stderr.flush()
    runtime = Runtime(app, loop, ch.BatchWriter(channel, loop))
    dispatch = ch.dispatcher(runtime)

    async def main():
        events = {}
        await lifespan(app, runtime.state, "startup", events)
        send_ready()
        # Requests on the data channel; Abort/Pause/Resume/Revoke/DumpStack on the control one.
        ch.feed_loop(loop, channel, dispatch, "servestack-reader")
        ch.feed_loop(loop, control, dispatch, "servestack-control")
        await runtime.stopped
        await lifespan(app, runtime.state, "shutdown", events)
        runtime.writer.flush()

    loop.run_until_complete(main())
