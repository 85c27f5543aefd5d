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


def test_show_groups_a_suite_by_case_with_verdicts_and_folded_repeats(replay_server, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(
        f'models:\n  - model: "openai-compat:{replay_server}#text=Paris"\n    label: paris-bot\n'
        f'  - model: "openai-compat:{replay_server}#status=400"\n    label: broken\n'
        'prompts:\n  - {id: capital, text: "Capital of {{country}}?"}\n'
        "cases:\n  - {id: fr, vars: {country: France}, expected: Paris, assert: [{type: icontains, value: paris}]}\n"
        "  - {id: it, vars: {country: Italy}, expected: Rome, assert: [{type: icontains, value: rome}]}\n"
        "repeats: 2\nretries: {max: 0}\n")
    db = str(tmp_path / "r.db")
    subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", db, "--no-cache"],
                   capture_output=True, timeout=120)
    p = subprocess.run([sys.executable, "-m", "tryouts", "show", "--db", db], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    text = " ".join(p.stdout.split())
    fr, it = text.split("Case fr · prompt capital", 1)[1].split("Case it · prompt capital", 1)
    assert "vars: country=France expected: Paris ✓ paris-bot (repeats 0, 1) · passed Paris" in fr
    assert "✗ broken (repeats 0, 1) · failed: icontains failed (does not contain 'paris') error: " in fr
    assert "✗ paris-bot (repeats 0, 1) · failed: icontains failed (does not contain 'rome') Paris" in it
    assert text.count("paris-bot (repeats 0, 1)") == 2  # two repeats with one output: one line per case
