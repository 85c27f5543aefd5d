"""Bad input outside the suite file, each a clear error without a traceback (issue 12): a folder, a
read-only database or a path under a file as --db; a llama.cpp option that is not a number; an hf:
folder without config.json; a server that answers a chat request with an HTML page."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import REQ, run_provider
from tryouts import errors
from tryouts.providers import create_provider
from tryouts.providers.llamacpp import LlamaCppProvider
from tryouts.store import Store
from tryouts.types import ModelSpec


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "300", **os.environ})


# ---- --db -----------------------------------------------------------------------------------------


def test_a_folder_as_db_is_a_clear_error(tmp_path):
    with pytest.raises(errors.StoreError, match="is a folder: give a file inside it"):
        Store(tmp_path)
    p = _cli("runs", "--db", str(tmp_path))
    assert p.returncode != 0 and "Traceback" not in p.stderr + p.stdout
    assert "is a folder" in p.stdout + p.stderr


def test_an_error_quoting_brackets_prints_them_as_text(tmp_path):
    """An error message quotes paths and servers' words; ``[red]`` or ``[/]`` in them is text, not markup
    (rich would swallow the one and crash on the other)."""
    for name in ("x[red]y.yaml", "x[/]y.yaml"):
        p = _cli("run", str(tmp_path / name), "--dry-run")
        assert p.returncode != 0 and "Traceback" not in p.stderr + p.stdout
        assert name in (p.stdout + p.stderr).replace("\n", ""), p.stderr


def test_a_db_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "plain").write_text("x")
    p = _cli("runs", "--db", str(tmp_path / "plain" / "t.db"))
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "Traceback" not in out, out
    assert "Cannot create the folder" in out and f"({tmp_path / 'plain'} is a file)" in out  # one line, whole


def test_a_read_only_db_is_a_clear_error_when_written(tmp_path):
    Store(tmp_path / "t.db").close()  # created and migrated
    store = Store(f"sqlite:///file:{tmp_path / 't.db'}?mode=ro&uri=true")  # reading still works
    assert store.url.startswith("sqlite:///")
    with pytest.raises(errors.StoreError, match="is read-only: make the file and its folder writable"):
        store.create_run("compare", ["x:y"], {})
    store.close()


# ---- llamacpp options -----------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value"), [("n_ctx", "abc"), ("n_gpu_layers", "all"), ("n_threads", "1.5")])
def test_llamacpp_option_that_is_not_a_number(tmp_path, option, value):
    pytest.importorskip("llama_cpp")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(errors.UsageError) as info:  # refused when the provider is made, before any load
        provider = LlamaCppProvider(ModelSpec.parse(f"llamacpp:{gguf}", {option: value}))
        asyncio.run(provider.load())
    assert f"the option {option} must be a whole number" in str(info.value) and repr(value) in str(info.value)


# ---- hf: folders ----------------------------------------------------------------------------------


def test_hf_folder_with_a_gguf_not_named_gguf(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights.bin").write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(errors.UsageError) as info:
        create_provider(ModelSpec.parse("hf:./m"))
    assert "hf:./m/weights.bin" in str(info.value) and "gguf_file=weights.bin" in str(info.value)


def test_hf_folder_without_config_or_gguf(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(errors.ModelNotFoundError, match=r"has no config\.json and no \.gguf file"):
        create_provider(ModelSpec.parse(f"hf:{tmp_path}"))


# ---- an HTML page instead of an event stream ------------------------------------------------------

PAGE = b"<!doctype html><html><head><title>Sign in</title></head><body>SECRET-PORTAL-PAGE</body></html>"


@pytest.fixture
def html_server():
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_html_instead_of_an_event_stream(html_server, tmp_path):
    result, _ = run_provider(create_provider(ModelSpec.parse(f"openai-compat:{html_server}#m")), REQ)
    assert result.error is not None and "not an OpenAI-compatible event stream" in result.error
    assert "'text/html'" in result.error and "SECRET-PORTAL-PAGE" not in result.error
    p = _cli("compare", "hi", "-m", f"openai-compat:{html_server}#m", "--db", str(tmp_path / "t.db"))
    out = p.stdout + p.stderr
    assert "Traceback" not in out and "not an OpenAI-compatible event stream" in out, out


def test_markup_in_prompts_labels_and_server_errors_is_printed_as_text(replay_server, tmp_path):
    """``[/]`` in a prompt, a model label or a server's error is text: rich would raise a MarkupError on it
    (a traceback from `show`, or from the progress line of a retry)."""
    db = str(tmp_path / "m.db")
    suite = tmp_path / "s.yaml"
    suite.write_text(f'models: ["openai-compat:{replay_server}#fail_first=1;status=503;tokens=2;id=[/]x"]\n'
                     'prompts: ["[/] tell me [bold]x"]\nretries: {max: 2, backoff_s: 0.01}\n')
    p = _cli("run", str(suite), "--db", db)
    assert p.returncode == 0 and "Traceback" not in p.stdout + p.stderr, p.stderr
    shown = _cli("show", "latest", "--db", db)
    assert shown.returncode == 0 and "Traceback" not in shown.stdout + shown.stderr, shown.stderr
    assert "[/]x" in p.stdout and "[/]x" in shown.stdout  # the label, as written
