"""Generate docs/suite.schema.json, the JSON Schema of suite files, from the pydantic models.

Editors use it to complete and check suites (see docs/suites.md). The test suite and `make test` fail
when it is stale.

Usage: python docs/gen_schema.py [--check]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _gen import write_or_check

OUT = Path(__file__).with_name("suite.schema.json")


def render() -> str:
    from tryouts.suite import Suite

    schema = Suite.model_json_schema()
    schema.pop("title", None)
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Tryouts suite",
        **schema,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    return write_or_check({OUT: render()}, "tryouts.suite", "python docs/gen_schema.py")


if __name__ == "__main__":
    sys.exit(main())
