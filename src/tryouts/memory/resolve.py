"""Finding a model's architecture from what the user typed, without the network.

In order: a path to a GGUF file (a ``.gguf`` name or the GGUF magic: its header is read, see
:func:`load_gguf_path`); a path to a ``config.json`` (or a folder holding one, or holding a single GGUF); a
catalog name, alias or route (through the ``catalog`` lookup the caller passes, :func:`tryouts.catalog.lookup`:
the estimator itself never imports the catalog, which imports it); a Hugging Face Hub id whose ``config.json``
is already in the local Hugging Face cache. ``hf:`` and ``llamacpp:`` prefixes are dropped. Anything else is a
:class:`~tryouts.errors.UsageError` that says what to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .arch import Arch


def resolve(model: str, *, catalog: Callable[[str], Any | None] | None = None, local_paths: bool = True) -> Arch:
    """The :class:`Arch` for ``model``: a config.json path or folder, a catalog name, or a cached Hub id.

    ``catalog`` finds a catalog entry by name, alias or route (None when there is none), e.g.
    :func:`tryouts.catalog.lookup`; without it, catalog names are not tried. ``local_paths=False`` (the
    dashboard without ``--allow-local-paths``) never looks at the disk beyond the Hugging Face cache, so whether
    a file of that name exists changes nothing in the answer.
    """
    text = model.strip()
    if not text:
        raise UsageError("Name a model: a path to its config.json, a catalog name, or a Hugging Face id.")
    ref = text.removeprefix("hf:").removeprefix("llamacpp:")
    path = Path(ref).expanduser()
    if local_paths:
        if ref.lower().endswith(".gguf") or (path.is_file() and _is_gguf(path)):
            return load_gguf_path(path)
        if path.is_dir() and not (path / "config.json").is_file():
            found = _gguf_files(path)
            if len(found) == 1:
                return load_gguf_path(found[0])
            if found:
                raise UsageError(f"The folder {str(path)!r} holds several GGUF files "
                                 f"({', '.join(p.name for p in found)}); pass one of them.")
        if path.exists() or ref.endswith(".json"):
            return load_config_path(path)

    entry = catalog(text) if catalog is not None else None
    if entry is not None:
        return Arch.from_catalog(entry)

    if ref.count("/") == 1 and not ref.startswith((".", "/", "~")):
        cached = cached_config(ref)
        if cached is not None:
            return load_config_path(cached, name=ref)
        raise UsageError(
            f"{ref!r} is not in the model catalog and its config.json is not in the local Hugging Face cache. "
            f"Download the config once (hf download {ref} config.json) or pass the path of a "
            "config.json."
        )
    raise UsageError(f"{text!r} is not a config.json path, a catalog model or a Hugging Face id (org/name). Pass "
                     "the path of the model's config.json, or see the catalog with 'tryouts models'.")


def load_config_path(path: Path, name: str | None = None) -> Arch:
    """Read the config.json at ``path`` (or in the folder ``path``) into an :class:`Arch`."""
    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(f"The folder {str(path)!r} has no config.json; pass the path of a model's config.json.")
        path = path / "config.json"
    if not path.is_file():
        raise UsageError(f"No such file: {str(path)!r}. Pass the path of a model's config.json.")
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"Cannot read {str(path)!r} as JSON ({exc}); pass a model's config.json.") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{str(path)!r} does not hold a JSON object; pass a model's config.json.")
    label = name or (path.parent.name if path.name == "config.json" else path.stem)
    return Arch.from_config(data, name=label, source=str(path))


def load_gguf_path(path: Path, name: str | None = None) -> Arch:
    """Read a GGUF file's header into an :class:`Arch` that carries the file's own tensor table.

    Raises :class:`tryouts.gguf_meta.NotGGUFError` (a UsageError) when the file is not a GGUF file.
    """
    from ..gguf_meta import read_gguf

    return Arch.from_gguf(read_gguf(path), name=name or "")


def _is_gguf(path: Path) -> bool:
    from ..gguf_meta import is_gguf

    return is_gguf(path)


def _gguf_files(folder: Path) -> list[Path]:
    from ..gguf_meta import find_gguf_files

    return find_gguf_files(folder)


def cached_config(repo_id: str) -> Path | None:
    """The path of ``repo_id``'s config.json in the local Hugging Face cache, or None. Never uses the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return _cached_config_by_hand(repo_id)
    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found) if isinstance(found, str) else None


def _cached_config_by_hand(repo_id: str) -> Path | None:
    """The cache layout (``models--org--name/snapshots/<commit>/config.json``) read without huggingface_hub."""
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface"), "hub")
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file():
        candidate = repo / "snapshots" / ref.read_text().strip() / "config.json"
        if candidate.is_file():
            return candidate
    return None
