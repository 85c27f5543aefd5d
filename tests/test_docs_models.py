"""The docs, examples, help texts and error hints never suggest a model its provider has retired or will shut down.

A user copies the first command they see; a model with an announced shutdown in it breaks that command for them
(a 404 from the provider) or soon will. The catalog's ``shutdown`` dates are the reference, so updating the
catalog's lifecycle data (docs/catalog.md, "Keeping the catalog current") makes this test name every place
that needs a newer model.
"""

from __future__ import annotations

import re
from pathlib import Path

from tryouts.catalog import lookup
from tryouts.providers import all_providers

ROOT = Path(__file__).resolve().parents[1]


def _texts() -> list[Path]:
    src = ROOT / "src" / "tryouts"
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").rglob("*.yaml"))]
    files += [p for p in sorted(src.rglob("*.py")) if "testing" not in p.parts]  # testing/: replay scripts' model names
    files += sorted((src / "web" / "static").glob("*.js"))
    return files


def _reference_pattern() -> re.Pattern[str]:
    names = sorted({p.name for p in all_providers()}, key=len, reverse=True)
    return re.compile(r"(?<![\w/-])(?:" + "|".join(map(re.escape, names)) + r"):[A-Za-z0-9][\w.\-/:]*\w")


def test_no_text_suggests_a_model_with_a_shutdown_date():
    pattern = _reference_pattern()
    found = []
    for path in _texts():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for ref in pattern.findall(line):
                entry = lookup(ref)
                if entry is not None and entry.shutdown:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {ref} (shutdown {entry.shutdown})")
    assert found == [], "replace these with current models:\n" + "\n".join(found)


def test_the_scan_finds_a_retired_reference():
    """The pattern really matches references as the docs write them (so the test above can fail)."""
    pattern = _reference_pattern()
    line = "tryouts compare 'hi' -m openai:gpt-4o-mini -m anthropic:claude-3-5-haiku-latest, see `openai:gpt-4`."
    refs = pattern.findall(line)
    assert refs == ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest", "openai:gpt-4"]
    assert all(lookup(ref) is not None and lookup(ref).shutdown for ref in refs)
