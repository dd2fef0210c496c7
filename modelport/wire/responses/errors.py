"""Responses errors: the OpenAI error body and statuses, and the code a stream's `error`
event and `response.failed` carry."""

from __future__ import annotations

from modelport.errors import BackendError, InvalidRequest, RateLimited
from modelport.wire.openai.errors import encode_error, error_status, error_type_code

__all__ = ["encode_error", "error_code", "error_status", "failed_code"]


def error_code(err: BackendError) -> str | None:
    """The `code` of a stream error: OpenAI's code word, else its error type."""
    kind, code = error_type_code(err)
    if code is None and isinstance(err, InvalidRequest):
        return "invalid_request_error"
    return code or kind


def failed_code(err: BackendError) -> str:
    """The `response.error.code` of `response.failed`: the SDK types allow a fixed list of
    words, of which these three say what a gateway's failures are."""
    if isinstance(err, RateLimited):
        return "rate_limit_exceeded"
    if isinstance(err, InvalidRequest):
        return "invalid_prompt"
    return "server_error"
