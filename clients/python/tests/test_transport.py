"""The HTTP/1.1 layer against the standard library's HTTP server: chunked answers, a server
that closes the connection, and a kept-alive connection the server dropped while idle."""

from __future__ import annotations

import json
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, List

import serving  # noqa: F401 - puts the package's source on the path

from seedcore import NotFound, TransportError
from seedcore.transport import Transport


class Answers(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: List[Any] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Answers.seen.append(body)
        self._answer(json.dumps({"echo": body}).encode())

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"a":', b' [1, 2', b"]}"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/close":
            self.close_connection = True
            self._answer(b'{"closed": true}', close=True)
        elif self.path == "/drop":
            self.close_connection = True  # closes after answering, without saying so
            self._answer(b'{"dropped": true}')
        else:
            self.send_response(404)
            self.send_header("Content-Length", "27")
            self.end_headers()
            self.wfile.write(b'{"detail":"Task not found"}')

    def _answer(self, data: bytes, close: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


class HttpLayer(unittest.TestCase):
    def setUp(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.http = Transport(f"http://127.0.0.1:{self.server.server_address[1]}", "t", 5)
        self.addCleanup(self.http.close)

    def test_bodies_go_out_as_json_and_chunked_answers_are_read_whole(self) -> None:
        self.assertEqual(self.http.call("POST", "/x", {"n": [1, "é"]}), {"echo": {"n": [1, "é"]}})
        self.assertEqual(self.http.call("GET", "/chunked"), {"a": [1, 2]})
        self.assertEqual(self.http.call("POST", "/x", {"again": True}), {"echo": {"again": True}})

    def test_an_error_answer_raises_its_class_with_the_detail(self) -> None:
        with self.assertRaises(NotFound) as caught:
            self.http.call("GET", "/missing")
        self.assertEqual(caught.exception.detail, "Task not found")

    def test_a_connection_the_server_closes_is_replaced(self) -> None:
        self.assertEqual(self.http.call("GET", "/close"), {"closed": True})
        self.assertEqual(self.http.call("GET", "/drop"), {"dropped": True})
        # The server dropped the kept-alive connection: the request goes out again, once.
        Answers.seen.clear()
        self.assertEqual(self.http.call("POST", "/x", {"once": 1}), {"echo": {"once": 1}})
        self.assertEqual(Answers.seen, [{"once": 1}])

    def test_a_header_with_a_line_break_is_refused_before_sending(self) -> None:
        with self.assertRaises(ValueError):
            self.http.call("GET", "/chunked", headers={"traceparent": "a\r\nX-Evil: 1"})

    def test_an_interrupted_request_fails_and_is_not_sent_again(self) -> None:
        self.http.call("GET", "/chunked")
        conn = self.http.connection()
        conn.interrupt()
        with self.assertRaises(TransportError):
            self.http.call("GET", "/chunked")
        self.assertEqual(self.http.call("GET", "/chunked"), {"a": [1, 2]})


if __name__ == "__main__":
    unittest.main()
