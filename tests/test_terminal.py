"""Tables in narrow and piped terminals: labels and run ids are never cut, and piped output follows COLUMNS."""

from __future__ import annotations

import os
import re
import subprocess
import sys

LABELS = ("smollm2-360m-instruct-q4-first", "smollm2-360m-instruct-q4-second")


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
    assert f"▸ {LABELS[0]}" in summary and f"▸ {LABELS[1]}" in summary  # too wide: stacked, never "smollm…"
    assert "…" not in summary
    p = subprocess.run([sys.executable, "-m", "tryouts", "runs", "--db", db], capture_output=True, text=True,
                       env=env, timeout=60)
    assert re.search(r"\b\d{8}-\d{6}-[0-9a-f]{4}\b", p.stdout)  # the run id on one line, whole
    assert "…" not in p.stdout and max(len(line) for line in p.stdout.splitlines()) <= 100


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


def test_a_table_too_wide_for_a_narrow_terminal_is_stacked_never_cut():
    import io

    from rich.table import Table

    from tryouts.cli.render import FitConsole

    def render(width: int) -> str:
        table = Table(title="Summary")
        for name in ("Model", "TTFT p50 ms", "tok/s p50", "Cost total", "Run"):
            table.add_column(name)
        table.add_row(LABELS[0], "12.5", "88.1", "$0.000525", "20261203-221622-ab12")
        table.add_row(LABELS[1], "13.0", "80.4", "unknown", "20261203-221623-cd34")
        out = io.StringIO()
        FitConsole(file=out, width=width, color_system=None).print(table)
        return out.getvalue()

    wide, narrow = render(200), render(40)
    assert "│" in wide and "▸" not in wide  # fits: a table
    assert "│" not in narrow and narrow.count("▸") == 2  # does not fit: one block per row
    for text in (LABELS[0], LABELS[1], "20261203-221622-ab12", "$0.000525", "unknown"):
        assert text in narrow  # every cell whole
    assert "…" not in narrow and max(len(line) for line in narrow.splitlines()) <= 40
    assert any("Cost total" in line and "unknown" in line for line in narrow.splitlines())


def test_the_summary_stacks_in_a_60_column_pipe(replay_server, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("models:\n" + "".join(f'  - model: "openai-compat:{replay_server}#tokens={i + 2}"\n'
                                           f"    label: {label}\n" for i, label in enumerate(LABELS))
                     + "prompts: [hi]\n")
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(tmp_path / "r.db"),
                        "--no-cache"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "60"},
                       timeout=120)
    assert p.returncode == 0, p.stderr
    summary = p.stdout.split("Summary", 1)[1]
    assert f"▸ {LABELS[0]}" in summary and f"▸ {LABELS[1]}" in summary
    assert "…" not in summary and max(len(line) for line in p.stdout.splitlines()) <= 60
