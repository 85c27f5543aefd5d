"""Tables in narrow and piped terminals: labels and run ids are never cut, and piped output follows COLUMNS."""

from __future__ import annotations

import os
import subprocess
import sys

LABELS = ("smollm2-360m-instruct-q4-first", "smollm2-360m-instruct-q4-second")


def _first_column(text: str) -> str:
    """The first cell of every table row, joined: a folded label comes back whole."""
    return "".join(line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│"))


def test_labels_and_run_ids_survive_100_columns(replay_server, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("models:\n" + "".join(f'  - model: "openai-compat:{replay_server}#tokens={i + 2}"\n'
                                           f"    label: {label}\n" for i, label in enumerate(LABELS))
                     + "prompts: [hi, there]\n")
    env = {**os.environ, "COLUMNS": "100"}
    db = str(tmp_path / "r.db")
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", db, "--no-cache"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert max(len(line) for line in p.stdout.splitlines()) <= 100  # piped: COLUMNS, not a forced 140
    summary = p.stdout.split("Summary", 1)[1]
    assert _first_column(summary.split("└", 1)[0]) == "".join(LABELS)  # folded, never "smollm…"
    assert "…" not in summary.split("└", 1)[0]
    p = subprocess.run([sys.executable, "-m", "tryouts", "runs", "--db", db], capture_output=True, text=True,
                       env=env, timeout=60)
    rows = [line.split("│")[1].strip() for line in p.stdout.splitlines() if line.startswith("│")]
    assert len(rows[0]) == 20 and rows[0][8] == "-"  # the run id on one line, whole (YYYYMMDD-HHMMSS-xxxx)
