"""Debugging a worker: debugpy at boot, the "paused in debugger" signal, stack reports.

Stdlib only (debugpy is the user's, or the one a setting names); imported by the worker
runtime only when it is started with --debug-port, or when the arbiter asks for a stack.

Why the pause signal is read from the stacks: debugpy has no public hook for "stopped".
A paused thread sits in pydevd's wait loop (`_do_wait_suspend`, sleeping 10 ms at a time)
until it is resumed, so a thread of our own that debugpy does not trace (and so never
suspends) looks at every thread's innermost frames with sys._current_frames() and says
when that loop appears or goes. Missing heartbeats would be a weaker signal: a C call
holding the GIL, or a machine under load, silences them too, and they only say "silent",
never where the thread stopped.
"""

import json
import os
import sys
import threading
import time

# Frames worker → arbiter (mirrors server/protocol.ts FrameType; the numbers are
# checked by test/unit/worker-contract.test.ts).
F_STACK_REPORT = 40
F_DEBUG_STATE = 41

PAUSE_POLL_SECONDS = 0.2
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
_WAIT_LOOP = "_do_wait_suspend"


def start_debugpy(port, debugpy_path):
    """debugpy listening on 127.0.0.1:port (0: any free port), before the app is imported.
    The interpreter's own debugpy when it has one, else the folder `debugpy_path` names.
    Returns the port it listens on and a phrase saying which debugpy it is."""
    source = "the interpreter's own"
    try:
        import debugpy  # noqa: F401
    except ImportError:
        if not debugpy_path:
            raise RuntimeError(
                "debugpy is not installed for %s and no debugpy folder is configured; "
                "install it (pip install debugpy, or apt install python3-debugpy), or set "
                "servestack.debug.debugpyPath / --debugpy-path [DEBUGPY_NOT_FOUND]" % sys.executable
            )
        sys.path.insert(0, debugpy_path)
        try:
            import debugpy  # noqa: F811
        except ImportError as exc:
            raise RuntimeError("no importable debugpy in %s (%s) [DEBUGPY_NOT_FOUND]" % (debugpy_path, exc))
        source = "the configured folder %s" % debugpy_path
    import debugpy

    host, actual = debugpy.listen(("127.0.0.1", int(port)))
    where = os.path.dirname(os.path.abspath(debugpy.__file__))
    sys.stderr.write(
        "servestack: debugpy %s (%s, %s) listening on %s:%d\n" % (getattr(debugpy, "__version__", "?"), source, where, host, actual)
    )
    sys.stderr.flush()
    return actual, "debugpy %s (%s)" % (getattr(debugpy, "__version__", "?"), source)


def _in_debugger(filename):
    return ("debugpy" + os.sep) in filename or ("pydevd" in filename)


def _in_runtime(filename):
    return os.path.dirname(os.path.abspath(filename)) == _RUNTIME_DIR


def _frames(frame):
    """A thread's frames, outermost first, as {file, line, function}."""
    out = []
    while frame is not None:
        code = frame.f_code
        out.append({"file": code.co_filename, "line": frame.f_lineno, "function": code.co_name})
        frame = frame.f_back
    out.reverse()
    return out


def user_frame(frames, cwd):
    """Where a thread is in the user's own code: the innermost frame under the app's
    folder (not the runtime, not site-packages, not debugpy); else the innermost frame
    outside the runtime and debugpy."""
    fallback = None
    for f in reversed(frames):
        name = f["file"]
        if _in_runtime(name) or _in_debugger(name) or name.startswith("<"):
            continue
        if fallback is None:
            fallback = f
        absolute = os.path.abspath(name)
        if absolute.startswith(cwd + os.sep) and "site-packages" not in absolute and "dist-packages" not in absolute:
            return dict(f, file=absolute)
    return fallback


def _serving(frames):
    """A thread that runs a request (the WSGI runtime's run_wsgi_request, or an ASGI loop's app call)."""
    return any(_in_runtime(f["file"]) and f["function"] in ("run_wsgi_request", "handle") for f in frames)


def stack_report(skip_current=True):
    """Every thread's stack, and where the first thread serving a request is ("stuck")."""
    cwd = os.path.abspath(os.getcwd())
    live = threading.enumerate()
    names = {t.ident: t.name for t in live}
    # debugpy's own threads, and our pause watcher, say nothing about the app.
    own = {t.ident for t in live if getattr(t, "is_pydev_daemon_thread", False)}
    me = threading.get_ident()
    threads = []
    stuck = None
    for ident, frame in sys._current_frames().items():
        if (skip_current and ident == me) or ident in own:
            continue
        frames = _frames(frame)
        entry = {"name": names.get(ident, "thread %d" % ident), "frames": frames[-40:]}
        threads.append(entry)
        if stuck is None and _serving(frames):
            stuck = user_frame(frames, cwd)
    if stuck is None:
        for t in threads:
            if t["name"] == "MainThread":
                stuck = user_frame(t["frames"], cwd)
    return {"pid": os.getpid(), "threads": threads, "stuck": stuck}


def send_stack_report(channel, rid):
    """The answer to DumpStack, sent beside the text dump on stderr: the arbiter keeps
    "stuck in FILE:LINE" on the worker's entry, and answers a Dump Stack action with it."""
    try:
        payload = json.dumps(stack_report()).encode("utf-8")
    except Exception as exc:  # noqa: BLE001 - a report must never break the control thread
        payload = json.dumps({"pid": os.getpid(), "threads": [], "stuck": None, "error": str(exc)}).encode("utf-8")
    channel.send((F_STACK_REPORT, rid, payload))


def paused_at():
    """Where a thread sits in debugpy's wait loop (stopped at a breakpoint or a pause), or None."""
    cwd = os.path.abspath(os.getcwd())
    me = threading.get_ident()
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        f = frame
        depth = 0
        while f is not None and depth < 12:
            if f.f_code.co_name == _WAIT_LOOP and _in_debugger(f.f_code.co_filename):
                return user_frame(_frames(frame), cwd) or {"file": "?", "line": 0, "function": "?"}
            f = f.f_back
            depth += 1
    return None


def start_pause_watcher(channel):
    """A thread debugpy does not trace (so it runs while every other thread is stopped)
    sends DebugState {paused, where} whenever the pause state changes."""
    import debugpy

    def watch():
        debugpy.trace_this_thread(False)
        last = None
        while True:
            time.sleep(PAUSE_POLL_SECONDS)
            where = paused_at()
            key = None if where is None else (where.get("file"), where.get("line"))
            if key == last:
                continue
            last = key
            state = {"paused": where is not None}
            if where is not None:
                state["where"] = where
            try:
                channel.send((F_DEBUG_STATE, 0, json.dumps(state).encode("utf-8")))
            except OSError:
                os._exit(0)

    thread = threading.Thread(target=watch, name="servestack-debug-watch", daemon=True)
    # pydevd skips threads marked as its own when it suspends "all threads".
    thread.is_pydev_daemon_thread = True
    thread.pydev_do_not_trace = True
    thread.start()
