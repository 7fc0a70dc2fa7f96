"""The WSGI runtime's request head and answer head (server/python/servestack_worker.py).

Run by test/unit/python-runtime.test.ts with the interpreter the tests find; the
runtime's behaviour with real apps is proven by test/integration/ (Flask, Django).
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "server", "python"))

import servestack_channel as ch  # noqa: E402
import servestack_worker as w  # noqa: E402
from test_servestack_channel import HEAD, request_head  # noqa: E402


class EnvironFromHeadTest(unittest.TestCase):
    def test_a_head_becomes_a_pep_3333_environ(self):
        environ, has_body = w.environ_from_head(request_head(HEAD))
        self.assertFalse(has_body)
        self.assertEqual(environ["REQUEST_METHOD"], "GET")
        # PATH_INFO is percent-decoded, as latin-1 "bytes in a str"; the raw forms keep the query
        self.assertEqual(environ["PATH_INFO"], "/caf\u00e9 x")
        self.assertEqual(environ["RAW_URI"], "/caf\u00e9%20x?a=1&b=\u00ff")
        self.assertEqual(environ["REQUEST_URI"], environ["RAW_URI"])
        self.assertEqual(environ["QUERY_STRING"], "a=1&b=\u00ff")
        self.assertEqual(environ["SCRIPT_NAME"], "/absproxy/8000")
        self.assertEqual((environ["SERVER_NAME"], environ["SERVER_PORT"]), ("example.test", "8443"))
        self.assertEqual((environ["REMOTE_ADDR"], environ["REMOTE_PORT"]), ("::1", "50123"))
        self.assertEqual(environ["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(environ["wsgi.url_scheme"], "https")
        self.assertIs(environ["wsgi.input"], w.EMPTY_BODY)
        self.assertEqual(environ["HTTP_HOST"], "example.test:8443")
        # a repeated header is one value, joined by commas (as gunicorn does)
        self.assertEqual(environ["HTTP_X_A"], "caf\u00e9 \"q\" ; \u00ff,")

    def test_content_headers_have_no_http_prefix_and_a_body_gets_a_stream(self):
        head = dict(HEAD, method="POST", hasBody=True, query="", headers=[("content-type", "text/plain"), ("content-length", "3")])
        environ, has_body = w.environ_from_head(request_head(head))
        self.assertTrue(has_body)
        self.assertEqual((environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]), ("text/plain", "3"))
        self.assertNotIn("HTTP_CONTENT_TYPE", environ)
        self.assertEqual(environ["RAW_URI"], "/caf\u00e9%20x")
        req = w.Request(7, (environ, has_body))
        self.assertIsInstance(environ["wsgi.input"], w.RequestBody)
        self.assertIs(req.body, environ["wsgi.input"])

    def test_a_head_of_the_wrong_shape_is_refused(self):
        with self.assertRaises(ValueError):
            w.environ_from_head(request_head(HEAD) + b"\0x-dangling")
        with self.assertRaises(ValueError):
            w.environ_from_head(b"GET\0/")


class EncodeHeadTest(unittest.TestCase):
    def test_a_value_that_is_not_a_str_is_written_as_its_str(self):
        self.assertEqual(ch.encode_head(200, [("Content-Length", 13), ("X-A", "b")]), b"200\0Content-Length\x0013\0X-A\0b")

    def test_a_nul_in_a_header_is_refused(self):
        with self.assertRaises(ValueError):
            ch.encode_head(200, [("X-A", "b\0c")])


if __name__ == "__main__":
    unittest.main()
