"""A json-schema assertion never fetches what its ``$ref`` names (the audit of 2026-12-04: jsonschema's default
registry ``urlopen``s an unknown reference, so a dashboard request could make the server read a local file or
call an internal address, and the answer's reason echoed what it read)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

from helpers import serve_http
from tryouts.errors import UsageError
from tryouts.scoring.assertions import Check, evaluate, parse_assertion


@pytest.fixture
def listener():
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = b'{"enum": ["FETCHED-SECRET"]}'
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with serve_http(Handler) as url:
        yield url, hits


def test_a_reference_outside_the_schema_is_refused_when_the_assertion_is_read(listener, tmp_path):
    url, hits = listener
    secret = tmp_path / "owner.json"
    secret.write_text('{"db": {"enum": ["PASSWORD=hunter2"]}}')
    for ref in (f"{url}/internal?x=1", f"file://{secret}#/db", "other.json#/a"):
        with pytest.raises(UsageError, match="refers outside itself"):
            parse_assertion({"type": "json-schema", "value": {"$ref": ref}}, "asserts[0]")
        with pytest.raises(UsageError, match="refers outside itself"):  # nested too
            parse_assertion({"type": "json-schema", "value": {"properties": {"a": {"$dynamicRef": ref}}}}, "a")
    assert hits == []


def test_a_check_built_without_the_parser_never_fetches_either(listener, tmp_path):
    url, hits = listener
    secret = tmp_path / "owner.json"
    secret.write_text('{"db": {"enum": ["PASSWORD=hunter2"]}}')
    for ref in (f"{url}/internal", f"file://{secret}#/db"):
        got = evaluate(Check("json-schema", {"$ref": ref}), text='"x"')
        assert got["passed"] is False and "could not be applied" in got["reason"]
        assert "hunter2" not in got["reason"] and "FETCHED" not in got["reason"]
    assert hits == []


def test_references_within_the_schema_still_work():
    check = parse_assertion({"type": "json-schema", "value": {
        "$id": "https://example.invalid/answer", "$defs": {"n": {"type": "integer"}},
        "type": "object", "properties": {"n": {"$ref": "#/$defs/n"}}}}, "asserts[0]")
    assert evaluate(check, text='{"n": 4}')["passed"]
    assert not evaluate(check, text='{"n": "four"}')["passed"]
