"""The worker runtime's shared channel layer (server/python/servestack_channel.py).

Run by test/unit/python-runtime.test.ts, once per channel reading mode
(SERVESTACK_WORKER_IO unset and =thread), with the interpreter the tests find.
"""

import asyncio
import json
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "server", "python"))

import servestack_channel as ch  # noqa: E402

KEPT_OPEN = []


def frames_bytes():
    return [
        (ch.F_REQUEST, 1, json.dumps({"path": "/snow/\u2603"}).encode("utf-8")),
        (ch.F_BODY, 1, b"x" * 70000),
        (ch.F_BODY_END, 1, b""),
        (ch.F_ABORT, 4294967295, b""),
    ]


class FrameReaderTest(unittest.TestCase):
    def test_frames_in_one_read_come_out_in_order(self):
        frames = frames_bytes()
        self.assertEqual(ch.FrameReader().feed(ch.encode_frames(frames)), frames)

    def test_frames_cut_at_every_byte_come_out_whole(self):
        frames = frames_bytes()[:1] + [(ch.F_BODY, 2, b"abc"), (ch.F_STOP, 0, b"")]
        data = ch.encode_frames(frames)
        reader = ch.FrameReader()
        got = []
        for i in range(len(data)):
            got.extend(reader.feed(data[i:i + 1]))
        self.assertEqual(got, frames)

    def test_a_frame_longer_than_a_read_waits_until_it_is_complete(self):
        frame = (ch.F_BODY, 7, bytes(range(256)) * 1024)
        data = ch.encode_frames([frame, (ch.F_BODY_END, 7, b"")])
        reader = ch.FrameReader()
        pieces = [data[i:i + 4096] for i in range(0, len(data), 4096)]
        for piece in pieces[:-1]:
            self.assertEqual(reader.feed(piece), [])
        self.assertEqual(reader.feed(pieces[-1]), [frame, (ch.F_BODY_END, 7, b"")])
        self.assertEqual(reader.feed(ch.encode_frames([(ch.F_STOP, 0, b"")])), [(ch.F_STOP, 0, b"")])

    def test_a_whole_answer_is_one_frame_up_to_its_limit_and_a_stream_of_chunks_past_it(self):
        head = ch.encode_head(200, [("Content-Length", "x")])
        small = bytes(range(256)) * (ch.ANSWER_MAX_BODY // 256)
        frames = ch.FrameReader().feed(b"".join(ch.answer_parts(9, head, small)))
        self.assertEqual([(t, r) for t, r, _ in frames], [(ch.F_ANSWER, 9)])
        self.assertEqual(frames[0][2], len(head).to_bytes(4, "big") + head + small)
        big = small + b"tail" + bytes(2 * ch.ANSWER_CHUNK_BYTES)
        frames = ch.FrameReader().feed(b"".join(ch.answer_parts(9, head, big)))
        types = [t for t, _, _ in frames]
        self.assertEqual(types[0], ch.F_START)
        self.assertEqual(types[-1], ch.F_END)
        self.assertEqual(set(types[1:-1]), {ch.F_CHUNK})
        self.assertEqual(frames[0][2], head)
        self.assertTrue(all(len(p) <= ch.ANSWER_CHUNK_BYTES for _, _, p in frames[1:-1]))
        self.assertEqual(b"".join(p for _, _, p in frames[1:-1]), big)
        self.assertEqual({r for _, r, _ in frames}, {9})

    def test_the_header_is_length_type_id_big_endian(self):
        self.assertEqual(ch.encode_frames([(ch.F_CHUNK, 258, b"hi")]), b"\x00\x00\x00\x02\x13\x00\x00\x01\x02hi")

    def test_a_start_payload_is_status_and_header_pairs_split_by_nul_in_latin1(self):
        self.assertEqual(ch.encode_head(201, [["x-a", "\u00e9"], ["Set-Cookie", "a=1"], ["Set-Cookie", ""]]), b"201\0x-a\0\xe9\0Set-Cookie\0a=1\0Set-Cookie\0")
        self.assertEqual(ch.encode_head(204, []), b"204")

    def test_an_app_header_with_a_nul_or_outside_latin1_is_refused_not_sent(self):
        with self.assertRaisesRegex(ValueError, "NUL"):
            ch.encode_head(200, [["x-a", "one\0Set-Cookie\0evil"]])
        with self.assertRaises(UnicodeEncodeError):
            ch.encode_head(200, [["x-a", "\u2603"]])

    def test_a_request_head_decodes_every_field_and_keeps_latin1_bytes(self):
        self.assertEqual(ch.decode_request_head(request_head(HEAD)), HEAD)
        with self.assertRaisesRegex(ValueError, "disagree"):
            ch.decode_request_head(request_head(HEAD) + b"\0x-dangling")


class ChooseIoTest(unittest.TestCase):
    def test_posix_selects_and_windows_reads_in_threads_by_default(self):
        self.assertEqual(ch.choose_io("", "posix"), ("select", None))
        self.assertEqual(ch.choose_io("", "nt"), ("thread", None))

    def test_the_thread_path_can_be_forced_on_posix(self):
        self.assertEqual(ch.choose_io("thread", "posix"), ("thread", None))

    def test_a_bad_value_names_the_variable_and_the_choices(self):
        mode, warning = ch.choose_io("epoll", "posix")
        self.assertEqual(mode, "select")
        self.assertIn("SERVESTACK_WORKER_IO='epoll'", warning)
        self.assertIn("select, thread", warning)

    def test_select_is_refused_on_windows(self):
        mode, warning = ch.choose_io("select", "nt")
        self.assertEqual(mode, "thread")
        self.assertIn("Windows", warning)

    def test_this_process_uses_the_mode_its_environment_asks_for(self):
        wanted = os.environ.get(ch.IO_ENV) or ("thread" if os.name == "nt" else "select")
        self.assertEqual(ch.IO, wanted)


def request_head(head):
    """What server/pool/heads.ts encodeRequestHead writes for `head` (test/unit/heads.test.ts checks the two agree)."""
    fields = [head["method"], head["path"], head["query"], head["scheme"], head["serverName"], str(head["serverPort"]),
              head["remoteAddr"], str(head["remotePort"]), head["httpVersion"], "1" if head["hasBody"] else "", head.get("scriptName", "")]
    for name, value in head["headers"]:
        fields += [name, value]
    return "\0".join(fields).encode("latin-1")


HEAD = {"method": "GET", "path": "/caf\u00e9%20x", "query": "a=1&b=\u00ff", "scheme": "https", "serverName": "example.test", "serverPort": 8443,
        "remoteAddr": "::1", "remotePort": 50123, "httpVersion": "1.1", "hasBody": False, "scriptName": "/absproxy/8000",
        "headers": [("host", "example.test:8443"), ("x-a", "caf\u00e9 \"q\" ; \u00ff"), ("x-a", "")]}


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if not name.startswith("on_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name,) + args)


class DispatcherTest(unittest.TestCase):
    def test_each_frame_type_reaches_its_handler_and_a_request_head_is_decoded(self):
        handler = Recorder()
        dispatch = ch.dispatcher(handler)
        head = HEAD
        dispatch([
            (ch.F_REQUEST, 1, request_head(head)),
            (ch.F_BODY, 1, b"data"),
            (ch.F_BODY_END, 1, b""),
            (ch.F_ABORT, 2, b""),
            (ch.F_PAUSE, 3, b""),
            (ch.F_RESUME, 3, b""),
            (ch.F_REVOKE, 4, b""),
            (ch.F_DUMP_STACK, 0, b""),
            (ch.F_STOP, 0, b""),
        ])
        self.assertEqual(handler.calls, [
            ("on_request", 1, head),
            ("on_body", 1, b"data"),
            ("on_body_end", 1, b""),
            ("on_abort", 2, b""),
            ("on_pause", 3, b""),
            ("on_resume", 3, b""),
            ("on_revoke", 4, b""),
            ("on_dump_stack", 0, b""),
            ("on_stop", 0, b""),
        ])

    def test_frames_a_worker_does_not_take_are_ignored(self):
        handler = Recorder()
        ch.dispatcher(handler)([(ch.F_READY, 0, b"{}"), (ch.F_END, 1, b""), (99, 1, b"")])
        self.assertEqual(handler.calls, [])


class BoundedIdSetTest(unittest.TestCase):
    def test_a_mark_is_taken_once_and_old_marks_are_dropped(self):
        ids = ch.BoundedIdSet(limit=3)
        for rid in (1, 2, 3, 4):
            ids.add(rid)
        self.assertFalse(ids.take(1))
        self.assertTrue(ids.take(4))
        self.assertFalse(ids.take(4))


class ChannelTest(unittest.TestCase):
    def setUp(self):
        self.ours, self.theirs = socket.socketpair()

    def tearDown(self):
        self.ours.close()
        self.theirs.close()

    def peer_frames(self, count):
        reader = ch.FrameReader()
        got = []
        self.theirs.settimeout(10)
        while len(got) < count:
            got.extend(reader.feed(self.theirs.recv(1 << 20)))
        return got

    def test_send_writes_whole_frames_and_read_frames_reads_them(self):
        channel = ch.Channel(self.ours.fileno())
        channel.send((ch.F_START, 5, b"[200,[]]"), (ch.F_END, 5, b""))
        self.assertEqual(self.peer_frames(2), [(ch.F_START, 5, b"[200,[]]"), (ch.F_END, 5, b"")])
        self.theirs.sendall(ch.encode_frames([(ch.F_REQUEST, 9, b"{}")]))
        self.assertEqual(channel.read_frames(), [(ch.F_REQUEST, 9, b"{}")])

    def test_heartbeats_and_other_writers_never_interleave_inside_a_frame(self):
        channel = ch.Channel(self.ours.fileno())
        big = b"y" * (1 << 20)
        writers = [threading.Thread(target=lambda rid=rid: [channel.send((ch.F_CHUNK, rid, big)) for _ in range(4)]) for rid in (1, 2)]
        for t in writers:
            t.start()
        got = self.peer_frames(8)
        for t in writers:
            t.join()
        self.assertEqual(sorted(rid for _, rid, _ in got), [1, 1, 1, 1, 2, 2, 2, 2])
        self.assertTrue(all(payload == big for _, _, payload in got))

    def test_frames_sent_in_one_loop_turn_leave_in_one_write(self):
        writes = []

        class CountingChannel(ch.Channel):
            def write(self, data):
                writes.append(len(data))
                super().write(data)

        loop = asyncio.new_event_loop()
        try:
            writer = ch.BatchWriter(CountingChannel(self.ours.fileno()), loop)

            async def one_turn():
                for rid in range(1, 33):
                    writer.send((ch.F_START, rid, b"[200,[]]"), (ch.F_END, rid, b""))
                await asyncio.sleep(0)
                await asyncio.sleep(0)

            loop.run_until_complete(one_turn())
        finally:
            loop.close()
        self.assertEqual(len(writes), 1)
        got = self.peer_frames(64)
        self.assertEqual([rid for _, rid, _ in got], [rid for rid in range(1, 33) for _ in (0, 1)])

    def test_feed_loop_hands_frames_to_the_loop_thread(self):
        # In thread mode the reader thread lives until the process ends, and end of file
        # on its channel would end the process (os._exit): its socketpair stays open.
        ours, theirs = socket.socketpair()
        KEPT_OPEN.append((ours, theirs))
        loop = asyncio.new_event_loop()
        seen = []
        loop_thread = threading.get_ident()

        def dispatch(frames):
            seen.extend((threading.get_ident(), f) for f in frames)
            if len(seen) >= 2 and not done.done():
                done.set_result(None)

        done = loop.create_future()
        try:
            ch.feed_loop(loop, ch.Channel(ours.fileno()), dispatch, "test-reader")
            theirs.sendall(ch.encode_frames([(ch.F_REQUEST, 1, b"{}")]))
            theirs.sendall(ch.encode_frames([(ch.F_ABORT, 1, b"")]))
            loop.run_until_complete(asyncio.wait_for(done, 10))
            if ch.IO == "select":
                loop.remove_reader(ours.fileno())
        finally:
            loop.close()
        self.assertEqual([f for _, f in seen], [(ch.F_REQUEST, 1, b"{}"), (ch.F_ABORT, 1, b"")])
        self.assertTrue(all(ident == loop_thread for ident, _ in seen))


if __name__ == "__main__":
    unittest.main()
