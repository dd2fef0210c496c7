"""`[hub] policy = "price"`: candidates for a model, cheapest advertised price first; the
default `local-first` keeps today's order. Plain router upstreams whose models carry
prices (as agents' do); no hub needed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import msgspec
import pytest

from modelport.backends import connect
from modelport.records import RequestRecord
from modelport.router import Limits, Price, Router, Upstream, advertised_price
from modelport.service import Service
from modelport.types import BackendHealth, BackendModel, WireFormat
from tests.fakes import FakeEngine
from tests.gateway_harness import make_config
from tests.hub.helpers import agent_backend

FakeFactory = Callable[..., Awaitable[FakeEngine]]


def priced(model: str, price: tuple[int, int] | None) -> BackendModel:
    native = {} if price is None else {"input_per_1m": price[0], "output_per_1m": price[1]}
    return BackendModel(id=model, native=native)


def upstream(
    router: Router,
    name: str,
    models: dict[str, tuple[int, int] | None],
    *,
    local: bool = False,
    priority: int = 0,
) -> Upstream:
    # A backend that is never called: only what the router last "saw" matters here.
    added = router.add(
        connect("vllm:http://127.0.0.1:9"), Limits(), name=name, local=local, priority=priority
    )
    added.models = {m: priced(m, p) for m, p in models.items()}
    added.health = BackendHealth(alive=True, ready=True)
    return added


def order(router: Router, model: str) -> list[str]:
    return [route.upstream.name for route in router.resolve(model)]


def test_price_orders_by_input_plus_output() -> None:
    router = Router(policy="price")
    upstream(router, "dear", {"llama3": (300, 900)})
    upstream(router, "cheap", {"llama3": (100, 200)})
    upstream(router, "middle", {"llama3": (500, 0)})
    assert order(router, "llama3") == ["cheap", "middle", "dear"]
    assert [route.price for route in router.resolve("llama3")] == [
        Price(100, 200),
        Price(500, 0),
        Price(300, 900),
    ]


def test_unpriced_counts_as_free_and_ties_go_local_then_priority() -> None:
    router = Router(policy="price")
    upstream(router, "agent-paid", {"m": (1, 1)})
    upstream(router, "agent-free", {"m": (0, 0)})
    upstream(router, "cloud", {"m": None}, priority=5)
    upstream(router, "here", {"m": None}, local=True)
    assert order(router, "m") == ["here", "cloud", "agent-free", "agent-paid"]


def test_local_first_ignores_prices() -> None:
    router = Router()  # the default policy
    assert router.policy == "local-first"
    upstream(router, "dear", {"m": (900, 900)})
    upstream(router, "cheap", {"m": (1, 1)})
    upstream(router, "here", {"m": None}, local=True)
    assert order(router, "m") == ["here", "dear", "cheap"]


def test_price_is_per_model_and_models_are_owned_by_the_cheapest() -> None:
    router = Router(policy="price")
    upstream(router, "a", {"x": (10, 10), "y": (1, 1)})
    upstream(router, "b", {"x": (1, 1), "y": (10, 10)})
    assert order(router, "x") == ["b", "a"] and order(router, "y") == ["a", "b"]
    owners = {model.id: owner.name for owner, model in router.models()}
    assert owners == {"x": "b", "y": "a"}
    assert order(router, "a/x") == ["a"]  # an explicit route is not reordered


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown routing policy 'cheapest'"):
        Router(policy="cheapest")


@pytest.mark.parametrize(
    "native",
    [
        {"input_per_1m": "100", "output_per_1m": 1},
        {"input_per_1m": True, "output_per_1m": 1},
        {"input_per_1m": -1, "output_per_1m": 1},
        {"input_per_1m": 1.5, "output_per_1m": 1},
        {"input_per_1m": 1},
    ],
)
def test_only_whole_non_negative_prices_count(native: dict[str, object]) -> None:
    assert advertised_price(BackendModel(id="m", native=native)) is None


def test_the_gateway_routes_by_the_configured_policy() -> None:
    from modelport.gateway.server import Gateway

    assert Gateway(make_config('[hub]\npolicy = "price"\n')).router.policy == "price"
    assert Gateway(make_config()).router.policy == "local-first"


async def test_a_request_goes_to_the_cheapest_and_its_record_carries_the_price(
    fake_engine: FakeFactory,
) -> None:
    dear = await fake_engine("vllm", models=["llama3"])
    cheap = await fake_engine("vllm", models=["llama3"])
    records: list[RequestRecord] = []
    router = Router(policy="price")
    router.add(agent_backend(dear.url, 1, {"llama3": (900, 900)}), Limits(), local=False)
    router.add(agent_backend(cheap.url, 2, {"llama3": (100, 300)}), Limits(), local=False)
    service = Service(router, observe=records.append)
    try:
        await router.refresh()
        body = json.dumps({"model": "llama3", "messages": [{"role": "user", "content": "hi"}]})
        reply = await service.chat(WireFormat.OPENAI, body.encode())
        assert reply.status == 200, reply.body
    finally:
        await router.aclose()
    assert (
        len(dear.requests_to("/v1/chat/completions")),
        len(cheap.requests_to("/v1/chat/completions")),
    ) == (0, 1)
    (record,) = records
    assert record.backend == router.upstreams[1].backend.id
    assert (record.price_in_per_1m, record.price_out_per_1m) == (100, 300)
    assert record.input_tokens > 0 and record.output_tokens > 0


async def test_a_backend_without_prices_records_none(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("vllm", models=["llama3"])
    records: list[RequestRecord] = []
    router = Router(policy="price")
    router.add(connect(f"vllm:{fake.url}"), Limits())
    service = Service(router, observe=records.append)
    try:
        await router.refresh()
        body = b'{"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}'
        assert (await service.chat(WireFormat.OPENAI, body)).status == 200
    finally:
        await router.aclose()
    assert (records[0].price_in_per_1m, records[0].price_out_per_1m) == (None, None)
    assert msgspec.json.encode(records[0].backend)  # a plain backend id
