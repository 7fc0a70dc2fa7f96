"""The ASGI runtime's handling of frames (server/python/servestack_asgi.py), with a real
event loop, a real socketpair for the data channel and small real ASGI apps. The full
path (Node, a worker process, FastAPI) is in test/integration/apps.test.ts."""

import asyncio
import json
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "server", "python"))

import servestack_asgi  # noqa: E402
import servestack_channel as ch  # noqa: E402


def head(path="/", has_body=False):
    # As server/pool/heads.ts writes it: fields in REQUEST_HEAD_FIELDS order, then header pairs, split by NUL.
    fields = ["POST" if has_body else "GET", path, "a=1", "http", "127.0.0.1", "8000", "127.0.0.1", "5000", "1.1", "1" if has_body else "", ""]
    fields += ["host", "example.test", "x-forwarded-for", "127.0.0.1"]
    return "\0".join(fields).encode("latin-1")


def start_head(payload):
    """A Start frame's payload as [status, [[name, value], ...]]."""
    fields = payload.decode("latin-1").split("\0")
    return [int(fields[0]), [list(pair) for pair in zip(fields[1::2], fields[2::2])]]


def ended(frames):
    """The request's last frame is in: its End, or the Answer of a whole response."""
    return any(t in (ch.F_END, ch.F_ANSWER) for t, _, _ in frames)


def answer(payload):
    """An Answer frame's payload as ([status, [[name, value], ...]], body)."""
    length = int.from_bytes(payload[:4], "big")
    return start_head(payload[4:4 + length]), payload[4 + length:]


class RuntimeTest(unittest.TestCase):
    def setUp(self):
        self.ours, self.theirs = socket.socketpair()
        self.theirs.setblocking(False)
        self.reader = ch.FrameReader()
        self.loop = asyncio.new_event_loop()
        self.calls = []
        self.gate = None

    def tearDown(self):
        self.loop.close()
        self.ours.close()
        self.theirs.close()

    def start(self, app):
        self.runtime = servestack_asgi.Runtime(app, self.loop, ch.BatchWriter(ch.Channel(self.ours.fileno()), self.loop))
        self.dispatch = ch.dispatcher(self.runtime)

    async def frames_until(self, done):
        """Frames the worker sent, until done(frames) holds (at most 10 s)."""
        got = []
        for _ in range(1000):
            await asyncio.sleep(0.01)
            try:
                got.extend(self.reader.feed(self.theirs.recv(1 << 20)))
            except BlockingIOError:
                pass
            if done(got):
                return got
        self.fail("the worker sent only %r" % got)

    def run_loop(self, coro):
        return self.loop.run_until_complete(coro)

    async def hello(self, scope, receive, send):
        self.calls.append(scope)
        if self.gate is not None:
            await self.gate
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"hello"})

    def test_a_request_gets_start_chunk_and_end_and_the_scope_of_the_head(self):
        self.start(self.hello)

        async def scenario():
            self.dispatch([(ch.F_REQUEST, 1, head("/a%20b"))])
            return await self.frames_until(ended)

        frames = self.run_loop(scenario())
        # A whole response in one message: one Answer frame, no Start, Chunk or End.
        self.assertEqual([(t, r) for t, r, _ in frames], [(ch.F_ANSWER, 1)])
        self.assertEqual(answer(frames[0][2]), ([200, [["content-type", "text/plain"]]], b"hello"))
        scope = self.calls[0]
        self.assertEqual((scope["path"], scope["raw_path"], scope["query_string"]), ("/a b", b"/a%20b", b"a=1"))
        self.assertEqual(scope["headers"][1], (b"x-forwarded-for", b"127.0.0.1"))
        self.assertEqual((scope["client"], scope["server"]), (("127.0.0.1", 5000), ("127.0.0.1", 8000)))

    def test_a_revoke_for_a_request_not_yet_read_is_answered_and_the_request_dropped(self):
        self.start(self.hello)

        async def scenario():
            self.dispatch([(ch.F_REVOKE, 3, b"")])
            got = await self.frames_until(lambda f: f)
            self.dispatch([(ch.F_REQUEST, 3, head()), (ch.F_REQUEST, 4, head())])
            got += await self.frames_until(ended)
            return got

        frames = self.run_loop(scenario())
        self.assertEqual([(t, r) for t, r, _ in frames], [(ch.F_REVOKED, 3), (ch.F_ANSWER, 4)])
        self.assertEqual(len(self.calls), 1)

    def test_a_revoke_for_a_request_whose_app_has_not_been_called_is_answered(self):
        self.start(self.hello)

        async def scenario():
            # Read in the same loop turn as its Request: its task has not run yet.
            self.dispatch([(ch.F_REQUEST, 5, head()), (ch.F_REVOKE, 5, b"")])
            got = await self.frames_until(lambda f: f)
            await asyncio.sleep(0.05)
            return got

        frames = self.run_loop(scenario())
        self.assertEqual([(t, r) for t, r, _ in frames], [(ch.F_REVOKED, 5)])
        self.assertEqual(self.calls, [])
        self.assertEqual(self.runtime.requests, {})

    def test_a_revoke_for_a_running_request_is_ignored_and_the_request_ends_as_usual(self):
        self.start(self.hello)

        async def scenario():
            self.gate = self.loop.create_future()
            self.dispatch([(ch.F_REQUEST, 6, head())])
            while not self.calls:
                await asyncio.sleep(0)
            self.dispatch([(ch.F_REVOKE, 6, b"")])
            await asyncio.sleep(0.05)
            self.gate.set_result(None)
            return await self.frames_until(ended)

        frames = self.run_loop(scenario())
        self.assertEqual([(t, r) for t, r, _ in frames], [(ch.F_ANSWER, 6)])

    def test_an_abort_before_the_request_is_read_ends_it_without_calling_the_app(self):
        self.start(self.hello)

        async def scenario():
            self.dispatch([(ch.F_ABORT, 7, b"")])
            self.dispatch([(ch.F_REQUEST, 7, head())])
            return await self.frames_until(lambda f: f)

        frames = self.run_loop(scenario())
        self.assertEqual(frames, [(ch.F_END, 7, b"")])
        self.assertEqual(self.calls, [])

    def test_the_body_arrives_in_pieces_then_the_disconnect_after_the_response(self):
        messages = []

        async def echo(scope, receive, send):
            body = b""
            while True:
                message = await receive()
                messages.append(message)
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            messages.append(await receive())

        self.start(echo)

        async def scenario():
            self.dispatch([(ch.F_REQUEST, 8, head(has_body=True)), (ch.F_BODY, 8, b"ab")])
            await asyncio.sleep(0.02)
            self.dispatch([(ch.F_BODY, 8, b"cd"), (ch.F_BODY_END, 8, b"")])
            return await self.frames_until(ended)

        frames = self.run_loop(scenario())
        self.assertEqual([t for t, _, _ in frames], [ch.F_ANSWER])
        self.assertEqual(answer(frames[0][2])[1], b"abcd")
        self.assertEqual([m["type"] for m in messages], ["http.request"] * 3 + ["http.disconnect"])
        self.assertEqual([m.get("more_body") for m in messages[:3]], [True, True, False])

    def test_a_paused_response_waits_for_resume(self):
        async def two_parts(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"one", "more_body": True})
            await send({"type": "http.response.body", "body": b"two"})

        self.start(two_parts)

        async def scenario():
            self.dispatch([(ch.F_REQUEST, 9, head())])
            self.dispatch([(ch.F_PAUSE, 9, b"")])
            await asyncio.sleep(0.05)
            held = await self.frames_until(lambda f: True)
            self.dispatch([(ch.F_RESUME, 9, b"")])
            return held, await self.frames_until(ended)

        held, rest = self.run_loop(scenario())
        self.assertEqual(held, [])
        self.assertEqual([p for t, _, p in rest if t == ch.F_CHUNK], [b"one", b"two"])

    def test_an_app_that_fails_before_its_answer_gets_a_500(self):
        async def broken(scope, receive, send):
            raise ValueError("broken on purpose (test)")

        self.start(broken)
        stderr = sys.stderr
        sys.stderr = open(os.devnull, "w")
        try:
            frames = self.run_loop(self.dispatch_and_wait(10))
        finally:
            sys.stderr.close()
            sys.stderr = stderr
        self.assertEqual(start_head(frames[0][2])[0], 500)
        self.assertEqual([t for t, _, _ in frames], [ch.F_START, ch.F_CHUNK, ch.F_END])

    async def dispatch_and_wait(self, rid):
        self.dispatch([(ch.F_REQUEST, rid, head())])
        return await self.frames_until(ended)

    def test_stop_waits_for_the_running_requests(self):
        self.start(self.hello)

        async def scenario():
            self.gate = self.loop.create_future()
            self.dispatch([(ch.F_REQUEST, 11, head()), (ch.F_STOP, 0, b"")])
            await asyncio.sleep(0.05)
            stopped_early = self.runtime.stopped.done()
            self.gate.set_result(None)
            await asyncio.wait_for(self.runtime.stopped, 10)
            return stopped_early

        self.assertFalse(self.run_loop(scenario()))


def ws_head(path="/ws", subprotocols=()):
    return {
        "method": "GET", "path": path, "query": "", "headers": [["host", "example.test"]], "scheme": "http",
        "serverName": "127.0.0.1", "serverPort": 8000, "remoteAddr": "127.0.0.1", "remotePort": 5000,
        "httpVersion": "1.1", "subprotocols": list(subprotocols),
    }


class WebSocketTest(unittest.TestCase):
    """WebSocket sessions: WsConnect … WsEnd, with flow control both ways."""

    setUp = RuntimeTest.setUp
    tearDown = RuntimeTest.tearDown
    start = RuntimeTest.start
    frames_until = RuntimeTest.frames_until
    run_loop = RuntimeTest.run_loop

    def connect(self, rid, head_=None):
        self.dispatch([(ch.F_WS_CONNECT, rid, json.dumps(head_ or ws_head()).encode("utf-8"))])

    def test_an_echo_session_from_accept_to_the_clients_close_code(self):
        seen = []

        async def echo(scope, receive, send):
            seen.append(scope)
            seen.append(await receive())
            await send({"type": "websocket.accept", "subprotocol": "chat", "headers": [(b"x-a", b"1")]})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    seen.append(message)
                    return
                await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})

        self.start(echo)

        async def scenario():
            self.connect(1, ws_head(subprotocols=["chat", "x"]))
            got = await self.frames_until(lambda f: f)
            self.dispatch([(ch.F_WS_TEXT, 1, "h\u00e9".encode("utf-8")), (ch.F_WS_BINARY, 1, b"\x00\x01")])
            got += await self.frames_until(lambda f: len(f) == 2)
            self.dispatch([(ch.F_WS_CLOSE, 1, servestack_asgi.encode_close(4000, "bye"))])
            got += await self.frames_until(lambda f: f)
            return got

        frames = self.run_loop(scenario())
        self.assertEqual([(t, r) for t, r, _ in frames], [(ch.F_WS_ACCEPT, 1), (ch.F_WS_TEXT, 1), (ch.F_WS_BINARY, 1), (ch.F_WS_END, 1)])
        self.assertEqual(json.loads(frames[0][2]), {"subprotocol": "chat", "headers": [["x-a", "1"]]})
        self.assertEqual((frames[1][2], frames[2][2], frames[3][2]), ("h\u00e9".encode("utf-8"), b"\x00\x01", b""))
        scope = seen[0]
        self.assertEqual((scope["type"], scope["scheme"], scope["subprotocols"], "method" in scope), ("websocket", "ws", ["chat", "x"], False))
        self.assertEqual(seen[1], {"type": "websocket.connect"})
        self.assertEqual(seen[2], {"type": "websocket.disconnect", "code": 4000, "reason": "bye"})
        self.assertEqual(self.runtime.requests, {})

    def test_a_close_before_accept_is_sent_as_is_then_the_end(self):
        async def refuse(scope, receive, send):
            await receive()
            await send({"type": "websocket.close", "code": 1008})

        self.start(refuse)

        async def scenario():
            self.connect(2)
            return await self.frames_until(lambda f: any(t == ch.F_WS_END for t, _, _ in f))

        frames = self.run_loop(scenario())
        self.assertEqual(frames, [(ch.F_WS_CLOSE, 2, servestack_asgi.encode_close(1008, "")), (ch.F_WS_END, 2, b"")])

    def test_messages_the_app_does_not_read_hold_the_client_until_it_catches_up(self):
        self.gate = None
        taken = []

        async def slow(scope, receive, send):
            await receive()
            await send({"type": "websocket.accept"})
            await self.gate
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                taken.append(message)

        self.start(slow)

        async def scenario():
            self.gate = self.loop.create_future()
            self.connect(3)
            got = await self.frames_until(lambda f: f)  # the accept
            many = servestack_asgi.CLIENT_HOLD_MESSAGES + 1
            self.dispatch([(ch.F_WS_TEXT, 3, b"m")] * many)
            got += await self.frames_until(lambda f: f)
            self.gate.set_result(None)
            got += await self.frames_until(lambda f: f)
            self.dispatch([(ch.F_WS_CLOSE, 3, servestack_asgi.encode_close(1000, ""))])
            got += await self.frames_until(lambda f: f)
            return got, many

        frames, many = self.run_loop(scenario())
        self.assertEqual([t for t, _, _ in frames], [ch.F_WS_ACCEPT, ch.F_WS_HOLD_CLIENT, ch.F_WS_RELEASE_CLIENT, ch.F_WS_END])
        self.assertEqual(len(taken), many)

    def test_a_pause_holds_the_apps_next_send_until_resume_and_stop_waits_for_the_session(self):
        sent = []

        async def talker(scope, receive, send):
            await receive()
            await send({"type": "websocket.accept"})
            await self.gate
            for i in range(3):
                await send({"type": "websocket.send", "bytes": bytes([i])})
                sent.append(i)
            await send({"type": "websocket.close", "code": 1000})

        self.start(talker)

        async def scenario():
            self.gate = self.loop.create_future()
            self.connect(4)
            self.dispatch([(ch.F_STOP, 0, b"")])
            got = await self.frames_until(lambda f: f)  # the accept
            self.dispatch([(ch.F_PAUSE, 4, b"")])
            self.gate.set_result(None)
            await asyncio.sleep(0.05)
            held = list(sent)
            stopped_early = self.runtime.stopped.done()
            self.dispatch([(ch.F_RESUME, 4, b"")])
            got += await self.frames_until(lambda f: any(t == ch.F_WS_END for t, _, _ in f))
            await asyncio.wait_for(self.runtime.stopped, 10)
            return got, held, stopped_early

        frames, held, stopped_early = self.run_loop(scenario())
        self.assertEqual(held, [])
        self.assertFalse(stopped_early)
        self.assertEqual(sent, [0, 1, 2])
        self.assertEqual([t for t, _, _ in frames], [ch.F_WS_ACCEPT, ch.F_WS_BINARY, ch.F_WS_BINARY, ch.F_WS_BINARY, ch.F_WS_CLOSE, ch.F_WS_END])


if __name__ == "__main__":
    unittest.main()
