"""Issue 11, points 3 and 8: deeply nested bodies and out-of-range values are a 400 in the
client's dialect before any engine sees them; the same mistake reads the same everywhere.

The engine is the llama-server fake (tests/fakes: it speaks chat completions, Messages,
count_tokens, completions and embeddings); the Ollama routes are transcoded to it. Every
case asserts that the fake recorded no POST: nothing invalid reached the engine.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from modelport.wire.validate import MAX_NESTING
from tests.gateway.helpers import HI, backend, post

MODEL = "m"
DEEP = 5_000

# Each route that takes a body: its smallest valid request, and the error shape it answers.
ROUTES: dict[str, tuple[dict[str, Any], str]] = {
    "/v1/chat/completions": ({"model": MODEL, "messages": HI}, "openai"),
    "/v1/responses": ({"model": MODEL, "input": "hi"}, "openai"),
    "/v1/messages": ({"model": MODEL, "max_tokens": 16, "messages": HI}, "anthropic"),
    "/v1/messages/count_tokens": ({"model": MODEL, "messages": HI}, "anthropic"),
    "/v1/embeddings": ({"model": MODEL, "input": "hi"}, "openai"),
    "/v1/completions": ({"model": MODEL, "prompt": "hi"}, "openai"),
    "/api/chat": ({"model": MODEL, "messages": HI, "stream": False}, "ollama"),
    "/api/generate": ({"model": MODEL, "prompt": "hi", "stream": False}, "ollama"),
    "/api/embed": ({"model": MODEL, "input": "hi"}, "ollama"),
    "/api/embeddings": ({"model": MODEL, "prompt": "hi"}, "ollama"),
    "/api/show": ({"model": MODEL}, "ollama"),
}


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def _deep_body(base: dict[str, Any], levels: int) -> bytes:
    """`base` plus a member nesting arrays so that the whole body nests `levels` deep."""
    head = json.dumps(base)[:-1]
    return f'{head}, "x_deep": {_nested(levels - 1)}}}'.encode()


def _error_message(shape: str, raw: bytes) -> str:
    """The error's message, after checking the body is the dialect's error shape."""
    payload = json.loads(raw)
    if shape == "openai":
        assert payload["error"]["type"] == "invalid_request_error", payload
        return str(payload["error"]["message"])
    if shape == "anthropic":
        assert payload["type"] == "error", payload
        assert payload["error"]["type"] == "invalid_request_error", payload
        return str(payload["error"]["message"])
    assert set(payload) == {"error"}, payload
    return str(payload["error"])


def _posts(fake: Any) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST"]


@pytest.fixture
async def served(fake_engine: Any, gateway: Any) -> tuple[Any, str]:
    fake = await fake_engine("llamacpp", models=[MODEL])
    _gw, url = await gateway(backends=[backend("llamacpp", fake)])
    return fake, url


# == 3. nesting ===============================================================================


@pytest.mark.parametrize("path", list(ROUTES))
async def test_5000_levels_of_nesting_are_a_400_on_every_body_route(
    served: tuple[Any, str], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = served
    base, shape = ROUTES[path]
    caplog.set_level(logging.DEBUG)
    status, headers, raw = await post(url, path, data=_deep_body(base, DEEP))
    assert status == 400, raw
    message = _error_message(shape, raw)
    assert f"more than {MAX_NESTING} levels deep" in message, message
    assert headers["x-request-id"]
    assert _posts(fake) == []
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert logged == [], [r.getMessage() for r in logged]
    assert "RecursionError" not in caplog.text


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/api/chat"])
async def test_the_limit_is_the_documented_one(served: tuple[Any, str], path: str) -> None:
    fake, url = served
    base, shape = ROUTES[path]
    status, _, raw = await post(url, path, data=_deep_body(base, MAX_NESTING + 1))
    assert status == 400, raw
    assert "levels deep" in _error_message(shape, raw)
    assert _posts(fake) == []


async def test_a_tool_schema_at_the_limit_is_served(served: tuple[Any, str]) -> None:
    """128 levels (far more than any real client: docs/captures/clients nest 16 at most)
    pass every walk the gateway makes: the decoders, the transcoding encoder, the relay."""
    fake, url = served
    schema: Any = {"type": "string"}
    for _ in range((MAX_NESTING - 6) // 2):  # body, tools, [0], function, parameters
        schema = {"type": "object", "properties": {"a": schema}}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    body = {"model": MODEL, "messages": HI, "tools": [tool]}
    status, _, raw = await post(url, "/v1/chat/completions", body)  # relayed
    assert status == 200, raw
    anthropic_tool = {"name": "f", "input_schema": schema}
    body = {"model": MODEL, "max_tokens": 16, "messages": HI, "tools": [anthropic_tool]}
    status, _, raw = await post(url, "/v1/messages", body)  # llama-server's own /v1/messages
    assert status == 200, raw
    status, _, raw = await post(url, "/api/chat", {**ROUTES["/api/chat"][0], "tools": [tool]})
    assert status == 200, raw  # transcoded to chat completions
    assert len(_posts(fake)) == 3


# == 8. values that reached the engine (the issue's list) ======================================

BIG = [10**12, 2**64]
OPENAI_CASES = [
    ("max_tokens", -1),
    ("max_tokens", 0),
    *[("max_tokens", n) for n in BIG],
    ("max_completion_tokens", 2**64),
    ("temperature", -1),
    ("temperature", 1e308),
    ("top_p", -0.5),
    ("top_p", 7),
    ("n", "x"),
    ("seed", "x"),
    ("user", 5),
    ("stream_options", "x"),
]
ANTHROPIC_CASES = [
    ("messages", []),
    ("top_k", -3),
    ("metadata", "x"),
    *[("max_tokens", n) for n in BIG],
    ("temperature", 1.5),
]


@pytest.mark.parametrize(("field", "value"), OPENAI_CASES)
async def test_openai_values_the_issue_lists_are_400(
    served: tuple[Any, str], field: str, value: Any
) -> None:
    fake, url = served
    body = {**ROUTES["/v1/chat/completions"][0], field: value}
    status, _, raw = await post(url, "/v1/chat/completions", body)
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == field, error
    assert error["message"].startswith(f"{field}: "), error
    assert _posts(fake) == []


@pytest.mark.parametrize(("field", "value"), ANTHROPIC_CASES)
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_anthropic_values_the_issue_lists_are_400(
    served: tuple[Any, str], path: str, field: str, value: Any
) -> None:
    fake, url = served
    body = {**ROUTES["/v1/messages"][0], field: value}
    status, _, raw = await post(url, path, body)
    assert status == 400, raw
    assert _error_message("anthropic", raw).startswith(f"{field}: "), raw
    assert _posts(fake) == []


# == 8. the same mistake, the same words, in every dialect =====================================

TOO_BIG = "must be at most 2147483647"
# (route, field as the route spells it, where it goes, bad value, the message)
SAME_MISTAKE = [
    # a temperature below zero
    ("/v1/chat/completions", "temperature", None, -1, "temperature: must be at least 0"),
    ("/v1/responses", "temperature", None, -1, "temperature: must be at least 0"),
    ("/v1/messages", "temperature", None, -1, "temperature: must be at least 0"),
    ("/v1/completions", "temperature", None, -1, "temperature: must be at least 0"),
    ("/api/chat", "temperature", "options", -1, "options.temperature: must be at least 0"),
    ("/api/generate", "temperature", "options", -1, "options.temperature: must be at least 0"),
    # a temperature above the client's API's range
    ("/v1/chat/completions", "temperature", None, 1e308, "temperature: must be at most 2"),
    ("/v1/responses", "temperature", None, 2.5, "temperature: must be at most 2"),
    ("/v1/messages", "temperature", None, 1.5, "temperature: must be at most 1"),
    ("/v1/completions", "temperature", None, 1e308, "temperature: must be at most 2"),
    # a probability above one
    ("/v1/chat/completions", "top_p", None, 7, "top_p: must be at most 1"),
    ("/v1/responses", "top_p", None, 7, "top_p: must be at most 1"),
    ("/v1/messages", "top_p", None, 7, "top_p: must be at most 1"),
    ("/v1/completions", "top_p", None, 7, "top_p: must be at most 1"),
    ("/api/chat", "top_p", "options", 7, "options.top_p: must be at most 1"),
    ("/api/generate", "top_p", "options", -0.5, "options.top_p: must be at least 0"),
    # more tokens than an engine holds
    ("/v1/chat/completions", "max_tokens", None, 2**64, f"max_tokens: {TOO_BIG}"),
    ("/v1/responses", "max_output_tokens", None, 2**64, f"max_output_tokens: {TOO_BIG}"),
    ("/v1/messages", "max_tokens", None, 10**12, f"max_tokens: {TOO_BIG}"),
    ("/v1/completions", "max_tokens", None, 10**12, f"max_tokens: {TOO_BIG}"),
    ("/api/chat", "num_predict", "options", 2**64, f"options.num_predict: {TOO_BIG}"),
    ("/api/generate", "num_predict", "options", 10**12, f"options.num_predict: {TOO_BIG}"),
    ("/v1/embeddings", "dimensions", None, 2**64, f"dimensions: {TOO_BIG}"),
    ("/api/embed", "dimensions", None, 2**64, f"dimensions: {TOO_BIG}"),
    # too few tokens
    ("/v1/chat/completions", "max_tokens", None, 0, "max_tokens: must be at least 1"),
    ("/v1/messages", "max_tokens", None, 0, "max_tokens: must be at least 1"),
    ("/v1/responses", "max_output_tokens", None, 8, "max_output_tokens: must be at least 16"),
    ("/api/chat", "num_predict", "options", -3, "options.num_predict: must be at least -2"),
    # a seed that is no integer
    ("/v1/chat/completions", "seed", None, "x", "seed: expected an integer, got string"),
    ("/v1/completions", "seed", None, "x", "seed: expected an integer, got string"),
    ("/api/chat", "seed", "options", "x", "options.seed: expected an integer, got string"),
    ("/v1/chat/completions", "seed", None, 2**64, "seed: must be at most 9223372036854775807"),
    # a user that is no string
    ("/v1/chat/completions", "user", None, 5, "user: expected a string, got number"),
    ("/v1/responses", "user", None, 5, "user: expected a string, got number"),
    ("/v1/completions", "user", None, 5, "user: expected a string, got number"),
    ("/v1/embeddings", "user", None, 5, "user: expected a string, got number"),
    # metadata that is no object
    ("/v1/chat/completions", "metadata", None, "x", "metadata: expected an object, got string"),
    ("/v1/responses", "metadata", None, "x", "metadata: expected an object, got string"),
    ("/v1/messages", "metadata", None, "x", "metadata: expected an object, got string"),
    # a count that is no integer
    ("/v1/chat/completions", "n", None, "x", "n: expected an integer, got string"),
    ("/v1/completions", "n", None, 1.5, "n: expected an integer, got number"),
    ("/v1/messages", "top_k", None, -3, "top_k: must be at least 0"),
    ("/api/chat", "top_k", "options", "x", "options.top_k: expected an integer, got string"),
    # a switch that is no boolean
    ("/v1/chat/completions", "logprobs", None, "x", "logprobs: expected a boolean, got string"),
    ("/v1/responses", "store", None, "x", "store: expected a boolean, got string"),
    ("/api/embed", "truncate", None, "x", "truncate: expected a boolean, got string"),
    ("/api/generate", "raw", None, 1, "raw: expected a boolean, got number"),
    ("/api/chat", "use_mmap", "options", 1, "options.use_mmap: expected a boolean, got number"),
    # an empty conversation
    ("/v1/chat/completions", "messages", None, [], "messages: must not be empty"),
    ("/v1/messages", "messages", None, [], "messages: must not be empty"),
    ("/api/chat", "messages", None, [], "messages: must not be empty"),
]


@pytest.mark.parametrize(
    ("path", "field", "inside", "value", "message"),
    SAME_MISTAKE,
    ids=[f"{c[0]}-{c[1]}-{c[3]!r}"[:60] for c in SAME_MISTAKE],
)
async def test_same_mistake_same_words_in_every_dialect(
    served: tuple[Any, str], path: str, field: str, inside: str | None, value: Any, message: str
) -> None:
    fake, url = served
    base, shape = ROUTES[path]
    body = dict(base)
    if inside is None:
        body[field] = value
    else:
        body[inside] = {field: value}
    status, _, raw = await post(url, path, body)
    assert status == 400, raw
    assert _error_message(shape, raw) == message
    assert _posts(fake) == []


# == 8. ranges per target when transcoding =====================================================


async def test_a_temperature_past_the_targets_range_is_refused_by_name(
    fake_engine: Any, gateway: Any
) -> None:
    """OpenAI takes 0 to 2, Anthropic 0 to 1: 1.5 from an OpenAI client is refused (not
    clamped) for an Anthropic engine, and served by an OpenAI-compatible one."""
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(
        backends=[backend("anthropic", claude, api_key_env="ANT_KEY"), backend("vllm", vllm)],
        env={"ANT_KEY": "k"},
    )
    body = {"model": "claude-x", "messages": HI, "temperature": 1.5}
    status, _, raw = await post(url, "/v1/chat/completions", body)
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert error["param"] == "temperature"
    assert error["message"] == (
        "temperature: 1.5 is not supported by anthropic: "
        "Anthropic's API takes a temperature from 0 to 1"
    )
    assert _posts(claude) == []
    status, _, raw = await post(url, "/v1/chat/completions", {**body, "model": "qwen"})
    assert status == 200, raw
    ollama_body = {"model": "qwen", "messages": HI, "stream": False}
    status, _, raw = await post(url, "/api/chat", {**ollama_body, "options": {"temperature": 3}})
    assert status == 400, raw  # Ollama states no bound; OpenAI's API stops at 2
    assert json.loads(raw)["error"] == (
        "temperature: 3.0 is not supported by vllm: OpenAI's API takes a temperature from 0 to 2"
    )
    assert len(_posts(vllm)) == 1


NESTED = [
    (
        "/v1/chat/completions",
        {"stream_options": {"include_usage": "yes"}},
        "stream_options.include_usage: expected a boolean, got string",
    ),
    (
        "/v1/messages",
        {"thinking": {"type": "enabled", "budget_tokens": 10}},
        "thinking.budget_tokens: must be at least 1024",
    ),
    (
        "/v1/messages",
        {"thinking": {"type": "enabled", "budget_tokens": 2**64}},
        f"thinking.budget_tokens: {TOO_BIG}",
    ),
]


@pytest.mark.parametrize(("path", "fields", "message"), NESTED)
async def test_nested_values_are_checked_too(
    served: tuple[Any, str], path: str, fields: dict[str, Any], message: str
) -> None:
    fake, url = served
    base, shape = ROUTES[path]
    status, _, raw = await post(url, path, {**base, **fields})
    assert status == 400, raw
    assert _error_message(shape, raw) == message
    assert _posts(fake) == []
