"""An agent's advertised prices reach the router and the ledger (docs/hub.md, "Ledger and
settlement" and "Routing by price"): the hub's agent upstream lists each model with its
capabilities prices where `router.advertised_price` reads them, so `policy = "price"`
tries the cheaper agent first and the request's record carries that agent's price.

Found by tests/hub/test_team.py with real processes: the prices sat only in the model's
`modelport_agent` entry, so every agent counted as free (price order lost) and earned 0.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from modelport.router import advertised_price
from modelport.wire.provider import AgentMetadata, Capabilities, CapabilityLimits, CapabilityModel
from tests.fakes.engine import FakeEngine
from tests.gateway_harness import until
from tests.hub.agents import ScriptedAgent, hub_config, ws_url
from tests.hub.test_jobs import OPENAI_BODY, watch


class PricedAgent(ScriptedAgent):
    def __init__(self, *args: Any, price: tuple[int, int], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.price = price

    def capabilities(self) -> Capabilities:
        models = [
            CapabilityModel(m, self.price[0], self.price[1], self.max_concurrent, "vllm", 8192)
            for m in self.models
        ]
        limits = CapabilityLimits(max_concurrent_total=self.max_concurrent)
        return Capabilities(models, limits, AgentMetadata("scripted/0.3.3", self.formats))


async def test_the_cheaper_agent_is_tried_first_and_settled_at_its_price(hub_gateway) -> None:
    async with FakeEngine("vllm", models=["fake-model"]) as engine:
        gw, url = await hub_gateway(config=hub_config(policy="price"))
        records = watch(gw)
        dear = PricedAgent(ws_url(url), engine.url, price=(2_000_000, 6_000_000))
        cheap = PricedAgent(ws_url(url), engine.url, price=(100_000, 200_000))
        async with dear, cheap:
            await dear.connect()
            await cheap.connect()
            assert await until(lambda: len(gw.router.upstreams) == 2, within=5)
            first = gw.router.resolve("fake-model")[0]
            assert first.upstream.name == f"agent-{cheap.provider_id[5:13]}"  # type: ignore[index]
            price = advertised_price(first.upstream.models["fake-model"])
            assert price is not None and (price.input_per_1m, price.output_per_1m) == (
                100_000,
                200_000,
            )
            async with aiohttp.ClientSession() as http:
                answer = await http.post(url + "/v1/chat/completions", json=OPENAI_BODY)
                assert answer.status == 200, await answer.text()
            assert len(cheap.jobs) == 1 and not dear.jobs
    (record,) = records
    assert (record.price_in_per_1m, record.price_out_per_1m) == (100_000, 200_000)
