"""An agent's advertised prices, as the real hub wires them (hub.py -> AgentBackend ->
router): the ledger's record of a job carries them, and the `price` policy orders agents by
them. test_price_policy.py and test_ledger_by_agent.py test the same rules with a stand-in
backend; these go through a real agent connection, so they fail when the hub puts its
prices anywhere the router does not read them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from modelport.wire.provider import Capabilities
from tests.gateway_harness import make_config, until
from tests.hub.agents import ScriptedAgent, ws_url
from tests.hub.test_jobs import watch

BEAT_S = 2.0  # not about heartbeats


class PricedAgent(ScriptedAgent):
    """A scripted agent advertising `price` (input, output per million) for its models."""

    def __init__(self, *args: Any, price: tuple[int, int], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.price = price

    def capabilities(self) -> Capabilities:
        caps = super().capabilities()
        for model in caps.models:
            model.input_per_1m, model.output_per_1m = self.price
        return caps


async def _ready(gw: Any, agent: ScriptedAgent) -> str:
    await agent.connect()
    name = f"agent-{agent.provider_id[5:13]}"  # type: ignore[index]
    assert await until(lambda: (u := gw.router.by_name(name)) is not None and u.ready)
    return name


async def test_a_job_is_recorded_at_the_agents_price(hub_gateway, engine, clients) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    async with PricedAgent(ws_url(url), engine.url, heartbeat_s=BEAT_S, price=(150, 600)) as a:
        await _ready(gw, a)
        answer = await clients("openai", url).chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content
        assert await until(lambda: bool(records))
    record = records[0]
    assert record.backend.startswith("agent:") and not record.error
    assert (record.price_in_per_1m, record.price_out_per_1m) == (150, 600)


async def test_the_price_policy_tries_the_cheaper_agent_first(hub_gateway, engine) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S, policy="price")
    dear = PricedAgent(ws_url(url), engine.url, heartbeat_s=BEAT_S, price=(900, 900))
    cheap = PricedAgent(ws_url(url), engine.url, heartbeat_s=BEAT_S, price=(100, 100))
    async with dear, cheap:
        dear_name = await _ready(gw, dear)  # connected first: first in the router's list
        cheap_name = await _ready(gw, cheap)
        order = [route.upstream.name for route in gw.router.resolve("fake-model")]
        assert order == [cheap_name, dear_name]
        price = gw.router.resolve("fake-model")[0].price
        assert price is not None and (price.input_per_1m, price.output_per_1m) == (100, 100)


async def test_the_agents_page_shows_what_a_real_agent_earned(
    hub_gateway, engine, clients, tmp_path: Path
) -> None:
    """/v1/hub/agents over the real Hub and ledger (test_agents_route.py uses a stand-in)."""
    config = make_config(ledger=tmp_path / "ledger.sqlite3", server={"embedded": False})
    config = msgspec.structs.replace(config, hub=msgspec.structs.replace(config.hub, enabled=True))
    gw, url = await hub_gateway(heartbeat_s=BEAT_S, config=config)
    async with PricedAgent(
        ws_url(url), engine.url, heartbeat_s=BEAT_S, price=(2_000_000, 6_000_000)
    ) as a:
        await _ready(gw, a)
        answer = await clients("openai", url).chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.usage is not None
        tokens_in, tokens_out = answer.usage.prompt_tokens, answer.usage.completion_tokens
        assert tokens_in and tokens_out
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the ledger writes in batches, off the hot path
                async with http.get(url + "/v1/hub/agents") as response:
                    assert response.status == 200
                    (agent,) = (await response.json())["data"]
                if agent["jobs"]:
                    break
                await asyncio.sleep(0.05)
    assert agent["provider_id"] == a.provider_id
    assert (agent["jobs"], agent["input_tokens"], agent["output_tokens"]) == (
        1,
        tokens_in,
        tokens_out,
    )
    assert agent["earnings_micro_usdc"] == 2 * tokens_in + 6 * tokens_out
