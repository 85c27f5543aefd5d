"""``tryouts eval-task``: task metrics on hand-made cases, data errors, and every task end to end.

End-to-end runs use replay chat models (the replay server answers the scripted text, so metric values are
known exactly) and tiny random-weight local models built offline by :mod:`tryouts.tasks.tiny` (their
scores are chance, so the tests check them against an independent computation instead).
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from tryouts.errors import UsageError
from tryouts.tasks.data import Entity, bio_to_entities, load_dataset
from tryouts.tasks.metrics import (
    classification_metrics,
    entity_counts,
    entity_prf,
    match_label,
    paired_spearman,
    pass_k_table,
    recall_at_k,
    sentence_f1,
)

EX = str(Path(__file__).resolve().parent.parent / "examples" / "tasks")

# ---- helpers -----------------------------------------------------------------------------------


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``tryouts ARGS`` in process; return (exit code, stdout, stderr)."""
    from tryouts.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def run_json(capsys, *args: str) -> dict:
    code, out, err = cli(capsys, *args, "--format", "json", "--no-progress")
    assert code == 0, err + out
    return json.loads(out)


def replay(base: str, text: str) -> str:
    """A replay chat model that always answers ``text``."""
    return f"openai-compat:{base}#text={urllib.parse.quote(text, safe='')}"


def write(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return str(path)


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny task models, built once for this module in the layout of the user cache (<cache>/tasks/v<TINY_VERSION>)."""
    from tryouts.tasks.tiny import ensure_tiny_task_models

    cache = tmp_path_factory.mktemp("task-cache")
    models = ensure_tiny_task_models(cache / "tasks")
    return {"cache": cache, **{k: str(v) for k, v in models.items()}}


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "tasks.db")


# ---- metrics -----------------------------------------------------------------------------------


def test_match_label_is_exact_up_to_case_and_wrapping():
    labels = ["negative", "positive"]
    assert match_label("Positive.", labels) == "positive"
    assert match_label("  **NEGATIVE**\n", labels) == "negative"
    assert match_label('"positive"', labels) == "positive"
    assert match_label("It is positive", labels) is None
    assert match_label("positive, negative", labels) is None
    assert match_label("neutral", labels) is None


def test_classification_accuracy_macro_f1_and_confusion():
    gold = ["positive"] * 6 + ["negative"] * 4
    m = classification_metrics(gold, ["positive"] * 10, ["negative", "positive"])
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["macro_f1"] == pytest.approx(0.375)  # positive F1 0.75, negative 0
    assert m["per_label"]["positive"] == pytest.approx(
        {"precision": 0.6, "recall": 1.0, "f1": 0.75, "support": 6}
    )
    assert m["confusion"]["matrix"] == [[0, 4, 0], [0, 6, 0]]
    # answers that name no label are wrong, sit in the (invalid) column, and are no label's false positive
    pred = [
        "positive",
        "positive",
        "negative",
        None,
        None,
        "positive",
        "negative",
        "negative",
        None,
        "positive",
    ]
    m = classification_metrics(gold, pred, ["negative", "positive"])
    assert m["accuracy"] == pytest.approx(0.5) and m["invalid"] == 3
    assert m["confusion"]["matrix"] == [[2, 1, 1], [1, 3, 2]]
    assert m["per_label"]["positive"]["precision"] == pytest.approx(3 / 4)
    assert m["per_label"]["positive"]["recall"] == pytest.approx(3 / 6)
    assert m["per_label"]["negative"]["f1"] == pytest.approx(2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4))


def test_entity_matching_exact_partial_and_wrong_type():
    gold = [Entity("New York City", "LOC"), Entity("Anna", "PER")]
    assert entity_counts(gold, [Entity("new  york city", "loc"), Entity("Anna", "PER")]) == (2, 0, 0)
    # a partial overlap and the right text with the wrong type each cost a false positive and a false negative
    pred = [Entity("New York", "LOC"), Entity("Anna", "ORG"), Entity("Paris", "LOC")]
    assert entity_counts(gold, pred) == (0, 3, 2)
    # one-to-one: a repeated entity must be found as often as it occurs
    assert entity_counts([Entity("Paris", "LOC")] * 2, [Entity("Paris", "LOC")]) == (1, 0, 1)
    assert sentence_f1([], []) == 1.0
    assert sentence_f1(gold, [Entity("Anna", "PER")]) == pytest.approx(2 / 3)
    m = entity_prf([gold, [Entity("Paris", "LOC")]], [pred, [Entity("Paris", "LOC")]])
    assert (m["tp"], m["fp"], m["fn"]) == (1, 3, 2)
    assert m["precision"] == pytest.approx(1 / 4) and m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    assert (
        m["per_type"]["LOC"]["tp"] == 1
        and m["per_type"]["LOC"]["fp"] == 2
        and m["per_type"]["LOC"]["fn"] == 1
    )
    assert m["per_type"]["ORG"] == pytest.approx(
        {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 1, "fn": 0}
    )


def test_bio_tags_to_entities_with_spans():
    tokens = ["Maria", "Lopez", "met", "Acme", "staff", "in", "New", "York"]
    tags = ["B-PER", "I-PER", "O", "I-ORG", "O", "O", "B-LOC", "I-PER"]
    ents = bio_to_entities(tokens, tags)
    text = " ".join(tokens)
    assert [(e.text, e.label) for e in ents] == [
        ("Maria Lopez", "PER"),
        ("Acme", "ORG"),
        ("New", "LOC"),
        ("York", "PER"),
    ]
    assert all(text[e.start : e.end] == e.text for e in ents)


def test_recall_at_k_pass_k_and_paired_spearman():
    ranks = [1, 3, None, 2]
    assert [recall_at_k(ranks, k) for k in (1, 2, 3)] == [0.25, 0.5, 0.75]
    table = pass_k_table([(2, 1), (2, 2)], [1, 2, 3])
    assert table["1"] == pytest.approx({"pass@k": 0.75, "pass^k": 0.75})
    assert table["2"] == pytest.approx({"pass@k": 1.0, "pass^k": 0.5})
    assert table["3"] == {"pass@k": None, "pass^k": None}
    gold = [0, 1, 2, 3, 4, 5, 6, 7]
    same = paired_spearman(gold, gold, gold)
    assert same["diff"] == 0.0 and same["p_value"] == 1.0
    better = paired_spearman([3, 1, 7, 0, 6, 2, 5, 4], gold, gold)
    # 8 pairs: the exact permutation test over every swap within pairs, no bootstrap interval
    assert better["diff"] > 0.5 and better["test"] == "exact permutation of rho" and better["low"] is None
    assert better["p_value"] == pytest.approx(_swap_p_brute_force([3, 1, 7, 0, 6, 2, 5, 4], gold, gold))
    assert better["p_value"] < 0.05 and better["verdict"] == "a difference these cases support"
    few = paired_spearman([2, 0, 1, 3], [0, 1, 2, 3], [0, 1, 2, 3])  # 4 pairs: at best p = 2/2**4
    assert few["p_value"] >= 2 / 2**4 and few["verdict"] == "too few cases to tell"
    import numpy as np

    rng = np.random.default_rng(3)
    y = rng.normal(size=24)
    many = paired_spearman(y + rng.normal(0, 2, 24), y + rng.normal(0, 0.2, 24), y)
    assert many["test"] == "paired bootstrap of rho" and many["low"] > 0 and many["significant"] is True


def _swap_p_brute_force(a, b, gold):
    """The exact p-value of the rho difference, listing every one of the 2**n swaps within pairs."""
    from itertools import product

    from scipy.stats import spearmanr

    def diff(x, y):
        return spearmanr(y, gold).statistic - spearmanr(x, gold).statistic

    observed = abs(diff(a, b))
    count = 0
    swaps = list(product((False, True), repeat=len(gold)))
    for swap in swaps:
        x = [bi if s else ai for ai, bi, s in zip(a, b, swap, strict=True)]
        y = [ai if s else bi for ai, bi, s in zip(a, b, swap, strict=True)]
        count += abs(diff(x, y)) >= observed - 1e-12
    return count / len(swaps)


# ---- data --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "name", "body", "expected"),
    [
        ("classification", "c.csv", "text,lbl\nhi,a\n", "missing column 'label'"),
        ("classification", "c.csv", "text,label\nhi,a\n,b\n", "line 3: the 'text' value is missing"),
        ("classification", "c.csv", "text,label\nhi,a\nho,a\n", "at least two different labels"),
        ("classification", "c.txt", "text,label\n", "unknown file type '.txt'"),
        (
            "classification",
            "c.jsonl",
            '{"text": "hi", "label": "a"}\n{"text": "ho"\n',
            "line 2: is not valid JSON",
        ),
        ("ner", "n.csv", "tokens,tags\n", "ner data must be JSONL"),
        (
            "ner",
            "n.jsonl",
            '{"tokens": ["a", "b"], "tags": ["O"]}\n',
            "line 1: 'tags' must be a list with one tag",
        ),
        (
            "ner",
            "n.jsonl",
            '{"tokens": ["a"], "tags": ["PERSON"]}\n',
            "tag 'PERSON' is not O, B-TYPE or I-TYPE",
        ),
        (
            "ner",
            "n.jsonl",
            '{"text": "Hi Bob", "entities": [{"text": "Ann", "label": "PER"}]}\n',
            "does not occur",
        ),
        ("embeddings", "e.csv", "a,b\nx,y\n", "sentence1,sentence2,score (STS) or query,document"),
        (
            "embeddings",
            "e.csv",
            "sentence1,sentence2,score\na,b,1\nc,d,high\n",
            "line 3: 'score' must be a number",
        ),
        (
            "code",
            "k.jsonl",
            '{"prompt": "p", "tests": "assert 1"}\n{"prompt": "q"}\n',
            "line 2: missing field 'tests'",
        ),
        (
            "code",
            "k.jsonl",
            '{"prompt": "p", "tests": "assert f(1) ==="}\n',
            "line 1: 'tests' is not valid Python",
        ),
        ("translation", "t.csv", "source,target\n", "has no rows of data"),
    ],
)
def test_data_errors_name_file_line_and_column(tmp_path, task, name, body, expected):
    path = write(tmp_path, name, body)
    with pytest.raises(UsageError) as info:
        load_dataset(task, path)
    assert expected in info.value.message
    assert name in info.value.message and "docs/tasks.md" in info.value.message


def test_data_modes_corpus_and_limit(tmp_path):
    sts = load_dataset("embeddings", EX + "/sts.csv", limit=5)
    assert sts.mode == "sts" and len(sts.cases) == 5 and sts.cases[0].extra["sentence2"]
    path = write(tmp_path, "r.csv", "query,document\nq1,d1\nq2,d2\nq3,d1\n")
    ret = load_dataset("embeddings", path)
    assert ret.mode == "retrieval" and ret.corpus == ["d1", "d2"] and [c.gold for c in ret.cases] == [0, 1, 0]
    ner = load_dataset("ner", EX + "/ner.jsonl")
    assert ner.labels == ["LOC", "ORG", "PER"]
    assert [(e.text, e.label) for e in ner.cases[-1].gold] == [("Louvre", "LOC"), ("Paris", "LOC")]


# ---- end to end --------------------------------------------------------------------------------

POS_NEG = (
    "text,label\n"
    + "".join(f"good thing {i},positive\n" for i in range(6))
    + "".join(f"bad thing {i},negative\n" for i in range(4))
)


def test_classification_replay_models_exact_metrics_and_show(replay_server, tmp_path, db, capsys):
    data = write(tmp_path, "pn.csv", POS_NEG)
    report = run_json(
        capsys,
        "eval-task",
        "classification",
        "--data",
        data,
        "--db",
        db,
        "-m",
        replay(replay_server, "positive"),
        "-m",
        replay(replay_server, "Negative."),
        "-m",
        replay(replay_server, "I would say positive"),
    )
    a, b, c = report["models"]
    assert a["route"] == "prompt" and a["results"] == 10 and a["failed"] == 0 and a["invalid"] == 0
    assert a["intervals"]["accuracy"]["mean"] == pytest.approx(0.6)
    assert a["metrics"]["macro_f1"] == pytest.approx(0.375)
    assert a["metrics"]["confusion"]["matrix"] == [[0, 4, 0], [0, 6, 0]]
    assert b["intervals"]["accuracy"]["mean"] == pytest.approx(0.4)
    assert b["metrics"]["macro_f1"] == pytest.approx((2 * 0.4 / 1.4) / 2)
    assert c["invalid"] == 10 and c["intervals"]["accuracy"]["mean"] == 0.0
    assert c["metrics"]["confusion"]["matrix"] == [[0, 0, 4], [0, 0, 6]]
    lo, hi = a["intervals"]["accuracy"]["low"], a["intervals"]["accuracy"]["high"]
    assert 0.2 <= lo < 0.6 < hi <= 0.9
    # macro-F1 is a corpus statistic: its interval is of the statistic recomputed on resampled cases
    mf1 = a["intervals"]["macro_f1"]
    assert mf1["n"] == 10 and mf1["mean"] == pytest.approx(0.375) and mf1["low"] < mf1["high"]
    # every resample has only "positive" answers: macro-F1 = F1(positive)/2 with p = the share of positives
    assert 0.5 * 2 * 0.2 / 1.2 - 1e-9 <= mf1["low"] and mf1["high"] <= 0.5 * 2 * 0.9 / 1.9 + 1e-9
    assert c["intervals"]["macro_f1"] == {"n": 10, "mean": 0.0, "low": 0.0, "high": 0.0}
    ab = report["comparisons"][0]
    assert ab["model_index"] == 1 and ab["diff"] == pytest.approx(-0.2)
    assert ab["sign_test"]["wins_b"] == 4 and ab["sign_test"]["wins_a"] == 6 and ab["sign_test"]["ties"] == 0
    assert report["comparisons"][1]["diff"] == pytest.approx(-0.6)

    # stored: the run, each answer's task score, and the report for 'show'
    code, out, _ = cli(capsys, "show", report["run_id"], "--db", db, "--format", "json")
    stored = json.loads(out)
    assert stored["run"]["kind"] == "eval-task" and stored["run"]["status"] == "done"
    assert stored["run"]["meta"]["eval_task"]["models"][0]["metrics"]["macro_f1"] == pytest.approx(0.375)
    first = next(r for r in stored["results"] if r["model_index"] == 0 and r["case"]["gold"] == "negative")
    assert first["scores"]["task"] == {"pred": "positive", "valid": True, "correct": 0.0}
    assert (
        "Classify the text into exactly one of these labels: negative, positive."
        in first["request"]["messages"][0]["content"]
    )
    code, out, _ = cli(capsys, "show", report["run_id"], "--db", db)
    assert code == 0 and "Confusion matrix" in out and "0.600 [" in out and "Paired comparisons" in out
    code, out, _ = cli(capsys, "runs", "--db", db)
    assert "eval-task" in out


def test_classification_tiny_pipeline_matches_transformers(tiny, tmp_path, db, capsys):
    from transformers import pipeline

    report = run_json(
        capsys,
        "eval-task",
        "classification",
        "--data",
        EX + "/classification.csv",
        "--db",
        db,
        "-m",
        f"hf:{tiny['classification']}",
        "--limit",
        "12",
    )
    m = report["models"][0]
    assert m["route"] == "pipeline" and m["results"] == 12 and m["invalid"] == 0
    data = load_dataset("classification", EX + "/classification.csv", limit=12)
    pipe = pipeline("text-classification", model=tiny["classification"], device="cpu")
    expected = [pipe(c.input)[0]["label"] for c in data.cases]
    correct = sum(p == c.gold for p, c in zip(expected, data.cases, strict=True))
    assert m["intervals"]["accuracy"]["mean"] == pytest.approx(correct / 12)
    matrix = m["metrics"]["confusion"]["matrix"]
    for i, label in enumerate(data.labels):
        for j, pred in enumerate(data.labels):
            assert matrix[i][j] == sum(
                c.gold == label and p == pred for p, c in zip(expected, data.cases, strict=True)
            )


NER_DATA = [
    {
        "tokens": ["Anna", "lives", "in", "New", "York", "City"],
        "tags": ["B-PER", "O", "O", "B-LOC", "I-LOC", "I-LOC"],
    },
    {"text": "Paris is big", "entities": [{"start": 0, "end": 5, "label": "LOC"}]},
]


def test_ner_replay_exact_entity_scores_and_tiny_pipeline(replay_server, tiny, tmp_path, db, capsys):
    data = write(tmp_path, "ner.jsonl", jsonl(NER_DATA))
    answer = (
        'Entities:\n```json\n[{"text": "Anna", "label": "PER"}, {"text": "New York", "label": "LOC"}, '
        '{"text": "Paris", "label": "ORG"}]\n```'
    )
    report = run_json(
        capsys,
        "eval-task",
        "ner",
        "--data",
        data,
        "--db",
        db,
        "-m",
        replay(replay_server, answer),
        "-m",
        replay(replay_server, "Anna (PER)"),
        "-m",
        f"hf:{tiny['ner']}",
    )
    a, b, c = report["models"]
    # sentence 1: Anna ok; "New York" partial, Paris/ORG spurious, "New York City" missed: tp 1, fp 2, fn 1
    # sentence 2: all three spurious (Paris has the wrong type), Paris/LOC missed:         tp 0, fp 3, fn 1
    assert (a["metrics"]["tp"], a["metrics"]["fp"], a["metrics"]["fn"]) == (1, 5, 2)
    assert a["metrics"]["precision"] == pytest.approx(1 / 6) and a["metrics"]["recall"] == pytest.approx(
        1 / 3
    )
    assert a["metrics"]["f1"] == pytest.approx(2 / 9)
    assert a["intervals"]["entity_f1"]["mean"] == pytest.approx(2 / 9)
    assert a["intervals"]["entity_f1"]["low"] <= 2 / 9 <= a["intervals"]["entity_f1"]["high"]
    assert a["intervals"]["sentence_f1"]["mean"] == pytest.approx((0.4 + 0.0) / 2)
    assert b["invalid"] == 2 and b["metrics"]["fn"] == 3 and b["metrics"]["f1"] == 0.0
    assert c["route"] == "pipeline" and c["invalid"] == 0 and c["failed"] == 0
    _code, out, _ = cli(capsys, "show", report["run_id"], "--db", db, "--format", "json")
    inputs = {0: "Anna lives in New York City", 1: "Paris is big"}
    for r in json.loads(out)["results"]:
        if r["model_index"] == 2:  # pipeline entities are spans of the input, typed without B-/I-
            for e in r["scores"]["task"]["pred"]:
                assert inputs[r["case_index"]][e["start"] : e["end"]] == e["text"]
                assert e["label"] in ("PER", "ORG", "LOC")


def test_translation_replay_scores_and_tiny_seq2seq(replay_server, tiny, tmp_path, db, capsys):
    import sacrebleu

    from tryouts.scoring.reference import bleu, chrf

    data = write(
        tmp_path, "t.csv", "source,target\nGood morning.,Guten Morgen.\nThank you very much.,Vielen Dank.\n"
    )
    model = replay(replay_server, "Guten Morgen.")
    code, _, err = cli(
        capsys, "eval-task", "translation", "--data", data, "--db", db, "-m", model, "--no-progress"
    )
    assert code == 1 and "--tgt-lang" in err
    report = run_json(
        capsys,
        "eval-task",
        "translation",
        "--data",
        data,
        "--db",
        db,
        "--tgt-lang",
        "German",
        "-m",
        model,
        "-m",
        f"hf:{tiny['seq2seq']}",
        "--max-tokens",
        "4",
    )
    a, b = report["models"]
    assert a["intervals"]["chrf"]["mean"] == pytest.approx(
        (100.0 + chrf("Guten Morgen.", "Vielen Dank.")) / 2
    )
    assert a["intervals"]["bleu"]["mean"] == pytest.approx(
        (100.0 + bleu("Guten Morgen.", "Vielen Dank.")) / 2
    )
    corpus = sacrebleu.corpus_bleu(
        ["Guten Morgen.", "Guten Morgen."], [["Guten Morgen.", "Vielen Dank."]]
    ).score
    assert a["metrics"]["corpus_bleu"] == pytest.approx(corpus)
    assert a["intervals"]["corpus_bleu"]["mean"] == pytest.approx(corpus)
    assert a["intervals"]["corpus_chrf"]["mean"] == pytest.approx(a["metrics"]["corpus_chrf"])
    assert b["route"] == "pipeline" and b["failed"] == 0 and b["results"] == 2
    code, out, _ = cli(capsys, "show", report["run_id"], "--db", db, "--format", "json")
    rows = [r for r in json.loads(out)["results"] if r["model_index"] == 1]
    assert all(json.loads(r["text"])[0]["translation_text"] == r["scores"]["task"]["pred"] for r in rows)
    assert all(r["output_tokens"] <= 4 for r in rows)
    assert all(r["scores"]["task"]["pred"].strip() for r in rows)  # the tiny model says something (noise)
    assert (
        "Translate the following text into German."
        in json.loads(out)["results"][0]["request"]["messages"][0]["content"]
    )


def test_summarization_replay_rouge(replay_server, tiny, tmp_path, db, capsys):
    from tryouts.scoring.reference import rouge

    data = write(
        tmp_path,
        "s.csv",
        "text,summary\nA long text about cats.,Cats are great pets.\n"
        "A long text about rain.,It rained all week in the city.\n",
    )
    report = run_json(
        capsys,
        "eval-task",
        "summarization",
        "--data",
        data,
        "--db",
        db,
        "-m",
        replay(replay_server, "Cats are great pets."),
    )
    other = rouge("Cats are great pets.", "It rained all week in the city.")
    m = report["models"][0]["intervals"]
    assert m["rougeL"]["mean"] == pytest.approx((1.0 + other["rougeL"]) / 2)
    assert m["rouge1"]["mean"] == pytest.approx((1.0 + other["rouge1"]) / 2)


def test_embeddings_minilm_beats_tiny_random_on_sts_and_retrieval(tiny, db, capsys):
    from tryouts.scoring.embedding import similarities, sts_spearman
    from tryouts.tasks.tiny import minilm_path

    minilm = str(minilm_path())
    report = run_json(
        capsys,
        "eval-task",
        "embeddings",
        "--data",
        EX + "/sts.csv",
        "--db",
        db,
        "-m",
        f"hf:{tiny['embeddings']}",
        "-m",
        f"hf:{minilm}",
    )
    rand, real = report["models"]
    assert report["mode"] == "sts" and rand["route"] == real["route"] == "embedding"
    data = load_dataset("embeddings", EX + "/sts.csv")
    sims = similarities([(c.input, c.extra["sentence2"]) for c in data.cases], minilm)
    assert real["metrics"]["spearman"]["rho"] == pytest.approx(
        sts_spearman(sims, [c.gold for c in data.cases])["rho"], abs=1e-4
    )
    assert real["intervals"]["spearman"]["mean"] > rand["intervals"]["spearman"]["mean"]
    comp = report["comparisons"][0]
    assert comp["diff"] > 0 and comp["low"] > 0 and comp["p_value"] < 0.05
    assert real["results"] == len(data.cases) and real["e2e_ms_p50"] > 0

    report = run_json(
        capsys,
        "eval-task",
        "embeddings",
        "--data",
        EX + "/retrieval.csv",
        "--db",
        db,
        "--k",
        "1,3",
        "-m",
        f"hf:{tiny['embeddings']}",
        "-m",
        f"hf:{minilm}",
    )
    rand, real = report["models"]
    assert report["mode"] == "retrieval" and report["primary"] == "recall@1"
    assert real["intervals"]["recall@1"]["mean"] >= 0.9
    assert real["intervals"]["recall@3"]["mean"] >= real["intervals"]["recall@1"]["mean"]
    assert report["comparisons"][0]["diff"] > 0
    _code, out, _ = cli(capsys, "show", report["run_id"], "--db", db, "--format", "json")
    rows = [r for r in json.loads(out)["results"] if r["model_index"] == 1]
    ranks = [r["scores"]["task"]["rank"] for r in rows]
    assert real["intervals"]["recall@1"]["mean"] == pytest.approx(recall_at_k(ranks, 1))
    assert real["intervals"]["mrr"]["mean"] == pytest.approx(sum(1 / r for r in ranks) / len(ranks))


def test_embeddings_refuse_api_models(replay_server, db, capsys):
    code, _, err = cli(
        capsys,
        "eval-task",
        "embeddings",
        "--data",
        EX + "/sts.csv",
        "--db",
        db,
        "-m",
        replay(replay_server, "x"),
    )
    assert code == 1 and "sentence-transformers" in err


CODE_DATA = [
    {
        "id": "add",
        "prompt": "Write add(a, b) returning a + b.",
        "tests": "assert add(1, 2) == 3\n",
        "entry_point": "add",
    },
    {
        "id": "add2",
        "prompt": "Write add(a, b) again.",
        "tests": "def check(candidate):\n    assert candidate(2, 2) == 4\n",
        "entry_point": "add",
    },
]


def test_code_pass_at_k_and_infinite_loop_killed(replay_server, tmp_path, db, capsys):
    data = write(tmp_path, "code.jsonl", jsonl(CODE_DATA))
    good = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\n"
    loop = "```python\ndef add(a, b):\n    while True:\n        pass\n```"
    report = run_json(
        capsys,
        "eval-task",
        "code",
        "--data",
        data,
        "--db",
        db,
        "--repeats",
        "2",
        "--k",
        "1,2",
        "--timeout-s",
        "1",
        "-m",
        replay(replay_server, good),
        "-m",
        replay(replay_server, loop),
    )
    a, b = report["models"]
    assert a["intervals"]["pass@1"]["mean"] == 1.0 and b["intervals"]["pass@1"]["mean"] == 0.0
    assert a["metrics"]["pass_k"] == {
        "1": {"pass@k": 1.0, "pass^k": 1.0},
        "2": {"pass@k": 1.0, "pass^k": 1.0},
    }
    assert b["metrics"]["pass_k"] == {
        "1": {"pass@k": 0.0, "pass^k": 0.0},
        "2": {"pass@k": 0.0, "pass^k": 0.0},
    }
    assert a["metrics"]["outcomes"] == {"passed": 4} and b["metrics"]["outcomes"] == {"timeout": 4}
    assert report["comparisons"][0]["diff"] == -1.0
    code, _out, err = cli(
        capsys, "eval-task", "code", "--data", data, "--db", db, "--k", "3", "-m", replay(replay_server, good)
    )
    assert code == 1 and "--repeats 3" in err


def test_tiny_models_are_printed_for_the_shell(tiny, monkeypatch, capsys):
    monkeypatch.setenv("TRYOUTS_CACHE_DIR", str(tiny["cache"]))
    code, out, _ = cli(capsys, "eval-task", "--tiny-models")
    assert code == 0
    lines = dict(
        line.removeprefix("export ").split("=", 1) for line in out.splitlines() if line.startswith("export")
    )
    assert lines["TINY_CLASSIFICATION"] == tiny["classification"] and lines["TINY_SEQ2SEQ"] == tiny["seq2seq"]
    assert lines["MINILM"].endswith("model")


def test_usage_errors(db, capsys, tmp_path):
    code, _, err = cli(capsys, "eval-task", "sentiment", "--data", "x.csv", "-m", "hf:./x")
    assert code == 1 and "Unknown task 'sentiment'" in err
    code, _, err = cli(capsys, "eval-task", "classification", "--data", EX + "/classification.csv")
    assert code == 1 and "-m PROVIDER:MODEL" in err
    code, _, err = cli(capsys, "eval-task", "classification", "-m", "hf:./x")
    assert code == 1 and "--data" in err


def test_pipeline_kwargs_must_be_a_mapping(tiny, db, capsys):
    import asyncio

    from tryouts.providers.hf import HFProvider
    from tryouts.types import ModelSpec

    code, _, err = cli(
        capsys,
        "eval-task",
        "classification",
        "--data",
        EX + "/classification.csv",
        "--db",
        db,
        "-m",
        f"hf:{tiny['classification']}",
        "-o",
        "pipeline_kwargs=5",
        "--no-progress",
    )
    assert code == 1 and "pipeline_kwargs must be a mapping" in err
    spec = ModelSpec.parse(f"hf:{tiny['ner']}", {"task": "token-classification", "pipeline_kwargs": [1]})
    with pytest.raises(UsageError, match="pipeline_kwargs must be a mapping"):
        asyncio.run(HFProvider(spec).load())


def test_a_failing_model_scores_zero_and_exits_2(replay_server, tmp_path, db, capsys):
    data = write(tmp_path, "pn.csv", POS_NEG)
    code, out, _ = cli(
        capsys,
        "eval-task",
        "classification",
        "--data",
        data,
        "--db",
        db,
        "--format",
        "json",
        "--no-progress",
        "-m",
        replay(replay_server, "positive"),
        "-m",
        "hf:./no-such-model",
    )
    report = json.loads(out)
    ok, bad = report["models"]
    # failed requests are failures, not answers in the wrong form; they still score as wrong
    assert code == 2 and ok["failed"] == 0 and bad["failed"] == 10 and bad["invalid"] == 0
    assert "no-such-model" in bad["first_error"] and ok["first_error"] is None
    assert bad["intervals"]["accuracy"]["mean"] == 0.0
    assert bad["metrics"]["confusion"]["matrix"] == [[0, 0, 4], [0, 0, 6]]
    assert report["comparisons"][0]["diff"] == pytest.approx(-0.6)
    _, out, _ = cli(capsys, "show", report["run_id"], "--db", db, "--format", "json")
    assert json.loads(out)["run"]["status"] == "partial"
    _, out, _ = cli(capsys, "show", report["run_id"], "--db", db)  # the table says why
    assert "10 request(s) failed (scored as wrong); first:" in " ".join(out.split())


def test_task_file_runs_as_documented_and_reports_bad_fields(tiny, db, capsys, monkeypatch, tmp_path):
    """docs/tasks.md "A task file": examples/tasks/embeddings-sts.yaml with the tiny model and all-MiniLM."""
    from tryouts.tasks.tiny import minilm_path

    monkeypatch.setenv("TINY_EMBEDDINGS", tiny["embeddings"])
    monkeypatch.setenv("MINILM", str(minilm_path()))
    report = run_json(capsys, "eval-task", EX + "/embeddings-sts.yaml", "--db", db)
    rand, real = report["models"]
    assert report["mode"] == "sts" and len(report["models"]) == 2
    assert report["comparisons"][0]["diff"] > 0
    assert real["intervals"]["spearman"]["mean"] > rand["intervals"]["spearman"]["mean"]
    # a flag given on the command line wins over the file (and over its defaults)
    small = run_json(capsys, "eval-task", EX + "/embeddings-sts.yaml", "--db", db, "--limit", "5")
    assert small["n_cases"] == 5 and report["n_cases"] > 5
    # the first five pairs all have gold 5: no correlation is defined, and none is made up
    assert small["models"][0]["intervals"]["spearman"]["mean"] is None and small["comparisons"][0]["diff"] is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: embeddings\ndata: sts.csv\nmodels: []\n")
    code, _, err = cli(capsys, "eval-task", str(bad), "--db", db)
    assert code == 1 and "models" in err and "docs/tasks.md" in err
    bad.write_text("task: embeddings\ndata: sts.csv\nmodels: [hf:x]\nrepeat: 2\n")
    code, _, err = cli(capsys, "eval-task", str(bad), "--db", db)
    assert code == 1 and "repeat" in err


def test_a_task_model_in_compare_is_refused_with_what_to_run_instead(tiny, db, capsys):
    """A classifier or a seq2seq model cannot answer a chat prompt: compare says so and points to eval-task."""
    code, out, _ = cli(capsys, "compare", "I loved it", "--db", db, "--no-live", "--format", "json",
                       "-m", f"hf:{tiny['classification']}", "-m", f"hf:{tiny['seq2seq']}")
    assert code == 2
    clf, s2s = sorted(json.loads(out)["results"], key=lambda r: r["model_index"])
    assert "BertForSequenceClassification is not a text generator" in clf["error"]
    assert "tryouts eval-task classification|ner|embeddings --data FILE" in clf["error"]
    assert "T5ForConditionalGeneration is a sequence-to-sequence model" in s2s["error"]
    assert "tryouts eval-task translation|summarization" in s2s["error"]
    code, out, _ = cli(capsys, "recommend", "--task", "classification", "--fine-tune", "--format", "json", "--db", db)
    assert code == 0 and any(a.startswith("Check the short list on your own labeled data: tryouts eval-task "
                                          "classification --data FILE -m ") for a in json.loads(out)["advice"])
