"""GET /v1/hub/agents: behind the gateway's keys, the hub's agents (from `hub.agents()`,
a stand-in here) with each one's jobs, tokens and earnings from the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from modelport.gateway.server import Gateway
from modelport.hub.routes import add_hub_routes
from modelport.router import Limits
from tests.fakes import FakeEngine
from tests.gateway_harness import make_config
from tests.hub.helpers import StandInHub, agent_backend, view

FakeFactory = Callable[..., Awaitable[FakeEngine]]
KEY = "sk-team-1"
PRICES = {"llama3": (2_000_000, 6_000_000)}  # 2 and 6 USDC per million tokens


@pytest.fixture
async def hub_gateway(
    fake_engine: FakeFactory, tmp_path: Path
) -> AsyncIterator[tuple[str, StandInHub, Path]]:
    """A gateway with keys, a ledger, one agent upstream over a fake engine, and the page."""
    fake = await fake_engine("vllm", models=["llama3"])
    ledger = tmp_path / "usage.sqlite3"
    gw = Gateway(make_config(ledger=ledger), env={"MODELPORT_API_KEY": KEY})
    gw.router.add(agent_backend(fake.url, 1, PRICES), Limits(), name="agent-1", local=False)
    hub = StandInHub([view(1, PRICES), view(2, {"qwen": (1, 1)}, ready=False, in_flight=2)])
    add_hub_routes(gw.app, hub, ledger)
    url = await gw.start()
    try:
        yield url, hub, ledger
    finally:
        await gw.stop(grace_s=0)


async def get(url: str, key: str | None = KEY) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/v1/hub/agents", headers=headers) as answer,
    ):
        return answer.status, await answer.json()


async def test_the_page_is_behind_the_keys(hub_gateway: tuple[str, StandInHub, Path]) -> None:
    url, _, _ = hub_gateway
    status, body = await get(url, key=None)
    assert status == 401 and "missing API key" in body["error"]["message"]
    status, body = await get(url, key="wrong")
    assert status == 401 and body["error"]["message"] == "invalid API key"


async def test_agents_with_their_earnings(hub_gateway: tuple[str, StandInHub, Path]) -> None:
    url, hub, _ = hub_gateway
    status, body = await get(url)
    assert status == 200 and body["object"] == "list" and body["ledger"] is True
    first, second = body["data"]
    assert first == {
        "provider_id": hub.views[0].provider_id,
        "pubkey": hub.views[0].pubkey,
        "upstream": hub.views[0].upstream,
        "agent_version": "0.3.3",
        "address": "10.0.0.1",
        "connected_at": "2027-01-15T08:00:00Z",
        "ready": True,
        "in_flight": 0,
        "heartbeat_age_s": 3.5,
        "heartbeat": {
            "type": "heartbeat",
            "queue_depth": 1,
            "tokens_per_sec_p50": 40.0,
            "p50_latency_ms": 120,
            "p95_latency_ms": 300,
            "error_rate_60s": 0.0,
            "last_error_at": None,
            "last_error_code": None,
        },
        "formats": ["openai", "anthropic"],
        "models": [
            {
                "model_id": "llama3",
                "input_per_1m": 2_000_000,
                "output_per_1m": 6_000_000,
                "max_concurrent": 4,
                "backend": "llamacpp",
                "context_window": 4096,
            }
        ],
        "jobs": 0,
        "errors": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "earnings_micro_usdc": 0,
        "earnings_usdc": "0.000000",
    }
    assert (second["ready"], second["in_flight"]) == (False, 2)

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=10)
    try:
        answer = await client.chat.completions.create(
            model="llama3", messages=[{"role": "user", "content": "hi"}]
        )
    finally:
        await client.close()
    assert answer.usage is not None
    tokens_in, tokens_out = answer.usage.prompt_tokens, answer.usage.completion_tokens
    first = await _first_with_a_job(url)  # the ledger writes in batches, off the hot path
    assert (first["jobs"], first["input_tokens"], first["output_tokens"]) == (
        1,
        tokens_in,
        tokens_out,
    )
    assert first["earnings_micro_usdc"] == 2 * tokens_in + 6 * tokens_out
    _, body = await get(url)
    assert body["data"][1]["jobs"] == 0  # agent 2 served nothing


async def _first_with_a_job(url: str) -> dict[str, Any]:
    for _ in range(100):
        _, body = await get(url)
        if body["data"][0]["jobs"]:
            return dict(body["data"][0])
        await asyncio.sleep(0.05)
    raise AssertionError("the job never reached the page")


async def test_without_a_ledger_the_page_still_lists_agents(fake_engine: FakeFactory) -> None:
    gw = Gateway(make_config(), env={})  # ledger "off", no keys (loopback)
    add_hub_routes(gw.app, StandInHub([view(3, {})]), None)
    url = await gw.start()
    try:
        status, body = await get(url, key=None)
    finally:
        await gw.stop(grace_s=0)
    assert status == 200 and body["ledger"] is False
    assert [(a["address"], a["jobs"], a["models"]) for a in body["data"]] == [("10.0.0.3", 0, [])]
