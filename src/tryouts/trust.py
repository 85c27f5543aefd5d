"""What Tryouts wrote itself: a per-user key that signs the configuration it keeps in a results database.

A results database may be shared (a SQLite file on a shared disk, a team's PostgreSQL ledger), and anyone who
can write to it can write any value in any row. Values that choose what runs, where requests go and with which
key (a run's stored suite: its models, options, scorers and judge; its suite file's path) must therefore never
be taken from a row on its word. When Tryouts records such values it adds an HMAC-SHA256 over them, keyed by a
secret only this user can read (``<config>/ledger.key``, mode 600, made on first use); when it reads them back to
act on them (``run --resume``, ``score``) it uses them only if the MAC verifies. Anything else (a row another
user or machine wrote, one written before signing existed, or one that was changed) is refused with a message
that says which file to pass instead.

The results themselves (answers, timings, costs) are not signed: they are data, shown and exported, never run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from .paths import config_dir

__all__ = ["KEY_FILE", "key_path", "sign", "verify"]

#: the key's file name in the config folder
KEY_FILE = "ledger.key"

#: the first bytes of a signature: the scheme, so another one can follow without misreading old rows
_SCHEME = "hmac-sha256:v1:"


def key_path() -> Path:
    """Where this user's signing key lives (``TRYOUTS_CONFIG_DIR`` moves it with the rest of the config)."""
    return config_dir() / KEY_FILE


#: keys read, by file: a run signs and checks once per cached cell, so the file is read once per process
_KEYS: dict[Path, bytes] = {}


def _key(create: bool) -> bytes | None:
    """This user's key: read, or made once (32 random bytes, mode 600) when ``create``; None when there is none
    or it cannot be read (then nothing verifies, and nothing is lost: a signature is only ever a permission)."""
    path = key_path()
    if path in _KEYS:
        return _KEYS[path]
    try:
        data = path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)  # atomic, and never over another process's key made a moment before
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        data = path.read_bytes().strip()
    except OSError:
        return None
    if len(data) < 32:
        return None
    _KEYS[path] = data
    return data


def _canonical(fields: dict[str, Any]) -> bytes:
    """One byte string for the same values as they go into a database and as it hands them back: first as JSON
    stores them (tuples as lists, keys as text, other values as their ``str``), then in one order and spacing
    (key order, JSON or JSONB)."""
    stored = json.loads(json.dumps(fields, default=str))
    return json.dumps(stored, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(fields: dict[str, Any]) -> str:
    """The signature of ``fields`` (JSON values) with this user's key, made if need be."""
    key = _key(create=True)
    if key is None:  # an unreadable config folder: sign with nothing, so the row is simply never trusted
        return ""
    return _SCHEME + hmac.new(key, _canonical(fields), hashlib.sha256).hexdigest()


def verify(fields: dict[str, Any], signature: object) -> bool:
    """True when ``signature`` is this user's signature of ``fields``."""
    if not isinstance(signature, str) or not signature.startswith(_SCHEME):
        return False
    key = _key(create=False)
    if key is None:
        return False
    want = _SCHEME + hmac.new(key, _canonical(fields), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, signature)
