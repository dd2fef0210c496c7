"""The gateway's discovery: it fingerprints and hands new engines to the router, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import openai
import pytest
from aiohttp import web

from modelport.gateway.server import Gateway
from tests.fakes import FakeEngine
from tests.gateway_harness import make_config

FakeFactory = Callable[..., Awaitable[FakeEngine]]


class HiddenEngine(FakeEngine):
    """An Ollama that answers 404 to everything until `hidden` is cleared: not yet started."""

    hidden = True

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if self.hidden:
            return web.Response(status=404)
        return await super()._dispatch(request)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
async def hidden_ollama() -> AsyncIterator[HiddenEngine]:
    fake = HiddenEngine("ollama", models=["found-later"])
    await fake.start()
    yield fake
    await fake.stop()


async def discovering_gateway(port: int) -> Gateway:
    """A gateway that discovers on `port` (and the default ports), without an embedded engine."""
    config = make_config(
        f"[server]\nembedded = false\n[discovery]\nrefresh_s = 3600\nports = [{port}]\n"
    )
    config = msgspec.structs.replace(
        config, discovery=msgspec.structs.replace(config.discovery, enabled=True)
    )
    gateway = Gateway(config, env={})
    await gateway.start()
    return gateway


async def test_an_engine_found_later_is_added_through_the_router_and_served(
    hidden_ollama: HiddenEngine,
) -> None:
    gateway = await discovering_gateway(port_of(hidden_ollama.url))
    try:
        assert gateway.router.by_url(hidden_ollama.url) is None
        hidden_ollama.hidden = False
        await gateway.router.refresh_soon()
        upstream = gateway.router.by_url(hidden_ollama.url)
        assert upstream is not None
        assert (upstream.backend.kind, upstream.discovered, upstream.ready) == (
            "ollama",
            True,
            True,
        )
        client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
        async with client:
            reply = await client.chat.completions.create(
                model="found-later:latest", messages=[{"role": "user", "content": "hi"}]
            )
        assert reply.choices[0].message.content
        assert hidden_ollama.requests_to("/v1/chat/completions")  # relayed as it came
    finally:
        await gateway.stop(grace_s=0)


async def test_a_discovered_ollama_lists_its_tags_once_per_tick(
    hidden_ollama: HiddenEngine,
) -> None:
    hidden_ollama.hidden = False
    gateway = await discovering_gateway(port_of(hidden_ollama.url))
    try:
        assert gateway.router.by_url(hidden_ollama.url) is not None
        assert len(hidden_ollama.requests_to("/api/tags")) == 1  # the first refresh
        for tick in (2, 3):
            await gateway.router.refresh_soon()
            assert len(hidden_ollama.requests_to("/api/tags")) == tick
        # Once served, the engine is no longer fingerprinted either.
        assert len(hidden_ollama.requests_to("/props")) == 1
    finally:
        await gateway.stop(grace_s=0)
