"""Display names of model references, shared by every face (terminal, dashboard, exports)."""

from __future__ import annotations


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
