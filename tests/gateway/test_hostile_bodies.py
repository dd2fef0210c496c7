"""Hostile request bodies, generated per dialect, sent through a real gateway to protocol
fakes that record what they receive (issue 11, "hostile input").

Each body starts from a valid one and has some of its dialect's fields (the published
schema's, so every field of the field table) and some unknown ones set to arbitrary JSON:
wrong types, huge and negative numbers, nesting, nulls; messages are replaced by arbitrary
lists now and then. For every body:

- the answer is never a 5xx;
- a 4xx is an error body in the route's dialect;
- whatever reached an engine decodes with our own decoder of that engine's dialect, so
  nothing the gateway forwards is something it would itself refuse.

Bounded (`EXAMPLES` a dialect, derandomized) so the module runs in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.gateway.openapi import OPENAPI
from modelport.types import WireFormat
from modelport.wire import codec_for
from modelport.wire.completions.request import check_request
from modelport.wire.openai import decode_embed_request
from tests.fakes import Recorded
from tests.gateway.threaded import ThreadedGateway

EXAMPLES = 40
MODELS = ("qwen", "claude-x")  # vllm relays its dialects; Anthropic's engine transcodes

# What each engine path receives, read back with our own decoder of that dialect.
DECODERS: dict[str, Callable[[Any], object]] = {
    "/v1/chat/completions": codec_for(WireFormat.OPENAI).decode_request,
    "/v1/messages": codec_for(WireFormat.ANTHROPIC).decode_request,
    "/v1/responses": codec_for(WireFormat.RESPONSES).decode_request,
    "/api/chat": codec_for(WireFormat.OLLAMA).decode_request,
    "/v1/completions": check_request,
    "/v1/embeddings": decode_embed_request,
}

_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, -1, 2**31, 2**63, 2**64, 10**12])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _message(roles: list[str]) -> st.SearchStrategy[Any]:
    valid = st.fixed_dictionaries(
        {"role": st.sampled_from(roles), "content": st.text(max_size=12) | JSON}
    )
    return valid | JSON


def _fields(route: str) -> list[str]:
    post = OPENAPI["paths"][route]["post"]
    return sorted(post["requestBody"]["content"]["application/json"]["schema"]["properties"])


def bodies(route: str, base: dict[str, Any], roles: list[str] | None = None) -> Any:
    """`base` with some of the route's fields and some unknown ones set to arbitrary JSON."""
    keys = st.sampled_from(_fields(route)) | st.text(min_size=1, max_size=8)
    overlay = st.dictionaries(keys, JSON, max_size=4)
    model = st.sampled_from(MODELS)
    messages = st.lists(_message(roles), max_size=3) if roles else st.nothing()

    def build(model: str, overlay: dict[str, Any], messages: list[Any] | None) -> dict[str, Any]:
        body = {**base, "model": model}
        if messages is not None:
            body["messages"] = messages
        body.update(overlay)
        return body

    return st.builds(build, model, overlay, st.none() | messages)


HI = [{"role": "user", "content": "hi"}]
CASES: dict[str, tuple[WireFormat, Any]] = {
    "/v1/chat/completions": (
        WireFormat.OPENAI,
        bodies("/v1/chat/completions", {"messages": HI}, ["user", "assistant", "system", "tool"]),
    ),
    "/v1/messages": (
        WireFormat.ANTHROPIC,
        bodies("/v1/messages", {"messages": HI, "max_tokens": 16}, ["user", "assistant"]),
    ),
    "/v1/messages/count_tokens": (
        WireFormat.ANTHROPIC,
        bodies("/v1/messages/count_tokens", {"messages": HI}, ["user", "assistant"]),
    ),
    "/v1/responses": (WireFormat.RESPONSES, bodies("/v1/responses", {"input": "hi"})),
    "/api/chat": (
        WireFormat.OLLAMA,
        bodies("/api/chat", {"messages": HI}, ["user", "assistant", "system", "tool"]),
    ),
    "/api/generate": (WireFormat.OLLAMA, bodies("/api/generate", {"prompt": "hi"})),
    "/v1/completions": (WireFormat.OPENAI, bodies("/v1/completions", {"prompt": "hi"})),
    "/v1/embeddings": (WireFormat.OPENAI, bodies("/v1/embeddings", {"input": "hi"})),
}


@pytest.fixture(scope="module")
def served() -> Iterator[ThreadedGateway]:
    with ThreadedGateway([("vllm", ["qwen"]), ("anthropic", ["claude-x"])]) as gateway:
        yield gateway


def in_dialect(dialect: WireFormat, raw: bytes) -> bool:
    """An error body of the dialect's shape (wire/*/errors.py encode_error)."""
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return False
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    if dialect is WireFormat.OLLAMA:
        return isinstance(error, str) and bool(error)
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return False
    if dialect is WireFormat.ANTHROPIC:
        return body.get("type") == "error" and isinstance(error.get("type"), str)
    return isinstance(error.get("type"), str)


def reached_engines(served: ThreadedGateway) -> list[Recorded]:
    return [r for fake in served.fakes.values() for r in fake.requests if r.path in DECODERS]


def check_one(served: ThreadedGateway, route: str, dialect: WireFormat, body: Any) -> None:
    served.clear()
    status, _, raw = served.post(route, msgspec.json.encode(body))
    assert status < 500, (status, raw[:300])
    if status >= 400:
        assert in_dialect(dialect, raw), (status, raw[:300])
    for sent in reached_engines(served):
        try:
            DECODERS[sent.path](sent.json if sent.json is not None else sent.body)
        except Exception as exc:  # the finding is the exception itself
            raise AssertionError(f"{sent.path} received what we refuse: {exc}") from exc


@pytest.mark.parametrize("route", list(CASES))
def test_hostile_bodies_never_5xx_and_never_reach_an_engine_invalid(
    route: str, served: ThreadedGateway
) -> None:
    dialect, strategy = CASES[route]

    @given(body=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(body: Any) -> None:
        check_one(served, route, dialect, body)

    run()


@pytest.mark.parametrize("route", list(CASES))
@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[]", b"null", b'"x"', b"1e999", b"{" * 100 + b"}" * 100, b"\xff\xfe"]
)
def test_bodies_that_are_no_object_are_a_400_in_dialect(
    route: str, raw: bytes, served: ThreadedGateway
) -> None:
    status, _, answer = served.post(route, raw)
    assert status == 400, (status, answer[:300])
    assert in_dialect(CASES[route][0], answer), answer[:300]


# The issue's own hostile cases (points 3 and 8): each reached the engine, or was a 500.
# Their fixes (nesting depth, range and type checks) land from another branch of issue 11;
# strict xfail, so each marker has to go when its fix is merged.
_OPENAI = ("/v1/chat/completions", {"model": "qwen", "messages": HI})
_ANTHROPIC = ("/v1/messages", {"model": "qwen", "messages": HI, "max_tokens": 16})
POINT_8 = [
    *(
        (_OPENAI, {k: v})
        for k, v in [
            ("max_tokens", -1),
            ("max_tokens", 0),
            ("temperature", -1),
            ("temperature", 1e308),
            ("top_p", -0.5),
            ("top_p", 7),
            ("n", "x"),
            ("seed", "x"),
            ("user", 5),
            ("stream_options", "x"),
            ("max_tokens", 10**12),
            ("max_tokens", 2**64),
        ]
    ),
    *(
        (_ANTHROPIC, {k: v})
        for k, v in [
            ("messages", []),
            ("top_k", -3),
            ("metadata", "x"),
            ("max_tokens", 10**12),
            ("max_tokens", 2**64),
        ]
    ),
]


@pytest.mark.parametrize(
    ("case", "change"), POINT_8, ids=[f"{c[0]}-{next(iter(d.items()))}" for c, d in POINT_8]
)
def test_the_issues_range_and_type_cases_are_a_400_before_any_engine(
    case: tuple[str, dict[str, Any]], change: dict[str, Any], served: ThreadedGateway
) -> None:
    route, base = case
    served.clear()
    status, _, raw = served.post(route, msgspec.json.encode({**base, **change}))
    assert status == 400, (status, raw[:300])
    assert in_dialect(CASES[route][0], raw)
    assert reached_engines(served) == []


@pytest.mark.parametrize("route", list(CASES))
def test_deep_nesting_is_a_400_in_dialect(route: str, served: ThreadedGateway) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    for body in (deep, b'{"model": "qwen", "x": ' + deep + b"}"):
        status, _, raw = served.post(route, body)
        assert status == 400, (status, raw[:300])
        assert in_dialect(CASES[route][0], raw)
