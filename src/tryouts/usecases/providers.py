"""Whether a provider can run here: its key set, its extra installed, its local server listening."""

from __future__ import annotations


def readiness(info) -> tuple[bool, str]:
    """(ready, why) for a provider: its extra installed and, for key-only APIs, its key set."""
    import os

    from ..providers import missing_requirements

    missing = missing_requirements(info)
    if missing:
        return False, f"pip install 'tryouts[{info.extra}]' (missing {', '.join(missing)})"
    keys = [v for v in info.env if v.endswith(("_API_KEY", "_API_TOKEN"))]
    if info.name == "openai-compat":
        return True, "give the server's URL: openai-compat:URL#MODEL"
    from ..keys import get_key

    if info.needs_key and keys and not any(get_key(k) for k in keys):
        return False, f"set {' or '.join(keys)}"
    if info.server:
        url = (os.environ.get(info.server_env) if info.server_env else None) or info.server
        if not url.startswith(("http://", "https://")):
            url = "http://" + url  # OLLAMA_HOST may be host:port
        if not _listening(url, default_port=_port(info.server)):
            return False, f"nothing listening at {url}: start the server (or set {info.server_env})"
        return True, f"server at {url}"
    return True, "ready"


def _port(url: str) -> int | None:
    from urllib.parse import urlsplit

    return urlsplit(url).port


def _listening(url: str, default_port: int | None = None, timeout: float = 0.3) -> bool:
    """Whether a TCP connection to the URL's host and port opens (no request is sent)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or default_port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False
