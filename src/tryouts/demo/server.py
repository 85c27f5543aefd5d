"""Start llama.cpp's OpenAI-compatible server (llama-cpp-python) as a subprocess on 127.0.0.1."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .._proc import stop_process
from ..errors import MissingExtraError, TryoutsError


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago on ``host``."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llamacpp_server(
    gguf: Path, *, alias: str = "tiny", port: int | None = None, n_ctx: int = 1024, timeout: float = 60.0
) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` for ``gguf``; yield its base URL (``http://127.0.0.1:P/v1``).

    The server is stopped (terminate, then kill) when the block ends, also on errors.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise MissingExtraError("llama.cpp's server", "llamacpp", "llama-cpp-python[server]")
    import httpx

    port = port or free_port()
    log = tempfile.TemporaryFile()
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--verbose", "False",
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-2000:]
                raise TryoutsError(f"llama.cpp's server exited with code {proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{base}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TryoutsError(f"llama.cpp's server did not start within {timeout:.0f} s on port {port}.")
            time.sleep(0.2)
        yield base
    finally:
        stop_process(proc)
        log.close()
