"""OpenAI error bodies: an engine's error in, a client's error body out.

Parsing is shared by every dialect (modelport.wire.errors); what is OpenAI's own is the
body we write: message, type, param, code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from modelport.errors import (
    AuthError,
    BackendError,
    Cancelled,
    ContextWindowExceeded,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    QueueFull,
    RateLimited,
    TimedOut,
    Unreachable,
    Unsupported,
    UpstreamAuthError,
)
from modelport.scrub import public_message
from modelport.wire.errors import decode_error_body, error_from_payload

_encode = msgspec.json.Encoder().encode


# Every dialect reads engine error bodies with the one shared parser.
decode_error = decode_error_body


def payload_error(payload: Any, raw: str | bytes) -> BackendError:
    """The `error` member of a stream chunk or of a 200 response, classified."""
    return error_from_payload({"error": payload}, raw)


# type, code by class; the first match in this order wins (subclasses first).
_ERROR_SHAPES: tuple[tuple[type[BackendError], str, str | None], ...] = (
    (ContextWindowExceeded, "invalid_request_error", "context_length_exceeded"),
    (ModelNotFound, "invalid_request_error", "model_not_found"),
    (InvalidRequest, "invalid_request_error", None),
    (Unsupported, "invalid_request_error", "unsupported"),
    (QueueFull, "rate_limit_error", "rate_limit_exceeded"),  # ours, before Overloaded
    (RateLimited, "rate_limit_error", "rate_limit_exceeded"),
    (Overloaded, "server_error", "service_unavailable"),
    (TimedOut, "server_error", "timeout"),
    (Unreachable, "server_error", "backend_unreachable"),
    (ProtocolError, "server_error", "bad_upstream_response"),
    (Cancelled, "server_error", "cancelled"),
    # An engine refused the gateway's own key: a 502 the client cannot fix, not the
    # client's invalid_api_key (docs/service.md, "Whose key failed").
    (UpstreamAuthError, "server_error", "upstream_auth_failed"),
)
_AUTH_CODES: Mapping[int, str] = {
    401: "invalid_api_key",
    402: "insufficient_quota",
    403: "permission_denied",
}


def error_type_code(err: BackendError) -> tuple[str, str | None]:
    if isinstance(err, AuthError):
        return "authentication_error", _AUTH_CODES.get(err.status, "invalid_api_key")
    for cls, kind, code in _ERROR_SHAPES:
        if isinstance(err, cls):
            return kind, code
    # No class of its own (an unknown route, a bare status): the status says whose fault.
    return ("invalid_request_error" if 400 <= err.status < 500 else "server_error"), None


def encode_error(err: BackendError) -> bytes:
    """The OpenAI error body for `err`: message, type, param, code; nothing internal."""
    kind, code = error_type_code(err)
    param = err.param if isinstance(err, InvalidRequest | Unsupported) else None
    body = {"message": public_message(err.message), "type": kind, "param": param, "code": code}
    return _encode({"error": body})


def error_status(err: BackendError) -> int:
    """OpenAI clients read the error's own status (a full admission queue is 429)."""
    return err.status
