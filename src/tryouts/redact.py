"""Secrets never leave the provider layer: error messages and stored options are redacted here.

Two kinds of secret are replaced by ``***``:

* the keys Tryouts has read: every key :func:`tryouts.keys.get_key` returns (environment or keys.json) is
  :func:`register`-ed when read, and the values of environment variables whose names say they hold a
  credential (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET*``, ``*_PASSWORD``...) are redacted too, read or not;
* what looks like a credential: ``Bearer``/``Basic``/``Token`` schemes, key shapes (``sk-...``, ``sk-ant-...``,
  ``gsk_...``, ``AIza...``, ``r8_...``, ``hf_...``, ``AKIA...``), header echoes (``x-api-key: ...``,
  ``api-key=...``, ``"authorization": "..."``), query parameters (``?key=...``, ``&access_token=...``) and
  URL user-info (``https://user:pass@host`` -> ``https://***@host``).

:func:`redact` does text (every :class:`~tryouts.errors.TryoutsError` message passes through it);
:func:`redact_options` does a model's options before they are stored. Model output is not redacted (a
model's answer is data, and a server that streams a key as text is out of reach); nor is a secret the
server invents that has none of the shapes above. Secrets shorter than :data:`MIN_SECRET` characters are
not registered (``x`` as a local server's dummy key would blank every ``x``).
"""

from __future__ import annotations

import base64
import os
import re
import threading
import urllib.parse
from typing import Any

__all__ = ["MASK", "MIN_SECRET", "is_secret_name", "redact", "redact_cut", "redact_options", "redact_value", "register"]

MASK = "***"
#: registered secrets shorter than this are ignored
MIN_SECRET = 8

_lock = threading.Lock()
_secrets: set[str] = set()

#: a credential after an auth scheme
#: (not all lowercase letters: "Basic authentication" is prose, not a credential)
_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)(?-i:(?![a-z]+\b))[A-Za-z0-9._~+/=:-]{6,}")
#: key shapes of the major services
_SHAPES = re.compile(
    r"\b(?:sk|rk|pk)-(?:[A-Za-z0-9]+-){0,3}[A-Za-z0-9_-]{12,}"  # OpenAI, Anthropic (sk-ant-), OpenRouter
    r"|\bgsk_[A-Za-z0-9]{16,}"  # Groq
    r"|\bAIza[0-9A-Za-z_-]{30,}"  # Google
    r"|\br8_[A-Za-z0-9]{16,}"  # Replicate
    r"|\bhf_[A-Za-z0-9]{16,}"  # Hugging Face
    r"|\bxai-[A-Za-z0-9]{16,}"  # xAI
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
)
_HEADER_NAMES = (
    r"x-api-key|api[-_]?key|x-goog-api-key|(?:proxy-)?authorization|x-auth-token|api[-_]?token|access[-_]?token"
    r"|auth[-_]?token|client[-_]?secret|secret[-_]?key|password|passwd|cookie|set-cookie"
)
#: ``name: value``, ``name=value``, ``"name": "value"``: the value (after an optional scheme) is masked
_HEADER = re.compile(
    rf"(?i)(?<![A-Za-z0-9_-])((?:{_HEADER_NAMES})[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)"
    r"(?!\*\*\*|(?:bearer|basic|token)\s)[^\s\"',;&}\])]+"
)
#: credentials in a query string
_QUERY = re.compile(
    r"(?i)([?&;](?:key|api[-_]?key|access[-_]?token|token|sig|signature|password|secret|client_secret)=)[^&\s#\"']+"
)
#: user-info in a URL: scheme://user:pass@host
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#\"']+@")
#: environment variables whose values are credentials
_ENV_SECRET = re.compile(r"(?i)(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|SECRET_ACCESS_KEY|PASSWORD|PASSWD|CREDENTIALS?)$")

#: option or field names whose values are credentials (the last word of the name, or a strong word anywhere)
_SECRET_LAST = {"key", "apikey", "token", "secret", "password", "passwd", "pwd", "authorization", "auth",
                "credential", "credentials", "cookie", "signature", "sig", "passphrase", "bearer"}
_SECRET_ANY = {"secret", "password", "passwd", "authorization", "credential", "credentials", "cookie", "passphrase"}
#: names that look secret but hold none (the name of the key's variable, not the key)
_NOT_SECRET = {"api_key_env", "key_env"}


def register(secret: str | None) -> None:
    """Remember ``secret`` (a key Tryouts has read): from now on :func:`redact` masks it wherever it appears."""
    if not secret or len(secret) < MIN_SECRET:
        return
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    with _lock:
        _secrets.update(f for f in forms if len(f) >= MIN_SECRET)


def _register_userinfo(userinfo: str) -> bool:
    """Register ``user:pass`` from a URL: the pair (as sent in ``Authorization: Basic``, base64) and the password;
    False when there was nothing to register."""
    if userinfo == MASK:
        return False
    plain = urllib.parse.unquote(userinfo)
    password = plain.partition(":")[2]
    register(password)
    register(userinfo)
    register(base64.b64encode(plain.encode()).decode())
    return True


def _known() -> list[str]:
    """The registered secrets and the credential-named environment values, longest first."""
    found = {v for k, v in os.environ.items()
             if len(v) >= MIN_SECRET and not any(c.isspace() for c in v) and _ENV_SECRET.search(k)}
    with _lock:
        found |= _secrets
    return sorted(found, key=len, reverse=True)


def redact(text: str, known: list[str] | None = None) -> str:
    """``text`` with every known secret and everything that looks like a credential replaced by ``***``
    (``known``: the secrets to mask, from :func:`_known`, when the caller redacts many strings at once)."""
    if not text or not isinstance(text, str):
        return text
    seen = False
    for m in _USERINFO.finditer(text):  # user:pass seen once is masked everywhere, Basic-encoded too
        seen = _register_userinfo(m.group(0)[len(m.group(1)):-1]) or seen
    for secret in _known() if known is None or seen else known:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(rf"\g<1>{MASK}@", text)
    text = _SCHEME.sub(rf"\g<1>\g<2>{MASK}", text)
    text = _HEADER.sub(rf"\g<1>{MASK}", text)
    text = _QUERY.sub(rf"\g<1>{MASK}", text)
    return _SHAPES.sub(MASK, text)


def redact_cut(text: str, *, cut: bool = True) -> str:
    """:func:`redact` for a text cut at its end (an error body read up to a limit): a known secret's start left
    at the very end (4 characters or more) is masked too, since the cut secret no longer matches."""
    text = redact(text)
    if cut:
        for secret in _known():
            for n in range(len(secret) - 1, 3, -1):
                if text.endswith(secret[:n]):
                    return text[:-n] + MASK
    return text


def is_secret_name(name: str) -> bool:
    """Whether an option, header or field called ``name`` holds a credential (``api_key``, ``x-api-key``,
    ``clientSecret``, ``password``; not ``api_key_env``, ``tokenizer`` or ``max_tokens``)."""
    if name.lower() in _NOT_SECRET:
        return False
    words = [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()) if w]
    if not words:
        return False
    return words[-1] in _SECRET_LAST or "".join(words[-2:]) in _SECRET_LAST or bool(_SECRET_ANY & set(words))


def redact_value(value: Any, known: list[str] | None = None) -> Any:
    """A JSON-like value with secret-named fields masked and every string redacted, at any depth."""
    if known is None and isinstance(value, dict | list | tuple):
        known = _known()
    if isinstance(value, str):
        return redact(value, known)
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and is_secret_name(k) and v not in (None, "")
                else redact_value(v, known) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, known) for v in value]
    return value


def redact_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """A model's options as they may be stored: ``headers`` masked whole, secret-named options masked
    (``api_key``, ``password``...; ``api_key_env`` names a variable and stays), URL user-info removed
    (``base_url``, ``endpoint_url``...), and ``extra_body`` and any other nested value redacted field by field."""
    for m in _USERINFO.finditer(str(options or "")):  # a user:pass anywhere in them is masked everywhere
        _register_userinfo(m.group(0)[len(m.group(1)):-1])
    known = _known()
    out: dict[str, Any] = {}
    for k, v in (options or {}).items():
        if k == "headers" and v:
            out[k] = MASK
        else:
            out[k] = redact_value({k: v}, known)[k]
    return out
