"""Where Tryouts keeps its files: the results database, the cache and the config.

Defaults follow the platform's conventions (``platformdirs``); each can be moved with an
environment variable, which is also how the tests isolate themselves from a user's files.

| what | default (Linux) | variable |
|---|---|---|
| data (results database) | ``~/.local/share/tryouts`` | ``TRYOUTS_DATA_DIR`` |
| cache (demo models) | ``~/.cache/tryouts`` | ``TRYOUTS_CACHE_DIR`` |
| config (price overrides) | ``~/.config/tryouts`` | ``TRYOUTS_CONFIG_DIR`` |
| database URL or path | ``<data>/tryouts.db`` | ``TRYOUTS_DB`` |
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "tryouts"


def _dir(env: str, default: str) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser() if value else Path(default)


def data_dir() -> Path:
    """Directory of the default results database."""
    return _dir("TRYOUTS_DATA_DIR", platformdirs.user_data_dir(APP))


def cache_dir() -> Path:
    """Directory for rebuildable files (the demo models)."""
    return _dir("TRYOUTS_CACHE_DIR", platformdirs.user_cache_dir(APP))


def config_dir() -> Path:
    """Directory of ``config.yaml`` (price overrides)."""
    return _dir("TRYOUTS_CONFIG_DIR", platformdirs.user_config_dir(APP))


def default_db() -> str:
    """The database to use when ``--db`` is not given: ``TRYOUTS_DB`` or ``<data>/tryouts.db``."""
    return os.environ.get("TRYOUTS_DB") or str(data_dir() / "tryouts.db")


def default_file_name(prefix: str, name: str, suffix: str, max_len: int = 100) -> str:
    """A file name for the current folder built from a stored value (a run id): ``prefix + name + suffix``, with
    every character but ``A-Z a-z 0-9 . _ -`` in ``name`` made ``_``, no leading dot, at most ``max_len``
    characters. Never a path: a run id from a shared ledger such as ``x/../../etc/f`` gives ``tryouts-x_.._.._etc_f``."""
    import re

    stem = (prefix + re.sub(r"[^A-Za-z0-9._-]", "_", name))[: max_len - len(suffix)].lstrip(".")
    return (stem or "run") + suffix
