"""Errors raised by Tryouts.

Every error a user can see derives from :class:`TryoutsError`, and every message says what to do next.

::

    TryoutsError
    ├── UsageError              bad input from the user (a malformed model reference, a bad option)
    │   ├── UnknownProviderError    a model reference names a provider Tryouts does not know
    │   └── NotInCatalogError   a name that is not in the model catalog (with the closest names)
    ├── MissingExtraError       an optional dependency group is not installed
    ├── StoppedError            the user stopped the work
    ├── StoreError              the results database cannot be opened or a run is not found
    └── ProviderError           a model call failed (provider, model and url as attributes)
        ├── PermanentError      trying again will not help: fix something first
        │   ├── MissingKeyError     the API key's environment variable is not set
        │   ├── AuthError           the provider refused the key (401/403)
        │   ├── ModelNotFoundError  the provider or the local path does not have this model
        │   ├── BadRequestError     the provider refused the request (400/402/422...)
        │   └── BadResponseError    the server sent a value no model produces (a negative or absurd token count)
        └── TransientError      it may work if tried again: the engine retries these
            ├── RateLimitError      429; carries ``retry_after`` seconds when the provider sent it
            ├── ServerError         5xx or an overloaded provider
            ├── ConnectError        the endpoint cannot be reached (nothing listening, DNS, TLS)
            ├── RequestTimeoutError no answer in time (``TimeoutError_`` is its old name)
            └── StreamCutError      the stream ended before the model finished; partial text is kept
                └── AbortedStreamError  the stream ended with no content and no finish reason

The two categories follow httpx's grouping of its own exceptions: what a retry may cure (transport
failures, timeouts, 429 and 5xx) and what it cannot. ``providers/status.py`` maps an HTTP status to one of
these once, for every HTTP provider.

``ProviderError.retryable`` (True for a :class:`TransientError`) tells the engine whether a retry may help.

Every message is redacted when the error is made (:func:`tryouts.redact.redact`): a key the server echoed
in its error body, a credential in a URL, never reach a result, the store, an export or the screen.
``ProviderError.partial_text`` is model output and is kept as streamed.
"""

from __future__ import annotations

from .redact import redact


class TryoutsError(Exception):
    """Base class of every error Tryouts raises on purpose."""

    #: short machine-readable kind, stored with failed results
    kind: str = "error"

    def __init__(self, message: str) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(TryoutsError):
    """Raised for bad input: a malformed model reference, option or argument."""

    kind = "usage"


class UnknownProviderError(UsageError):
    """Raised when a model reference names a provider that is not registered."""

    kind = "unknown_provider"


class MissingExtraError(TryoutsError):
    """Raised when a provider needs an optional dependency group that is not installed."""

    kind = "missing_extra"

    def __init__(self, what: str, extra: str, package: str | None = None) -> None:
        pkg = f" (package {package})" if package else ""
        super().__init__(
            f"{what} needs the '{extra}' extra{pkg}, which is not installed. "
            f"Install it with: pip install 'tryouts[{extra}]'"
        )
        self.extra = extra


class StoppedError(TryoutsError):
    """The user stopped the work (the dashboard's stop button); what was produced so far is kept."""

    kind = "stopped"


class StoreError(TryoutsError):
    """Raised when the results database cannot be used, or a run id matches no run."""

    kind = "store"


class NotInCatalogError(UsageError):
    """A name that is in the model catalog neither as a name nor as an alias; the message suggests the closest."""

    kind = "not_in_catalog"


class ProviderError(TryoutsError):
    """A model call failed. ``partial_text`` keeps whatever streamed before the failure.

    ``provider``, ``model`` and ``url`` say which call failed (the engine fills them in where the provider
    did not); ``status`` is the HTTP status when there was one.
    """

    kind = "provider"
    retryable = False

    def __init__(
        self, message: str, *, status: int | None = None, partial_text: str = "",
        provider: str | None = None, model: str | None = None, url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.partial_text = partial_text
        self.provider, self.model, self.url = provider, model, url

    def about(self, provider: str | None, model: str | None, url: str | None) -> ProviderError:
        """Fill in the call's provider, model and url where unset; returns self."""
        self.provider = self.provider or provider
        self.model = self.model or model
        self.url = self.url or (redact(url) if url else None)
        return self


class PermanentError(ProviderError):
    """Trying again will not help: the key, the model name, the request or the server's answer is wrong."""

    retryable = False


class TransientError(ProviderError):
    """It may work if tried again (the engine does, with backoff): the server is busy, slow or unreachable."""

    retryable = True


class MissingKeyError(PermanentError):
    """Raised before any request when the API key's environment variable is unset."""

    kind = "missing_key"

    def __init__(self, env_var: str, provider: str) -> None:
        super().__init__(
            f"{env_var} is not set: export {env_var}=<your {provider} key> and run again "
            f"(the other models are not affected)."
        )
        self.env_var = env_var


class AuthError(PermanentError):
    kind = "auth"


class ModelNotFoundError(PermanentError):
    kind = "model_not_found"


class BadRequestError(PermanentError):
    kind = "bad_request"


class RateLimitError(TransientError):
    kind = "rate_limit"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(TransientError):
    kind = "server"


class ConnectError(TransientError):
    kind = "connect"


class RequestTimeoutError(TransientError):
    """No answer (or no end of the answer) in time; what streamed so far is kept."""

    kind = "timeout"


#: the old name of :class:`RequestTimeoutError` (it shadowed nothing, but read like a typo)
TimeoutError_ = RequestTimeoutError


class StreamCutError(TransientError):
    kind = "stream_cut"


class AbortedStreamError(StreamCutError):
    """The stream closed normally but carried no content and no finish reason: the server aborted the request
    (llama-cpp-python's server does this to a running request when another one arrives). Never a success."""

    kind = "aborted"


class BadResponseError(PermanentError):
    """The server reported a value no model can produce (a negative token count, one larger than any model
    writes in a request, a count that is not a number). The request fails; the run goes on."""

    kind = "bad_response"


def raised_at(exc: BaseException) -> str:
    """``tryouts/PATH.py:LINE`` of the innermost frame of Tryouts' own code that raised ``exc``, or ``?``: where
    to look, for a message that must not quote the exception's text (it may hold a stored value)."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "tryouts" in f.filename.replace("\\", "/")]
    if not frames:
        return "?"
    path = frames[-1].filename.replace("\\", "/")
    return f"{path[path.rfind('tryouts/'):]}:{frames[-1].lineno}"
