"""A usepod-agent 0.3.3 (tests/fakes/usepod_agent.py, H6's faithful fake) as an agent of
the hub: its quirks are tolerated (issue 13 point 3): no `formats` (so openai jobs only),
a silent cancel, a byte count in `tokens_emitted`, no liveness timer of its own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.core import Reply
from tests.fakes.engine import FakeEngine
from tests.fakes.usepod_agent import UsepodAgent
from tests.gateway_harness import settled, until
from tests.hub.agents import ws_url
from tests.hub.test_jobs import BEAT_S, OPENAI_BODY, TEXT, sse_data, watch

CHAT = "/v1/chat/completions"
LONG = Reply(text="word " * 100, chunk_chars=5, delay_s=0.02)


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    async with FakeEngine("vllm", models=["fake-model"], context_window=32768) as fake:
        yield fake


async def joined(gw: Any, agent: UsepodAgent, upstreams: int = 1) -> None:
    assert await until(lambda: agent.provider_id is not None, within=5)
    assert await until(
        lambda: len([u for u in gw.router.upstreams if u.ready]) == upstreams, within=5
    )


async def test_a_usepod_agent_serves_every_dialect_with_openai_jobs(
    hub_gateway, engine, clients
) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    async with UsepodAgent(ws_url(url), engine.url, heartbeat_s=BEAT_S) as agent:
        await joined(gw, agent)
        async with aiohttp.ClientSession() as http:
            listing = await (await http.get(url + "/v1/models")).json()
        (model,) = listing["data"]
        assert model["id"] == "fake-model" and model["context_window"] == 32768
        assert (model["agent"]["input_per_1m"], model["agent"]["output_per_1m"]) == (
            500_000,
            750_000,
        )
        oc, ac = clients("openai", url), clients("anthropic", url)
        stream = await oc.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert (
            "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == TEXT
        )
        async with ac.messages.stream(
            model="fake-model", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as ms:
            assert "".join([t async for t in ms.text_stream]) == TEXT
        assert (await oc.responses.create(model="fake-model", input="hi")).output_text == TEXT
        async with aiohttp.ClientSession() as http:
            body = {**OPENAI_BODY, "stream": False}
            whole = await (await http.post(url + "/api/chat", json=body)).json()
            assert whole["message"]["content"] == TEXT
    # usepod-agent posts every job to chat completions: the hub sent it only openai jobs
    assert {r.path for r in engine.requests if r.method == "POST"} == {"/v1/chat/completions"}
    assert [(r.format, r.passthrough) for r in records] == [
        ("openai", True),
        ("anthropic", False),
        ("responses", False),
        ("ollama", False),
    ]
    assert all(r.status == 200 and r.output_tokens == 5 for r in records)


async def test_a_silent_cancel_frees_the_slot_and_the_agent_serves_on(hub_gateway, engine) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    engine.replies.append(LONG)
    async with UsepodAgent(ws_url(url), engine.url, heartbeat_s=BEAT_S) as agent:
        await joined(gw, agent)
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                url + "/v1/chat/completions", json={**OPENAI_BODY, "stream": True}
            )
            await answer.content.readany()
            answer.close()
        assert await engine.wait_disconnects(1)  # job_cancel reached the engine's request
        assert await until(lambda: agent.in_flight == 0)
        assert all(s == (0, 0) for s in await settled(gw))
        sent = [type(f).__name__ for f in agent.frames_sent]
        assert "JobDone" not in sent and "JobError" not in sent  # silent, as 0.3.3 is
        async with aiohttp.ClientSession() as http:
            again = await http.post(url + "/v1/chat/completions", json=OPENAI_BODY)
            assert (await again.json())["choices"][0]["message"]["content"] == TEXT


async def test_a_usepod_agent_killed_mid_stream_ends_the_stream_at_once(
    hub_gateway, engine
) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    engine.replies.append(Reply(text="word " * 400, chunk_chars=5, delay_s=0.01))
    async with UsepodAgent(ws_url(url), engine.url, heartbeat_s=BEAT_S) as agent:
        await joined(gw, agent)
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                url + "/v1/chat/completions", json={**OPENAI_BODY, "stream": True}
            )
            await answer.content.readany()
            await agent.kill()
            started = asyncio.get_running_loop().time()
            body = await asyncio.wait_for(answer.text(), 5)
            assert asyncio.get_running_loop().time() - started < 1.0
        last = sse_data(body)[-1]
        assert "disconnected" in last["error"]["message"]
        assert all(s == (0, 0) for s in await settled(gw))


async def test_a_usepod_agent_killed_before_the_first_byte_falls_back(hub_gateway) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    async with (
        FakeEngine("vllm", models=["fake-model"]) as stuck,
        FakeEngine("vllm", models=["fake-model"]) as good,
    ):
        stuck.replies.append(Reply(hang=True))
        first = UsepodAgent(ws_url(url), stuck.url, heartbeat_s=BEAT_S)
        second = UsepodAgent(ws_url(url), good.url, heartbeat_s=BEAT_S)
        try:
            await first.start()
            await joined(gw, first)
            await second.start()
            await joined(gw, second, upstreams=2)
            request = asyncio.create_task(_post(url))
            assert await until(lambda: len(stuck.requests_to(CHAT)) == 1, within=5)
            await first.kill()  # before any byte of the answer
            body = await asyncio.wait_for(request, 5)
            assert body["choices"][0]["message"]["content"] == TEXT
            assert len(good.requests_to(CHAT)) == 1
        finally:
            await first.aclose()
            await second.aclose()


async def _post(url: str) -> Any:
    async with aiohttp.ClientSession() as http:
        answer = await http.post(url + "/v1/chat/completions", json=OPENAI_BODY)
        return json.loads(await answer.text())
