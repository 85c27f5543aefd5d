"""``tryouts init``: find the models ready on this machine and write a starter suite and scorers for them.

What counts as ready, looked for quickly (about a second at most) and without sending a prompt anywhere:

* **API keys**: a provider whose key variable is set (in the environment or the keys file, read through
  :mod:`tryouts.keys`) and whose extra is installed; a small, cheap model of it is picked from
  :data:`CHEAP_MODELS`. Only the provider and the variable's name are ever shown, never a key.
* **Servers on this machine**: Ollama (``/api/tags``), llama.cpp's server, vLLM and LM Studio
  (``/v1/models``), each on its usual loopback port or where its variable points (``OLLAMA_HOST``,
  ``LLAMACPP_BASE_URL``...), when that is this machine. Short timeouts, bounded bodies.
* **Local files**: GGUF files (llama.cpp) and Hugging Face model folders (``config.json`` of a causal LM) in
  the current folder and its ``models/`` folder, to a bounded depth and count.
* When none of these is there: the offline demo models (SmolLM2-135M-Instruct once ``tryouts demo`` has
  cached it, else the tiny random-weight test models, built here in a few seconds) so ``tryouts run`` works.

:func:`detect` returns what was found; :func:`tryouts.usecases.init_text.write_starter` writes the files.
Nothing here imports a face (CLI, web): the CLI prints what they return.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import TryoutsError, UsageError

#: a small, cheap chat model per API provider (tests check each against the catalog: known, neither retired nor
#: with an announced shutdown)
CHEAP_MODELS: dict[str, str] = {
    "openai": "gpt-6-luna",
    "anthropic": "claude-haiku-5-5",
    "gemini": "gemini-2.5-flash-lite",
    "mistral": "mistral-small-latest",
    "cohere": "command-r7b-12-2024",
    "groq": "llama-3.1-8b-instant",
    "deepseek": "deepseek-chat",
    "openrouter": "openai/gpt-6-luna",
}

#: at most this many models of one server or folder go in the suite; more are written commented out
PER_SOURCE = 2
#: at most this many names of one server are listed (the rest are counted)
LIST_AT_MOST = 12
#: what a server may send in answer to a probe
PROBE_BODY_LIMIT = 1 << 20
#: what a model name from a server may look like to be written into the suite (others are skipped)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}
#: names that are embedding models, not chat models
_EMBEDDING = re.compile(r"embed|minilm|bge-|e5-", re.IGNORECASE)


@dataclass(frozen=True)
class Found:
    """A model the starter suite names, and why it was picked."""

    ref: str
    #: one line for the suite's comment and the CLI, e.g. "Ollama on 127.0.0.1:11434"
    why: str
    #: key, server, file, demo or given
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    #: more references of the same source, written commented out
    more: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerProbe:
    """A local server to look for: its provider, its base URL and where that URL came from."""

    name: str
    provider: str
    url: str
    #: the provider's own default URL (a model found elsewhere gets a base_url option)
    default_url: str
    #: "ollama" (GET /api/tags) or "openai" (GET /v1/models, relative to the URL)
    api: str
    source: str = "default port"


@dataclass
class Detection:
    """What :func:`detect` found: the models for the suite, and one line per thing looked at."""

    models: list[Found] = field(default_factory=list)
    #: (found?, text) for the CLI: what was found, what was looked for and not found, what was skipped
    report: list[tuple[bool, str]] = field(default_factory=list)
    #: references to suggest, commented out, with what each needs
    suggestions: list[tuple[str, str]] = field(default_factory=list)
    #: the offline demo models were used because nothing else was ready
    offline: bool = False


# ---- API keys ----------------------------------------------------------------------------------------------


def key_vars(info) -> list[str]:
    """The variables that hold a provider's key (``*_API_KEY``, ``*_API_TOKEN``, ``CO_API_KEY``...)."""
    return [v for v in info.env if v.endswith(("_API_KEY", "_API_TOKEN"))]


def detect_keys(detection: Detection) -> None:
    """Add a cheap model of every API provider whose key is set and whose extra is installed."""
    from ..keys import get_key
    from ..providers import all_providers
    from .providers import readiness

    for info in all_providers():
        if info.local or info.server or info.name == "openai-compat":
            continue
        names = key_vars(info)
        if not names:
            continue  # bedrock: AWS credentials come from boto3's own chain
        model = CHEAP_MODELS.get(info.name) or _example_model(info)
        try:
            var = next((v for v in names if get_key(v)), None)
        except TryoutsError as exc:  # the keys file cannot be read (its mode): say so, go on
            detection.report.append((False, f"keys file: {exc.message}"))
            return
        if var is None:
            if info.name in CHEAP_MODELS:
                detection.suggestions.append((f"{info.name}:{model}", f"set {names[0]}"))
            continue
        where = "in the environment" if os.environ.get(var) else "in the keys file"
        ready, why = readiness(info)
        if not ready:
            detection.report.append((False, f"{var} is set but {info.name} is not ready: {why}"))
            continue
        if not model:
            what = "YOUR-DEPLOYMENT" if info.name == "azure" else "MODEL"
            detection.report.append((False, f"{var} is set {where}: add {info.name}:{what} to the suite yourself"))
            detection.suggestions.append((f"{info.name}:{what}", f"{var} is set; name the model"))
            continue
        found = Found(f"{info.name}:{model}", f"{var} is set ({where}); {model} is a small, cheap model", "key")
        detection.models.append(found)
        detection.report.append((True, f"{var} is set ({where}): {found.ref}"))


def _example_model(info) -> str | None:
    """The model of a provider's example reference when it is one plain reference, else None (Azure's example
    is a deployment name of someone else's: each user names their own)."""
    if info.name == "azure":
        return None
    head, sep, model = (info.example or "").partition(":")
    if sep and head == info.name and model and " " not in model and "YOUR" not in model.upper():
        return model
    return None


# ---- servers on this machine -------------------------------------------------------------------------------


def default_probes() -> list[ServerProbe]:
    """The local servers to look for: each at its provider's variable when set, else its usual port."""
    from ..providers.presets import PRESETS

    probes = []
    ollama = os.environ.get("OLLAMA_HOST", "").strip()
    probes.append(ServerProbe("Ollama", "ollama", _ollama_url(ollama) if ollama else "http://127.0.0.1:11434",
                              "http://127.0.0.1:11434", "ollama", "OLLAMA_HOST" if ollama else "default port"))
    for name, label in (("llamacpp-server", "llama.cpp's server"), ("vllm-server", "vLLM"), ("lmstudio", "LM Studio")):
        preset = PRESETS[name]
        env = os.environ.get(preset.base_url_env or "", "").strip()
        probes.append(ServerProbe(label, name, (env or preset.base_url or "").rstrip("/"), preset.base_url or "",
                                  "openai", preset.base_url_env if env else "default port"))
    return probes


def _ollama_url(value: str) -> str:
    from ..providers.ollama import ollama_base_url

    try:
        return ollama_base_url(value)
    except UsageError:
        return value


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _get_json(url: str, timeout: float) -> tuple[int | None, Any, str]:
    """GET ``url`` with ``timeout`` seconds per step and about 3x that in all; (status, JSON or None, problem).

    Only http:// on this machine; the body is read up to :data:`PROBE_BODY_LIMIT` bytes."""
    import http.client
    import socket

    parts = urlsplit(url)
    deadline = time.monotonic() + 3 * timeout
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                     headers={"Accept": "application/json", "User-Agent": "tryouts-init"})
        response = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while size <= PROBE_BODY_LIMIT and time.monotonic() < deadline:
            chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        else:
            return response.status, None, "its answer was too long or too slow"
        try:
            return response.status, json.loads(b"".join(chunks)), ""
        except ValueError:
            return response.status, None, "its answer is not JSON"
    except (ConnectionRefusedError, socket.gaierror):
        return None, None, "nothing listening"
    except (OSError, http.client.HTTPException) as exc:
        return None, None, f"no answer ({type(exc).__name__})"
    finally:
        conn.close()


def _names(api: str, data: Any) -> list[str] | None:
    """Model names from ``/api/tags`` or ``/v1/models``; None when the answer is not that shape."""
    if not isinstance(data, dict):
        return None
    items = data.get("models") if api == "ollama" else data.get("data")
    if not isinstance(items, list):
        return None
    key = "name" if api == "ollama" else "id"
    return [str(item[key]) for item in items[:500] if isinstance(item, dict) and isinstance(item.get(key), str)]


def probe_server(probe: ServerProbe, timeout: float = 0.3) -> tuple[Found | None, tuple[bool, str]]:
    """Look for one server: (the model to add or None, the line that says what was seen)."""
    where = _host_port(probe.url)
    parts = urlsplit(probe.url)
    if parts.scheme != "http" or (parts.hostname or "") not in _LOOPBACK:
        return None, (False, f"{probe.name}: {probe.source} points at {probe.url}; init only looks on this "
                      f"machine (http://127.0.0.1): add {probe.provider}:MODEL yourself")
    path = "/api/tags" if probe.api == "ollama" else "/models"
    status, data, problem = _get_json(probe.url.rstrip("/") + path, timeout)
    if status is None:
        return None, (False, f"{probe.name}: {problem} on {where}")
    names = _names(probe.api, data) if status == 200 else None
    if names is None:
        shown = f"HTTP {status}" + (f", {problem}" if problem else "")
        return None, (False, f"{probe.name}: something listens on {where} but {path} did not answer as "
                      f"{probe.name} does ({shown}): not added")
    usable = [n for n in names if _SAFE_NAME.match(n) and not _EMBEDDING.search(n)]
    if not usable:
        return None, (False, f"{probe.name} on {where}: no chat model to use ({len(names)} listed)")
    refs = [f"{probe.provider}:{n}" for n in usable]
    options = {} if _same_url(probe.url, probe.default_url) else {"base_url": probe.url}
    via = "" if probe.source == "default port" else f", from {probe.source}"
    why = f"{probe.name} on {where}{via}: {len(usable)} model{'s' * (len(usable) != 1)}"
    found = Found(refs[0], why, "server", options=options, more=tuple(refs[1:LIST_AT_MOST]))
    return found, (True, f"{why} ({', '.join(usable[:LIST_AT_MOST])}{', ...' if len(usable) > LIST_AT_MOST else ''})")


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/").replace("://localhost", "://127.0.0.1") == b.rstrip("/").replace("://localhost", "://127.0.0.1")


def detect_servers(detection: Detection, probes: list[ServerProbe], timeout: float = 0.3) -> None:
    """Probe every server at once (threads: each waits at most ``3 * timeout``) and add what answers."""
    from concurrent.futures import ThreadPoolExecutor

    if not probes:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(probes))) as pool:
        answers = list(pool.map(lambda p: probe_server(p, timeout), probes))
    for probe, (found, line) in zip(probes, answers, strict=True):
        detection.report.append(line)
        if found is None:
            continue
        refs = (found.ref, *found.more)
        used = refs[:PER_SOURCE]
        for i, ref in enumerate(used):
            detection.models.append(Found(
                ref, found.why if i == 0 else "", "server", dict(found.options),
                label=_server_label(probe, ref, found.options),
                more=refs[PER_SOURCE:] if i == len(used) - 1 else (),
            ))


def _server_label(probe: ServerProbe, ref: str, options: dict) -> str | None:
    """A label only where two servers could show the same reference (a base_url option makes it unique)."""
    return None if not options else f"{probe.provider}-{_host_port(probe.url).rpartition(':')[2]}:{ref.partition(':')[2]}"


# ---- local files -------------------------------------------------------------------------------------------


def _is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def _causal_lm(folder: Path) -> bool | None:
    """True when ``folder/config.json`` names a causal LM with weights beside it; None when it is no model."""
    config = folder / "config.json"
    try:
        if not config.is_file() or config.stat().st_size > PROBE_BODY_LIMIT:
            return None
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    weights = any(folder.glob("*.safetensors")) or any(folder.glob("*.safetensors.index.json")) \
        or (folder / "pytorch_model.bin").is_file() or any(folder.glob("pytorch_model-*.bin"))
    if not weights or not isinstance(data, dict):
        return None
    archs = data.get("architectures") or []
    return any(isinstance(a, str) and a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration"))
               for a in archs)


def _shown_path(path: Path, base: Path) -> str:
    """``./rel`` when under ``base`` (the folder tryouts runs from), else the absolute path."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(base)).as_posix()
        return "." if rel == "." else "./" + rel
    except ValueError:
        return os.path.abspath(path)


def _writable(text: str) -> bool:
    """Whether a path can go into the suite as text: UTF-8, no control characters."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 32 or ord(c) == 127 for c in text)


def _first_part(name: str) -> bool:
    """False for the second and later parts of a split GGUF (llama.cpp opens the others from the first)."""
    m = re.search(r"-(\d+)-of-\d+\.gguf$", name)
    return m is None or int(m.group(1)) == 1


def find_local_files(roots: list[tuple[Path, int]], base: Path, *, max_entries: int = 4000,
                     max_models: int = 20) -> list[tuple[str, Path, str]]:
    """GGUF files and causal-LM folders under each ``(root, depth)``: ``(kind, path, shown path)`` in order found.

    At most ``max_entries`` directory entries are looked at in all, hidden folders and the split parts of a
    GGUF after the first (``-00002-of-00003.gguf``) and vision projectors (``mmproj``) are skipped."""
    found: list[tuple[str, Path, str]] = []
    seen: set[Path] = set()
    budget = [max_entries]

    def walk(folder: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        subfolders = []
        for entry in entries:
            if budget[0] <= 0 or len(found) >= max_models:
                return
            budget[0] -= 1
            if entry.name.startswith(".") or entry.name in ("node_modules", "__pycache__", "site-packages"):
                continue
            path = Path(entry.path)
            if not _writable(entry.path):
                continue
            try:
                is_file, is_dir = entry.is_file(), entry.is_dir()
            except OSError:
                continue
            name = entry.name.lower()
            if is_file and name.endswith(".gguf") and "mmproj" not in name and _first_part(name):
                if path.resolve() not in seen and _is_gguf(path):
                    seen.add(path.resolve())
                    found.append(("gguf", path, _shown_path(path, base)))
            elif is_dir:
                subfolders.append(path)
        for sub in subfolders:
            if budget[0] <= 0 or len(found) >= max_models:
                return
            if sub.resolve() in seen:
                continue
            if _causal_lm(sub):
                seen.add(sub.resolve())
                found.append(("hf", sub, _shown_path(sub, base)))
            elif depth > 1:
                walk(sub, depth - 1)

    for root, depth in roots:
        if root.is_dir():
            walk(root, depth)
    return found


def detect_files(detection: Detection, roots: list[tuple[Path, int]], base: Path) -> None:
    """Add the first GGUF files and model folders found; mention the others commented out."""
    from ..providers import get_info, missing_requirements

    if not roots:
        return
    files = find_local_files(roots, base)
    if not files:
        where = ", ".join(_shown_path(r, base) for r, _ in roots)
        detection.report.append((False, f"no GGUF file or Hugging Face model folder in {where}"))
        return
    has_llamacpp = not missing_requirements(get_info("llamacpp"))
    has_hf = not missing_requirements(get_info("hf"))
    refs = []
    for kind, path, shown in files:
        if kind == "gguf":
            provider = "llamacpp" if has_llamacpp or not has_hf else "hf"
            how = "llama.cpp in process" if provider == "llamacpp" else "transformers, dequantized (no llama.cpp here)"
            refs.append((f"{provider}:{shown}", f"a GGUF file, {_size(path)}, run by {how}", path.stem))
        else:
            refs.append((f"hf:{shown}", "a Hugging Face model folder (a causal LM), run by transformers", path.name))
    for ref, why, stem in refs[:PER_SOURCE]:
        detection.models.append(Found(ref, why, "file", label=_label(stem)))
        detection.report.append((True, f"{why}: {ref}"))
    if len(refs) > PER_SOURCE:
        last = detection.models[-1]
        detection.models[-1] = Found(last.ref, last.why, last.kind, last.options, last.label,
                                     tuple(r for r, _, _ in refs[PER_SOURCE:]))
        detection.report.append((True, f"{len(refs) - PER_SOURCE} more local models, written commented out"))
    if any(k == "gguf" for k, _, _ in files) and not (has_llamacpp or has_hf):
        detection.report.append((False, "install 'tryouts[llamacpp]' to run the GGUF files"))
    if any(k == "hf" for k, _, _ in files) and not has_hf:
        detection.report.append((False, "install 'tryouts[local]' to run the model folders"))


def _size(path: Path) -> str:
    try:
        n = path.stat().st_size
    except OSError:
        return "size unknown"
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _label(stem: str) -> str:
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-")[:60]
    return text or "local-model"


# ---- the offline demo models -------------------------------------------------------------------------------


def offline_models(detection: Detection, *, build: bool = True, progress: Callable[[str], None] | None = None) -> None:
    """The models that work here with no network and no key: SmolLM2 when ``tryouts demo`` cached it, and the
    tiny random-weight demo models (built now, in a few seconds, when ``build`` and they are not cached yet)."""
    import importlib.util

    from ..demo.models import _is_complete, ensure_demo_models
    from ..demo.real import GGUF_FILE
    from ..paths import cache_dir
    from ..providers import get_info, missing_requirements

    has_llamacpp = not missing_requirements(get_info("llamacpp"))
    has_hf = not missing_requirements(get_info("hf"))
    smollm2 = cache_dir() / "models" / "smollm2-v1" / GGUF_FILE
    if smollm2.is_file() and (has_llamacpp or has_hf) and _writable(str(smollm2)):
        provider = "llamacpp" if has_llamacpp else "hf"
        detection.models.append(Found(f"{provider}:{smollm2}", "SmolLM2-135M-Instruct, the real model `tryouts demo` "
                                      "cached: offline, Apache-2.0", "demo", label="smollm2"))
        detection.report.append((True, f"offline: SmolLM2-135M-Instruct from tryouts demo's cache ({provider})"))
    root = cache_dir() / "demo" / "v1"
    can_build = has_hf and importlib.util.find_spec("gguf") is not None
    if _is_complete(root) or (build and can_build):
        try:
            models = ensure_demo_models(cache_dir() / "demo", progress=progress)
        except Exception as exc:  # a failed build: say why; the suite gets the placeholder below
            detection.report.append((False, f"offline: the tiny demo models could not be built "
                                     f"({type(exc).__name__}: {exc})"))
        else:
            note = "tiny random-weight test model: its answers are noise, the contrast that shows what the checks catch"
            if has_llamacpp:
                detection.models.append(Found(f"llamacpp:{models.gguf_path}", f"the {note} (llama.cpp)", "demo",
                                              label="gguf-tiny"))
            if has_hf and not (has_llamacpp and smollm2.is_file()):
                detection.models.append(Found(f"hf:{models.hf_dir}", f"the {note} (transformers)", "demo",
                                              label="hf-tiny"))
            detection.report.append((True, f"offline: the tiny demo models in {models.hf_dir.parent}"))
    elif not can_build:
        detection.report.append((False, "offline: the tiny demo models need pip install 'tryouts[local]'"))
    detection.offline = bool(detection.models)
    if not detection.models:  # nothing runs here yet: a placeholder that loads, and says what to change
        detection.models.append(Found(f"openai:{CHEAP_MODELS['openai']}", "nothing ready was found here: set "
                                      "OPENAI_API_KEY, or change this to a model you have (tryouts providers)",
                                      "placeholder"))


# ---- everything --------------------------------------------------------------------------------------------


def default_roots(base: Path) -> list[tuple[Path, int]]:
    """Where local models are looked for: the folder itself (one level) and its ``models/`` (three levels)."""
    return [(base, 1), (base / "models", 3)]


def detect(*, probes: list[ServerProbe] | None = None, roots: list[tuple[Path, int]] | None = None,
           base: Path | None = None, keys: bool = True, look: bool = True, timeout: float = 0.3,
           offline: bool = True, build_demo: bool = True, progress: Callable[[str], None] | None = None) -> Detection:
    """Find the models ready here: keys, local servers (``probes``, default :func:`default_probes`), local files
    under ``roots`` (default :func:`default_roots` of ``base``, the current folder); the offline demo models
    when none is found and ``offline``. ``look=False`` goes straight to the offline models."""
    base = base or Path.cwd()
    detection = Detection()
    if look:
        if keys:
            detect_keys(detection)
        detect_servers(detection, default_probes() if probes is None else probes, timeout)
        detect_files(detection, default_roots(base) if roots is None else roots, base)
    if not detection.models and offline:
        offline_models(detection, build=build_demo, progress=progress)
    detection.models = _unique(detection.models)
    return detection


def given_models(refs: list[str]) -> Detection:
    """The models named on the command line, checked (provider known) but not looked for."""
    from ..providers import get_info
    from ..types import ModelSpec

    detection = Detection()
    for ref in refs:
        spec = ModelSpec.parse(ref)
        get_info(spec.provider)  # UnknownProviderError (a UsageError) lists the known ones
        if not _writable(ref):
            raise UsageError(f"Model reference {ref!r} holds a control character: remove it.")
        detection.models.append(Found(spec.ref, "given with --model", "given"))
        detection.report.append((True, f"given: {spec.ref}"))
    detection.models = _unique(detection.models)
    return detection


def _unique(models: list[Found]) -> list[Found]:
    """Drop repeated references (same reference and options); make labels unique."""
    out: list[Found] = []
    seen_refs: set[str] = set()
    labels: set[str] = set()
    for m in models:
        key = m.ref + json.dumps(m.options, sort_keys=True)
        if key in seen_refs:
            continue
        seen_refs.add(key)
        label = m.label
        if label is not None:
            n, base = 2, label
            while label in labels:
                label, n = f"{base}-{n}", n + 1
            labels.add(label)
        out.append(Found(m.ref, m.why, m.kind, m.options, label, m.more))
    return out
