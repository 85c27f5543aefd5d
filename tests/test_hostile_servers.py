"""Servers that never stop talking (issue 12: bounded memory against the worst sender): a line without an
end, an endless error page, an answer that streams far past any max_tokens. Each fails its request as a bad
response with a clear message, and Tryouts hangs up early: the server could not send all it wanted."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import REQ, run_provider
from tryouts.engine.execute import MAX_ANSWER_CHARS
from tryouts.providers import create_provider
from tryouts.providers.sse import MAX_EVENT_BYTES
from tryouts.types import ModelSpec

#: what each mode would send in all, if Tryouts read it all: well past every limit, and still bounded
WANTS = {"endless-line": 4 * MAX_EVENT_BYTES, "endless-error": 64 * 1024 * 1024, "endless-answer": 2 * MAX_ANSWER_CHARS}


@pytest.fixture
def hostile():
    sent: dict[str, dict] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            mode = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))["model"]
            self.send_response(500 if mode == "endless-error" else 200)
            self.send_header("content-type", "text/plain" if mode == "endless-error" else "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            piece = b"x" * 65536
            if mode == "endless-line":
                self.wfile.write(b"data: ")
            elif mode == "endless-answer":
                text = "y" * 60000
                piece = b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}).encode() + b"\n\n"
            n, done = 0, False
            try:
                while n < WANTS[mode]:
                    self.wfile.write(piece)
                    n += len(piece)
                done = True
            except OSError:  # Tryouts hung up
                pass
            sent[mode] = {"bytes": n, "all": done}
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", sent
    server.shutdown()
    server.server_close()


def outcome(sent: dict, mode: str) -> dict:
    """What the server managed to send (it notices the hang-up at its next write)."""
    deadline = time.monotonic() + 30
    while mode not in sent:
        assert time.monotonic() < deadline, "the server is still sending"
        time.sleep(0.01)
    return sent[mode]


@pytest.mark.parametrize("mode, words", [
    ("endless-line", "one line of more than 16 MB without ending it"),
    ("endless-answer", "far beyond max_tokens"),
])
def test_a_stream_without_end_is_cut_as_a_bad_response(hostile, mode, words):
    url, sent = hostile
    result, _ = run_provider(create_provider(ModelSpec.parse(f"openai-compat:{url}#{mode}")), REQ)
    assert not result.ok and result.error_kind == "bad_response", result.error
    assert words in result.error
    assert len(result.text) <= MAX_ANSWER_CHARS + 60000  # the limit and the chunk that crossed it
    assert not outcome(sent, mode)["all"]  # hung up before the server was done


def test_an_endless_error_page_is_read_only_as_far_as_its_start(hostile):
    url, sent = hostile
    result, _ = run_provider(create_provider(ModelSpec.parse(f"openai-compat:{url}#endless-error")), REQ)
    assert not result.ok and "500" in result.error and len(result.error) < 5000
    assert not outcome(sent, "endless-error")["all"]
