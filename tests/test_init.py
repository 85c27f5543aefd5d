"""`tryouts init`: what it finds (keys, servers on 127.0.0.1, local files, the offline models), what it writes
(a suite the loader accepts, a scorer the suite uses) and that the suite runs end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tryouts.suite import load_suite, loads_suite
from tryouts.usecases.init import (
    CHEAP_MODELS,
    ServerProbe,
    detect,
    find_local_files,
    given_models,
)
from tryouts.usecases.init_text import scorers_text, suite_text, write_starter

OLLAMA_DEFAULT = "http://127.0.0.1:11434"


def tryouts(*args, cwd=None, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=timeout)


@contextmanager
def fake_server(routes: dict[str, tuple[int, bytes]]):
    """A tiny HTTP server on 127.0.0.1 in a thread: GET PATH answers routes[PATH] (status, body), else 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = routes.get(self.path, (404, b"404 page not found"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def dead_url():
    """A loopback URL where nothing listens (the port is bound, never listened on: connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def nothing_listening(dead_url: str) -> dict[str, str]:
    """Every local server's variable pointed at a refused port: detection never sees this machine's servers."""
    return {"OLLAMA_HOST": dead_url, "LLAMACPP_BASE_URL": dead_url + "/v1", "VLLM_BASE_URL": dead_url + "/v1",
            "LMSTUDIO_BASE_URL": dead_url + "/v1"}


def ollama_probe(url: str) -> ServerProbe:
    return ServerProbe("Ollama", "ollama", url, OLLAMA_DEFAULT, "ollama", "test")


def tags(*names: str) -> bytes:
    return json.dumps({"models": [{"name": n, "model": n, "size": 1} for n in names]}).encode()


# ---- servers -------------------------------------------------------------------------------------------------


def test_an_ollama_server_is_found_and_its_models_go_in_the_suite(tmp_path):
    names = ("llama3.2:latest", "nomic-embed-text:latest", "evil\nname", "${HOME}", "qwen3:8b", "phi4:latest")
    with fake_server({"/api/tags": (200, tags(*names))}) as url:
        found = detect(probes=[ollama_probe(url)], roots=[], keys=False, offline=False, timeout=2.0)
    refs = [m.ref for m in found.models]
    assert refs == ["ollama:llama3.2:latest", "ollama:qwen3:8b"]  # embeddings and unsafe names are skipped
    assert all(m.options == {"base_url": url} for m in found.models)  # not the default port: said in the suite
    assert found.models[-1].more == ("ollama:phi4:latest",)
    assert any(ok and "Ollama on 127.0.0.1" in line and "3 models" in line for ok, line in found.report)

    path = tmp_path / "tryouts.yaml"
    write_starter(path, found)
    text = path.read_text()
    assert f"found: Ollama on 127.0.0.1:{url.rpartition(':')[2]}" in text
    assert '# - {model: "ollama:phi4:latest"' in text  # the rest, commented out
    assert "evil" not in text and "${HOME}" not in text
    suite = load_suite(path)
    assert [(m.model, m.options) for m in suite.models] == [
        ("ollama:llama3.2:latest", {"base_url": url}), ("ollama:qwen3:8b", {"base_url": url})]
    assert len(list(suite.cells())) == 2 * 3


def test_openai_style_servers_and_what_is_not_added(tmp_path):
    models = json.dumps({"object": "list", "data": [{"id": "Qwen/Qwen2.5-0.5B-Instruct", "object": "model"}]})
    with fake_server({"/v1/models": (200, models.encode())}) as url, fake_server({}) as other:
        probes = [
            ServerProbe("vLLM", "vllm-server", url + "/v1", "http://127.0.0.1:8000/v1", "openai", "VLLM_BASE_URL"),
            ServerProbe("LM Studio", "lmstudio", other + "/v1", "http://127.0.0.1:1234/v1", "openai"),  # 404s
            ServerProbe("Ollama", "ollama", "http://10.9.8.7:11434", OLLAMA_DEFAULT, "ollama", "OLLAMA_HOST"),
        ]
        found = detect(probes=probes, roots=[], keys=False, offline=False, timeout=2.0)
    assert [(m.ref, m.options) for m in found.models] == [
        ("vllm-server:Qwen/Qwen2.5-0.5B-Instruct", {"base_url": url + "/v1"})]
    lines = [line for _, line in found.report]
    assert any("from VLLM_BASE_URL" in line for line in lines)
    assert any("LM Studio: something listens" in line and "HTTP 404" in line for line in lines)
    assert any("10.9.8.7" in line and "only looks on this machine" in line for line in lines)


def test_a_server_that_sends_too_much_is_not_trusted():
    huge = b'{"models": [' + b'{"name": "x"},' * 100_000 + b'{"name": "y"}]}'  # over the 1 MiB bound
    with fake_server({"/api/tags": (200, huge)}) as url:
        found = detect(probes=[ollama_probe(url)], roots=[], keys=False, offline=False, timeout=2.0)
    assert found.models == []
    assert any("too long" in line for _, line in found.report)


# ---- keys ----------------------------------------------------------------------------------------------------


def test_keys_are_named_never_shown(monkeypatch, tmp_path):
    from tryouts.keys import set_key

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-SECRET-1234567890")
    set_key("GROQ_API_KEY", "gsk-SECRET-0987654321")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-SECRET-1111")  # a deployment name is the user's own: not guessed
    found = detect(probes=[], roots=[], offline=False)
    refs = {m.ref for m in found.models}
    assert refs == {f"anthropic:{CHEAP_MODELS['anthropic']}", f"groq:{CHEAP_MODELS['groq']}"}
    lines = " ".join(line for _, line in found.report)
    assert "ANTHROPIC_API_KEY is set (in the environment)" in lines and "GROQ_API_KEY is set (in the keys file)" in lines
    path = tmp_path / "tryouts.yaml"
    write_starter(path, found)
    text = path.read_text()
    assert "SECRET" not in lines and "SECRET" not in text
    assert "set OPENAI_API_KEY" in text  # a provider without a key is suggested, commented out
    assert '# - "azure:YOUR-DEPLOYMENT"' in text
    load_suite(path)


def test_the_cheap_models_are_in_the_catalog_and_not_retired():
    from tryouts.catalog import lookup

    known = {p: lookup(f"{p}:{m}") for p, m in CHEAP_MODELS.items()}
    assert {"openai", "anthropic", "gemini"} <= {p for p, e in known.items() if e is not None}
    assert [p for p, e in known.items() if e is not None and e.retired()] == []
    assert [p for p, e in known.items() if e is not None and e.shutdown] == []  # nor about to be shut down


# ---- local files ---------------------------------------------------------------------------------------------


def write_gguf_like(path: Path, magic: bytes = b"GGUF") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(magic + b"\0" * 60)
    return path


def test_local_gguf_files_and_model_folders_are_found(tmp_path):
    models = tmp_path / "models"
    write_gguf_like(models / "a-q4_k_m.gguf")
    write_gguf_like(models / "big-00001-of-00002.gguf")
    write_gguf_like(models / "big-00002-of-00002.gguf")  # opened through the first part
    write_gguf_like(models / "mmproj-a.gguf")  # a vision projector, no chat model
    write_gguf_like(models / "fake.gguf", magic=b"PK\3\4")  # not GGUF inside
    write_gguf_like(tmp_path / ".hidden" / "x.gguf")
    hf = models / "org" / "tiny-llm"
    hf.mkdir(parents=True)
    (hf / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (hf / "model.safetensors").write_bytes(b"\0")
    bert = models / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    (bert / "model.safetensors").write_bytes(b"\0")

    files = find_local_files([(tmp_path, 1), (models, 3)], tmp_path)
    assert [(kind, shown) for kind, _, shown in files] == [
        ("gguf", "./models/a-q4_k_m.gguf"), ("gguf", "./models/big-00001-of-00002.gguf"),
        ("hf", "./models/org/tiny-llm")]

    found = detect(probes=[], base=tmp_path, keys=False, offline=False)
    assert [m.ref for m in found.models] == ["llamacpp:./models/a-q4_k_m.gguf", "llamacpp:./models/big-00001-of-00002.gguf"]
    assert found.models[-1].more == ("hf:./models/org/tiny-llm",)


def test_paths_with_dollar_braces_round_trip_and_comments_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    write_gguf_like(tmp_path / "models" / "${NOPE}" / "m.gguf")
    found = detect(probes=[], base=tmp_path, keys=False, offline=False)
    assert [m.ref for m in found.models] == ["llamacpp:./models/${NOPE}/m.gguf"]
    path = tmp_path / "suite.yaml"
    write_starter(path, found)
    text = path.read_text()
    assert "$${NOPE}" in text and "# A ${NAME} in a value" in text  # escaped in the value; a comment as written
    assert load_suite(path).models[0].model == "llamacpp:./models/${NOPE}/m.gguf"


# ---- the offline models --------------------------------------------------------------------------------------


def test_with_nothing_ready_the_offline_demo_models_are_used(demo_models, monkeypatch, tmp_path):
    monkeypatch.setenv("TRYOUTS_CACHE_DIR", str(demo_models.hf_dir.parents[2]))  # <cache>/demo/v1/tiny-chat
    found = detect(probes=[], roots=[], build_demo=False)
    assert found.offline
    refs = [m.ref for m in found.models]
    assert f"llamacpp:{demo_models.gguf_path}" in refs and f"hf:{demo_models.hf_dir}" in refs
    text = suite_text(found)
    assert "offline demo models" in text
    loads_suite(text, source=tmp_path / "tryouts.yaml")


def test_with_nothing_at_all_the_suite_still_loads_and_says_what_to_do(tmp_path):
    found = detect(probes=[], roots=[], keys=False, build_demo=False)  # an empty cache, no building
    assert [m.kind for m in found.models] == ["placeholder"]
    path = tmp_path / "tryouts.yaml"
    write_starter(path, found)
    assert "# not found: nothing ready was found here" in path.read_text()
    load_suite(path)


# ---- the files written, the command ----------------------------------------------------------------------------


def test_the_scorer_file_is_valid_python_and_scores_as_documented():
    namespace: dict = {}
    exec(compile(scorers_text(), "scorers.py", "exec"), namespace)
    score = namespace["matches_expected"]
    assert score("Paris is the capital of France.", {"expected": "The capital of France is Paris."})["passed"]
    half = score("Paris.", {"expected": "The capital of France is Paris."})
    assert half["score"] == pytest.approx(1 / 3) and not half["passed"] and "missing: capital, france" in half["reason"]
    assert score("anything", {"expected": None}) == {"score": 0.0, "passed": False,
                                                    "reason": "the case has no expected answer"}


def test_given_models_are_checked():
    from tryouts.errors import UsageError

    assert [m.ref for m in given_models(["openai:gpt-4o-mini", "ollama:qwen3:8b"]).models] == [
        "openai:gpt-4o-mini", "ollama:qwen3:8b"]
    with pytest.raises(UsageError, match="Unknown provider 'nosuch'"):
        given_models(["nosuch:model"])
    with pytest.raises(UsageError, match="has no provider"):
        given_models(["gpt-4o"])


def test_the_command_with_a_key_and_a_gguf_then_refuses_to_overwrite(tmp_path, dead_url):
    env = {**nothing_listening(dead_url), "OPENAI_API_KEY": "sk-proj-SECRET-abcdef123456"}
    write_gguf_like(tmp_path / "models" / "local.gguf")
    p = tryouts("init", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr + p.stdout
    out = p.stdout + p.stderr
    suite, scorers = tmp_path / "tryouts.yaml", tmp_path / "scorers.py"
    assert "SECRET" not in out and "SECRET" not in suite.read_text() and "SECRET" not in scorers.read_text()
    assert "OPENAI_API_KEY is set (in the environment): openai:gpt-6-luna" in out
    assert "Ollama: nothing listening on 127.0.0.1" in out
    assert "tryouts run tryouts.yaml" in out
    assert [m.model for m in load_suite(suite).models] == ["openai:gpt-6-luna", "llamacpp:./models/local.gguf"]

    again = tryouts("init", cwd=tmp_path, env=env)
    assert again.returncode == 1 and "already exists" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.stderr
    forced = tryouts("init", "--force", "-m", "ollama:qwen3:8b", "--no-scorers", cwd=tmp_path, env=env)
    assert forced.returncode == 0, forced.stderr
    assert [m.model for m in load_suite(suite).models] == ["ollama:qwen3:8b"]
    assert "scoring:" not in suite.read_text()
    bad = tryouts("init", "elsewhere.yaml", "-m", "nosuch:x", cwd=tmp_path, env=env)
    assert bad.returncode == 1 and "Unknown provider 'nosuch'" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "elsewhere.yaml").exists()


def test_the_suite_found_on_a_replayed_ollama_runs_end_to_end(replay_server, tmp_path):
    """Detected on the replay server's Ollama route, written, run with `tryouts run`: every cell answers and the
    custom scorer scores every answer."""
    base = replay_server.removesuffix("/v1") + "/ollama"
    found = detect(probes=[ollama_probe(base)], roots=[], keys=False, offline=False, timeout=5.0)
    assert [m.ref for m in found.models] == ["ollama:replay:latest"]
    suite = tmp_path / "evals" / "tryouts.yaml"
    written = write_starter(suite, found)
    assert written == [suite, tmp_path / "evals" / "scorers.py"]
    db = str(tmp_path / "run.db")
    p = tryouts("run", str(suite), "--db", db, "--no-progress")
    assert p.returncode == 0, p.stderr + p.stdout
    data = json.loads(tryouts("show", "latest", "--db", db, "-f", "json").stdout)
    results = data["results"]
    assert len(results) == 3 and all(r["ok"] for r in results)
    assert {r["case"]["case_id"] for r in results} == {"capital", "sum", "json"}
    assert all("matches_expected" in r["scores"]["custom"] for r in results)


def test_the_offline_suite_runs_end_to_end(demo_models, tmp_path, dead_url):
    """`tryouts init` with nothing else ready writes the demo models, and `tryouts run` runs them offline."""
    env = {**nothing_listening(dead_url), "TRYOUTS_CACHE_DIR": str(demo_models.hf_dir.parents[2])}
    p = tryouts("init", "--no-detect", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr + p.stdout
    assert "offline: the tiny demo models" in p.stdout
    p = tryouts("run", "tryouts.yaml", "--db", str(tmp_path / "run.db"), "--no-progress", "-f", "json",
                cwd=tmp_path, env={**env, "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    results = json.loads(p.stdout)["results"]
    assert len(results) == 2 * 3 and all(r["ok"] for r in results)
