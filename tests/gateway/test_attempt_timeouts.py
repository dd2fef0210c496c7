"""Issue 11.1: a stalling candidate falls back in time, and the breakers and headers blame
the right backend.

The stall is the protocol fake's `Reply(hang=True)`: the engine takes the request and
sends nothing (no status line) until the client leaves, as a wedged llama-server or an
overloaded proxy does. The healthy backend is another fake.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp import web

from tests.fakes import FakeEngine, Reply
from tests.gateway.helpers import (
    HI,
    backend,
    chat_body,
    chat_path,
    chat_requests,
    get,
    post,
    sample,
    scrape,
)
from tests.gateway_harness import settled

ALIAS = {"smart": ["a/m", "b/m"]}
HEADER = "x-modelport-backend"


async def stalled_and_healthy(
    fake_engine: Any, gateway: Any, *, server: dict[str, Any], a: dict[str, Any] | None = None
) -> tuple[Any, FakeEngine, FakeEngine, str]:
    """An alias over a stalling A and a healthy B, both vLLM-shaped."""
    stalled = await fake_engine("vllm", models=["m"])
    healthy = await fake_engine("vllm", models=["m"])
    stalled.default_reply = Reply(hang=True)
    gw, url = await gateway(
        backends=[
            backend("vllm", stalled, name="a", **(a or {})),
            backend("vllm", healthy, name="b"),
        ],
        aliases=ALIAS,
        server=server,
    )
    return gw, stalled, healthy, url


def a_id(fake: FakeEngine) -> str:
    return f"vllm:{fake.url}"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_a_stall_falls_back_within_the_first_byte_limit(
    fake_engine, gateway, fmt: str, stream: bool
) -> None:
    """The issue's scenario: request_timeout_s = 2, a first-byte limit of 0.5 s. Each request
    is answered by B in about 0.5 s; three of them leave B's breaker closed (A's per-try
    timeouts are A's faults, so A's opens)."""
    gw, stalled, healthy, url = await stalled_and_healthy(
        fake_engine, gateway, server={"request_timeout_s": 2, "first_byte_timeout_s": 0.5}
    )
    for n in range(1, 4):
        started = time.monotonic()
        status, headers, raw = await post(
            url, chat_path(fmt), chat_body(fmt, stream=stream, model="smart")
        )
        took = time.monotonic() - started
        assert status == 200, raw
        assert b"Hell" in raw, raw
        assert headers[HEADER] == a_id(healthy)
        assert took < 1.5, took  # the stall cost its 0.5 s, not the 2 s deadline
        assert len(chat_requests(healthy)) == n
    b, a = gw.router.by_name("b"), gw.router.by_name("a")
    assert (b.breaker.state, b.breaker.failures) == ("closed", 0)
    assert a.breaker.state == "open"  # the per-try timeouts were A's own faults
    assert len(chat_requests(stalled)) == 3
    # B's own models keep answering directly.
    status, _, raw = await post(url, chat_path(fmt), chat_body(fmt, stream=False, model="b/m"))
    assert status == 200, raw
    assert await settled(gw) == [(0, 0), (0, 0)]


async def test_a_backend_sets_its_own_first_byte_limit(fake_engine, gateway) -> None:
    """`[[backends]] first_byte_timeout_s` beats the server's (here the default 120 s)."""
    _gw, _stalled, healthy, url = await stalled_and_healthy(
        fake_engine, gateway, server={"request_timeout_s": 5}, a={"first_byte_timeout_s": 0.3}
    )
    started = time.monotonic()
    status, headers, raw = await post(
        url, "/v1/chat/completions", chat_body("openai", stream=False, model="smart")
    )
    assert time.monotonic() - started < 1.5
    assert status == 200, raw
    assert headers[HEADER] == a_id(healthy)


async def test_no_attempt_starts_after_the_deadline(fake_engine, gateway) -> None:
    """A stall that outlasts the request's deadline (the first-byte limit is longer): the
    gateway answers 504 naming A, never asks B, and B's breaker stays closed after three
    such requests, so B's own models still answer. The ledger's and the metrics' record
    name A too."""
    gw, stalled, healthy, url = await stalled_and_healthy(
        fake_engine, gateway, server={"request_timeout_s": 0.4}
    )
    for _ in range(3):
        started = time.monotonic()
        status, headers, raw = await post(
            url, "/v1/chat/completions", chat_body("openai", stream=False, model="smart")
        )
        assert time.monotonic() - started < 1.2
        assert status == 504, raw
        assert json.loads(raw)["error"]["code"] == "timeout"
        assert headers[HEADER] == a_id(stalled)  # the one that failed, not B (never asked)
    assert chat_requests(healthy) == []
    b = gw.router.by_name("b")
    assert (b.breaker.state, b.breaker.failures) == ("closed", 0)
    status, headers, raw = await post(
        url, "/v1/chat/completions", chat_body("openai", stream=False, model="b/m")
    )
    assert status == 200, raw
    assert headers[HEADER] == a_id(healthy)
    _, _, text = await get(url, "/metrics")
    samples = scrape(text.decode())
    labels = {"model": "smart", "status": "504", "format": "openai"}
    assert sample(samples, "modelport_requests_total", backend=a_id(stalled), **labels) == 3
    assert sample(samples, "modelport_requests_total", backend=a_id(healthy), **labels) is None


async def test_a_deadline_spent_by_an_earlier_attempt_is_not_the_next_ones_fault(
    fake_engine, gateway
) -> None:
    """A answers after 0.6 s of a 1 s deadline with a 503 (its fault: it falls back); B
    stalls and the deadline, not B's own limit, ends it. B's breaker does not count that."""
    slow = await fake_engine("vllm", models=["m"])
    stalled = await fake_engine("vllm", models=["m"])
    slow.route("POST", "/v1/chat/completions", late_503, group="chat", wire="openai")
    stalled.default_reply = Reply(hang=True)
    gw, url = await gateway(
        backends=[backend("vllm", slow, name="a"), backend("vllm", stalled, name="b")],
        aliases=ALIAS,
        server={"request_timeout_s": 1},
    )
    status, headers, raw = await post(
        url, "/v1/chat/completions", chat_body("openai", stream=False, model="smart")
    )
    assert status == 504, raw
    assert headers[HEADER] == a_id(stalled)  # B was asked and is what failed last
    assert gw.router.by_name("a").breaker.failures == 1
    assert gw.router.by_name("b").breaker.failures == 0


async def test_a_half_open_trial_that_ends_without_a_verdict_is_given_back(
    fake_engine, gateway
) -> None:
    """A trial answered by something that is not a fault (here a 400) must not leave the
    breaker waiting forever for its verdict: the next request may be the trial."""
    fake = await fake_engine("vllm", models=["m"])
    gw, url = await gateway(backends=[backend("vllm", fake, name="a")])
    breaker = gw.router.by_name("a").breaker
    for _ in range(breaker.threshold):
        breaker.failure()
    breaker.cooldown_s = 0.0
    fake.replies.append(Reply(status=400))
    status, _, raw = await post(url, "/v1/chat/completions", {"model": "m", "messages": HI})
    assert status == 400, raw
    status, _, raw = await post(url, "/v1/chat/completions", {"model": "m", "messages": HI})
    assert status == 200, raw
    assert breaker.state == "closed"


async def late_503(request: web.Request, body: Any) -> web.StreamResponse:
    """vLLM's 503 (its engine overloaded), after 0.6 s of thought."""
    await asyncio.sleep(0.6)
    error = {"object": "error", "message": "busy", "type": "ServiceUnavailable", "code": 503}
    return web.json_response(error, status=503)


async def test_time_spent_in_our_queue_is_not_the_engines_fault(fake_engine, gateway) -> None:
    """One slot; the first request takes it and stalls until its deadline (its engine's
    fault: it had the whole deadline). The second waits in our queue for most of its own
    deadline, then stalls for the rest: the deadline is not the engine's fault there."""
    fake = await fake_engine("vllm", models=["m"])
    fake.default_reply = Reply(hang=True)
    gw, url = await gateway(
        backends=[backend("vllm", fake, name="a", max_concurrent=1)],
        server={"request_timeout_s": 0.6},
    )
    body = chat_body("openai", stream=False, model="m")
    first = asyncio.create_task(post(url, "/v1/chat/completions", body))
    await asyncio.sleep(0.2)
    second = await post(url, "/v1/chat/completions", body)
    assert (await first)[0] == 504
    assert second[0] == 504
    assert len(chat_requests(fake)) == 2  # the second did reach the engine, late
    assert gw.router.by_name("a").breaker.failures == 1
