"""Model cards: the catalog entry, the Hugging Face card and ``config.json``, merged (``tryouts card``).

Where the card and config come from, in order:

1. a local folder (``README.md`` and ``config.json`` in it), or a GGUF file: its header's metadata (read by
   :mod:`tryouts.gguf_meta`, no tensor data) stands in for ``config.json``, and a ``README.md`` beside it is
   read as its card;
2. the Hugging Face cache (``HF_HUB_CACHE``, else ``HF_HOME``/hub, else ~/.cache/huggingface/hub);
3. the Hub, only when asked (``online=True``); nothing here contacts the network otherwise.

The card is parsed by ``huggingface_hub.ModelCard``: its YAML metadata (license, datasets, language, tags,
``model-index`` metrics) and three sections found by heading, case-insensitively and tolerating small
spelling differences: intended use, training data, limitations. ``config.json`` gives the architecture
facts (for multimodal models, those of the language model in ``text_config``), which are also checked
against the catalog's numbers.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotInCatalogError, UsageError
from .entry import Entry
from .load import find_model
from .prices import EntryPrice, entry_price

#: section -> heading phrases that name it (normalized: lowercase words)
SECTIONS: dict[str, tuple[str, ...]] = {
    "intended_use": ("intended use", "intended uses", "intended uses limitations", "uses", "direct use", "use cases",
                     "intended use cases", "primary intended uses"),
    "training_data": ("training data", "training dataset", "training datasets", "pretraining data",
                      "pre training data", "training corpus", "data used for training"),
    "limitations": ("limitations", "bias risks and limitations", "risks and limitations", "limitations and bias",
                    "bias and limitations", "known limitations", "out of scope use", "ethical considerations and limitations"),
}
SECTION_TITLES = {"intended_use": "Intended use", "training_data": "Training data", "limitations": "Limitations"}
_MIN_SCORE = 0.8
_EMPTY = re.compile(r"^\W*(more information needed|needs? more information|tbd|todo|coming soon)?\W*$", re.I)
_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "decoder_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model", "dim"),
    "attention_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads", "decoder_attention_heads"),
    "kv_heads": ("num_key_value_heads", "num_kv_heads", "n_kv_heads"),
    "head_dim": ("head_dim", "d_kv"),
    "vocab_size": ("vocab_size", "padded_vocab_size"),
    "context": ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx"),
    "sliding_window": ("sliding_window",),
    "experts": ("num_local_experts", "n_routed_experts", "num_experts"),
    "experts_per_token": ("num_experts_per_tok", "experts_per_token"),
}


@dataclass
class CardInfo:
    """Everything ``tryouts card`` shows; ``None`` parts were not found (``notes`` says why)."""

    model: str
    entry: Entry | None = None
    price: EntryPrice | None = None
    hub_id: str | None = None
    folder: str | None = None
    #: where the card was read: "local folder", "HF cache" or "Hub"
    card_from: str | None = None
    card_path: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: section key -> {"heading": ..., "text": ...}
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    config_from: str | None = None
    config_path: str | None = None
    config: dict[str, Any] | None = None
    #: a GGUF file's own metadata (:meth:`tryouts.gguf_meta.GGUFInfo.facts`) when MODEL is one
    gguf: dict[str, Any] | None = None
    #: catalog vs config.json (or GGUF) differences
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["entry"] = self.entry.to_dict() if self.entry else None
        d["price"] = self.price.to_dict() if self.price else None
        return d


# ---- where the files are ---------------------------------------------------------------------------


def hub_cache_dir() -> str | None:
    """The HF cache folder from the environment *now* (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def _from_cache(hub_id: str, filename: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(hub_id, filename, cache_dir=hub_cache_dir())
    except Exception:  # a malformed id: nothing cached under it
        return None
    return found if isinstance(found, str) else None


def _download(hub_id: str, filename: str) -> str:
    """Fetch one file from the Hub into the cache (only with --online)."""
    from huggingface_hub import hf_hub_download

    return hf_hub_download(hub_id, filename, cache_dir=hub_cache_dir())


def _is_hub_id(text: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text) is not None


def _resolve(model: str, local_paths: bool = True) -> tuple[Entry | None, str | None, Path | None]:
    """(catalog entry, Hub id, local folder) for what the user typed; ``local_paths=False`` never looks at the
    disk (the dashboard: an existing folder and a missing one then give the same answer)."""
    text = model.strip()
    if text.lower().startswith("hf:"):
        text = text[3:]
    path = Path(text).expanduser()
    if local_paths and path.is_dir():
        try:
            entry = find_model(path.name)
        except NotInCatalogError:
            entry = None
        return entry, None, path
    if text.startswith((".", "/", "~")) or (os.sep in text and not _is_hub_id(text)):
        raise UsageError(f"No folder {text!r}: pass a folder that holds README.md and config.json, a catalog name or a Hub id.")
    try:
        entry = find_model(text)
    except NotInCatalogError:
        if _is_hub_id(text):
            return None, text, None
        raise
    lowered = {a.lower() for a in entry.aliases} | {r.partition(":")[2].lower() for r in entry.routes}
    hub_id = text if _is_hub_id(text) and text.lower() in lowered else entry.hub_id
    return entry, hub_id, None


# ---- parsing ---------------------------------------------------------------------------------------


def _norm(heading: str) -> str:
    text = re.sub(r"[^a-z0-9]+", " ", heading.lower()).strip()
    return re.sub(r"^(\d+\s+)+", "", text)  # "2.1 Training data" -> "training data"


def _score(heading: str, phrases: tuple[str, ...]) -> float:
    norm = _norm(heading)
    best = 0.0
    for phrase in phrases:
        if norm == phrase:
            return 1.0
        if " " in phrase and re.search(rf"\b{re.escape(phrase)}\b", norm):
            best = max(best, 0.9)
        best = max(best, difflib.SequenceMatcher(None, norm, phrase).ratio())
    return best


def _headings(text: str) -> list[tuple[int, int, str]]:
    """(line index, level, title) of each Markdown ATX heading outside code fences."""
    out, fence = [], None
    for i, line in enumerate(text.splitlines()):
        stripped = line.strip()
        m = re.match(r"^(`{3,}|~{3,})", stripped)
        if m:
            if fence is None:
                fence = m.group(1)[0]
            elif stripped.startswith(fence * 3):
                fence = None
            continue
        if fence is None:
            h = re.match(r"^(#{1,6})\s+(.+?)\s*#*\s*$", line)
            if h:
                out.append((i, len(h.group(1)), h.group(2).strip()))
    return out


def extract_sections(text: str) -> dict[str, dict[str, str]]:
    """The intended-use, training-data and limitations sections of a card body, found by heading.

    A section runs to the next heading of the same or a higher level (its sub-sections are included).
    """
    lines = text.splitlines()
    heads = _headings(text)
    found: dict[str, dict[str, str]] = {}
    for key, phrases in SECTIONS.items():
        best, best_score = None, _MIN_SCORE
        for n, (_, _, title) in enumerate(heads):
            s = _score(title, phrases)
            if s > best_score or (best is None and s >= best_score):
                best, best_score = n, s
            if s == 1.0:
                break
        if best is None:
            continue
        start, level, title = heads[best]
        end = next((i for i, lv, _ in heads[best + 1:] if lv <= level), len(lines))
        body = "\n".join(lines[start + 1:end]).strip()
        found[key] = {"heading": title, "text": "" if _EMPTY.match(body) else body}
    return found


def _metrics(card) -> list[dict[str, Any]]:
    rows = []
    for r in getattr(card.data, "eval_results", None) or []:
        rows.append({
            "task": r.task_name or r.task_type,
            "dataset": r.dataset_name or r.dataset_type,
            "split": getattr(r, "dataset_split", None),
            "metric": r.metric_name or r.metric_type,
            "value": r.metric_value,
            "verified": getattr(r, "verified", None),
        })
    return rows


def read_card(path: str) -> tuple[dict[str, Any], dict[str, dict[str, str]], list[dict[str, Any]]]:
    """(metadata, sections, metrics) of a model card file."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(Path(path), ignore_metadata_errors=True)
    data = card.data.to_dict()
    keep = ("license", "license_name", "license_link", "datasets", "language", "tags", "pipeline_tag", "base_model",
            "library_name", "model_name")
    meta = {k: data[k] for k in keep if data.get(k) not in (None, [], "")}
    return meta, extract_sections(card.text), _metrics(card)


def config_facts(config: dict[str, Any]) -> dict[str, Any]:
    """The numbers ``tryouts card`` shows from a ``config.json`` (the language model's, for multimodal ones)."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else None
    src = {**config, **text} if text else config
    facts: dict[str, Any] = {"model_type": config.get("model_type")}
    if text and text.get("model_type"):
        facts["text_model_type"] = text["model_type"]
    for name, keys in _CONFIG_KEYS.items():
        facts[name] = next((src[k] for k in keys if src.get(k) is not None), None)
    if src.get("multi_query"):
        facts["kv_heads"] = 1
    elif facts["kv_heads"] is None and facts["attention_heads"] is not None and "model_type" in src:
        facts["kv_heads"] = facts["attention_heads"]
    if facts["head_dim"] is None and facts["hidden_size"] and facts["attention_heads"]:
        facts["head_dim"] = facts["hidden_size"] // facts["attention_heads"]
    facts["dtype"] = src.get("torch_dtype") or src.get("dtype") or config.get("torch_dtype") or config.get("dtype")
    facts["architectures"] = config.get("architectures")
    return facts


def _mismatches(entry: Entry, facts: dict[str, Any], source: str = "config.json") -> list[str]:
    if entry.arch is None:
        return []
    out = []
    for name in ("layers", "hidden_size", "attention_heads", "kv_heads", "vocab_size"):
        ours, theirs = getattr(entry.arch, name), facts.get(name)
        if theirs is not None and ours != theirs:
            out.append(f"{name}: catalog {ours}, {source} {theirs}")
    return out


# ---- GGUF files ------------------------------------------------------------------------------------

#: a quantization suffix of a GGUF file name: "Llama-3.1-8B-Instruct-Q4_K_M" -> "Llama-3.1-8B-Instruct"
_QUANT_SUFFIX = re.compile(r"[.\-_](?:[IT]?Q\d[\w]*|F16|F32|BF16|MXFP4\w*)$", re.I)


def _gguf_file(model: str) -> Path | None:
    """The GGUF file ``model`` names (a ``.gguf`` path, or any file starting with the GGUF magic), else None."""
    from ..gguf_meta import is_gguf

    text = model.strip().removeprefix("hf:").removeprefix("llamacpp:")
    path = Path(text).expanduser()
    if text.lower().endswith(".gguf") or (path.is_file() and is_gguf(path)):
        return path
    return None


def _read_gguf_into(info: CardInfo, path: Path) -> dict[str, Any]:
    from ..gguf_meta import read_gguf

    meta = read_gguf(path)
    info.gguf = meta.facts()
    info.notes.extend(meta.notes)
    return info.gguf


def _gguf_card(model: str, path: Path) -> CardInfo:
    """The card of a GGUF file: its header's metadata, a README.md beside it, its catalog entry if named so."""
    info = CardInfo(model=model, folder=str(path.parent))
    facts = _read_gguf_into(info, path)
    stem = _QUANT_SUFFIX.sub("", path.stem)
    try:
        info.entry = find_model(stem)
    except NotInCatalogError:
        info.entry = None
    if info.entry is not None:
        info.price = entry_price(info.entry)
        info.mismatches = _mismatches(info.entry, {
            "layers": facts["block_count"], "hidden_size": facts["embedding_length"],
            "attention_heads": facts["head_count"], "kv_heads": facts["head_count_kv"],
            "vocab_size": facts["vocab_size"]}, "GGUF")
    readme = path.parent / "README.md"
    if readme.is_file():
        _read_card_into(info, "local folder", str(readme))
    else:
        info.notes.append(f"No README.md beside {path.name}: a GGUF file carries no model card, only the metadata "
                          "shown (the card is usually on the page the file came from).")
    return info


def _read_card_into(info: CardInfo, where: str, path: str) -> None:
    info.card_from, info.card_path = where, path
    try:
        info.metadata, info.sections, info.metrics = read_card(path)
    except Exception as exc:
        info.notes.append(f"Could not read the model card {path}: {exc}")
    for key, title in SECTION_TITLES.items():
        sec = info.sections.get(key)
        if sec is None:
            info.notes.append(f"The card has no '{title}' section.")
        elif not sec["text"]:
            info.notes.append(f"The card's '{sec['heading']}' section is empty.")


# ---- the merge -------------------------------------------------------------------------------------


def build_card(model: str, *, online: bool = False, local_paths: bool = True) -> CardInfo:
    """Merge the catalog entry, the model card and ``config.json`` for ``model``.

    ``model`` is a catalog name or alias, a Hub id (``org/name``, optionally ``hf:``-prefixed), a local
    folder or a GGUF file. Only ``online=True`` contacts the Hub. Raises :class:`~tryouts.errors.NotInCatalogError`
    (with suggestions) for a name that is none of these, and :class:`~tryouts.gguf_meta.NotGGUFError` for a
    ``.gguf`` path that is not a GGUF file. ``local_paths=False`` reads no local folder or file, only the
    catalog and the Hugging Face cache.
    """
    gguf_path = _gguf_file(model) if local_paths else None
    if gguf_path is not None:
        return _gguf_card(model, gguf_path)
    entry, hub_id, folder = _resolve(model, local_paths)
    info = CardInfo(model=model, entry=entry, hub_id=hub_id, folder=str(folder) if folder else None)
    if entry is not None:
        info.price = entry_price(entry)
    files: dict[str, tuple[str, str]] = {}  # filename -> (where, path)
    if folder is not None:
        from ..gguf_meta import find_gguf_files

        ggufs = [] if (folder / "config.json").is_file() else find_gguf_files(folder)
        for name in ("README.md", "config.json"):
            if (folder / name).is_file():
                files[name] = ("local folder", str(folder / name))
            elif name == "config.json" and len(ggufs) == 1:
                _read_gguf_into(info, ggufs[0])
            elif name == "config.json" and ggufs:
                info.notes.append(f"No config.json in {folder}; it holds GGUF files ({', '.join(p.name for p in ggufs)}): "
                                  f"'tryouts card {folder / ggufs[0].name}' shows one's metadata.")
            else:
                info.notes.append(f"No {name} in {folder}.")
    elif hub_id is not None:
        for name in ("README.md", "config.json"):
            cached = _from_cache(hub_id, name)
            if cached:
                files[name] = ("HF cache", cached)
            elif online:
                try:
                    files[name] = ("Hub", _download(hub_id, name))
                except Exception as exc:  # offline mode, no network, gated repo, missing file...
                    info.notes.append(f"Could not fetch {name} of {hub_id} from the Hub: {type(exc).__name__}: {exc}".strip())
        if not files and not online:
            from huggingface_hub import constants

            where = hub_cache_dir() or constants.HF_HUB_CACHE
            info.notes.append(
                f"No model card or config.json for {hub_id} on this machine (HF cache: {where}). To see them: run "
                f"again with --online, or download them once with 'hf download {hub_id} README.md config.json', "
                "or pass a local folder that has them."
            )
    elif entry is not None:
        url = entry.sources.get("context_window") or entry.sources.get("license")
        info.notes.append(f"{entry.name} is an API model without a Hugging Face model card"
                          + (f"; the vendor's page: {url}" if url else "") + ".")
    if "README.md" in files:
        _read_card_into(info, *files["README.md"])
    if "config.json" in files:
        info.config_from, info.config_path = files["config.json"]
        try:
            info.config = config_facts(json.loads(Path(info.config_path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            info.notes.append(f"Could not read {info.config_path}: {exc}")
        if info.config and entry is not None:
            info.mismatches = _mismatches(entry, info.config)
    return info
