"""OpenAI codec, errors: engine error bodies in, our errors out."""

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
    UpstreamAuthError,
)
from modelport.wire import openai

# ---------------------------------------------------------------------------
# Errors in


def decode(status: int, body: Any, headers: dict[str, str] | None = None) -> BackendError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return openai.decode_error(status, raw, backend_id="b", headers=headers)


@pytest.mark.parametrize(
    ("status", "body", "cls", "out_status", "message"),
    [
        (
            401,
            {"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}},
            AuthError,
            401,
            "Invalid API Key",
        ),
        (
            404,
            {
                "error": {
                    "message": "The model `x` does not exist.",
                    "type": "NotFoundError",
                    "param": None,
                    "code": 404,
                }
            },
            ModelNotFound,
            404,
            "The model `x` does not exist.",
        ),
        (
            404,
            {
                "error": {
                    "message": "model 'x' not found",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
            ModelNotFound,
            404,
            "model 'x' not found",
        ),
        (
            400,
            {
                "error": {
                    "message": "No models loaded. Please load a model first.",
                    "type": "invalid_request_error",
                }
            },
            ModelNotFound,
            404,
            "No models loaded. Please load a model first.",
        ),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "the request exceeds the available context size, try increasing it",
                    "type": "exceed_context_size_error",
                }
            },
            ContextWindowExceeded,
            400,
            "the request exceeds the available context size, try increasing it",
        ),
        (
            400,
            {
                "object": "error",
                "message": "This model's maximum context length is 4096 tokens.",
                "type": "BadRequestError",
                "code": 400,
            },
            ContextWindowExceeded,
            400,
            "This model's maximum context length is 4096 tokens.",
        ),
        (
            503,
            {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
            Overloaded,
            503,
            "Loading model",
        ),
        (
            400,
            {"error": "Invalid request: temperature out of range"},
            InvalidRequest,
            400,
            "Invalid request: temperature out of range",
        ),
        (401, {"error": "Authentication failed"}, AuthError, 401, "Authentication failed"),
        (
            402,
            {"error": {"code": 402, "message": "Insufficient credits", "metadata": {}}},
            AuthError,
            402,
            "Insufficient credits",
        ),
        (
            529,
            {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
                "request_id": "r",
            },
            Overloaded,
            503,
            "Overloaded",
        ),
        (500, b"Internal Server Error", BackendError, 502, "Internal Server Error"),
        (502, b"", BackendError, 502, "HTTP 502"),
        (504, b"<html>gateway timeout</html>", TimedOut, 504, "<html>gateway timeout</html>"),
    ],
)
def test_decode_error_shapes(
    status: int, body: Any, cls: type[BackendError], out_status: int, message: str
):
    err = decode(status, body)
    assert type(err) is cls
    assert err.status == out_status
    assert err.message == message
    assert err.backend_id == "b"
    assert err.raw is not None or body == b""


def test_decode_error_rate_limit_retry_after():
    err = decode(
        429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, {"Retry-After": "7"}
    )
    assert isinstance(err, RateLimited)
    assert err.retry_after == 7.0
    assert err.retryable is True


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_a_retry_after_that_is_no_number_of_seconds_is_none(value: str) -> None:
    """The candidate loop holds a model off for the wait: `inf` would hold it for good."""
    err = decode(429, {"error": {"message": "slow down"}}, {"Retry-After": value})
    assert isinstance(err, RateLimited) and err.retry_after is None


def test_an_upstream_credential_failure_is_a_502_not_invalid_api_key() -> None:
    err = UpstreamAuthError("up", 401)
    assert openai.error_status(err) == 502
    body = json.loads(openai.encode_error(err))["error"]
    assert (body["type"], body["code"]) == ("server_error", "upstream_auth_failed")
    assert body["message"].startswith("backend 'up' rejected the gateway's credential")


def test_decode_error_keeps_param():
    body = {
        "error": {
            "message": "bad",
            "type": "invalid_request_error",
            "param": "messages[0]",
            "code": None,
        }
    }
    err = decode(400, body)
    assert isinstance(err, InvalidRequest) and err.param == "messages[0]"


def test_decode_error_cuts_raw_body():
    err = decode(500, b"x" * 10_000)
    assert err.raw is not None and len(err.raw) == 4096


# ---------------------------------------------------------------------------
# Errors out


@pytest.mark.parametrize(
    ("err", "kind", "code"),
    [
        (InvalidRequest("bad", param="messages"), "invalid_request_error", None),
        (AuthError("no key"), "authentication_error", "invalid_api_key"),
        (AuthError("pay up", status=402), "authentication_error", "insufficient_quota"),
        (ModelNotFound("no model"), "invalid_request_error", "model_not_found"),
        (RateLimited("slow"), "rate_limit_error", "rate_limit_exceeded"),
        (ContextWindowExceeded("long"), "invalid_request_error", "context_length_exceeded"),
        (Overloaded("busy"), "server_error", "service_unavailable"),
        (TimedOut("late"), "server_error", "timeout"),
        (Unreachable("down"), "server_error", "backend_unreachable"),
        (ProtocolError("garbled"), "server_error", "bad_upstream_response"),
        (Cancelled("gone"), "server_error", "cancelled"),
        (Unsupported("no vision"), "invalid_request_error", "unsupported"),
        (BackendError("odd"), "server_error", None),
    ],
)
def test_encode_error_types(err: BackendError, kind: str, code: str | None):
    body = json.loads(openai.encode_error(err))
    param = "messages" if isinstance(err, InvalidRequest) else None
    assert body == {"error": {"message": err.message, "type": kind, "param": param, "code": code}}


def test_encode_error_hides_keys_and_internals():
    err = AuthError(
        "Incorrect API key provided: sk-proj-abcdefghijklmnop1234. Bearer abc.def",
        backend_id="openai:https://internal.example",
        raw=b"Traceback (most recent call last): secret",
    )
    body = openai.encode_error(err).decode()
    assert "sk-proj" not in body and "abc.def" not in body
    assert "internal.example" not in body and "Traceback" not in body
    assert (
        json.loads(body)["error"]["message"] == "Incorrect API key provided: [redacted]. [redacted]"
    )


def test_error_round_trip_keeps_the_class():
    for err in (RateLimited("r"), ModelNotFound("model m not found"), AuthError("k")):
        again = openai.decode_error(err.status, openai.encode_error(err))
        assert type(again) is type(err)
