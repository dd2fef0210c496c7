"""Whole jobs through the hub (modelport's negotiated extension, docs/wire.md): a whole
(non-streaming) client request in a format the agent serves becomes a `"stream": false`
job only for an agent that advertises `whole_jobs` in its capabilities' metadata, and the
agent's one JSON body is relayed as the gateway relays an engine's. Never to usepod-agent
(tests/fakes/usepod_agent.py) or an agent that says nothing: there a whole answer is still
collected from a streamed job, as before."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from modelport.gateway.ledger import usage_totals
from modelport.wire.provider import WHOLE_JOBS
from tests.agent.harness import capabilities, running_agent, service_for
from tests.fakes.usepod_agent import UsepodAgent
from tests.gateway_harness import until
from tests.hub.agents import ledgered_hub_config, ws_url
from tests.hub.test_jobs import BEAT_S, OPENAI_BODY, TEXT, ready_agent, watch
from tests.hub.test_usepod_agent import joined

ANTHROPIC_BODY = {**OPENAI_BODY, "max_tokens": 50}


async def _post(url: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    headers = {"anthropic-version": "2023-06-01"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + path, json=body, headers=headers) as response,
    ):
        text = await response.text()
        whole = response.content_type == "application/json"
        return response.status, json.loads(text) if whole else text


@pytest.mark.parametrize("features", [None, (WHOLE_JOBS,)])
async def test_a_whole_job_goes_only_to_an_agent_that_advertises_it(
    hub_gateway, engine, features
) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    formats = ("openai", "anthropic")
    async with await ready_agent(gw, url, engine, formats=formats, features=features) as agent:
        status, whole = await _post(url, "/v1/chat/completions", OPENAI_BODY)
        assert status == 200 and whole["choices"][0]["message"]["content"] == TEXT
        status, message = await _post(url, "/v1/messages", ANTHROPIC_BODY)
        assert status == 200 and message["content"][0]["text"] == TEXT
        status, _ = await _post(url, "/v1/chat/completions", {**OPENAI_BODY, "stream": True})
        assert status == 200
    whole_jobs = [job.stream is False for job in agent.jobs]
    sent = [json.loads(bytes(job.request)).get("stream") for job in agent.jobs]
    if features:
        # The client's body as it came (no `stream`: a whole answer); the stream stays one.
        assert whole_jobs == [True, True, False] and sent == [None, None, True]
        assert [j.format for j in agent.jobs] == ["openai", "anthropic", "openai"]
        assert [(r.stream, r.passthrough) for r in records] == [(False, True)] * 2 + [(True, True)]
    else:
        assert whole_jobs == [False, False, False] and sent == [True, True, True]
        assert [(r.stream, r.passthrough) for r in records][:2] == [(False, False)] * 2
    assert all(r.status == 200 and r.output_tokens == 5 and r.input_tokens > 0 for r in records)
    assert agent.cancels == []


@pytest.mark.parametrize("features", [None, (WHOLE_JOBS,)])
async def test_a_transcoded_whole_answer_is_a_whole_openai_job_where_advertised(
    hub_gateway, engine, clients, features
) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    async with await ready_agent(gw, url, engine, features=features) as agent:
        response = await clients("openai", url).responses.create(model="fake-model", input="hi")
        assert response.output_text == TEXT
        status, whole = await _post(url, "/api/chat", {**OPENAI_BODY, "stream": False})
        assert status == 200 and whole["message"]["content"] == TEXT
    assert [j.format for j in agent.jobs] == ["openai", "openai"]
    sent = [json.loads(bytes(job.request)) for job in agent.jobs]
    if features:
        assert [job.stream for job in agent.jobs] == [False, False]
        assert all(b["stream"] is False and "stream_options" not in b for b in sent)
    else:
        assert all(
            job.stream is not False and b["stream"] is True
            for job, b in zip(agent.jobs, sent, strict=True)
        )
    assert [(r.format, r.passthrough) for r in records] == [("responses", False), ("ollama", False)]
    assert all(r.status == 200 and r.output_tokens == 5 and r.input_tokens > 0 for r in records)
    assert agent.cancels == []


async def test_a_whole_job_that_fails_before_its_body_falls_back(hub_gateway, engine) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    kw: dict[str, Any] = {"features": (WHOLE_JOBS,)}
    async with (
        await ready_agent(gw, url, engine, **kw) as one,
        await ready_agent(gw, url, engine, **kw) as two,
    ):
        one.plan.append("out_of_capacity")
        status, whole = await _post(url, "/v1/chat/completions", OPENAI_BODY)
    assert status == 200 and whole["choices"][0]["message"]["content"] == TEXT
    assert (len(one.jobs), len(two.jobs)) == (1, 1)  # one refused, then the other served
    assert all(job.stream is False for job in one.jobs + two.jobs)
    assert records[-1].status == 200 and records[-1].passthrough


async def test_usepod_agent_never_gets_a_whole_job(hub_gateway, engine) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    async with UsepodAgent(ws_url(url), engine.url, heartbeat_s=BEAT_S) as agent:
        await joined(gw, agent)
        status, whole = await _post(url, "/v1/chat/completions", OPENAI_BODY)
        assert status == 200 and whole["choices"][0]["message"]["content"] == TEXT
    (frame,) = agent.job_frames
    assert "stream" not in frame  # the job frame is exactly usepod's
    assert json.loads(msgspec.json.encode(frame["request"]))["stream"] is True
    assert [(r.stream, r.passthrough) for r in records] == [(False, False)]


def _same(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs on every call (the engine's random id, its clock)."""
    return {k: v for k, v in body.items() if k not in ("id", "created")}


async def test_a_whole_answer_through_a_modelport_agent_is_the_gateways_direct_answer(
    hub_gateway, gateway, engine, tmp_path: Path
) -> None:
    ledger = tmp_path / "hub.sqlite3"
    hub, hub_url = await hub_gateway(config=ledgered_hub_config(ledger), heartbeat_s=BEAT_S)
    records = watch(hub)
    _direct, direct_url = await gateway(backends=[{"kind": "vllm", "url": engine.url}])
    service = await service_for(("vllm", engine.url))
    caps = partial(capabilities, ("fake-model",))
    async with running_agent(ws_url(hub_url), service, caps=caps) as agent:
        assert await until(lambda: any(u.ready for u in hub.router.upstreams), within=5)
        for path, body in (
            ("/v1/chat/completions", OPENAI_BODY),
            ("/v1/messages", ANTHROPIC_BODY),
        ):
            direct_status, direct = await _post(direct_url, path, body)
            status, through_hub = await _post(hub_url, path, body)
            assert (status, direct_status) == (200, 200)
            assert _same(through_hub) == _same(direct)
            assert through_hub["id"][:4] == direct["id"][:4]  # the engine's ids, relayed
        assert [job[1] for job in _jobs(agent)] == ["done", "done"]
    assert [(r.stream, r.passthrough, r.output_tokens) for r in records] == [(False, True, 5)] * 2
    await hub.stop(grace_s=0)  # the ledger is written at the latest now
    (row,) = usage_totals(ledger, by="backend")
    assert row.group.startswith("agent:") and row.requests == 2 and row.errors == 0
    assert (row.input_tokens, row.output_tokens) == (sum(r.input_tokens for r in records), 10)
    assert row.input_tokens > 0


def _jobs(agent: Any) -> list[tuple[str, str, str | None]]:
    return list(agent.observed.finished)
