"""The hub in the gateway: a planned restart drains (issue 13 point 5): no new jobs,
in-flight ones finish (bounded), then every agent gets Close 1001 "drain:deploy"."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.fakes.core import Reply
from tests.fakes.engine import FakeEngine
from tests.gateway_harness import until
from tests.hub.agents import FakeAccess, ScriptedAgent, hub_config, ws_url
from tests.hub.test_jobs import BEAT_S, OPENAI_BODY, ready_agent, sse_data

SLOW = Reply(text="slow " * 20, chunk_chars=5, delay_s=0.02)  # ~0.4 s of streaming


def text_of(body: str) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in sse_data(body) if c.get("choices")
    )


async def stream(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        answer = await http.post(url + "/v1/chat/completions", json={**OPENAI_BODY, "stream": True})
        return answer.status, await answer.text()


async def test_drain_lets_jobs_finish_then_closes_1001_drain_deploy(hub_gateway) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    async with FakeEngine("vllm", models=["fake-model"]) as engine:
        engine.default_reply = SLOW
        agent = await ready_agent(gw, url, engine)
        try:
            running = asyncio.create_task(stream(url))
            await asyncio.wait_for(agent.job_seen.wait(), 5)
            draining = asyncio.create_task(gw.hub.drain(5))
            upstream = gw.router.upstreams[0]
            assert await until(lambda: not upstream.ready)
            status, _ = await stream(url)  # no new job while draining
            assert status == 503
            status, body = await running
            assert status == 200 and text_of(body) == SLOW.text  # the job in flight finished
            await asyncio.wait_for(draining, 5)
            await asyncio.wait_for(agent.closed.wait(), 5)
            assert (agent.close_code, agent.close_reason) == (1001, "drain:deploy")
            assert agent.closed_after == {agent.jobs[0].job_id: "done"}  # closed after its end
            assert len(agent.jobs) == 1 and agent.cancels == []
            assert await until(lambda: gw.router.upstreams == ())
        finally:
            await agent.aclose()


async def test_drain_is_bounded_and_a_job_still_running_ends_with_an_error(hub_gateway) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    async with FakeEngine("vllm", models=["fake-model"]) as engine:
        engine.default_reply = Reply(text="word " * 200, chunk_chars=5)
        agent = await ready_agent(gw, url, engine)
        try:
            agent.plan.append("hang_mid")
            running = asyncio.create_task(stream(url))
            await asyncio.wait_for(agent.job_seen.wait(), 5)
            started = asyncio.get_running_loop().time()
            await gw.hub.drain(0.3)
            took = asyncio.get_running_loop().time() - started
            assert 0.25 < took < 3
            status, body = await asyncio.wait_for(running, 5)
            assert status == 200
            assert "error" in sse_data(body)[-1]  # the client hears of it at once
            await asyncio.wait_for(agent.closed.wait(), 5)
            assert (agent.close_code, agent.close_reason) == (1001, "drain:deploy")
        finally:
            await agent.aclose()


async def test_an_agent_connecting_during_a_drain_is_told_to_come_back(hub_gateway) -> None:
    gw, url = await hub_gateway()
    await gw.hub.drain(0)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(url))
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert (ws.close_code, msg.extra) == (1001, "drain:deploy")


async def test_gateway_stop_drains_the_hub(tmp_path: Any) -> None:
    """SIGTERM runs `Gateway.stop`: the agents get 1001 drain:deploy, then it stops."""
    from modelport.gateway.server import Gateway

    gw = Gateway(hub_config(), env={}, hub_access=FakeAccess(), hub_heartbeat_s=BEAT_S)
    url = await gw.start()
    agent = ScriptedAgent(ws_url(url), heartbeat_s=BEAT_S)
    try:
        await agent.connect()
        assert await until(lambda: len(gw.hub.agents()) == 1)
        await gw.stop()
        await asyncio.wait_for(agent.closed.wait(), 5)
        assert (agent.close_code, agent.close_reason) == (1001, "drain:deploy")
        assert gw.hub.agents() == [] and gw.router.upstreams == ()
    finally:
        await agent.aclose()
