"""The plugin path end to end: the sample provider package under examples/ is installed (pip, from its
folder, offline) and Tryouts finds it through the ``tryouts.providers`` entry-point group, lists it, warms
its declared imports before timing, runs it, measures and stores it like a built-in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "provider-plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> str:
    site = tmp_path_factory.mktemp("plugin-site")
    source = tmp_path_factory.mktemp("plugin-source") / "provider-plugin"  # the build's files stay out of the checkout
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(source)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (site / "tryouts_echo").is_dir() and list(site.glob("tryouts_echo-*.dist-info"))
    return str(site)


def tryouts(site: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": site, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_the_installed_plugin_is_listed(plugin_site):
    p = tryouts(plugin_site, "providers", "-f", "json")
    assert p.returncode == 0, p.stderr
    echo = next(r for r in json.loads(p.stdout) if r["name"] == "echo")
    assert echo["ready"] and "sample third-party provider" in echo["description"]


def test_the_plugin_runs_warmed_measured_and_stored(plugin_site, tmp_path):
    db = str(tmp_path / "p.db")
    p = tryouts(plugin_site, "compare", "hello plugin world", "-m", "echo:reverse", "-m", "echo:plain",
                "-o", "1:delay_ms=5", "--db", db, "-f", "json")
    assert p.returncode == 0, p.stdout + p.stderr
    run = json.loads(tryouts(plugin_site, "show", "latest", "--db", db, "-f", "json").stdout)
    rev, plain = run["results"]
    # "(warm)": its runtime was imported before the run timed anything, as its registry entry declares
    assert rev["text"] == "world plugin hello (warm)" and plain["text"] == "hello plugin world (warm)"
    assert rev["ok"] and rev["output_tokens"] == 4 and rev["token_method"] == "exact"
    assert rev["cost_usd"] == 0 and rev["cost_source"] == "local"
    assert rev["ttft_ms"] > 0 and rev["e2e_ms"] >= 3 * 5  # three pauses of 5 ms after the first word


def test_a_bad_plugin_reference_is_a_clear_error(plugin_site, tmp_path):
    p = tryouts(plugin_site, "compare", "hi", "-m", "echo:sideways", "--db", str(tmp_path / "b.db"))
    assert "Traceback" not in p.stdout + p.stderr
    assert "use echo:reverse or echo:plain" in p.stdout + p.stderr
    p = tryouts(plugin_site, "compare", "hi", "-m", "echo:plain", "-o", "speed=9", "--db", str(tmp_path / "b.db"))
    assert "Unknown option(s) speed for echo:plain" in p.stdout + p.stderr and "delay_ms" in p.stdout + p.stderr


def test_an_option_the_plugin_declares_neutral_does_not_miss_the_cache(plugin_site, tmp_path):
    """delay_ms changes the timing, not the answer (the entry's neutral_options): a second suite run with
    another delay is served from the response cache; another mode is not."""
    db = str(tmp_path / "c.db")

    def run(model: str, delay_ms: int) -> dict:
        suite = tmp_path / "s.yaml"
        suite.write_text(f"models:\n  - model: {model}\n    options: {{delay_ms: {delay_ms}}}\n"
                         "prompts: ['one two three']\n")
        p = tryouts(plugin_site, "run", str(suite), "--db", db, "-f", "json")
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(p.stdout)["results"][0]

    assert not run("echo:reverse", 0)["cached"]
    again = run("echo:reverse", 7)
    assert again["cached"] and again["text"] == "three two one (warm)"
    assert not run("echo:plain", 7)["cached"]
