"""Reading the catalog: YAML files validated by ``schema.json`` and by cross-field checks, then looked up.

Every problem names the file, the line, the model id and the field, and the whole list is reported at
once (a :class:`CatalogError`), so a contributor fixes a file in one go.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import NotInCatalogError, TryoutsError
from .entry import SOURCED, Entry

DATA_DIR = Path(__file__).parent / "data"
SCHEMA_PATH = Path(__file__).parent / "schema.json"


class CatalogError(TryoutsError):
    """Raised when a catalog file does not validate; the message lists every problem with file and line."""

    kind = "catalog"


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``70.55e9`` and ``1e9`` as floats (YAML 1.1 wants ``7.055e+10``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of a family file."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _line(node: yaml.Node | None, path: tuple) -> int | None:
    """The 1-based line of ``path`` inside a composed YAML node (the nearest existing parent's line)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _read(path: Path) -> tuple[Any, yaml.Node | None]:
    text = path.read_text(encoding="utf-8")
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path.name}: not valid YAML: {exc}. Fix the file and run again.") from exc
    return data, node


def _field(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _entry_problems(e: Entry) -> list[tuple[tuple, str]]:
    """Cross-field checks a JSON Schema cannot express, as (path inside the entry, message)."""
    out: list[tuple[tuple, str]] = []
    a, p = e.arch, e.params
    if p.active is not None and p.total is not None and p.active >= p.total:
        out.append((("params", "active"), f"active ({p.active}) must be less than total ({p.total})"))
    if a is not None:
        if a.experts and p.total is not None and p.active is None:
            out.append((("params", "active"), "an MoE model (arch.experts set) needs params.active"))
        if p.active is not None and not a.experts:
            out.append((("params", "active"), "only MoE models (arch.experts set) have active parameters"))
        if bool(a.experts) != bool(a.experts_per_token):
            out.append((("arch", "experts_per_token"), "give experts and experts_per_token together"))
        elif a.experts and a.experts_per_token and a.experts_per_token > a.experts:
            out.append((("arch", "experts_per_token"), "cannot exceed experts"))
        if a.kv_heads > a.attention_heads or a.attention_heads % a.kv_heads:
            out.append((("arch", "kv_heads"), f"{a.kv_heads} must divide attention_heads ({a.attention_heads})"))
        if a.sliding_window_layers is not None and (a.sliding_window is None or a.sliding_window_layers > a.layers):
            out.append((("arch", "sliding_window_layers"), "needs sliding_window and cannot exceed layers"))
        if (a.kv_lora_rank is None) != (a.qk_rope_head_dim is None):
            out.append((("arch", "kv_lora_rank"), "MLA models give kv_lora_rank and qk_rope_head_dim together"))
        if a.encoder_only and a.encoder_layers:
            out.append((("arch", "encoder_layers"), "an encoder-only model has no separate encoder_layers"))
    if e.max_output and e.context_window and e.max_output > e.context_window:
        out.append((("max_output",), f"{e.max_output} exceeds context_window ({e.context_window})"))
    if e.max_input and e.context_window and e.max_input > e.context_window:
        out.append((("max_input",), f"{e.max_input} exceeds context_window ({e.context_window})"))
    given = {"params": p.total, "arch": a, "context_window": e.context_window, "max_output": e.max_output,
             "knowledge_cutoff": e.knowledge_cutoff, "license": e.license, "price": e.price, "shutdown": e.shutdown,
             "max_input": e.max_input, "lifecycle": e.lifecycle_checked,
             "native_format": a.native_format if a is not None else None}
    for group in SOURCED:
        if given[group] is not None and group not in e.sources:
            out.append((("sources", group), f"{group} is given, so sources.{group} needs the URL it comes from"))
    from ..providers import all_providers

    known = {info.name for info in all_providers()}
    for i, route in enumerate(e.routes):
        provider = route.partition(":")[0]
        if provider not in known:
            out.append((("routes", i), f"unknown provider {provider!r} in {route!r} (known: {', '.join(sorted(known))})"))
    return out


def load_file(path: Path) -> list[Entry]:
    """Validate one family file and return its entries; :class:`CatalogError` lists every problem."""
    import jsonschema

    data, node = _read(path)
    problems: list[str] = []

    def where(p: tuple) -> str:
        line = _line(node, p)
        ident = ""
        if len(p) >= 2 and p[0] == "models" and isinstance(data, dict):
            try:
                ident = f" model {data['models'][p[1]].get('id', '?')!r}:"
            except (AttributeError, IndexError, KeyError, TypeError):
                ident = ""
        return f"{path.name}:{line}:{ident}"

    validator = jsonschema.Draft202012Validator(schema())
    for err in sorted(validator.iter_errors(data), key=lambda x: [str(v) for v in x.absolute_path]):
        p = tuple(err.absolute_path)
        field = _field(p[2:] if len(p) >= 2 and p[0] == "models" else p)
        problems.append(f"{where(p)} {field}: {err.message}")
    if problems:
        raise CatalogError(f"{len(problems)} problem(s) in the model catalog:\n  " + "\n  ".join(problems))
    entries = []
    for i, raw in enumerate(data["models"]):
        e = Entry.model_validate({**raw, "family": data["family"], "file": path.name})
        for sub, message in _entry_problems(e):
            problems.append(f"{where(('models', i, *sub))} {_field(sub)}: {message}")
        entries.append(e)
    if problems:
        raise CatalogError(f"{len(problems)} problem(s) in the model catalog:\n  " + "\n  ".join(problems))
    return entries


def lookup_keys(entry: Entry) -> set[str]:
    """The lowercase names ``entry`` answers to: id, aliases, routes and the model part of each route."""
    keys = {entry.id, *entry.aliases}
    for route in entry.routes:
        keys.add(route)
        keys.add(route.partition(":")[2])
    return {k.lower() for k in keys if k}


def _index(entries: tuple[Entry, ...]) -> dict[str, Entry]:
    index: dict[str, Entry] = {}
    problems = []
    for e in entries:
        for key in sorted(lookup_keys(e)):
            other = index.get(key)
            if other is not None and other.id != e.id:
                problems.append(f"{e.file}: model {e.id!r}: name {key!r} is already used by {other.id!r} ({other.file})")
            elif other is not None and other is not e:
                problems.append(f"{e.file}: model id {e.id!r} is used twice (also in {other.file})")
            index.setdefault(key, e)
    if problems:
        raise CatalogError(f"{len(problems)} problem(s) in the model catalog:\n  " + "\n  ".join(sorted(set(problems))))
    return index


@functools.cache
def _load(data_dir: str) -> tuple[tuple[Entry, ...], dict[str, Entry]]:
    files = sorted(Path(data_dir).glob("*.yaml"))
    if not files:
        raise CatalogError(f"No catalog files (*.yaml) in {data_dir}: reinstall tryouts, or point to a folder that has them.")
    entries: list[Entry] = []
    problems: list[str] = []
    for path in files:
        try:
            entries.extend(load_file(path))
        except CatalogError as exc:
            problems.append(exc.message)
    if problems:
        raise CatalogError("\n".join(problems))
    frozen = tuple(entries)
    return frozen, _index(frozen)


def load_catalog(data_dir: str | Path | None = None) -> list[Entry]:
    """Every catalog entry, validated (cached per folder; the default is the package's ``catalog/data``).

    Raises :class:`CatalogError` naming file, line, model id and field for each problem.
    """
    return list(_load(str(data_dir or DATA_DIR))[0])


def find_model(name: str, data_dir: str | Path | None = None) -> Entry:
    """The entry whose id, alias, route or route model name is ``name`` (case-insensitive).

    Raises :class:`~tryouts.errors.NotInCatalogError` with the closest names when there is none.
    """
    entries, index = _load(str(data_dir or DATA_DIR))
    key = name.strip().lower()
    hit = index.get(key)
    if hit is None and ":" in key:  # "hf:org/name" or any provider:model reference
        hit = index.get(key.partition(":")[2])
    if hit is not None:
        return hit
    raise NotInCatalogError(f"{name!r} is not in the model catalog.{suggest(name, entries, index)} "
                             "List the catalog with 'tryouts models'.")


def lookup(name: str) -> Entry | None:
    """The entry for ``name`` as :func:`find_model` finds it, or None (for lookups that may miss, such as the
    memory estimator's ``resolve(model, catalog=lookup)``)."""
    try:
        return find_model(name)
    except (NotInCatalogError, LookupError):
        return None


def suggest(name: str, entries: tuple[Entry, ...], index: dict[str, Entry]) -> str:
    """`` Did you mean: a, b?`` for the catalog names closest to ``name`` (empty when none is close)."""
    key = name.strip().lower()
    ids: list[str] = []
    for match in difflib.get_close_matches(key, list(index), n=12, cutoff=0.6):
        if index[match].id not in ids:
            ids.append(index[match].id)
    if not ids:  # a fragment such as "llama" or "sonnet": entries containing it
        ids = [e.id for e in entries if key and key in e.id][:5]
    return f" Did you mean: {', '.join(ids[:3])}?" if ids else ""
