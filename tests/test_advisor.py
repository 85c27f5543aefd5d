"""The selection advisor over the real catalog: each case of the study notes' decision tree gives the answer
the notes imply, deterministically, with reasons; measured figures from the store are used."""

from __future__ import annotations

import json

import pytest

from tryouts.cli import main


def advise(capsys, *args, db=None):
    with pytest.raises(SystemExit) as exit_info:
        main(["recommend", *args, "--format", "json", *(["--db", db] if db else [])])
    out = capsys.readouterr()
    assert exit_info.value.code == 0, out.err
    return json.loads(out.out)


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "r.db")


def catalog():
    from tryouts.catalog import load_catalog

    return {e.id: e for e in load_catalog()}


def test_low_budget_and_no_privacy_concern_means_a_cheap_api(capsys, db):
    """Notes, step 1: "Low cost, don't care about privacy → Use API (GPT-3.5)" — today's cheap API tiers."""
    out = advise(capsys, "--task", "chat", "--budget", "low", db=db)
    top = out["picks"][0]
    assert top["access"] == "commercial"
    blended = (3 * top["price"]["input_per_mtok"] + top["price"]["output_per_mtok"]) / 4
    assert blended <= 1.0
    assert any("cheap API" in r for r in top["reasons"])


def test_privacy_means_open_models_run_locally_only(capsys, db):
    """Step 1: "High cost, need privacy → Use open-source locally"."""
    out = advise(capsys, "--task", "chat", "--privacy", "high", "--budget", "high", "--top", "10", db=db)
    assert out["picks"] and all(p["access"] == "open" for p in out["picks"])
    assert any(x["reason"].startswith("commercial API: privacy") for x in out["excluded"])
    assert all(any("data stays here" in r for r in p["reasons"]) for p in out["picks"])


def test_best_quality_means_a_commercial_flagship(capsys, db):
    """Step 2: "Need best performance → Claude/GPT-4"."""
    out = advise(capsys, "--task", "chat", "--quality", "best", "--budget", "high", db=db)
    top = out["picks"][0]
    assert top["access"] == "commercial" and catalog()[top["id"]].maker in ("Anthropic", "OpenAI")
    assert "flagship tier: the best quality" in top["reasons"]


def test_good_quality_on_a_budget_locally_means_mistral_or_llama_class(capsys, db):
    """Step 2: "Need good performance on budget → Mistral/LLaMA": mid-size open models that fit a 24 GB GPU."""
    out = advise(capsys, "--task", "chat", "--quality", "good", "--budget", "low", "--privacy", "high",
                 "--gpu-memory", "24GB", db=db)
    entries = catalog()
    makers = {entries[p["id"]].maker for p in out["picks"]}
    assert makers & {"Meta", "Mistral AI"}, makers
    for p in out["picks"]:
        total = entries[p["id"]].params.total
        assert 7e9 <= total < 30e9  # the mid tier: "7-13B: sweet spot for many tasks"
        assert p["memory"]["bytes"] <= 24e9


def test_under_100_ms_means_a_small_model_or_a_fast_api(capsys, db):
    """Step 3: "Need <100ms → Use small model or commercial API"."""
    out = advise(capsys, "--task", "chat", "--latency-ms", "80", "--top", "50", db=db)
    entries = catalog()
    assert out["picks"]
    for p in out["picks"]:
        e = entries[p["id"]]
        if e.access == "open":
            assert (e.params.active or e.params.total) <= 4e9, p["id"]
        else:
            assert any("fast API tier" in r for r in p["reasons"]), p["id"]
    big = [x for x in out["excluded"] if "too slow for < 100 ms" in x["reason"]]
    assert any(x["id"] == "llama-3.1-70b-instruct" for x in big)


def test_a_second_is_fine_for_larger_local_models(capsys, db):
    """Step 3: "Can wait 1-2s → Larger local models work": with an 80 GB GPU, 30-70 B models lead."""
    out = advise(capsys, "--task", "chat", "--offline", "--latency-ms", "2000", "--gpu-memory", "80GB",
                 "--quality", "best", db=db)
    entries = catalog()
    assert all(entries[p["id"]].params.total >= 30e9 for p in out["picks"])
    assert all(p["memory"]["bytes"] <= 80e9 for p in out["picks"])
    llama70 = next((p for p in out["picks"] if p["id"].startswith("llama-3")), None)
    if llama70 is not None:  # 70 B does not fit at bf16 (141 GB) but does at int8
        assert llama70["memory"]["dtype"] == "int8"


def test_fine_tuning_a_specialised_task_means_a_small_encoder(capsys, db):
    """Step 4: "Yes, specialized task → Fine-tune small model"."""
    out = advise(capsys, "--task", "classification", "--fine-tune", db=db)
    entries = catalog()
    top = out["picks"][0]
    assert entries[top["id"]].params.total < 1e9 and "chat" not in entries[top["id"]].tasks
    assert any("fine-tune this small encoder" in r for r in top["reasons"])
    assert any("Fine-tune vs prompt" in a for a in out["advice"])


def test_without_fine_tuning_a_larger_model_is_prompted(capsys, db):
    """Step 4: "No, or general task → Use pre-trained large model"."""
    out = advise(capsys, "--task", "classification", db=db)
    entries = catalog()
    top = out["picks"][0]
    assert "chat" in entries[top["id"]].tasks
    assert any("prompted" in r for r in top["reasons"])


def test_offline_means_local_models_only(capsys, db):
    """Step 5: "Do you need offline? Yes → Must use local model"."""
    out = advise(capsys, "--task", "code", "--offline", "--top", "20", db=db)
    assert out["picks"] and all(p["access"] == "open" for p in out["picks"])
    assert any(x["reason"] == "commercial API: offline" for x in out["excluded"])


def test_hardware_excludes_what_does_not_fit_even_at_int4(capsys, db):
    out = advise(capsys, "--task", "chat", "--privacy", "high", "--gpu-memory", "8GB", "--top", "50", db=db)
    assert all(p["memory"]["bytes"] <= 8e9 for p in out["picks"])
    assert any(x["id"] == "llama-3.1-70b-instruct" and "even at int4" in x["reason"] for x in out["excluded"])


def test_same_constraints_same_answer_and_measured_figures_are_used(capsys, db, replay_server, tmp_path):
    args = ("--task", "chat", "--budget", "low")
    first = advise(capsys, *args, db=db)
    assert advise(capsys, *args, db=db) == first
    # measure a catalog model through its route (the replay server standing in for the API): the store's
    # results count as "your runs"
    import os
    import subprocess
    import sys

    suite = tmp_path / "s.yaml"
    suite.write_text(f"""
models:
  - {{model: openai:gpt-4o-mini, options: {{base_url: "{replay_server}"}}}}
prompts: ["Say something"]
cases:
  - assert: [{{type: contains, value: w1}}]
  - assert: [{{type: contains, value: w1}}]
  - assert: [{{type: contains, value: nowhere}}]
""")
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-not-a-key"}
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", db], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout
    from tryouts.stats import percentile
    from tryouts.store import Store

    results = Store(db).get_run("latest")["results"]
    p50 = percentile([r["ttft_ms"] for r in results], 50)
    # the bounds come from what was measured (a loaded machine makes any fixed bound flaky): above it the model
    # is picked on its measured figure, below it the same figure excludes it
    above, below = round(2 * p50 + 50), round(p50 / 2, 3)
    out = advise(capsys, "--task", "chat", "--latency-ms", str(above), "--top", "60", db=db)
    mini = next(p for p in out["picks"] if p["id"] == "gpt-4o-mini")
    assert mini["measured"]["ttft_p50_ms"] == pytest.approx(p50) and mini["measured"]["quality"] == pytest.approx(2 / 3)
    assert any(f"measured TTFT p50 {p50:.0f} ms ≤ {above:g} ms" in r for r in mini["reasons"])
    assert any("your runs: quality 0.67" in r for r in mini["reasons"])
    out = advise(capsys, "--task", "chat", "--latency-ms", str(below), "--top", "60", db=db)
    assert all(p["id"] != "gpt-4o-mini" for p in out["picks"])
    assert {"id": "gpt-4o-mini", "reason": f"measured TTFT p50 {p50:.0f} ms > {below:g} ms"} in out["excluded"]


def test_bad_constraints_say_what_is_allowed(capsys):
    with pytest.raises(SystemExit) as e:
        main(["recommend", "--budget", "tiny"])
    assert e.value.code == 1 and "--budget must be one of low, medium, high" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["recommend", "--gpu-memory", "lots"])
    assert e.value.code == 1 and "--gpu-memory" in capsys.readouterr().err


def test_table_output_lists_reasons_and_a_next_step(capsys, db):
    with pytest.raises(SystemExit) as e:
        main(["recommend", "--task", "chat", "--privacy", "high", "--gpu-memory", "24GB", "--db", db])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "Recommended" in out and "Privacy high" in out and "tryouts compare" in out


def test_a_retired_model_is_excluded_and_a_deprecated_one_carries_a_caution():
    from tryouts.advisor import Constraints, recommend
    from tryouts.catalog import load_catalog

    entries = load_catalog()
    c = Constraints(task="chat", budget="high", quality="best", top=200)
    now = recommend(c, entries, today="2026-11-24")
    reasons = {x["id"]: x["reason"] for x in now["excluded"]}
    assert reasons["claude-3.5-sonnet"] == "retired: its provider shut it down on 2025-10-28"
    assert reasons["gemini-1.5-pro"] == "retired: its provider shut it down on 2025"  # a year only
    assert "claude-3.5-sonnet" not in {p["id"] for p in now["picks"]}
    sonnet45 = next(p for p in now["picks"] if p["id"] == "claude-sonnet-4.5")  # shuts down 2026-11-30
    assert any("shuts it down on 2026-11-30" in r for r in sonnet45["reasons"])
    # before its shutdown the same model is a candidate (with the caution); after it, excluded
    before = recommend(c, entries, today="2025-06-01")
    old = next(p for p in before["picks"] if p["id"] == "claude-3.5-sonnet")
    assert any("shuts it down on 2025-10-28" in r for r in old["reasons"])
    after = recommend(c, entries, today="2026-12-01")
    assert "claude-sonnet-4.5" in {x["id"] for x in after["excluded"]}
    for e in entries:
        assert e.retired("2026-11-24") == (e.id in reasons and reasons[e.id].startswith("retired"))
