"""An eval-task written as a file: ``tryouts eval-task examples/tasks/classification.yaml``.

The same settings as the command line, kept with the data so the comparison can be re-run as it was::

    task: classification
    data: classification.csv          # relative to this file
    models:
      - hf:${TINY_CLASSIFIER}
      - model: openai:gpt-6-luna
        options: {base_url: "..."}
    repeats: 1                        # and optionally k, limit, max_tokens, temperature, seed,
                                      # timeout_s, src_lang, tgt_lang

``${VAR}`` and ``${VAR:-default}`` are read from the environment, as in suites.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UsageError


class TaskModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="The model reference PROVIDER:MODEL.")
    options: dict[str, Any] = Field(default_factory=dict, description="Provider options.")


class TaskFile(BaseModel):
    """The settings of one eval-task run."""

    model_config = ConfigDict(extra="forbid")

    task: str
    data: str
    models: list[str | TaskModel] = Field(min_length=1)
    repeats: int = Field(default=1, ge=1)
    k: list[int] | None = None
    limit: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    seed: int | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    src_lang: str | None = None
    tgt_lang: str | None = None

    def specs(self) -> list[tuple[str, dict[str, Any]]]:
        """(reference, options) per model."""
        return [(m, {}) if isinstance(m, str) else (m.model, dict(m.options)) for m in self.models]


def load_task_file(path: Path) -> tuple[TaskFile, Path]:
    """The task file at ``path`` and the data file's path (relative to it); UsageError naming the field."""
    from ..suite.envvars import misplaced_credentials
    from ..suite.issues import SuiteError, locate
    from ..suite.load import compose_yaml, read_yaml_file

    text = read_yaml_file(path, "task")  # a regular UTF-8 file of at most 4 MB (a FIFO would wait forever)
    # as a suite is read: ${VAR} replaced inside each parsed value (it can add no keys), with the loader's limits;
    # a credential from a variable only in a model's options (it would be sent as text and stored)
    root, raw, credentials = compose_yaml(text, str(path))
    misplaced = misplaced_credentials(root, credentials)
    if misplaced:
        raise SuiteError(locate(misplaced, str(path), root))
    try:
        spec = TaskFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise UsageError(f"{path}: {where}: {first['msg']} (see docs/tasks.md, 'A task file').") from None
    data = Path(spec.data)
    return spec, (data if data.is_absolute() else path.parent / data)
