"""Anthropic error bodies: an engine's error in, a client's error body out.

Parsing is shared by every dialect (modelport.wire.errors); what is Anthropic's own is the
body we write (`{"type": "error", "error": {"type", "message"}}`) and the statuses its
clients expect (overloaded is 529 there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from modelport.errors import (
    AuthError,
    BackendError,
    ContextWindowExceeded,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    RateLimited,
    TimedOut,
    Unsupported,
    UpstreamAuthError,
)
from modelport.scrub import public_message
from modelport.wire.errors import decode_error_body, error_from_payload

_json_encode = msgspec.json.Encoder().encode

# The error type word we write for a status no error class names more precisely.
_STATUS_TYPE: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# Every dialect reads engine error bodies with the one shared parser.
decode_error = decode_error_body


def decode_stream_error(data: str, *, backend_id: str | None = None) -> BackendError:
    """The payload of an `error` event (official or llama-server's bare shape), classified by
    its type word, since a stream error has no HTTP status of its own."""
    try:
        obj: Any = msgspec.json.decode(data)
    except msgspec.DecodeError:
        obj = data
    return error_from_payload(obj, data, backend_id=backend_id)


def http_status(err: BackendError) -> int:
    """The status an Anthropic client expects: overloaded is 529 there, not 503."""
    return 529 if isinstance(err, Overloaded) else err.status


def _error_type(err: BackendError) -> str:
    if isinstance(err, InvalidRequest) and err.status == 413:
        return "request_too_large"
    if isinstance(err, InvalidRequest | ContextWindowExceeded | Unsupported):
        return "invalid_request_error"
    if isinstance(err, AuthError):
        return _STATUS_TYPE.get(err.status, "authentication_error")
    if isinstance(err, ModelNotFound):
        return "not_found_error"
    if isinstance(err, RateLimited):
        return "rate_limit_error"
    if isinstance(err, Overloaded):
        return "overloaded_error"
    if isinstance(err, TimedOut):
        return "timeout_error"
    if isinstance(err, UpstreamAuthError):  # 502: the gateway's key to an engine, not the client's
        return "api_error"
    return _STATUS_TYPE.get(err.status, "api_error")


def encode_error(err: BackendError) -> bytes:
    """The official error body. Only our message goes out, never the upstream raw body."""
    return _json_encode(
        {
            "type": "error",
            "error": {"type": _error_type(err), "message": public_message(err.message)},
        }
    )
