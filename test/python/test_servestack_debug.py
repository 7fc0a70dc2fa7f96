"""Stack reports of the debug module (server/python/servestack_debug.py): where a thread
serving a request is stuck, in the app's own code. debugpy itself is exercised against
real workers by test/integration/debug.test.ts.
"""

import os
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "server", "python"))

import servestack_debug as dbg  # noqa: E402

RUNTIME = os.path.dirname(os.path.abspath(dbg.__file__))


class UserFrameTest(unittest.TestCase):
    def test_the_innermost_frame_in_the_app_folder_wins_over_libraries_and_the_runtime(self):
        frames = [
            {"file": os.path.join(RUNTIME, "servestack_worker.py"), "line": 600, "function": "main"},
            {"file": "/srv/app/views.py", "line": 42, "function": "slow_query"},
            {"file": "/usr/lib/python3/dist-packages/sqlalchemy/engine.py", "line": 7, "function": "execute"},
            {"file": "/usr/lib/python3.11/socket.py", "line": 3, "function": "recv"},
        ]
        self.assertEqual(dbg.user_frame(frames, "/srv/app"), {"file": "/srv/app/views.py", "line": 42, "function": "slow_query"})

    def test_outside_the_app_folder_the_innermost_frame_that_is_not_the_runtime(self):
        frames = [
            {"file": os.path.join(RUNTIME, "servestack_worker.py"), "line": 600, "function": "main"},
            {"file": "/opt/lib/thing.py", "line": 9, "function": "spin"},
            {"file": os.path.join(RUNTIME, "servestack_channel.py"), "line": 1, "function": "write"},
        ]
        self.assertEqual(dbg.user_frame(frames, "/srv/app")["function"], "spin")


class StackReportTest(unittest.TestCase):
    def test_every_other_thread_is_listed_with_its_frames_innermost_last(self):
        started = threading.Event()

        def sleeper_body():
            started.set()
            time.sleep(5)

        thread = threading.Thread(target=sleeper_body, daemon=True, name="sleeper")
        thread.start()
        started.wait(5)
        report = dbg.stack_report()
        self.assertEqual(report["pid"], os.getpid())
        sleeper = [t for t in report["threads"] if t["name"] == "sleeper"]
        self.assertEqual(len(sleeper), 1)
        functions = [f["function"] for f in sleeper[0]["frames"]]
        self.assertEqual(functions[-1], "sleeper_body", "innermost last (time.sleep is C: no frame of its own)")
        self.assertEqual(functions[0], "_bootstrap")
        self.assertNotIn(threading.current_thread().name, [t["name"] for t in report["threads"]], "the reporting thread leaves itself out")

    def test_no_thread_sits_in_debuggers_wait_loop_without_a_debugger(self):
        self.assertIsNone(dbg.paused_at())


if __name__ == "__main__":
    unittest.main()
