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


def blended(price):
    return (3 * price["input_per_mtok"] + price["output_per_mtok"]) / 4


def test_low_budget_and_no_privacy_concern_means_a_cheap_api(capsys, db):
    """Notes, step 1: "Low cost, don't care about privacy → Use API (GPT-3.5)": today's cheap APIs, open models
    served by a provider included; GPT-3.5 itself is retired (OpenAI shut it down on 2026-10-23)."""
    out = advise(capsys, "--task", "chat", "--budget", "low", "--top", "10", db=db)
    for p in out["picks"][:5]:
        assert p["runs"] == "api" and blended(p["price"]) <= 1.0, p
        assert any(r.startswith("cheap API") for r in p["reasons"])
    assert any(p["access"] == "commercial" for p in out["picks"])
    assert all(p["id"] != "gpt-3.5-turbo" for p in out["picks"])


def test_privacy_means_open_models_run_locally_only(capsys, db):
    """Step 1: "High cost, need privacy → Use open-source locally"."""
    out = advise(capsys, "--task", "chat", "--privacy", "high", "--budget", "high", "--top", "10", db=db)
    assert out["picks"] and all(p["access"] == "open" and p["runs"] == "local" for p in out["picks"])
    assert any(x["reason"].startswith("commercial API: privacy") for x in out["excluded"])
    assert all(any("data stays here" in r for r in p["reasons"]) for p in out["picks"])


def test_best_quality_means_a_commercial_flagship(capsys, db):
    """Step 2: "Need best performance → Claude/GPT-4"."""
    out = advise(capsys, "--task", "chat", "--quality", "best", "--budget", "high", db=db)
    top = out["picks"][0]
    assert top["access"] == "commercial" and catalog()[top["id"]].maker in ("Anthropic", "OpenAI", "Google")
    assert "flagship tier: the best quality" in top["reasons"]


def test_good_quality_on_a_budget_means_mistral_or_llama_class(capsys, db):
    """Step 2: "Need good performance on budget → Mistral/LLaMA": 7–72 B open models lead, locally on a 24 GB
    GPU, or through a cheap provider when privacy allows (not just the cheap commercial APIs)."""
    entries = catalog()
    local = advise(capsys, "--task", "chat", "--quality", "good", "--budget", "low", "--privacy", "high",
                   "--gpu-memory", "24GB", db=db)
    makers = {entries[p["id"]].maker for p in local["picks"]}
    assert makers & {"Meta", "Mistral AI", "Google", "Alibaba", "Microsoft"}, makers
    for p in local["picks"]:
        assert any("Mistral / Llama class" in r for r in p["reasons"]), p
        assert p["memory"]["bytes"] <= 24e9 and p["memory"]["checked"]
    hosted = advise(capsys, "--task", "chat", "--quality", "good", "--budget", "low", db=db)
    classy = [p for p in hosted["picks"] if any("Mistral / Llama class" in r for r in p["reasons"])]
    assert classy and all(p["runs"] == "api" for p in classy)


def test_under_100_ms_means_a_small_model_or_a_fast_api(capsys, db):
    """Step 3: "Need <100ms → Use small model or commercial API" (no hardware given: the size rule)."""
    out = advise(capsys, "--task", "chat", "--latency-ms", "80", "--top", "50", db=db)
    entries = catalog()
    assert out["picks"]
    for p in out["picks"]:
        e = entries[p["id"]]
        if p["runs"] == "local":
            assert (e.params.active or e.params.total) <= 4e9, p["id"]
        else:
            assert any("fast API tier" in r for r in p["reasons"]), p["id"]
    assert any(x["id"] == "claude-opus-4.5" and "fast tiers only" in x["reason"] for x in out["excluded"])
    local = advise(capsys, "--task", "chat", "--latency-ms", "80", "--offline", "--top", "50", db=db)
    assert any(x["id"] == "llama-3.1-70b-instruct" and "too slow for < 100 ms" in x["reason"]
               for x in local["excluded"])


def test_latency_on_known_hardware_is_an_estimate_from_bandwidth(capsys, db):
    """Step 3 per model and device: on an RTX 4090 (1,008 GB/s) an 8 B model at 16-bit reads about 15 GB per
    token (about 15 ms, 66 tokens/s); a 70 B model does not fit the bound at any format that fits the card."""
    out = advise(capsys, "--task", "chat", "--offline", "--gpu", "RTX-4090", "--latency-ms", "100", "--top", "60",
                 db=db)
    by_id = {p["id"]: p for p in out["picks"]}
    p = by_id["llama-3.1-8b-instruct"]
    assert p["memory"]["dtype"] == "bf16" and p["speed"]["estimate"] is True
    weights = 2 * 8_030_261_248 - 2 * 128_256 * 4096  # bf16, less the token-embedding table (one row read)
    assert p["speed"]["bytes_per_token"] == pytest.approx(weights + 0.537e9, rel=0.02)  # + 512 MiB of KV at 4k
    assert p["speed"]["tokens_per_s"] == pytest.approx(1008e9 / p["speed"]["bytes_per_token"], rel=0.01)
    assert any("estimated TTFT" in r for r in p["reasons"])
    assert "Speeds are estimates" in " ".join(out["steps"])


def test_a_second_is_fine_for_larger_local_models(capsys, db):
    """Step 3: "Can wait 1-2s → Larger local models work": with an 80 GB GPU, 30-70 B models lead."""
    out = advise(capsys, "--task", "chat", "--offline", "--latency-ms", "2000", "--gpu-memory", "80GB",
                 "--quality", "best", db=db)
    entries = catalog()
    assert all(entries[p["id"]].params.total >= 30e9 for p in out["picks"])
    assert all(p["memory"]["bytes"] <= 80e9 for p in out["picks"])
    llama70 = next((p for p in out["picks"] if p["id"].startswith("llama-3")), None)
    if llama70 is not None:  # 70 B does not fit at bf16 (141 GB) but does at 8-bit
        assert llama70["memory"]["dtype"] == "fp8"


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
    assert out["picks"] and all(p["access"] == "open" and p["runs"] == "local" for p in out["picks"])
    assert any(x["reason"] == "commercial API: offline" for x in out["excluded"])


def test_moe_models_are_placed_in_gguf_not_ruled_out(capsys, db):
    """Qwen3-30B-A3B needs 61 GB at 16-bit but about 19 GB at Q4_K_M: on a 24 GB GPU it is a candidate, in a
    GGUF format the pick names (bitsandbytes int4 would leave the experts 16-bit)."""
    out = advise(capsys, "--task", "chat", "--offline", "--gpu-memory", "24GB", "--top", "80", db=db)
    qwen = next(p for p in out["picks"] if p["id"] == "qwen3-30b-a3b")
    assert qwen["memory"]["dtype"] in ("Q5_K_M", "Q4_K_M") and qwen["memory"]["bytes"] <= 24e9
    assert "qwen3-30b-a3b" not in {x["id"] for x in out["excluded"]}
    # gpt-oss ships its experts in MXFP4: as published it fits a 16 GB GPU (it was "45 GB at bf16")
    small = advise(capsys, "--task", "chat", "--offline", "--gpu-memory", "16GB", "--top", "80", db=db)
    oss = next(p for p in small["picks"] if p["id"] == "gpt-oss-20b")
    assert oss["memory"]["dtype"] == "MXFP4 (as published)" and 14e9 < oss["memory"]["bytes"] <= 16e9
    # an MoE that fits in no format is excluded with the smallest format it was tried in
    assert any(x["id"] == "mixtral-8x22b-instruct" and "even at Q3_K_M" in x["reason"] for x in out["excluded"])


def test_hardware_cases(capsys, db):
    """8 GB, 24 GB and 80 GB GPUs, a CPU-only machine with 32 GB RAM, and a 16 GB unified-memory laptop."""
    entries = catalog()
    eight = advise(capsys, "--task", "chat", "--privacy", "high", "--gpu-memory", "8GB", "--top", "50", db=db)
    assert all(p["memory"]["bytes"] <= 8e9 for p in eight["picks"])
    assert entries[eight["picks"][0]["id"]].params.total >= 7e9  # an 8 B model at 4-5 bits beats 1-2 B at 16-bit
    assert any(x["id"] == "llama-3.1-70b-instruct" and "even at Q3_K_M" in x["reason"] for x in eight["excluded"])
    code = advise(capsys, "--task", "code", "--privacy", "high", "--gpu-memory", "24GB", "--top", "5", db=db)
    ids = [p["id"] for p in code["picks"]]
    assert "qwen2.5-coder-32b-instruct" in ids and "codegen-350m-mono" not in ids
    big = advise(capsys, "--task", "chat", "--privacy", "high", "--gpu", "H100", "--quality", "best", db=db)
    assert all(p["memory"]["bytes"] <= 85.6e9 for p in big["picks"])
    assert all(entries[p["id"]].params.total >= 60e9 for p in big["picks"])
    cpu = advise(capsys, "--task", "chat", "--offline", "--ram", "32GB", "--top", "20", db=db)
    assert cpu["constraints"]["hardware"]["kind"] == "cpu"
    assert cpu["constraints"]["hardware"]["usable_bytes"] == int(32 * 2**30 * 0.85)
    for p in cpu["picks"]:  # GGUF only, in 85 % of 32 GiB
        assert p["memory"]["format"] in ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M")
        assert p["memory"]["bytes"] <= 0.85 * 32 * 2**30
        assert p["speed"]["tokens_per_s"] == pytest.approx(89.6e9 / p["speed"]["bytes_per_token"], rel=0.01)
    mac = advise(capsys, "--task", "chat", "--offline", "--unified-memory", "16GB", "--top", "20", db=db)
    usable = mac["constraints"]["hardware"]["usable_bytes"]
    assert usable == int(16 * 2**30 * 2 / 3)  # Metal's working set on a 16 GB Mac: 10,922.67 MiB
    assert all(p["memory"]["bytes"] <= usable for p in mac["picks"])
    assert any("120 GB/s" in r for p in mac["picks"] for r in p["reasons"])  # M4 by default


def test_no_hardware_given_does_not_claim_a_huge_model_runs_locally(capsys, db):
    out = advise(capsys, "--task", "chat", "--privacy", "high", "--top", "30", db=db)
    for p in out["picks"]:
        if p["memory"]:
            assert not p["memory"]["checked"]
            assert any("not checked: no hardware given" in r for r in p["reasons"])
    deepseek = next((p for p in out["picks"] if p["id"] == "deepseek-v3"), None)
    assert deepseek is None or any("several GPUs" in r for r in deepseek["reasons"])
    assert any("No hardware given" in s for s in out["steps"])


def test_licence_constraint_and_every_pick_says_its_licence(capsys, db):
    """A cc-by-nc model is never recommended for commercial use; every pick names its licence."""
    out = advise(capsys, "--task", "chat", "--privacy", "high", "--gpu", "H100", "--quality", "best", "--top", "50",
                 db=db)
    assert any(catalog()[p["id"]].license == "cc-by-nc-4.0" for p in out["picks"])
    assert all(any(r.startswith("licence: ") for r in p["reasons"]) for p in out["picks"])
    com = advise(capsys, "--task", "chat", "--privacy", "high", "--gpu", "H100", "--quality", "best", "--top", "50",
                 "--commercial", db=db)
    assert all(catalog()[p["id"]].license not in ("cc-by-nc-4.0", "mrl", "mnpl", "qwen-research")
               for p in com["picks"])
    assert any("CC BY-NC 4.0" in x["reason"] and "commercial use not allowed" in x["reason"] for x in com["excluded"])
    ow = advise(capsys, "--task", "chat", "--open-weights", "--budget", "low", db=db)
    assert all(p["access"] == "open" for p in ow["picks"])


def test_a_window_too_small_for_the_context_is_excluded(capsys, db):
    out = advise(capsys, "--task", "chat", "--context", "300000", "--top", "40", db=db)
    reasons = {x["id"]: x["reason"] for x in out["excluded"]}
    assert reasons.get("llama-3.1-8b-instruct") == "holds 131,072 tokens of input, fewer than --context 300,000"
    assert all(p["id"] != "gpt-5" for p in out["picks"])  # 272k of input in its 400k window


def test_hardware_options_are_checked(capsys):
    for args, text in ((["--ram", "32GB", "--gpu", "H100"], "Describe one machine"),
                       (["--chip", "M3"], "--chip names an Apple silicon chip"),
                       (["--unified-memory", "16GB", "--chip", "M9"], "Unknown chip 'M9'"),
                       (["--gpu", "Voodoo"], "Unknown GPU 'Voodoo'"),
                       (["--ram", "lots"], "--ram"),
                       (["--bandwidth", "100"], "--bandwidth goes with a machine")):
        with pytest.raises(SystemExit) as e:
            main(["recommend", *args])
        err = capsys.readouterr().err
        assert e.value.code == 1 and text in err, (args, err)
        assert "Traceback" not in err


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
