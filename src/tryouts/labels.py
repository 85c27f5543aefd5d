"""Display names of model references, shared by every face (terminal, dashboard, exports)."""

from __future__ import annotations

import re


def short_label(ref: str) -> str:
    """A display name: local paths shortened to their last part (with its parent when the last part is a
    generic ``model`` folder, as packaged models have), URLs to host and model."""
    provider, _, model = ref.partition(":")
    if "#" in model and "://" in model:
        url, _, name = model.rpartition("#")
        host = url.split("://", 1)[1].split("/", 1)[0]
        return f"{provider}:{host}#{name}"
    if model.startswith((".", "/", "~")):
        parts = model.rstrip("/").rsplit("/", 2)
        if parts[-1] == "model" and len(parts) > 2 and parts[-2]:
            return f"{provider}:{parts[-2]}/{parts[-1]}"
        return f"{provider}:{parts[-1]}"
    return ref


#: a local absolute path in free text: POSIX (``/a/b``, at least two parts), under the home (``~/a``), Windows
#: (``C:\\a\\b``), after a provider (``gguf:/a/b``) or a ``file://`` URL; not the path of a web URL
#: (``http://host/v1/x``: it follows the host)
_PATH = re.compile(
    r"file://(?:/[^\s/\\'\"`<>()\[\]{},;|*?]+)+"
    r"|(?<![\w./\\~%@-])(?:~|[A-Za-z]:)?(?:[/\\][^\s/\\'\"`<>()\[\]{},;|*?]+){2,}"
    r"|(?<![\w./\\~%@-])~(?:[/\\][^\s/\\'\"`<>()\[\]{},;|*?]+)+"
)
#: the last part of a path is generic: its parent is kept too (``…/llama-3/model``)
_GENERIC = {"model", "models", "snapshot", "snapshots", "main"}


def _last_parts(path: str) -> str:
    parts = [p for p in re.split(r"[/\\]", path.rstrip("/\\")) if p and p != "~" and not re.fullmatch(r"[A-Za-z]:", p)]
    if not parts:
        return path
    keep = parts[-2:] if parts[-1].lower() in _GENERIC and len(parts) > 1 else parts[-1:]
    return "…/" + "/".join(keep)


def short_paths(text: str) -> str:
    """Free text (an error message, a suite path, a report's data file) with each local absolute path cut to
    its last part (``/home/me/models/x.gguf`` → ``…/x.gguf``), so a shared page does not show the home
    directory or the folders around a file; a web URL's path is left alone. The home directory itself reads
    ``~``."""
    if not text:
        return text
    home = _home()
    if len(home) > 1 and home in text:
        text = re.sub(re.escape(home) + r"(?![^\s/\\'\"`<>()\[\]{},;|*?])", "~", text)
    return _PATH.sub(lambda m: _last_parts(m.group(0).removeprefix("file://")), text)


def short_ref(ref: str) -> str:
    """A model reference or label for a shared page: :func:`short_label`, then :func:`short_paths` on what is
    left (a label that is itself a path, a path inside options)."""
    return short_paths(short_label(ref))


def _home() -> str:
    import os

    return os.path.expanduser("~").rstrip("/\\")
