"""Status + message -> error class, shared by every wire format.

Engines disagree on error bodies but agree well enough on statuses and wording; this is
the one place that turns what they say into our hierarchy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelport.errors import (
    AuthError,
    BackendError,
    ContextWindowExceeded,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    RateLimited,
    TimedOut,
)

_CONTEXT_WORDS = (
    "context length",
    "context_length",
    "context window",
    "exceed_context_size",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "exceeds the available context",
)
_NOT_FOUND_WORDS = (
    "not found",
    "not_found",
    "does not exist",
    "model_not_found",
    "no models loaded",
    "not a valid model",  # OpenRouter's 400 for an unknown model id
)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header; HTTP dates are rare from engines and read as None."""
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify(
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | int | None = None,
    backend_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    raw: str | bytes | None = None,
) -> BackendError:
    """Pick the error class from the status first, then from the engine's words."""
    words = " ".join(str(x) for x in (message, type, code) if x is not None).lower()
    kw: dict[str, Any] = {"backend_id": backend_id, "raw": raw}
    if status in (401, 402, 403) or "authentication" in words or "invalid api key" in words:
        return AuthError(message, status=status if status in (401, 402, 403) else 401, **kw)
    if status == 429 or "rate_limit" in words:
        return RateLimited(message, retry_after=retry_after(headers), **kw)
    if status in (503, 529) or "overloaded" in words or "loading model" in words:
        return Overloaded(message, retry_after=retry_after(headers), **kw)
    if status in (408, 504) or "timeout" in (type or "").lower():
        return TimedOut(message, **kw)
    if any(w in words for w in _CONTEXT_WORDS):
        return ContextWindowExceeded(message, **kw)
    # A 404 from a chat route names a model; a 400 only when it says the model is missing
    # (LM Studio's "No models loaded"), not when a tool or file is.
    not_found = any(w in words for w in _NOT_FOUND_WORDS)
    if "model" in words and (status == 404 or (status == 400 and not_found)):
        return ModelNotFound(message, status=404, **kw)
    if status == 404:
        return BackendError(message, status=404, **kw)
    if status == 413:
        return InvalidRequest(message, status=413, **kw)
    if 400 <= status < 500:
        return InvalidRequest(message, status=status if status != 422 else 400, **kw)
    return BackendError(message, status=502, retryable=status >= 500, **kw)
