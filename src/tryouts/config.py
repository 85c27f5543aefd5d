"""User configuration: ``config.yaml`` in the config directory (see :mod:`tryouts.paths`).

Only price overrides for now::

    prices:
      "openai:gpt-6-luna": {input: 0.20, output: 0.50}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import UsageError
from .paths import config_dir
from .pricing import PriceOverride


def config_path() -> Path:
    return config_dir() / "config.yaml"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The parsed config file, or {} when there is none."""
    path = path or config_path()
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML ({exc}); fix or remove it.") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path} must be a mapping with keys such as 'prices'.")
    unknown = set(data) - {"prices"}
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: prices.")
    return data


def price_overrides(path: Path | None = None) -> dict[str, PriceOverride]:
    """Model reference -> price, from the config file."""
    prices = load_config(path).get("prices") or {}
    return {ref: PriceOverride.parse(v, f"{ref} in {path or config_path()}") for ref, v in prices.items()}
