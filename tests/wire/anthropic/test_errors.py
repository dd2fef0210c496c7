"""Anthropic codec, errors: engine error bodies in, our errors out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.errors import (
    AuthError,
    BackendError,
    Cancelled,
    ContextWindowExceeded,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    RateLimited,
    TimedOut,
    Unreachable,
    Unsupported,
)
from modelport.wire import anthropic

# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("status", "body", "cls", "out_status"),
    [
        (
            400,
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "max_tokens: bad"},
            },
            InvalidRequest,
            400,
        ),
        (
            400,
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "prompt is too long: 9 > 8"},
            },
            ContextWindowExceeded,
            400,
        ),
        (
            401,
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            },
            AuthError,
            401,
        ),
        (
            403,
            {"type": "error", "error": {"type": "permission_error", "message": "no access"}},
            AuthError,
            403,
        ),
        (
            404,
            {
                "type": "error",
                "error": {"type": "not_found_error", "message": "model: claude-nope"},
            },
            ModelNotFound,
            404,
        ),
        (
            413,
            {
                "type": "error",
                "error": {
                    "type": "request_too_large",
                    "message": "Request exceeds the maximum size",
                },
            },
            InvalidRequest,
            413,
        ),
        (
            429,
            {
                "type": "error",
                "error": {"type": "rate_limit_error", "message": "Number of requests exceeded"},
            },
            RateLimited,
            429,
        ),
        (
            500,
            {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}},
            BackendError,
            502,
        ),
        (
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            Overloaded,
            503,
        ),
        (
            404,
            {
                "type": "error",
                "error": {"type": "NotFoundError", "message": "The model `x` does not exist."},
            },
            ModelNotFound,
            404,
        ),
        (
            503,
            {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
            Overloaded,
            503,
        ),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "request exceeds the available context size",
                    "type": "exceed_context_size_error",
                }
            },
            ContextWindowExceeded,
            400,
        ),
        (
            400,
            {"code": 400, "message": "bad field", "type": "invalid_request_error"},
            InvalidRequest,
            400,
        ),
        (
            400,
            {"object": "error", "message": "bad", "type": "BadRequestError", "code": 400},
            InvalidRequest,
            400,
        ),
        (
            401,
            {
                "error": {
                    "message": "Incorrect API key",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            AuthError,
            401,
        ),
        (402, {"error": "Insufficient balance"}, AuthError, 402),
    ],
)
def test_decode_error_bodies(
    status: int, body: dict[str, Any], cls: type[BackendError], out_status: int
) -> None:
    raw = json.dumps(body).encode()
    err = anthropic.decode_error(status, raw, backend_id="b1")
    assert type(err) is cls
    assert err.status == out_status
    assert err.backend_id == "b1"
    assert err.raw == raw.decode()


def test_a_404_about_no_model_is_not_model_not_found() -> None:
    body = b'{"type":"error","error":{"type":"not_found_error","message":"Not Found"}}'
    err = anthropic.decode_error(404, body)
    assert (type(err), err.status) == (BackendError, 404)


def test_error_messages_come_from_the_body() -> None:
    err = anthropic.decode_error(
        404, b'{"type":"error","error":{"type":"not_found_error","message":"model: x"}}'
    )
    assert err.message == "model: x"
    assert anthropic.decode_error(400, b'{"error": "plain words"}').message == "plain words"


def test_retry_after_header() -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}'
    err = anthropic.decode_error(429, body, headers={"retry-after": "7"})
    assert isinstance(err, RateLimited)
    assert err.retry_after == 7.0


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (502, b"<html>Bad Gateway</html>", BackendError, "<html>Bad Gateway</html>"),
        (503, b"", Overloaded, "HTTP 503"),
        (
            422,
            b'{"detail": [{"loc": ["body"], "msg": "field required"}]}',
            InvalidRequest,
            '[{"loc":["body"],"msg":"field required"}]',
        ),
    ],
)
def test_odd_error_bodies(status: int, body: bytes, cls: type[BackendError], message: str) -> None:
    err = anthropic.decode_error(status, body)
    assert type(err) is cls
    assert err.message == message


@pytest.mark.parametrize(
    ("err", "kind", "status"),
    [
        (InvalidRequest("bad"), "invalid_request_error", 400),
        (InvalidRequest("huge", status=413), "request_too_large", 413),
        (ContextWindowExceeded("long"), "invalid_request_error", 400),
        (Unsupported("no"), "invalid_request_error", 400),
        (AuthError("who"), "authentication_error", 401),
        (AuthError("forbidden", status=403), "permission_error", 403),
        (AuthError("pay", status=402), "billing_error", 402),
        (ModelNotFound("gone"), "not_found_error", 404),
        (RateLimited("slow"), "rate_limit_error", 429),
        (Overloaded("busy"), "overloaded_error", 529),
        (TimedOut("late"), "timeout_error", 504),
        (Unreachable("down"), "api_error", 502),
        (ProtocolError("garbled"), "api_error", 502),
        (Cancelled("bye"), "api_error", 499),
        (BackendError("odd"), "api_error", 502),
    ],
)
def test_encode_error(err: BackendError, kind: str, status: int) -> None:
    assert json.loads(anthropic.encode_error(err)) == {
        "type": "error",
        "error": {"type": kind, "message": err.message},
    }
    assert anthropic.http_status(err) == status


@pytest.mark.parametrize(
    "err",
    [
        InvalidRequest("bad"),
        AuthError("who"),
        AuthError("forbidden", status=403),
        ModelNotFound("model gone"),
        RateLimited("slow"),
        Overloaded("busy"),
        InvalidRequest("huge", status=413),
    ],
)
def test_errors_survive_their_own_wire(err: BackendError) -> None:
    back = anthropic.decode_error(anthropic.http_status(err), anthropic.encode_error(err))
    assert type(back) is type(err)
    assert back.status == err.status
    assert back.message == err.message


def test_upstream_raw_body_never_goes_out() -> None:
    err = anthropic.decode_error(
        401, b'{"error": {"message": "bad key sk-secret-123"}, "key": "sk-secret-123"}'
    )
    err.message = "authentication failed"
    assert b"sk-secret" not in anthropic.encode_error(err)
