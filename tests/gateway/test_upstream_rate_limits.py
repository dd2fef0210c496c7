"""Issue 11.2: an engine's 429 is not a fault. It never opens the breaker, and its
Retry-After holds that (backend, model) off: the candidate loop falls back past it, and
when nothing is left answers 429 with the wait left, in the client's dialect, without
asking the engine.

The 429s are the protocol fakes' own (tests/fakes/errors.py: each engine family's
rate-limit body, with the Retry-After header the reply sets).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.fakes import FakeEngine, Reply
from tests.fakes.core import Recorded
from tests.gateway.helpers import HI, backend, chat_requests, post

HEADER = "x-modelport-backend"


def limited(model: str, retry_after: str | None) -> Any:
    """A `reply_for`: 429 (with `retry_after`) to requests for `model`, the default else."""

    def reply_for(recorded: Recorded) -> Reply | None:
        asked = recorded.json.get("model") if isinstance(recorded.json, dict) else None
        return Reply(status=429, retry_after=retry_after) if asked == model else None

    return reply_for


def asked_for(fake: FakeEngine, model: str) -> int:
    """POSTs for `model` on any route: vLLM serves /v1/responses itself (a relay)."""
    posts = [r for r in fake.requests if r.method == "POST" and isinstance(r.json, dict)]
    return sum(1 for r in posts if r.json.get("model") == model)


async def test_three_429s_leave_the_breaker_closed(fake_engine, gateway, clients) -> None:
    """Three 429s for one model (no Retry-After) reach the client as 429s; the backend's
    breaker stays closed, so its other model answers."""
    fake = await fake_engine("vllm", models=["busy", "other"])
    fake.reply_for = limited("busy", None)
    gw, url = await gateway(backends=[backend("vllm", fake, name="a")])
    for n in range(1, 4):
        status, headers, raw = await post(
            url, "/v1/chat/completions", {"model": "busy", "messages": HI}
        )
        assert status == 429, raw
        assert json.loads(raw)["error"]["type"] == "rate_limit_error"
        assert headers[HEADER] == f"vllm:{fake.url}"  # the engine that said it
        assert asked_for(fake, "busy") == n  # no Retry-After: nothing to hold it off by
    breaker = gw.router.by_name("a").breaker
    assert (breaker.state, breaker.failures) == ("closed", 0)
    reply = await clients("openai", url).chat.completions.create(model="other", messages=HI)
    assert reply.choices[0].message.content == "Hello from the fake."


async def test_retry_after_holds_that_model_off_and_falls_back(fake_engine, gateway) -> None:
    """A's `m` says 429 with Retry-After: 30. The request falls back to B; the next ones
    go straight to B without asking A for `m`; A's other model is asked as usual."""
    a = await fake_engine("vllm", models=["m", "other"])
    b = await fake_engine("vllm", models=["m"])
    a.reply_for = limited("m", "30")
    gw, url = await gateway(
        backends=[backend("vllm", a, name="a"), backend("vllm", b, name="b")],
        aliases={"smart": ["a/m", "b/m"]},
    )
    for n in range(1, 4):
        status, headers, raw = await post(
            url, "/v1/chat/completions", {"model": "smart", "messages": HI}
        )
        assert status == 200, raw
        assert headers[HEADER] == f"vllm:{b.url}"
        assert len(chat_requests(b)) == n
    assert asked_for(a, "m") == 1  # asked once; then held off for its Retry-After
    assert gw.router.by_name("a").breaker.failures == 0
    status, headers, raw = await post(
        url, "/v1/chat/completions", {"model": "other", "messages": HI}
    )
    assert status == 200, raw
    assert headers[HEADER] == f"vllm:{a.url}"  # per model: `other` on A was never held


CLIENTS = [
    pytest.param(
        "/v1/chat/completions", {"model": "m", "messages": HI}, "openai", id="openai-chat"
    ),
    pytest.param(
        "/v1/messages",
        {"model": "m", "messages": HI, "max_tokens": 10},
        "anthropic",
        id="anthropic",
    ),
    pytest.param("/v1/responses", {"model": "m", "input": "hi"}, "openai", id="responses"),
    pytest.param("/api/chat", {"model": "m", "messages": HI}, "ollama", id="ollama-chat"),
]


@pytest.mark.parametrize(("path", "body", "shape"), CLIENTS)
async def test_nothing_left_answers_429_with_the_wait_without_asking(
    fake_engine, gateway, path: str, body: dict[str, Any], shape: str
) -> None:
    """The only candidate is held off: 429 with Retry-After (the wait left, rounded up) in
    the client's dialect, and the engine is not asked. Once the wait is over it is."""
    fake = await fake_engine("vllm", models=["m"])
    fake.reply_for = limited("m", "30")
    gw, url = await gateway(backends=[backend("vllm", fake, name="a")])
    status, headers, raw = await post(url, path, body)
    assert status == 429, raw
    assert headers["Retry-After"] == "30"  # the engine's own, passed on
    assert asked_for(fake, "m") == 1
    status, headers, raw = await post(url, path, body)
    assert status == 429, raw
    assert asked_for(fake, "m") == 1  # not asked again
    assert 28 <= int(headers["Retry-After"]) <= 30
    assert HEADER not in headers  # no backend was asked
    error = json.loads(raw)
    if shape == "openai":
        assert error["error"]["type"] == "rate_limit_error"
        assert error["error"]["code"] == "rate_limit_exceeded"
        message = error["error"]["message"]
    elif shape == "anthropic":
        assert error["type"] == "error"
        assert error["error"]["type"] == "rate_limit_error"
        message = error["error"]["message"]
    else:
        assert set(error) == {"error"}
        message = error["error"]
    assert "rate limited" in message and "'a'" in message, message
    assert gw.router.by_name("a").breaker.failures == 0


async def test_the_hold_ends_with_the_wait(fake_engine, gateway) -> None:
    fake = await fake_engine("vllm", models=["m"])
    fake.replies.append(Reply(status=429, retry_after="1"))
    _gw, url = await gateway(backends=[backend("vllm", fake, name="a")])
    body = {"model": "m", "messages": HI}
    status, headers, _ = await post(url, "/v1/chat/completions", body)
    assert (status, headers["Retry-After"]) == (429, "1")
    status, _, _ = await post(url, "/v1/chat/completions", body)
    assert status == 429 and len(chat_requests(fake)) == 1
    await asyncio.sleep(1.05)
    status, _, raw = await post(url, "/v1/chat/completions", body)
    assert status == 200, raw
    assert len(chat_requests(fake)) == 2


async def test_a_half_open_trial_answered_429_does_not_wedge_the_breaker(
    fake_engine, gateway
) -> None:
    """The trial got a 429: no verdict on the engine's health, so the trial is given back
    and the next request is let through (it used to stay open for good)."""
    fake = await fake_engine("vllm", models=["m"])
    gw, url = await gateway(backends=[backend("vllm", fake, name="a")])
    breaker = gw.router.by_name("a").breaker
    for _ in range(breaker.threshold):
        breaker.failure()
    breaker.cooldown_s = 0.0
    fake.replies.append(Reply(status=429))
    body = {"model": "m", "messages": HI}
    assert (await post(url, "/v1/chat/completions", body))[0] == 429
    status, _, raw = await post(url, "/v1/chat/completions", body)
    assert status == 200, raw
    assert breaker.state == "closed"
