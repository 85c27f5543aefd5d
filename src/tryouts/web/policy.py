"""What a request to the dashboard may choose: options, model references, local paths and suite files.

A token holder drives the dashboard, but the server runs with its owner's keys, files and Python. So what
chooses *where requests go* or *what code runs* is refused from the web unless the owner started the server
allowing it (``tryouts ui --allow-options NAME,...`` / ``--allow-local-paths`` / ``--suite-dir``):

* **Options.** Only :data:`SAFE_OPTIONS` (sampling-side and timing knobs) pass by default. Anything else
  (``base_url``, ``api_key_env``, ``headers``, ``extra_body``, ``trust_remote_code``, ``device_map``,
  ``quantization``, ``tokenizer``, ...) is refused with a 400 naming the option and the flag, unless named in
  ``--allow-options`` (``all`` allows every option).
* **Model references.** A reference whose model is a URL (``openai-compat:http://host/v1#m``) chooses where
  requests go, as ``base_url`` does: allowed only with ``--allow-options base_url``. One whose model is a
  local path (``hf:/path``, ``llamacpp:./m.gguf``, ``~/...``) reads this machine's files and may run their
  code: allowed only with ``--allow-local-paths``. The same rule holds for the memory calculator and cards.
* **Suite files.** Only YAML files inside the suite folder (the folder ``tryouts ui`` started in, or
  ``--suite-dir``), after resolving symbolic links, owned by the user running the dashboard; errors name the
  line and field, never the file's text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAFE_OPTIONS = frozenset({
    "price", "api_key", "timeout", "connect_timeout", "warmup", "thinking_budget", "think", "num_ctx", "n_ctx",
    "num_predict", "include_usage", "keep_alive", "one_token_per_chunk", "prefix_cache", "batch_size", "task",
    "kv_type", "n_gpu_layers", "gpu_memory_utilization", "max_tokens_field", "max_tokens_default", "dtype",
})
"""Options any token holder may send: they change how a model answers or is timed, not where or what runs
(``api_key`` is the sender's own key, sent to the provider's usual address)."""

RISKY_OPTIONS = ("base_url", "endpoint_url", "api_key_env", "headers", "extra_body", "extra_input",
                 "additional_fields", "pipeline_kwargs", "trust_remote_code", "device_map", "device",
                 "quantization", "tokenizer", "gguf_file", "revision", "region", "profile", "api_version",
                 "anthropic_version")
"""The options known to choose where requests go, which key or credentials they carry, or what code runs."""

MAX_MODEL_NAME = 500
"""The longest model name the dashboard accepts (a Hub id or catalog name is far shorter)."""

_SUITE_SUFFIXES = (".yaml", ".yml")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class Refused(Exception):
    """A request the dashboard's policy refuses; ``message`` says which flag would allow it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def parse_allow_options(text: str | Iterable[str] | None) -> frozenset[str]:
    """``base_url,extra_body`` (or a list of names) as a set; ``all`` allows every option."""
    if text is None:
        return frozenset()
    parts = text.split(",") if isinstance(text, str) else list(text)
    return frozenset(p.strip() for p in parts if p.strip())


def path_shaped(name: str) -> bool:
    """Whether a model name is written as a path (``/x``, ``./x``, ``~/x``, ``a/b/c``, ``x.gguf``, ``C:\\x``):
    decided from the text alone, so the answer says nothing about this machine's files."""
    bare = name.strip()
    if bare.startswith(("/", ".", "~", "\\")) or "\\" in bare or bare.lower().endswith((".gguf", ".json")):
        return True
    if re.match(r"^[A-Za-z]:[\\/]", bare):  # C:\ or C:/
        return True
    return bare.count("/") > 1 or ".." in bare.split("/")


def looks_local(name: str) -> bool:
    """Whether a model name is a path on this machine rather than a catalog name or Hub id (a provider would
    open an existing relative name, so existence counts here)."""
    return path_shaped(name) or Path(name.strip()).expanduser().exists()


_PREFIX = re.compile(r"(hf|llamacpp):", re.IGNORECASE)


def normalise_name(name: str) -> str:
    """``name`` stripped, with an ``hf:``/``llamacpp:`` prefix in lower case (``HF:x`` -> ``hf:x``), as the
    calculator and the card read it; :class:`Refused` for two prefixes (``hf:HF:/etc``)."""
    text = name.strip()
    m = _PREFIX.match(text)
    if m is None:
        return text
    rest = text[m.end():].strip()
    if _PREFIX.match(rest):
        raise Refused("Give one prefix at most (hf: or llamacpp:): a catalog name or a Hub id (org/name).")
    return m.group(1).lower() + ":" + rest


def bare_name(name: str) -> str:
    """A :func:`normalise_name` result without its prefix."""
    m = _PREFIX.match(name)
    return name[m.end():] if m else name


@dataclass(frozen=True)
class WebPolicy:
    """What the owner allowed this dashboard (see the module docstring)."""

    allow_options: frozenset[str] = frozenset()
    allow_local_paths: bool = False
    suite_dir: Path = field(default_factory=Path.cwd)

    def option_allowed(self, name: str) -> bool:
        return name in SAFE_OPTIONS or name in self.allow_options or "all" in self.allow_options

    def check_options(self, options: dict[str, Any], where: str) -> None:
        for name in options:
            if not self.option_allowed(str(name)):
                shown = str(name)[:60]
                raise Refused(f"{where}: the option {shown!r} is not allowed from the dashboard (it can choose "
                              f"where requests go or what code runs). Start it with 'tryouts ui --allow-options "
                              f"{shown}' to allow it, or run 'tryouts compare' in a terminal.")

    def check_model(self, ref: str, options: dict[str, Any] | None = None) -> None:
        """Refuse a model reference (and its options) that this dashboard does not allow."""
        where = f"model {ref[:80]!r}" + ("…" if len(ref) > 80 else "")
        if len(ref) > MAX_MODEL_NAME:
            raise Refused(f"{where}: a model reference is at most {MAX_MODEL_NAME} characters.")
        _provider, _, model = ref.partition(":")
        model = model.split("#", 1)[0]
        if _URL.match(model) and not self.option_allowed("base_url"):
            raise Refused(f"{where}: a model reference with a URL chooses where requests go, which the dashboard "
                          "does not allow by default. Start it with 'tryouts ui --allow-options base_url' to "
                          "allow it, or run 'tryouts compare' in a terminal.")
        if model and not _URL.match(model) and looks_local(model) and not self.allow_local_paths:
            raise Refused(f"{where}: local paths are not allowed from the dashboard (they read this machine's "
                          "files and can run their code). Start it with 'tryouts ui --allow-local-paths' to "
                          "allow them, or use a catalog name or Hub id.")
        self.check_options(options or {}, where)

    def check_stored_model(self, ref: str, options: dict[str, Any] | None = None) -> None:
        """Refuse a model reference and options read back from the results database (a re-run) unless a dashboard
        started with no ``--allow-*`` flag would take them: anyone with write access to a shared database could
        have written them, so this dashboard's permissions (given to the token's holder) do not extend to them."""
        try:
            WebPolicy(suite_dir=self.suite_dir).check_model(ref, options)
        except Refused as exc:
            raise Refused("A re-run takes its model and options from the results database, where anyone with write "
                          "access could have written them, so it runs only what a dashboard started with no "
                          "--allow-* flag would. Start a new comparison with this model instead. "
                          f"({exc.message})", exc.status) from None

    def check_name(self, name: str) -> str:
        """A model name for the memory calculator or a card, normalised (:func:`normalise_name`): pass *that* on.

        Without ``--allow-local-paths`` a name written as a path is refused, and the caller resolves the rest
        through the catalog and the Hugging Face cache only (never the disk), so an existing folder and a
        missing one get the same answer."""
        if len(name) > MAX_MODEL_NAME:
            raise Refused(f"A model name is at most {MAX_MODEL_NAME} characters: give a catalog name or a "
                          "Hub id (org/name).")
        normal = normalise_name(name)
        if not self.allow_local_paths and path_shaped(bare_name(normal)):
            raise Refused("Local paths are not allowed from the dashboard: give a catalog name or a Hub id "
                          "(org/name), or start it with 'tryouts ui --allow-local-paths'.")
        return normal

    def suite_path(self, text: str) -> Path:
        """The suite file ``text`` names, resolved inside the suite folder, or :class:`Refused`."""
        if "\x00" in text or len(text) > 1000:
            raise Refused("That is not a suite file path: give a YAML file in the dashboard's suite folder.")
        root = self.suite_dir.resolve()
        given = Path(text)
        try:
            path = (given if given.is_absolute() else root / given).resolve()
        except (OSError, RuntimeError, ValueError):
            raise Refused("That suite file path cannot be resolved: give a YAML file in the suite folder "
                          f"{root}.") from None
        if not path.is_relative_to(root):
            raise Refused(f"Suite files must be inside the dashboard's suite folder {root} (symbolic links "
                          "resolved): move the file there, or start 'tryouts ui --suite-dir FOLDER'.", 403)
        if path.suffix.lower() not in _SUITE_SUFFIXES:
            raise Refused("A suite file is a YAML file (.yaml or .yml): give one in the suite folder.")
        if not path.is_file():
            shown = path.relative_to(root)
            raise Refused(f"No suite file {str(shown)!r} in the suite folder {root}: check the name (paths are "
                          "relative to that folder).", 404)
        if hasattr(os, "getuid") and path.stat().st_uid != os.getuid():
            raise Refused("That suite file belongs to another user of this machine: the dashboard runs only "
                          "your own suite files (copy it, check it, and run the copy).", 403)
        return path
