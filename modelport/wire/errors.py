"""Status + message -> error class, shared by every wire format.

Engines disagree on error bodies but agree well enough on statuses and wording; this is
the one place that turns what they say into our hierarchy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec

from modelport.errors import (
    AuthError,
    BackendError,
    ContextWindowExceeded,
    ImagesRefused,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    RateLimited,
    TimedOut,
    Unsupported,
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

# What engines say when a model cannot take an image; whatever the status (llama-server
# says it with a 500), it is the request's fault, not the engine's (docs/wire.md).
_IMAGE_REFUSAL_WORDS = (
    "image input is not supported",  # llama-server without --mmproj: 500 server_error
    "is not a multimodal model",  # vLLM: 400 BadRequestError
    "does not support images",  # LM Studio: "Model does not support images. ..."
    "missing data required for image input",  # Ollama
    "image_url is only supported by certain models",  # OpenAI
)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header; HTTP dates are rare from engines and read as None."""
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


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
    if any(w in words for w in _IMAGE_REFUSAL_WORDS):
        return ImagesRefused(message, status=400, **kw)
    if status == 501 or "not_supported_error" in words:
        # llama-server's "This server does not support embeddings. Start it with
        # `--embeddings`": the engine cannot do this, and retrying it will not help.
        return Unsupported(message, status=400, **kw)
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


# ---------------------------------------------------------------------------
# Error bodies: one parser for every shape engines send (see docs/wire.md), for every dialect.

# The HTTP status an error `type` word stands for, when it arrives without one (a stream
# error event, an error object under 200). Anthropic's and OpenAI's words, then
# llama-server's and vLLM's own.
TYPE_STATUS: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
    "exceed_context_size_error": 400,
    "server_error": 500,
    "not_supported_error": 501,
    "unavailable_error": 503,
    "BadRequestError": 400,
    "NotFoundError": 404,
    "InternalServerError": 500,
    "internal_error": 500,
}


_TEXT_LIMIT = 500  # characters of an error body that is not an error object


class ErrorFields(NamedTuple):
    """What an error body says, whatever its shape; None where it says nothing."""

    message: str | None
    type: str | None
    code: str | int | None
    param: str | None


def error_fields(body: Any) -> ErrorFields:
    """message, type, code, param from `{"error": {...}}`, `{"error": "..."}`, a bare
    object with `message` (llama-server, vLLM), FastAPI's `detail`, or plain text."""
    if not isinstance(body, dict):
        return ErrorFields(body if isinstance(body, str) and body else None, None, None, None)
    inner = body.get("error")
    if isinstance(inner, str):
        return ErrorFields(inner or None, None, None, None)
    source = inner if isinstance(inner, dict) else body
    message = source.get("message")
    if message is None:
        message = source.get("detail", body.get("detail"))  # FastAPI validation errors
    if message is not None and not isinstance(message, str):
        message = msgspec.json.encode(message).decode()
    kind, code, param = source.get("type"), source.get("code"), source.get("param")
    return ErrorFields(
        message or None,
        kind if isinstance(kind, str) and kind != "error" else None,
        code if isinstance(code, str | int) and not isinstance(code, bool) else None,
        param if isinstance(param, str) else None,
    )


def status_for(type: str | None, code: str | int | None) -> int:
    """An HTTP status for an error that came without one: its int code, else its type word."""
    if isinstance(code, int) and 400 <= code < 600:
        return code
    return TYPE_STATUS.get(type or "", 500)


def parse_error_body(body: bytes | str) -> Any:
    """The body as JSON when it is JSON, else its text; None when empty."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not text.strip():
        return None
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text.strip()


def classify_body(
    status: int,
    parsed: Any,
    raw: str | bytes,
    *,
    backend_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    fallback: str | None = None,
) -> BackendError:
    """A parsed error body as our error class. A status under 400 (an error inside a 2xx
    answer or a stream) is replaced by the one the body's code or type stands for."""
    fields = error_fields(parsed)
    if status < 400:
        status = status_for(fields.type, fields.code)
    err = classify(
        status,
        fields.message or fallback or f"HTTP {status}",
        type=fields.type,
        code=fields.code,
        backend_id=backend_id,
        headers=headers,
        raw=raw,
    )
    if isinstance(err, InvalidRequest) and fields.param:
        err.param = fields.param
    return err


def decode_error_body(
    status: int,
    body: bytes | str,
    *,
    backend_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> BackendError:
    """An engine's non-2xx answer, any shape, JSON or not, as our error class."""
    parsed = parse_error_body(body)
    fallback = None
    if isinstance(parsed, str):
        parsed = parsed[:_TEXT_LIMIT]  # plain text, e.g. a proxy's HTML page: its start says enough
    elif parsed is not None:  # a JSON body that names no message: say it whole
        raw_text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        fallback = raw_text.strip()[:_TEXT_LIMIT]
    return classify_body(
        status, parsed, body, backend_id=backend_id, headers=headers, fallback=fallback
    )


def error_from_payload(
    payload: Any,
    raw: str | bytes,
    *,
    backend_id: str | None = None,
) -> BackendError:
    """An error that came without an HTTP status: a stream's error event or line, or an
    error object in a 2xx answer; `payload` is the whole object (or its text)."""
    return classify_body(200, payload, raw, backend_id=backend_id, fallback="stream error")
