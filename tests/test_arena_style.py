"""Style control in the arena's ranking (Chatbot Arena's "Does style matter?"): a Bradley–Terry logistic
regression with the normalized differences of the two answers' length and Markdown counts beside the model
strengths; `tryouts rank --style-control` and the dashboard's `/rank?style_control=true`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import httpx
import numpy as np
import pytest

from helpers import serve_dashboard, text_model
from tryouts.scoring.arena_stats import STYLE_FEATURES, style_controlled_bt, style_features
from tryouts.scoring.statistics import bradley_terry
from tryouts.store import Store

MARKDOWN = """# Title
Some **bold** text and __more bold__ and **also**.
## Part
- one
- two
  * nested
1. first
22. second
```python
# not a header
- not a list
x = "**not bold**"
```
#not a header (no space) and ####### neither
"""


def test_style_features_count_like_lmsys():
    assert STYLE_FEATURES == ("length", "headers", "lists", "bold")
    length, headers, lists, bold = style_features(MARKDOWN)
    assert length == math.ceil(len(MARKDOWN) / 4)  # the whole answer, code included
    assert (headers, lists, bold) == (2, 5, 3)  # outside the fenced block only
    assert style_features("") == (0, 0, 0, 0)


def simulate(seed, n, models, gamma_length=0.0, tie_rate=0.0):
    """Votes between models of given (log10 strength, mean answer length); the voter also prefers the longer
    answer: ``gamma_length`` is added to the logit per unit of the normalized length difference."""
    rng = np.random.default_rng(seed)
    names = list(models)
    out = []
    for _ in range(n):
        a, b = rng.choice(names, 2, replace=False)
        ta, tb = ("w" * int(models[m][1] * rng.uniform(0.6, 1.4)) for m in (a, b))
        fa, fb = style_features(ta)[0], style_features(tb)[0]
        logit = math.log(10) * (models[a][0] - models[b][0]) + gamma_length * (fa - fb) / (fa + fb + 1)
        u = rng.random()
        p = 1 / (1 + math.exp(-logit))
        out.append((a, b, "tie" if u < tie_rate else "a" if rng.random() < p else "b", ta, tb))
    return out


def test_without_style_differences_it_is_plain_bradley_terry():
    votes = simulate(1, 300, {"m1": (0.0, 100), "m2": (0.3, 100), "m3": (0.6, 100)}, tie_rate=0.1)
    votes = [(a, b, o, "same length", "same length") for a, b, o, _, _ in votes]
    fit = style_controlled_bt(votes, n_resamples=200, seed=4)
    plain = {r["model"]: r for r in bradley_terry([v[:3] for v in votes], n_resamples=200, seed=4)}
    for r in fit["ratings"]:
        p = plain[r["model"]]
        assert abs(r["rating"] - p["rating"]) < 0.05 and abs(r["low"] - p["low"]) < 0.05
        assert abs(r["high"] - p["high"]) < 0.05
    assert all(c["coef"] is None for c in fit["coefficients"])  # no feature ever differed


def test_style_control_takes_away_a_length_advantage():
    # equal substance; `verbose` writes 4x longer answers and the voters like length: plain ratings put it on
    # top, the style-controlled ones do not, and the length coefficient is found
    models = {"verbose": (0.0, 1600), "terse": (0.0, 400), "better-terse": (0.25, 400), "middle": (0.0, 800)}
    votes = simulate(7, 800, models, gamma_length=3.0)
    plain = {r["model"]: r for r in bradley_terry([v[:3] for v in votes], n_resamples=200, seed=0)}
    fit = style_controlled_bt(votes, n_resamples=200, seed=0)
    styled = {r["model"]: r for r in fit["ratings"]}
    assert plain["verbose"]["low"] > plain["better-terse"]["high"]  # plain: verbose clearly ahead
    assert max(plain, key=lambda m: plain[m]["rating"]) == "verbose"
    assert max(styled, key=lambda m: styled[m]["rating"]) == "better-terse"  # the truth: +100 over the rest
    assert abs(styled["verbose"]["rating"] - styled["terse"]["rating"]) < 40
    length = fit["coefficients"][0]
    assert length["feature"] == "length" and 0 < length["low"] < 3.0 * length["scale"] < length["high"]
    assert fit["votes"] == 800


def test_swapping_a_and_b_changes_nothing():
    # the features are not centred, so the model stays order-free: the same votes shown the other way round
    # give the same fit (a centred feature would act as a bias toward position A)
    votes = simulate(3, 200, {"x": (0.0, 900), "y": (0.1, 300), "z": (-0.1, 500)}, gamma_length=2.0)
    votes[:40] = [(a, b, o, t + "\n- a list item", u) for a, b, o, t, u in votes[:40]]
    swapped = [(b, a, {"a": "b", "b": "a"}.get(o, o), u, t) for a, b, o, t, u in votes]
    one, other = style_controlled_bt(votes, n_resamples=0), style_controlled_bt(swapped, n_resamples=0)
    for r, s in zip(one["ratings"], other["ratings"], strict=True):
        assert r["model"] == s["model"] and abs(r["rating"] - s["rating"]) < 1e-6
    for c, d in zip(one["coefficients"], other["coefficients"], strict=True):
        assert (c["coef"] is None) == (d["coef"] is None)
        assert c["coef"] is None or abs(c["coef"] - d["coef"]) < 1e-6
    assert one["coefficients"][2]["coef"] is not None  # lists differed in 40 votes


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="both bad"):
        style_controlled_bt([("a", "b", "both_bad", "x", "y")])
    with pytest.raises(ValueError, match="itself"):
        style_controlled_bt([("a", "a", "a", "x", "y")])
    assert style_controlled_bt([]) == {"ratings": [], "coefficients": [], "votes": 0}


def tryouts(*args):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)


LONG = "# Answer\n\nThe capital is **Paris**.\n\n- It is on the Seine\n- It has about 2 million people\n"


@pytest.fixture
def styled_run(replay_server, tmp_path):
    """Two models, a plain short answer and a long Markdown one, and votes that mostly favour the long one."""
    suite = tmp_path / "s.yaml"
    from urllib.parse import quote

    suite.write_text(f"""
models:
  - {{model: "{text_model(replay_server, 'Paris')}", label: short}}
  - {{model: "openai-compat:{replay_server}#text={quote(LONG, safe='')}", label: long}}
prompts: ["Capital?"]
""")
    db = str(tmp_path / "s.db")
    p = tryouts("run", str(suite), "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    store = Store(db)
    data = store.get_run("latest")
    ids = {r["model_index"]: r["id"] for r in data["results"]}
    assert {r["text"] for r in data["results"]} == {"Paris", LONG}
    for verdict in ["b"] * 7 + ["a"] * 3 + ["tie"] * 2:
        store.add_vote(data["run"]["id"], case_index=0, repeat_index=0, result_a=ids[0], result_b=ids[1],
                       model_a="short", model_b="long", verdict=verdict)
    return db, data["run"]["id"]


def test_rank_style_control_in_the_cli_and_the_api(styled_run):
    db, run_id = styled_run
    plain = json.loads(tryouts("rank", "latest", "--db", db, "-f", "json", "--resamples", "100").stdout)
    assert "style_control" not in plain["rankings"]["human"]
    p = tryouts("rank", "latest", "--db", db, "-f", "json", "--resamples", "100", "--style-control")
    assert p.returncode == 0, p.stderr
    human = json.loads(p.stdout)["rankings"]["human"]
    sc = human["style_control"]
    assert sc["votes"] == 12 and {r["model"] for r in sc["ratings"]} == {"short", "long"}
    assert all({"rank", "rank_range", "tied_with", "low", "high"} <= set(r) for r in sc["ratings"])
    coefs = {c["feature"]: c for c in sc["coefficients"]}
    assert set(coefs) == set(STYLE_FEATURES) and all(coefs[f]["coef"] is not None for f in STYLE_FEATURES)
    # part of the long answer's lead is put down to its style: its style-controlled lead is smaller
    gap = {r["model"]: r["rating"] for r in human["ratings"]}
    sgap = {r["model"]: r["rating"] for r in sc["ratings"]}
    assert 0 < sgap["long"] - sgap["short"] < gap["long"] - gap["short"]
    table = " ".join(tryouts("rank", "latest", "--db", db, "--resamples", "100", "--style-control").stdout.split())
    assert "Style-ctl" in table and "Style coefficients (12 votes" in table and "length +" in table
    with serve_dashboard(db) as (url, app):
        c = httpx.Client(headers={"Authorization": f"Bearer {app.state.token}"}, timeout=60)
        api = c.get(f"{url}/api/runs/{run_id}/rank", params={"resamples": 100, "style_control": "true"}).json()
        assert api["rankings"]["human"]["style_control"]["ratings"] == sc["ratings"]  # the same seed, the same fit
        assert "style_control" not in c.get(f"{url}/api/runs/{run_id}/rank").json()["rankings"]["human"]
