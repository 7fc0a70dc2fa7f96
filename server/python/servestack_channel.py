"""The worker's channels and contract, shared by the WSGI worker and the ASGI runtime.

Stdlib only, Python >= 3.8, and no asyncio at import: a sync worker never loads it.
The contract (frame types, exit codes, fds, heartbeat) is written once in
server/protocol.ts and mirrored here; test/unit/worker-contract.test.ts checks that the
two agree. Everything that depends on the platform sits in one section below
("reading without blocking"), POSIX and Windows side by side.
"""

import collections
import faulthandler
import json
import os
import struct
import sys
import threading
import time

# ── contract (mirrors server/protocol.ts) ────────────────────────────────────────
EXIT_BOOT_FAILED = 3
EXIT_APP_LOAD_FAILED = 4
HEARTBEAT_INTERVAL_MS = 1000
CHANNEL_FD = 3
CONTROL_FD = 4

F_REQUEST = 1
F_BODY = 2
F_BODY_END = 3
F_ABORT = 4
F_STOP = 5
F_DUMP_STACK = 6
F_REVOKE = 7
F_PAUSE = 8
F_RESUME = 9
F_READY = 16
F_HEARTBEAT = 17
F_START = 18
F_CHUNK = 19
F_END = 20
F_LOAD_FAILED = 21
F_REVOKED = 22
# A whole response: [u32 head length][a Start's payload][the body]; no Chunk or End follows
F_ANSWER = 23
# WebSocket sessions (ASGI only)
F_WS_CONNECT = 32
F_WS_ACCEPT = 33
F_WS_TEXT = 34
F_WS_BINARY = 35
F_WS_CLOSE = 36
F_WS_END = 37
F_WS_HOLD_CLIENT = 38
F_WS_RELEASE_CLIENT = 39

HEADER = struct.Struct(">IBI")
HEADER_BYTES = HEADER.size  # 9

# Many WSGI apps read the whole body at once; a read larger than this per frame is
# pointless, and the arbiter sends body frames of at most 64 KiB anyway.
READ_CHUNK = 256 * 1024
# The control channel carries only small frames (Abort, Pause, Resume, Revoke, DumpStack).
CONTROL_READ_CHUNK = 4 * 1024

_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from
json_loads = json.JSONDecoder().decode


_pack_u32 = struct.Struct(">I").pack


# A whole response with a body up to this size goes as one Answer frame; a larger one as
# Start, Chunks of ANSWER_CHUNK_BYTES and End. The arbiter keeps a frame in memory until
# its last byte has come: twenty slow clients of a 24 MiB answer in one frame held 480 MiB
# in the front, where a chunk at a time lets its response buffer spill to the temp file
# as the bytes come (the chunk size is the default limits.bufferSize).
ANSWER_MAX_BODY = 1024 * 1024
ANSWER_CHUNK_BYTES = 256 * 1024


def answer_parts(rid, head, body):
    """A whole response (the head as encode_head makes it, and its body) in pieces for one
    join: one Answer frame, so that the arbiter reads one frame instead of Start, Chunk and
    End and holds nothing while it waits for the rest; or, for a body over
    ANSWER_MAX_BODY, the stream of frames it also is."""
    size = len(body)
    if size <= ANSWER_MAX_BODY:
        return (_pack_header(4 + len(head) + size, F_ANSWER, rid), _pack_u32(len(head)), head, body)
    parts = [_pack_header(len(head), F_START, rid), head]
    view = memoryview(body)
    for at in range(0, size, ANSWER_CHUNK_BYTES):
        piece = view[at:at + ANSWER_CHUNK_BYTES]
        parts.append(_pack_header(len(piece), F_CHUNK, rid))
        parts.append(piece)
    parts.append(_pack_header(0, F_END, rid))
    return parts


def encode_frames(frames):
    """frames: (type, request_id, payload_bytes) tuples, as one buffer."""
    parts = []
    for ftype, rid, payload in frames:
        parts.append(_pack_header(len(payload), ftype, rid))
        if payload:
            parts.append(payload)
    return b"".join(parts)


# ── heads: latin-1 fields split by NUL (server/pool/heads.ts writes and reads the same) ─────
# HTTP's own bytes (a path, header values) are latin-1 "bytes in a str" on both sides, so
# the text is lossless; no field can hold a NUL (the proxy's parser refuses one in a
# request, and encode_head refuses one from the app). JSON cost about 4 µs a request here
# and 2 µs an answer, the split and the join a fraction of that.
REQUEST_HEAD_FIELDS = ("method", "path", "query", "scheme", "serverName", "serverPort", "remoteAddr", "remotePort", "httpVersion", "hasBody", "scriptName")
HEAD_FIELD_COUNT = len(REQUEST_HEAD_FIELDS)


def split_request_head(payload):
    """A Request frame's payload as its fields: REQUEST_HEAD_FIELDS, then each header's
    lower-case name and value."""
    parts = payload.decode("latin-1").split("\0")
    count = len(parts)
    if count < HEAD_FIELD_COUNT or (count - HEAD_FIELD_COUNT) % 2:
        raise ValueError("a request head of %d fields: the arbiter and this runtime disagree on the protocol" % count)
    return parts


def decode_request_head(payload):
    """A Request frame's payload as the head dict the runtimes read (protocol.ts RequestHead);
    headers are (name, value) pairs, lower-case names."""
    parts = split_request_head(payload)
    pairs = iter(parts[HEAD_FIELD_COUNT:])
    return {
        "method": parts[0],
        "path": parts[1],
        "query": parts[2],
        "scheme": parts[3],
        "serverName": parts[4],
        "serverPort": int(parts[5]),
        "remoteAddr": parts[6],
        "remotePort": int(parts[7]),
        "httpVersion": parts[8],
        "hasBody": parts[9] == "1",
        "scriptName": parts[10],
        "headers": list(zip(pairs, pairs)),
    }


def encode_head(status, headers):
    """A Start frame's payload: the status, then each header's name and value. PEP 3333
    wants latin-1 header strings: anything else is the app's error (UnicodeEncodeError),
    as it is under gunicorn."""
    fields = [str(status)]
    for name, value in headers:
        fields.append(name)
        fields.append(value)
    try:
        text = "\0".join(fields)
    except TypeError:  # a value that is not a str (an int length, say): written as its str()
        fields = [str(field) for field in fields]
        text = "\0".join(fields)
    if text.count("\0") != len(fields) - 1:
        raise ValueError("a response header name or value holds a NUL character: %r" % ([f for f in fields if "\0" in f][0],))
    return text.encode("latin-1")


class FrameReader:
    """Splits a byte stream into frames. A read that holds whole frames (the common
    case) is sliced as it is; the pieces of a frame still incomplete are only joined
    once it can be complete, never on every read."""

    def __init__(self):
        self.parts = []
        self.size = 0
        self.need = HEADER_BYTES

    def feed(self, chunk):
        """The frames that `chunk` completes: a list of (type, request_id, payload)."""
        if self.parts:
            self.parts.append(chunk)
            self.size += len(chunk)
            if self.size < self.need:
                return []
            buf = b"".join(self.parts)
        else:
            buf = chunk
        frames = []
        pos = 0
        end = len(buf)
        need = HEADER_BYTES
        while end - pos >= HEADER_BYTES:
            length, ftype, rid = _unpack_header(buf, pos)
            start = pos + HEADER_BYTES
            if end - start < length:
                need = HEADER_BYTES + length
                break
            frames.append((ftype, rid, buf[start:start + length]))
            pos = start + length
        if pos < end:
            rest = buf[pos:]
            self.parts = [rest]
            self.size = len(rest)
            self.need = need
        else:
            self.parts = []
            self.size = 0
            self.need = HEADER_BYTES
        return frames


class Channel:
    """One of the worker's two channels (fd 3 or fd 4). Writes from any thread are
    serialized by a lock and each is one buffer of whole frames, so the heartbeat
    thread never lands inside another writer's frame."""

    def __init__(self, fd, read_size=READ_CHUNK):
        self.fd = fd
        self.lock = threading.Lock()
        self.reader = FrameReader()
        self.read_some = chunk_reader(fd, read_size)

    def write(self, data):
        view = memoryview(data)
        with self.lock:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]

    def send(self, *frames):
        self.write(encode_frames(frames))

    def send_answer(self, rid, head, body):
        self.write(b"".join(answer_parts(rid, head, body)))

    def read_chunk(self):
        """One read, waiting for it. The arbiter closing the channel (end of file, or an
        error) ends the process at once: a worker never outlives its server."""
        while True:
            try:
                chunk = self.read_some()
            except InterruptedError:
                continue
            except OSError:
                os._exit(0)
            if not chunk:
                os._exit(0)
            return chunk

    def read_frames(self):
        """At least one frame, waiting for it."""
        while True:
            frames = self.reader.feed(self.read_chunk())
            if frames:
                return frames


class BatchWriter:
    """Frames sent during one event-loop turn leave in one write, as the Node side does
    (server/pool/frames.ts). Used from the loop's thread only."""

    def __init__(self, channel, loop):
        self.channel = channel
        self.call_soon = loop.call_soon
        self.parts = []

    def _turn_parts(self):
        """This turn's pieces; the first piece of a turn schedules its flush."""
        parts = self.parts
        if not parts:
            self.call_soon(self.flush)
        return parts

    def send(self, *frames):
        parts = self._turn_parts()
        for ftype, rid, payload in frames:
            parts.append(_pack_header(len(payload), ftype, rid))
            if payload:
                parts.append(payload)

    def send_answer(self, rid, head, body):
        self._turn_parts().extend(answer_parts(rid, head, body))

    def flush(self):
        parts = self.parts
        if parts:
            self.parts = []
            self.channel.write(b"".join(parts))


# ── one frame dispatcher ──────────────────────────────────────────────────────────


def dispatcher(handler):
    """A function that hands each frame to the runtime's handler, whichever channel it
    came on: on_request(rid, head) with the head decoded (by the handler's own
    decode_request(payload) when it has one, else as decode_request_head's dict); on_body(rid, data),
    on_body_end, on_abort, on_pause, on_resume, on_revoke, on_stop, on_dump_stack (all
    (rid, payload)); for a runtime that has them, on_ws_connect(rid, head) and
    on_ws_text, on_ws_binary, on_ws_close. A frame type the worker does not take is
    ignored."""
    on_request = handler.on_request
    decode = getattr(handler, "decode_request", decode_request_head)
    table = {
        F_BODY: handler.on_body,
        F_BODY_END: handler.on_body_end,
        F_ABORT: handler.on_abort,
        F_STOP: handler.on_stop,
        F_DUMP_STACK: handler.on_dump_stack,
        F_REVOKE: handler.on_revoke,
        F_PAUSE: handler.on_pause,
        F_RESUME: handler.on_resume,
    }
    # WebSocket sessions: only the ASGI runtime takes them (the arbiter answers 501 for WSGI).
    on_ws_connect = getattr(handler, "on_ws_connect", None)
    for ftype, name in ((F_WS_TEXT, "on_ws_text"), (F_WS_BINARY, "on_ws_binary"), (F_WS_CLOSE, "on_ws_close")):
        if hasattr(handler, name):
            table[ftype] = getattr(handler, name)
    get = table.get

    def dispatch(frames):
        for ftype, rid, payload in frames:
            if ftype == F_REQUEST:
                on_request(rid, decode(payload))
            elif ftype == F_WS_CONNECT and on_ws_connect is not None:
                on_ws_connect(rid, json_loads(payload.decode("utf-8")))
            else:
                act = get(ftype)
                if act is not None:
                    act(rid, payload)

    return dispatch


class BoundedIdSet:
    """Request ids marked from the control channel before the data channel brought the
    request itself; old marks are dropped so a stale one cannot grow the set forever."""

    def __init__(self, limit=4096):
        self.ids = collections.OrderedDict()
        self.limit = limit

    def add(self, rid):
        self.ids[rid] = None
        if len(self.ids) > self.limit:
            self.ids.popitem(last=False)

    def take(self, rid):
        return self.ids.pop(rid, False) is None


# ── reading without blocking: the only platform-dependent code ──────────────────────
# POSIX ("select"): select() and an event loop's add_reader() work on the channels'
# descriptors (socketpairs from Node's stdio 'pipe').
# Windows ("thread"): the channels are named pipes that Python holds as CRT fds; select()
# takes sockets alone and the ProactorEventLoop cannot add_reader a pipe. There a thread
# makes each blocking read instead, and hands the frames on. SERVESTACK_WORKER_IO=thread
# forces that path on POSIX too, so the tests run it here.
IO_ENV = "SERVESTACK_WORKER_IO"
IO_MODES = ("select", "thread")


def choose_io(value, os_name):
    """(mode, warning or None) for the environment's value on this OS."""
    default = "thread" if os_name == "nt" else "select"
    if not value:
        return default, None
    if value not in IO_MODES:
        return default, "servestack: %s=%r is not one of %s; using %r\n" % (IO_ENV, value, ", ".join(IO_MODES), default)
    if value == "select" and os_name == "nt":
        return default, "servestack: %s=select does not work on Windows (select takes sockets only); using 'thread'\n" % IO_ENV
    return value, None


IO, _io_warning = choose_io(os.environ.get(IO_ENV, ""), os.name)
if _io_warning:
    sys.stderr.write(_io_warning)
elif os.environ.get(IO_ENV):
    # Said once at boot when chosen by hand (the tests look for it).
    sys.stderr.write("servestack: worker pid %d reads its channels %s (%s=%s)\n" % (os.getpid(), "in reader threads" if IO == "thread" else "with select", IO_ENV, IO))

if IO == "select":
    def feed_loop(loop, channel, dispatch, name):
        """Frames read from `channel` go to dispatch on the loop's own thread."""

        def on_readable():
            frames = channel.reader.feed(channel.read_chunk())
            if frames:
                dispatch(frames)

        loop.add_reader(channel.fd, on_readable)

else:

    def feed_loop(loop, channel, dispatch, name):
        """Frames read from `channel` go to dispatch on the loop's own thread."""
        hand_over = loop.call_soon_threadsafe
        start_reader(channel, lambda frames: hand_over(dispatch, frames), name)


if hasattr(os, "readv"):

    def chunk_reader(fd, size):
        """A read into one buffer kept for the channel, copied out at its size. os.read(fd,
        256 KiB) made a fresh 256 KiB object per read that glibc mmapped, then shrank and
        unmapped (3 system calls and page faults per request, measured with strace)."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        readv = os.readv
        targets = [buffer]

        def read_some():
            return view[: readv(fd, targets)].tobytes()

        return read_some

else:  # Windows has no readv; its reads are the reader threads' anyway

    def chunk_reader(fd, size):
        return lambda: os.read(fd, min(size, 64 * 1024))


def start_reader(channel, dispatch, name):
    """A thread that reads `channel` and dispatches its frames, on every OS."""

    def read_loop():
        while True:
            dispatch(channel.read_frames())

    thread = threading.Thread(target=read_loop, name=name, daemon=True)
    thread.start()
    return thread


# ── stacks and heartbeat ────────────────────────────────────────────────────────────


def dump_stacks(extra=None):
    """Every thread's stack to stderr (DumpStack, before a timeout kill); `extra(file)`
    adds what threads do not show (an ASGI worker's tasks)."""
    err = sys.stderr
    err.write("servestack: stack of every thread of worker pid %d:\n" % os.getpid())
    err.flush()
    faulthandler.dump_traceback(file=err, all_threads=True)
    if extra is not None:
        extra(err)
    err.flush()


def start_heartbeat(channel):
    """A thread of its own says the worker is alive, however busy the app keeps the rest."""
    interval = HEARTBEAT_INTERVAL_MS / 1000.0
    beat = encode_frames([(F_HEARTBEAT, 0, b"")])

    def beat_loop():
        while True:
            time.sleep(interval)
            try:
                channel.write(beat)
            except OSError:
                os._exit(0)

    threading.Thread(target=beat_loop, name="servestack-heartbeat", daemon=True).start()
