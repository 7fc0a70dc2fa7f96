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
import json
import os
import struct
import sys
import traceback
from urllib.parse import unquote

import servestack_channel as ch
from servestack_channel import (
    F_CHUNK, F_END, F_REVOKED, F_START, F_WS_ACCEPT, F_WS_BINARY, F_WS_CLOSE, F_WS_END,
    F_WS_HOLD_CLIENT, F_WS_RELEASE_CLIENT, F_WS_TEXT, encode_head,
)

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
        "root_path": head.get("scriptName", ""),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in head["headers"]],
        "client": (head["remoteAddr"], head["remotePort"]),
        "server": (head["serverName"], head["serverPort"]),
        "state": state.copy(),
    }


def decode_headers(headers):
    return [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers]

# ── WebSocket sessions ──────────────────────────────────────────────────────────────
# The arbiter terminates the client's WebSocket (Node's `ws`) and carries whole messages
# here; this side is the ASGI `websocket` scope. Flow control both ways: the arbiter
# sends Pause/Resume when the client reads slower than the app sends (the app's next
# send waits), and this side asks the arbiter to stop reading the client (WsHoldClient)
# while the app has more than CLIENT_HOLD_BYTES or CLIENT_HOLD_MESSAGES unread, and to
# read it again (WsReleaseClient) once it is down to a quarter of both.
CLIENT_HOLD_BYTES = 1024 * 1024
CLIENT_HOLD_MESSAGES = 64
CLOSE_CODE = struct.Struct(">H")
_encode_json = json.JSONEncoder(separators=(",", ":")).encode


class ClientDisconnected(OSError):
    """websocket.send after the client went away (the ASGI spec asks for an OSError)."""


class WebSocketSession:
    __slots__ = (
        "rid", "head", "task", "messages", "queued_bytes", "held", "waiter", "connect_given",
        "client_close", "disconnect_given", "accepted", "closed", "running", "revoked", "resume",
        "disconnected",
    )

    def __init__(self, rid, head):
        self.rid = rid
        self.head = head
        self.task = None
        self.messages = collections.deque()  # websocket.receive events the app has not taken
        self.queued_bytes = 0
        self.held = False  # the arbiter was asked to stop reading the client
        self.waiter = None
        self.connect_given = False
        self.client_close = None  # (code, reason) once the client (or the arbiter) closed
        self.disconnect_given = False
        self.accepted = False
        self.closed = False  # the app sent websocket.close
        self.running = False
        self.revoked = False
        self.resume = None  # a future while the client's buffers are full (Pause)
        self.disconnected = False  # as HttpRequest's: set with client_close, read by on_abort/release


def build_websocket_scope(head, state):
    scope = build_scope(head, state)
    del scope["method"]
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if head["scheme"] == "https" else "ws"
    scope["subprotocols"] = list(head.get("subprotocols", ()))
    return scope


def encode_close(code, reason):
    return CLOSE_CODE.pack(code) + (reason or "").encode("utf-8")


def decode_close(payload):
    if len(payload) < 2:
        return 1005, ""
    return CLOSE_CODE.unpack_from(payload)[0], payload[2:].decode("utf-8", "replace")


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
        answer = self.writer.send_answer

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
                if not req.started and not more:
                    # The whole response in this one message (most apps): one Answer frame.
                    head = encode_head(req.status or 200, decode_headers(req.headers))
                    body = bytes(body)
                    req.started = req.finished = True
                    answer(rid, head, body)
                    wake(req)
                    return
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

    # ── a WebSocket session's run ──
    async def handle_websocket(self, ws):
        ws.running = True
        rid = ws.rid
        loop = self.loop
        send_frames = self.writer.send

        async def receive():
            while True:
                if not ws.connect_given:
                    ws.connect_given = True
                    return {"type": "websocket.connect"}
                messages = ws.messages
                if messages:
                    message = messages.popleft()
                    ws.queued_bytes -= message.pop("size")
                    if ws.held and ws.queued_bytes <= CLIENT_HOLD_BYTES // 4 and len(messages) <= CLIENT_HOLD_MESSAGES // 4:
                        ws.held = False
                        send_frames((F_WS_RELEASE_CLIENT, rid, b""))
                    return message
                if ws.client_close is not None:
                    ws.disconnect_given = True
                    code, reason = ws.client_close
                    return {"type": "websocket.disconnect", "code": code, "reason": reason}
                waiter = ws.waiter = loop.create_future()
                await waiter

        async def send(message):
            kind = message["type"]
            if ws.client_close is not None and kind != "websocket.close":
                raise ClientDisconnected("the WebSocket client has gone (close code %d)" % ws.client_close[0])
            if ws.closed:
                raise RuntimeError("%s after websocket.close" % kind)
            if kind == "websocket.send":
                if not ws.accepted:
                    raise RuntimeError("websocket.send before websocket.accept")
                while ws.resume is not None:
                    await ws.resume
                    if ws.client_close is not None:
                        raise ClientDisconnected("the WebSocket client has gone (close code %d)" % ws.client_close[0])
                text = message.get("text")
                if text is not None:
                    send_frames((F_WS_TEXT, rid, text.encode("utf-8")))
                else:
                    send_frames((F_WS_BINARY, rid, bytes(message.get("bytes") or b"")))
                # One loop turn: the message leaves, and a Pause from the control channel
                # is read before the app's next send (an app that sends in a loop never
                # awaits anything else).
                await asyncio.sleep(0)
            elif kind == "websocket.accept":
                if ws.accepted:
                    raise RuntimeError("websocket.accept sent twice")
                ws.accepted = True
                accept = {"headers": decode_headers(message.get("headers") or ())}
                if message.get("subprotocol"):
                    accept["subprotocol"] = message["subprotocol"]
                send_frames((F_WS_ACCEPT, rid, _encode_json(accept).encode("utf-8")))
            elif kind == "websocket.close":
                if ws.client_close is not None:
                    return  # already gone: nothing to tell
                ws.closed = True
                send_frames((F_WS_CLOSE, rid, encode_close(int(message.get("code") or 1000), message.get("reason"))))
            else:
                # websocket.http.response.* is an extension this server does not offer (the
                # scope has no "extensions"): an app that wants to refuse closes before accept (403).
                raise RuntimeError("unsupported ASGI message %r in a websocket scope" % kind)

        failed = False
        try:
            await self.app(build_websocket_scope(ws.head, self.state), receive, send)
        except Exception:
            failed = True
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            send_frames((F_WS_END, rid, b'{"error":true}' if failed else b""))
            self.requests.pop(rid, None)
            if self.stopping and not self.requests and not self.stopped.done():
                self.stopped.set_result(None)

    def on_ws_connect(self, rid, head):
        ws = WebSocketSession(rid, head)
        self.requests[rid] = ws
        ws.task = self.loop.create_task(self.handle_websocket(ws))

    def on_ws_message(self, rid, message, size):
        ws = self.requests.get(rid)
        if ws is None or ws.client_close is not None:
            return
        message["size"] = size
        ws.messages.append(message)
        ws.queued_bytes += size
        if not ws.held and (ws.queued_bytes > CLIENT_HOLD_BYTES or len(ws.messages) > CLIENT_HOLD_MESSAGES):
            ws.held = True
            self.writer.send((F_WS_HOLD_CLIENT, rid, b""))
        wake(ws)

    def on_ws_text(self, rid, payload):
        self.on_ws_message(rid, {"type": "websocket.receive", "text": payload.decode("utf-8", "replace")}, len(payload))

    def on_ws_binary(self, rid, payload):
        self.on_ws_message(rid, {"type": "websocket.receive", "bytes": bytes(payload)}, len(payload))

    def on_ws_close(self, rid, payload):
        """The client closed (its code), the connection was lost (1006), or the arbiter
        ends the session (1001: the worker is draining and its deadline passed)."""
        ws = self.requests.get(rid)
        if ws is None or ws.client_close is not None:
            return
        ws.client_close = decode_close(payload)
        ws.disconnected = True
        wake(ws)
        self.release(ws)

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
