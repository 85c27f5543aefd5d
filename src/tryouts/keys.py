"""API keys: from the environment, else from a keys file only the user can read.

``tryouts keys set PROVIDER`` stores a key in ``<config>/keys.json`` (created with mode 600) under the
provider's variable name (``OPENAI_API_KEY``...). An environment variable always wins. Keys are never
written to the results store, exports or logs: providers read them here, just before a request, and every
key read here is registered with :mod:`tryouts.redact`, so an error that echoes it shows ``***`` instead.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .errors import UsageError
from .paths import config_dir
from .redact import register


def keys_path() -> Path:
    return config_dir() / "keys.json"


def _read() -> dict[str, str]:
    path = keys_path()
    if not path.is_file():
        return {}
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UsageError(f"{path} can be read by other users (mode {mode:o}): run chmod 600 {path}.")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); fix it or remove it and set the keys again.") from exc
    keys = {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    for value in keys.values():
        register(value)
    return keys


def get_key(env_var: str | None) -> str | None:
    """The key for ``env_var``: the environment variable, else the keys file, else None."""
    if not env_var:
        return None
    key = os.environ.get(env_var) or _read().get(env_var) or None
    register(key)
    return key


def set_key(env_var: str, key: str) -> Path:
    """Store ``key`` under ``env_var`` in the keys file (mode 600); return the file's path."""
    data = _read()
    data[env_var] = key
    path = keys_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def remove_key(env_var: str) -> bool:
    """Forget the stored key for ``env_var``; True when there was one."""
    data = _read()
    if env_var not in data:
        return False
    del data[env_var]
    path = keys_path()
    if data:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
    else:
        path.unlink()
    return True


def stored() -> list[str]:
    """Names of the variables that have a stored key."""
    return sorted(_read())
