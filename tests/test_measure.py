import pytest

from tryouts.measure import compute_timing
from tryouts.types import Delta

MS = 1_000_000


def deltas(*items):
    return [Delta(t * MS, text, ch) for t, text, ch in items]


def test_definitions_on_a_known_stream():
    t0 = 1000 * MS
    ds = deltas((1100, "a", "text"), (1120, "b", "text"), (1150, "c", "text"))
    t = compute_timing(t0, ds, n_out=3, queue_ms=5.0, load_ms=700.0)
    assert t.ttft_ms == pytest.approx(100)
    assert t.ttfat_ms == pytest.approx(100)
    assert t.e2e_ms == pytest.approx(150)
    assert t.tpot_ms == pytest.approx(25)  # (150 - 100) / (3 - 1)
    assert t.output_tokens_per_s == pytest.approx(40)  # 2 tokens in 50 ms
    assert t.itl_ms == pytest.approx([20, 30])
    assert t.n_chunks == 3
    assert (t.queue_ms, t.load_ms) == (5.0, 700.0)


def test_tokens_not_chunks_drive_tpot():
    # 2 chunks carrying 11 tokens: TPOT divides by N_out - 1, not by chunks
    t = compute_timing(0, deltas((10, "x" * 5, "text"), (110, "y" * 6, "text")), n_out=11)
    assert t.tpot_ms == pytest.approx(10)
    assert t.n_chunks == 2


def test_empty_deltas_are_not_content():
    t = compute_timing(0, deltas((1, "", "text"), (50, "hi", "text")), n_out=1)
    assert t.ttft_ms == pytest.approx(50)
    assert t.tpot_ms is None and t.output_tokens_per_s is None  # one token: no decode phase


def test_reasoning_counts_for_ttft_but_not_ttfat():
    t = compute_timing(0, deltas((40, "think", "reasoning"), (90, "answer", "text")), n_out=4)
    assert t.ttft_ms == pytest.approx(40)
    assert t.ttfat_ms == pytest.approx(90)


def test_no_content_or_no_t0_gives_no_timing():
    assert compute_timing(None, deltas((5, "a", "text")), 1).ttft_ms is None
    t = compute_timing(0, [], None)
    assert t.ttft_ms is None and t.e2e_ms is None and t.n_chunks == 0


def test_finish_reasons_share_one_vocabulary():
    from tryouts.engine.execute import normalize_finish

    assert [normalize_finish(r) for r in ("STOP", "end_turn", "COMPLETE", "stop_sequence")] == ["stop"] * 4
    assert [normalize_finish(r) for r in ("MAX_TOKENS", "max_tokens", "length")] == ["length"] * 3
    assert normalize_finish("tool_use") == "tool_calls" and normalize_finish("SAFETY") == "content_filter"
    assert normalize_finish("Something_New") == "something_new" and normalize_finish(None) is None
