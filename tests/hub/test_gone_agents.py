"""/metrics of a hub whose agents come and go: a gone agent's state gauges go with its
upstream, what it served once it has been gone `forget_gone_backend_s`; an agent that
reconnects counts on in one set of series. Scripted agents over real WebSockets relay a
real engine fake's bytes; /metrics is read over HTTP as a scraper reads it."""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fakes.engine import FakeEngine
from tests.gateway.helpers import HI, eventually_empty, post, series_of
from tests.gateway_harness import until
from tests.hub.agents import ScriptedAgent, slow_reader, ws_url

BEAT_S = 2.0  # these tests are not about heartbeats
STATE = ("modelport_backend_ready", "modelport_in_flight", "modelport_queued")
SERVED = (
    "modelport_requests_total",
    "modelport_tokens_total",
    "modelport_time_to_first_token_seconds_count",
    "modelport_request_duration_seconds_count",
)


async def joined(gw: Any, url: str, engine: FakeEngine, key: Ed25519PrivateKey) -> ScriptedAgent:
    """An agent with `key`, connected, its upstream ready."""
    agent = ScriptedAgent(ws_url(url), engine.url, key=key, heartbeat_s=BEAT_S)
    await agent.connect()
    name = upstream_name(agent)
    assert await until(lambda: (u := gw.router.by_name(name)) is not None and u.ready)
    return agent


async def left(gw: Any, agent: ScriptedAgent) -> None:
    """`agent` closes its connection; back once the hub has dropped its upstream."""
    await agent.aclose()
    assert await until(lambda: gw.router.by_name(upstream_name(agent)) is None)


def upstream_name(agent: ScriptedAgent) -> str:
    assert agent.provider_id is not None
    return f"agent-{agent.provider_id[5:13]}"


async def serve_one(url: str) -> None:
    status, _, body = await post(
        url, "/v1/chat/completions", {"model": "fake-model", "messages": HI}
    )
    assert status == 200, body


def request_count(series: dict[str, list[float]]) -> float:
    return sum(series.get("modelport_requests_total", []))


async def test_an_agent_gone_for_good_leaves_metrics(hub_gateway, engine) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S, forget_gone_backend_s=1.0)
    key = Ed25519PrivateKey.generate()
    agent = await joined(gw, url, engine, key)
    backend = f"agent:{agent.provider_id}"
    await serve_one(url)
    here = await series_of(url, backend)
    assert {name: here[name] for name in STATE} == {
        "modelport_backend_ready": [1.0],
        "modelport_in_flight": [0.0],
        "modelport_queued": [0.0],
    }
    assert set(SERVED) <= set(here) and request_count(here) == 1

    await left(gw, agent)
    # A gone backend has no state: its gauges go with its upstream, not stuck at 1.
    gone = await series_of(url, backend)
    assert not set(STATE) & set(gone), gone
    # What it served stays until every scraper has read its last counts.
    assert request_count(gone) == 1

    # Gone for good: nothing of it is left (agents that left for good do not pile up).
    assert await eventually_empty(url, backend)

    # The same provider back after that counts afresh, in series /metrics shows.
    again = await joined(gw, url, engine, key)
    await serve_one(url)
    back = await series_of(url, backend)
    assert request_count(back) == 1 and back["modelport_backend_ready"] == [1.0], back
    await again.aclose()


async def test_an_agent_that_reconnects_keeps_one_set_of_series(hub_gateway, engine) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    key = Ed25519PrivateKey.generate()
    agent = await joined(gw, url, engine, key)
    backend = f"agent:{agent.provider_id}"
    await serve_one(url)

    # Its connection drops: no state while it is away, what it served kept.
    await left(gw, agent)
    away = await series_of(url, backend)
    assert not set(STATE) & set(away) and request_count(away) == 1, away

    # It reconnects (same provider, same upstream name): its counts go on in the same series.
    agent = await joined(gw, url, engine, key)
    await serve_one(url)
    back = await series_of(url, backend)
    assert request_count(back) == 2, back
    assert len(back["modelport_requests_total"]) == 1  # one label set, not one per connection
    assert {name: back[name] for name in STATE} == {
        "modelport_backend_ready": [1.0],
        "modelport_in_flight": [0.0],
        "modelport_queued": [0.0],
    }

    # A newer connection replaces the open one (usepod-agent's reconnect after a network
    # drop the hub had not noticed): still one set, still counting on.
    newer = await joined(gw, url, engine, key)
    async with asyncio.timeout(5):
        await agent.closed.wait()
    assert agent.close_code == 4000
    name = upstream_name(newer)
    assert await until(lambda: (u := gw.router.by_name(name)) is not None and u.ready)
    await serve_one(url)
    replaced = await series_of(url, backend)
    assert request_count(replaced) == 3, replaced
    assert all(len(replaced[name]) == 1 for name in STATE), replaced
    assert replaced["modelport_backend_ready"] == [1.0]
    await newer.aclose()
    await agent.aclose()


async def test_a_slow_clients_late_record_is_forgotten_too(hub_gateway) -> None:
    """A client that reads slowly holds its request (and its slot) past the agent's leaving
    and past the forget delay; its record comes when it has read. It must not bring back
    series that nothing removes again: the forget waits for the request's end."""
    gw, url = await hub_gateway(heartbeat_s=BEAT_S, forget_gone_backend_s=0.2)
    gw.hub.max_job_buffer_bytes = 256 * 1024
    async with FakeEngine("vllm", models=["fake-model"]) as big:
        big.default_reply = type(big.default_reply)(text="x" * 12_000_000, chunk_chars=65536)
        agent = ScriptedAgent(ws_url(url), big.url, heartbeat_s=BEAT_S, chunk_bytes=65536)
        await agent.connect()
        name = upstream_name(agent)
        assert await until(lambda: (u := gw.router.by_name(name)) is not None and u.ready)
        backend = f"agent:{agent.provider_id}"
        body = {"model": "fake-model", "messages": HI, "stream": True}
        reader, writer = await slow_reader(url, body)
        await asyncio.wait_for(agent.cancel_seen.wait(), 10)  # the hub's write is stuck
        await left(gw, agent)
        await asyncio.sleep(0.6)  # three forget delays, the request still open
        await asyncio.wait_for(reader.read(), 10)  # now it ends, and is recorded
        writer.close()
        assert await eventually_empty(url, backend)  # once the request has ended
