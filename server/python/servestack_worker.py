"""ServeStack worker runtime: runs one WSGI or ASGI app for the arbiter.

Stdlib only, Python >= 3.8: it must run in whatever interpreter the user has.
The arbiter (server/pool/) spawns this file as a fresh interpreter (never a fork)
and talks to it over fd 3 (data) and fd 4 (control), carrying length-prefixed frames;
stdout and stderr stay free for the app's own output. The channels, the contract and
the frame dispatcher live in servestack_channel.py, shared with the ASGI runtime
(servestack_asgi.py, imported only for an ASGI app: a WSGI worker never loads asyncio).
"""

import argparse
import collections
import importlib
import inspect
import io
import json
import os
import sys
import threading
import traceback
from urllib.parse import unquote_to_bytes

import servestack_channel as ch
from servestack_channel import F_CHUNK, F_END, F_READY, F_REVOKED, F_START, HEAD_FIELD_COUNT, encode_head


class RequestBody(io.RawIOBase):
    """wsgi.input: the request body as it streams in from the arbiter."""

    def __init__(self):
        super().__init__()
        self.cond = threading.Condition()
        self.chunks = collections.deque()
        self.done = False
        self.aborted = False
        # Inline mode: no reader thread, so a read that finds nothing pulls frames itself.
        self.pull = None

    # called by the reader thread
    def feed(self, data):
        with self.cond:
            self.chunks.append(data)
            self.cond.notify()

    def finish(self, aborted=False):
        with self.cond:
            self.done = True
            self.aborted = self.aborted or aborted
            self.cond.notify_all()

    # read side (the app)
    def readable(self):
        return True

    def _take(self, limit):
        """One chunk of at most `limit` bytes (-1: any), b'' at the end."""
        while True:
            with self.cond:
                if self.chunks or self.done:
                    break
                if self.pull is None:
                    self.cond.wait()
                    continue
            self.pull()
        with self.cond:
            if not self.chunks:
                if self.aborted:
                    raise IOError("client disconnected before the request body was complete")
                return b""
            chunk = self.chunks.popleft()
            if 0 <= limit < len(chunk):
                self.chunks.appendleft(chunk[limit:])
                chunk = chunk[:limit]
            return chunk

    def read(self, size=-1):
        if size is None or size < 0:
            parts = []
            while True:
                chunk = self._take(-1)
                if not chunk:
                    return b"".join(parts)
                parts.append(chunk)
        parts = []
        remaining = size
        while remaining > 0:
            chunk = self._take(remaining)
            if not chunk:
                break
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def readinto(self, b):
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def readline(self, size=-1):
        line = bytearray()
        while size < 0 or len(line) < size:
            while self.pull is not None and not self.chunks and not self.done:
                self.pull()
            with self.cond:
                while not self.chunks and not self.done:
                    self.cond.wait()
                if not self.chunks:
                    break
                chunk = self.chunks.popleft()
                nl = chunk.find(b"\n")
                take = len(chunk) if nl < 0 else nl + 1
                if size >= 0:
                    take = min(take, size - len(line))
                line += chunk[:take]
                if take < len(chunk):
                    self.chunks.appendleft(chunk[take:])
                if nl >= 0 and take == nl + 1:
                    break
        return bytes(line)

    def readlines(self, hint=-1):
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")


class EmptyBody(RequestBody):
    def __init__(self):
        super().__init__()
        self.done = True


# Most requests have no body; they share one always-empty stream.
EMPTY_BODY = EmptyBody()


class Request:
    __slots__ = ("rid", "environ", "body", "started", "aborted", "writable")

    def __init__(self, rid, decoded):
        environ, has_body = decoded
        self.rid = rid
        self.environ = environ
        self.body = environ["wsgi.input"] = RequestBody() if has_body else EMPTY_BODY
        self.started = False
        self.aborted = False
        # Made on the first Pause frame: while it is cleared (the proxy's memory and temp-file
        # buffers for this response are both full) the app's next write waits.
        self.writable = None


# ── loading the app ───────────────────────────────────────────────────────────────


class AppLoadError(Exception):
    pass


def load_target(target):
    """Gunicorn's syntax: 'module:name', 'module:factory()', 'module:factory(1, x="y")',
    'module' alone meaning 'module:application'."""
    module_name, _, expr = target.partition(":")
    expr = expr.strip() or "application"
    module = importlib.import_module(module_name.strip())
    name, paren, rest = expr.partition("(")
    obj = module
    for part in name.strip().split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(
                "module '%s' (%s) has no attribute '%s'; the app target is '%s'"
                % (module_name, getattr(module, "__file__", "?"), part, target)
            )
    if paren:
        import ast

        if not rest.rstrip().endswith(")"):
            raise AppLoadError("the app target '%s' has an unclosed call" % target)
        call = ast.parse(name.strip() + "(" + rest, mode="eval").body
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        obj = obj(*args, **kwargs)
    if obj is None:
        raise AppLoadError("the app target '%s' is None (does the factory return the app?)" % target)
    if not callable(obj):
        raise AppLoadError("the app target '%s' is not callable (it is a %s)" % (target, type(obj).__name__))
    return obj


def is_asgi(app):
    if inspect.iscoroutinefunction(app):
        return True
    call = getattr(app, "__call__", None)
    if call is not None and inspect.iscoroutinefunction(call):
        return True
    try:
        params = inspect.signature(app).parameters
    except (TypeError, ValueError):
        return False
    # An ASGI 3 callable takes (scope, receive, send); WSGI takes (environ, start_response).
    return len(params) == 3


def describe_load_failure(exc):
    """The message, the traceback and the innermost file:line in the user's code."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    file = line = None
    if isinstance(exc, SyntaxError) and exc.filename:
        file, line = exc.filename, exc.lineno
    else:
        here = os.path.abspath(__file__)
        for frame in traceback.extract_tb(exc.__traceback__):
            if os.path.abspath(frame.filename) != here and not frame.filename.startswith("<frozen"):
                file, line = frame.filename, frame.lineno
    message = "%s: %s" % (type(exc).__name__, exc)
    return {"message": message, "traceback": tb, "file": file, "line": line}


# ── WSGI ──────────────────────────────────────────────────────────────────────────


def environ_from_head(payload):
    """A Request frame's payload (servestack_channel.REQUEST_HEAD_FIELDS, then header
    pairs) straight to a WSGI environ, and whether a body follows: (environ, has_body).
    No head dict between the two: it cost as much again as the environ itself."""
    parts = ch.split_request_head(payload)
    method, path, query, scheme, server_name, server_port, remote_addr, remote_port, version, has_body, script_name = parts[:HEAD_FIELD_COUNT]
    uri = path + "?" + query if query else path
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": unquote_path(path),
        "QUERY_STRING": query,
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": "HTTP/" + version,
        "REMOTE_ADDR": remote_addr,
        "REMOTE_PORT": remote_port,
        "REQUEST_URI": uri,
        "RAW_URI": uri,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": EMPTY_BODY,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": THREADS > 1,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    keys = ENVIRON_KEYS
    pairs = iter(parts[HEAD_FIELD_COUNT:])
    for name, value in zip(pairs, pairs):
        key = keys.get(name)
        if key is None:
            key = environ_key(name)
        if key in environ:
            environ[key] += "," + value
        else:
            environ[key] = value
    return environ, has_body == "1"


ENVIRON_KEYS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


def environ_key(name):
    key = "HTTP_" + name.upper().replace("-", "_")
    if len(ENVIRON_KEYS) < 512:  # header names repeat; a hostile client cannot grow this without bound
        ENVIRON_KEYS[name] = key
    return key


def unquote_path(path):
    # PEP 3333: PATH_INFO is the percent-decoded path as latin-1 "bytes in a str".
    if "%" not in path:
        return path
    # unquote_to_bytes would take a str as UTF-8: a raw byte of the path (é as 0xE9) would become two
    return unquote_to_bytes(path.encode("latin-1")).decode("latin-1")


def declared_length(headers):
    for name, value in headers:
        if len(name) == 14 and name.lower() == "content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def run_wsgi_request(app, req, channel):
    rid = req.rid
    status = headers = None
    sent = False

    def start_response(status_line, response_headers, exc_info=None):
        nonlocal status, headers
        if exc_info:
            try:
                if sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif status is not None:
            raise AssertionError("start_response called twice without exc_info")
        status = int(status_line.split(" ", 1)[0])
        headers = response_headers
        return write

    def write(data):
        nonlocal sent
        if status is None:
            raise AssertionError("write() before start_response()")
        writable = req.writable
        if writable is not None and not writable.is_set():
            # Pause, Resume and Abort all arrive on the control channel (fd 4), whose own
            # thread sets this event: waiting on fd 3 here would never see the Resume.
            writable.wait()
        if req.aborted:
            return
        if not sent:
            head = encode_head(status, headers)
            sent = True
            if data:
                channel.send((F_START, rid, head), (F_CHUNK, rid, bytes(data)))
            else:
                channel.send((F_START, rid, head))
        elif data:
            channel.send((F_CHUNK, rid, bytes(data)))

    result = None
    try:
        result = app(req.environ, start_response)
        # Fast path: a list of chunks (Django, plain WSGI) leaves in one write.
        if isinstance(result, (list, tuple)) and not sent and status is not None:
            body = b"".join(result)
            head = encode_head(status, headers)
            sent = True
            channel.send_answer(rid, head, body)
            return
        iterator = iter(result)
        if not sent:
            # An iterator whose first chunk is the whole declared body (Flask wraps its
            # list in a ClosingIterator) also leaves in one write, without waiting on the
            # iterator: a stream's first chunk is never held back.
            first = next(iterator, None)
            declared = declared_length(headers) if status is not None else None
            if first is not None and declared is not None and len(first) == declared:
                body = bytes(first)
                head = encode_head(status, headers)
                sent = True
                channel.send_answer(rid, head, body)
                for _ in iterator:
                    pass  # nothing is left to send; the iterator still runs to its end
                return
            if first is not None:
                write(first)
        for data in iterator:
            if req.aborted:
                break
            if data or not sent:
                write(data)
        if not sent:
            write(b"")
        channel.send((F_END, rid, b""))
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        if not sent:
            body = b"Internal Server Error\n"
            channel.send_answer(rid, encode_head(500, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]), body)
        else:
            # Headers already went out: the arbiter cuts the connection short.
            channel.send((F_END, rid, b'{"error":true}'))
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                traceback.print_exc()


# ── the worker ────────────────────────────────────────────────────────────────────


class Worker:
    """Requests arrive on the data channel (fd 3) with their bodies and Stop, in order;
    Abort, Pause, Resume, Revoke and DumpStack arrive on the control channel (fd 4),
    read by a thread of its own so they act while the app is busy. Both channels'
    frames go through the one dispatcher of servestack_channel to the on_* methods."""

    def __init__(self, channel, app, threads):
        self.channel = channel
        self.app = app
        self.threads = threads
        # One thread reads and serves where select() can poll the channel between
        # requests (POSIX); elsewhere a reader thread feeds the serving thread.
        self.inline = threads <= 1 and ch.IO == "select"
        self.lock = threading.Condition()
        self.pending = collections.deque()  # requests not started yet, in order
        self.requests = {}  # rid -> Request, started or not
        self.revoked = ch.BoundedIdSet()  # revoked before the request was read
        self.aborted = ch.BoundedIdSet()  # aborted before the request was read
        self.stopping = False
        self.dispatch = ch.dispatcher(self)

    # data channel: the serving thread (inline) or the reader thread
    decode_request = staticmethod(environ_from_head)

    def on_request(self, rid, decoded):
        req = Request(rid, decoded)
        if self.inline and req.body is not EMPTY_BODY:
            req.body.pull = self.pull
        with self.lock:
            if self.revoked.take(rid):
                return  # the arbiter has it back already
            if self.aborted.take(rid):
                req.aborted = True
            self.requests[rid] = req
            self.pending.append(req)
            self.lock.notify()

    def on_body(self, rid, payload):
        req = self.requests.get(rid)
        if req is not None:
            req.body.feed(payload)

    def on_body_end(self, rid, payload):
        req = self.requests.get(rid)
        if req is not None:
            req.body.finish()

    def on_stop(self, rid, payload):
        with self.lock:
            self.stopping = True
            self.lock.notify_all()

    # control channel: its own thread
    def on_abort(self, rid, payload):
        with self.lock:
            req = self.requests.get(rid)
            if req is None:
                self.aborted.add(rid)
                return
            req.aborted = True
        if req.body is not EMPTY_BODY:
            req.body.finish(aborted=True)
        if req.writable is not None:
            req.writable.set()

    def on_pause(self, rid, payload):
        req = self.requests.get(rid)
        if req is not None:
            if req.writable is None:
                req.writable = threading.Event()
            req.writable.clear()

    def on_resume(self, rid, payload):
        req = self.requests.get(rid)
        if req is not None and req.writable is not None:
            req.writable.set()

    def on_revoke(self, rid, payload):
        # Take back a request that has not started — read or still in the data
        # channel behind a busy app — so the arbiter can give it to a free worker.
        with self.lock:
            req = self.requests.get(rid)
            if req is None:
                self.revoked.add(rid)
                revoked = True
            elif not req.started:
                self.pending.remove(req)
                del self.requests[rid]
                revoked = True
            else:
                revoked = False
        if revoked:
            self.channel.send((F_REVOKED, rid, b""))

    def on_dump_stack(self, rid, payload):
        ch.dump_stacks()
        import servestack_debug

        servestack_debug.send_stack_report(self.channel, rid)

    # threads == 1 on POSIX: one thread reads and serves. Handing each request from a
    # reader thread to a serving thread cost more CPU (a GIL hand-off, two wake-ups)
    # than a small Flask view; see docs/worker-contract.md for the figures.
    def pull(self):
        self.dispatch(self.channel.read_frames())

    def run_inline(self):
        while True:
            if not self.pending:
                if self.stopping:
                    return
                self.pull()
                continue
            # No poll of the channel between requests: what arrives meanwhile is read when
            # the pending ones are done (a Revoke or an Abort comes on the control channel,
            # which its own thread reads). A select() per request cost a system call and
            # about 4 µs of CPU each, for nothing.
            with self.lock:
                if not self.pending:
                    continue
                req = self.pending.popleft()
                req.started = True
            if req.aborted:
                self.requests.pop(req.rid, None)
                self.channel.send((F_END, req.rid, b""))
                continue
            try:
                run_wsgi_request(self.app, req, self.channel)
            finally:
                with self.lock:
                    self.requests.pop(req.rid, None)

    # threads > 1, or no select() on the channel (Windows): a reader thread feeds the
    # serving threads
    def next_request(self):
        with self.lock:
            while not self.pending:
                if self.stopping:
                    return None
                self.lock.wait()
            req = self.pending.popleft()
            req.started = True
            return req

    def done(self, req):
        with self.lock:
            self.requests.pop(req.rid, None)
            self.lock.notify_all()

    def serve_loop(self):
        while True:
            req = self.next_request()
            if req is None:
                return
            try:
                if req.aborted:
                    # The client left while this waited here: nothing to run.
                    self.channel.send((F_END, req.rid, b""))
                    continue
                run_wsgi_request(self.app, req, self.channel)
            finally:
                self.done(req)

    def run(self, control):
        ch.start_reader(control, self.dispatch, "servestack-control")
        if self.inline:
            self.run_inline()
            return
        ch.start_reader(self.channel, self.dispatch, "servestack-reader")
        if self.threads <= 1:
            self.serve_loop()
        else:
            pool = [threading.Thread(target=self.serve_loop, name="servestack-%d" % i, daemon=True) for i in range(self.threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="servestack_worker")
    parser.add_argument("--app", required=True)
    parser.add_argument("--interface", default="auto", choices=["auto", "wsgi", "asgi"])
    parser.add_argument("--cwd", default=".")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker-id", default="?")
    parser.add_argument("--debug-port", type=int, default=None)
    parser.add_argument("--debugpy-path", default="")
    try:
        args = parser.parse_args(argv)
        os.fstat(ch.CHANNEL_FD)
        os.fstat(ch.CONTROL_FD)
    except SystemExit:
        os._exit(ch.EXIT_BOOT_FAILED)
    except OSError:
        sys.stderr.write("servestack worker: no channels on fds %d and %d; it is started by the servestack server\n" % (ch.CHANNEL_FD, ch.CONTROL_FD))
        os._exit(ch.EXIT_BOOT_FAILED)

    global THREADS
    THREADS = max(1, args.threads)
    channel = ch.Channel(ch.CHANNEL_FD)
    cwd = os.path.abspath(args.cwd)
    os.chdir(cwd)
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    # The proxy in front is trusted: it set X-Forwarded-* and the scheme itself.
    os.environ.setdefault("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

    debug = None
    if args.debug_port is not None:
        # Before the app is imported: a breakpoint at module level is hit too.
        import servestack_debug

        try:
            port, which = servestack_debug.start_debugpy(args.debug_port, args.debugpy_path)
        except Exception as exc:  # noqa: BLE001 - no debugpy, or its port is taken
            sys.stderr.write("servestack worker: cannot start debugpy: %s\n" % exc)
            sys.stderr.flush()
            os._exit(ch.EXIT_BOOT_FAILED)
        servestack_debug.start_pause_watcher(channel)
        debug = {"port": port, "debugpy": which}

    try:
        app = load_target(args.app)
        interface = args.interface
        if interface == "auto":
            interface = "asgi" if is_asgi(app) else "wsgi"
    except BaseException as exc:  # noqa: BLE001 - any failure to load is reported the same way
        if isinstance(exc, (KeyboardInterrupt,)):
            raise
        report = describe_load_failure(exc)
        try:
            channel.send((ch.F_LOAD_FAILED, 0, json.dumps(report).encode("utf-8")))
        except OSError:
            pass
        os._exit(ch.EXIT_APP_LOAD_FAILED)

    ch.start_heartbeat(channel)
    control = ch.Channel(ch.CONTROL_FD, ch.CONTROL_READ_CHUNK)
    ready = {"pid": os.getpid(), "interface": interface, "python": sys.version.split()[0]}
    if debug is not None:
        ready["debug"] = debug
    if interface == "asgi":
        import servestack_asgi

        ready["capacity"] = servestack_asgi.CAPACITY
        servestack_asgi.run(app, channel, control, lambda: channel.send((F_READY, 0, json.dumps(ready).encode("utf-8"))))
    else:
        ready["capacity"] = THREADS
        channel.send((F_READY, 0, json.dumps(ready).encode("utf-8")))
        Worker(channel, app, THREADS).run(control)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


THREADS = 1

if __name__ == "__main__":
    main()
