"""The error tree: two categories (transient, permanent), one HTTP status table for every HTTP provider,
and the failed call's provider, model and URL as attributes."""

import asyncio
import re
from pathlib import Path

import pytest

from tryouts import errors
from tryouts.engine.execute import attempt
from tryouts.providers import create_provider
from tryouts.providers.status import STATUS_KINDS, status_error, status_kind
from tryouts.types import GenParams, Message, ModelSpec, Request

SRC = Path(__file__).resolve().parents[1] / "src" / "tryouts"
REQ = Request(messages=[Message(role="user", content="hi")], params=GenParams(max_tokens=8))


def all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_subclasses(sub)


def test_every_provider_error_is_transient_or_permanent_and_retryable_follows():
    for cls in all_subclasses(errors.ProviderError):
        if cls in (errors.TransientError, errors.PermanentError):
            continue
        transient = issubclass(cls, errors.TransientError)
        assert transient != issubclass(cls, errors.PermanentError), cls
        assert cls.retryable is transient, cls
    assert errors.TimeoutError_ is errors.RequestTimeoutError  # the old name still works


@pytest.mark.parametrize(("status", "cls", "words"), [
    (401, errors.AuthError, "check OPENAI_API_KEY"),
    (403, errors.AuthError, "refused the key"),
    (402, errors.BadRequestError, "for billing"),
    (404, errors.ModelNotFoundError, "has no model 'm-1'"),
    (408, errors.RequestTimeoutError, "timed out"),
    (400, errors.BadRequestError, "refused the request"),
    (422, errors.BadRequestError, "refused the request"),
    (429, errors.RateLimitError, "Retry after 7 s"),
    (499, errors.ServerError, "try again later"),
    (500, errors.ServerError, "try again later"),
    (529, errors.ServerError, "try again later"),
])
def test_one_table_maps_a_status_to_an_error(status, cls, words):
    exc = status_error(status, where="X (http://h/v1)", what=f"HTTP {status}: no", model="m-1",
                       key_env="OPENAI_API_KEY", retry_after_s=7, url="http://h/v1", provider="openai")
    assert type(exc) is cls and words in str(exc) and exc.status == status
    assert (exc.provider, exc.model, exc.url) == ("openai", "m-1", "http://h/v1")
    assert exc.kind == {"billing": "bad_request"}.get(status_kind(status), status_kind(status))


def test_hints_by_status_win_over_hints_by_kind_and_a_kind_can_be_forced():
    hints = {503: "it is busy", "server": "read the log"}
    assert "it is busy" in str(status_error(503, where="W", what="w", model="m", hints=hints))
    assert "read the log" in str(status_error(500, where="W", what="w", model="m", hints=hints))
    forced = status_error(400, where="W", what="API_KEY_INVALID", model="m", key_env="K", kind="auth")
    assert isinstance(forced, errors.AuthError) and forced.status == 400
    assert set(STATUS_KINDS.values()) <= {"auth", "billing", "model_not_found", "timeout", "rate_limit", "server"}


def test_no_http_provider_keeps_a_status_ladder_of_its_own():
    """The six HTTP providers map statuses through providers/status.py, not each with its own if-chain."""
    for name in ("openai_compat", "anthropic", "cohere", "gemini", "ollama", "replicate"):
        text = (SRC / "providers" / f"{name}.py").read_text()
        assert "self.status_error(" in text, name
        assert not re.search(r"status (==|>=|in) \(?(401|429|500)\b", text), name


def test_a_failed_call_carries_its_provider_model_and_url(replay_server):
    spec = ModelSpec.parse(f"openai-compat:{replay_server}#status=404", {"warmup": False})
    provider = create_provider(spec)

    async def go():
        try:
            return await attempt(provider, REQ)
        finally:
            await provider.aclose()

    result, exc = asyncio.run(go())
    assert isinstance(exc, errors.ModelNotFoundError) and isinstance(exc, errors.PermanentError)
    assert (exc.provider, exc.model, exc.url) == ("openai-compat", "status=404", replay_server)  # the name sent
    assert result.error_kind == "model_not_found"


def test_a_408_is_transient_and_retried(replay_server, tmp_path):
    from tryouts.engine.run import Policy, run_cells
    from tryouts.store import Store
    from tryouts.types import Cell

    store = Store(tmp_path / "e.db")
    spec = ModelSpec.parse(f"openai-compat:{replay_server}#status=408", {"warmup": False})
    run_id = store.create_run("suite", [spec.ref], {})
    asyncio.run(run_cells([Cell(0, 0, 0, spec, REQ)], store=store, run_id=run_id,
                          policy=Policy(max_retries=1, backoff_s=0.01, use_cache=False)))
    (row,) = store.get_run(run_id)["results"]
    assert row["error_kind"] == "timeout" and row["attempts"] == 2


def test_a_catalog_miss_is_a_usage_error_not_a_provider_error():
    from tryouts.catalog import find_model

    with pytest.raises(errors.NotInCatalogError) as info:
        find_model("lama-3.1-70b")
    assert isinstance(info.value, errors.UsageError) and not isinstance(info.value, errors.ProviderError)
    assert "Did you mean" in str(info.value)
