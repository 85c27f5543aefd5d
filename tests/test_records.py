"""The read model (src/tryouts/records.py): stored runs and results read back as typed records, the contract
docs/json.md is generated from, and the dashboard's OpenAPI schemas."""

import asyncio
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from tryouts import errors
from tryouts.records import ErrorKind, ResultRecord, RunRecord
from tryouts.store import Store, schema
from tryouts.types import Cell, GenParams, Message, ModelSpec, Request

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def stored(replay_server, tmp_path):
    """A stored run: one model that answers, one that is refused."""
    from tryouts.engine.run import Policy, run_cells

    store = Store(tmp_path / "r.db")
    specs = [ModelSpec.parse(f"openai-compat:{replay_server}#{s}", {"warmup": False}) for s in ("tokens=3", "status=401")]
    req = Request(messages=[Message(role="user", content="hi")], params=GenParams(max_tokens=8))
    run_id = store.create_run("suite", [s.ref for s in specs], {})
    asyncio.run(run_cells([Cell(m, 0, 0, s, req) for m, s in enumerate(specs)], store=store, run_id=run_id,
                          policy=Policy(use_cache=False)))
    store.finish_run(run_id, "partial")
    return store, run_id


def test_results_read_back_as_typed_records(stored):
    store, run_id = stored
    ok, refused = store.records(run_id)
    assert isinstance(ok, ResultRecord) and ok.ok and ok.output_tokens == 3 and ok.ttft_ms is not None
    assert ok["ttft_ms"] == ok.ttft_ms  # reads like the flat JSON object too
    assert not refused.ok and refused.error_kind == "auth" and refused.cost_usd is None
    run = store.run_record(run_id)
    assert isinstance(run, RunRecord) and run.status == "partial" and run.kind == "suite"
    # the same objects; `review` is joined from the dashboard's reviews only by exports and the web API
    assert [r.model_dump(exclude={"review"}) for r in store.records(run_id)] == store.get_run(run_id)["results"]


def test_the_record_covers_every_stored_column():
    columns = {c.name for c in schema.results.columns} - {"run_id", "cost_total"}
    assert columns | {"cost_usd", "cost_usd_exact"} <= set(ResultRecord.model_fields)
    run_columns = {c.name for c in schema.runs.columns} - {"owner", "heartbeat_at", "status"}
    assert run_columns <= set(RunRecord.model_fields)


def test_every_error_kind_is_a_documented_kind():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    kinds = {c.kind for c in subclasses(errors.TryoutsError) if c.__module__ == "tryouts.errors"}
    assert kinds <= set(typing.get_args(ErrorKind))


def test_statuses_and_kinds_are_closed_sets():
    base = {"id": "r", "kind": "suite", "started_at": "t", "models": [], "request": {}, "meta": {},
            "tryouts_version": "0"}
    assert RunRecord.model_validate({**base, "status": "done"}).status == "done"
    with pytest.raises(ValidationError):
        RunRecord.model_validate({**base, "status": "finished"})
    with pytest.raises(ValidationError):
        RunRecord.model_validate({**base, "status": "done", "kind": "benchmark"})


def test_docs_json_md_is_generated_from_the_records():
    p = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_json.py"), "--check"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    text = (ROOT / "docs" / "json.md").read_text()
    for name in ResultRecord.model_fields:
        assert f"| `{name}` |" in text


def test_the_dashboard_api_publishes_the_records_in_its_openapi_schema(tmp_path):
    from tryouts.web import create_app

    spec = create_app(str(tmp_path / "w.db"), token="a-long-enough-token").openapi()
    components = spec["components"]["schemas"]
    assert {"ResultRecord", "RunRecord", "ResultsPage"} <= set(components)
    kinds = components["ResultRecord"]["properties"]["error_kind"]["anyOf"]
    assert any("auth" in (k.get("enum") or []) for k in kinds)
    runs = spec["paths"]["/api/runs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert runs["items"]["$ref"].endswith("/RunRecord")
    page = spec["paths"]["/api/runs/{run}/results"]["get"]["responses"]["200"]["content"]["application/json"]
    assert page["schema"]["$ref"].endswith("/ResultsPage")
