"""Relay jobs through the hub (modelport's negotiated extension, docs/wire.md): a client
request in a format the agent serves becomes a `"relay": true` job carrying the client's
body as it came, only for an agent that advertises `relay_jobs`; the agent's bytes are the
client's answer and the hub passes them on without a meter of its own (usage from
job_done). Never to usepod-agent or an agent that says nothing: there the hub asks for
usage and meters the stream, as before."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from modelport.gateway.ledger import usage_totals
from modelport.wire.provider import RELAY_JOBS
from tests.agent.harness import capabilities, running_agent, service_for
from tests.fakes.core import DEFAULT_ERROR_MESSAGE, Reply
from tests.gateway_harness import until
from tests.hub.agents import ledgered_hub_config, ws_url
from tests.hub.test_jobs import (
    BEAT_S,
    OPENAI_BODY,
    TEXT,
    leave_at,
    ready_agent,
    sse_data,
    watch,
)

ANTHROPIC_BODY = {**OPENAI_BODY, "max_tokens": 50}
HEADERS = {"anthropic-version": "2023-06-01"}


async def _post(url: str, path: str, body: bytes) -> tuple[int, str]:
    headers = {**HEADERS, "content-type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + path, data=body, headers=headers) as response,
    ):
        return response.status, await response.text()


@pytest.mark.parametrize("features", [None, (RELAY_JOBS,)])
async def test_a_relay_job_goes_only_to_an_agent_that_advertises_it(
    hub_gateway, engine, features
) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    formats = ("openai", "anthropic")
    bodies = [
        ("/v1/chat/completions", json.dumps({**OPENAI_BODY, "stream": True}).encode()),
        ("/v1/messages", json.dumps({**ANTHROPIC_BODY, "stream": True}).encode()),
        ("/v1/chat/completions", json.dumps(OPENAI_BODY).encode()),
    ]
    async with await ready_agent(gw, url, engine, formats=formats, features=features) as agent:
        for path, body in bodies:
            status, text = await _post(url, path, body)
            assert status == 200 and _text(text) == TEXT
    relayed = [job.relay is True for job in agent.jobs]
    sent = [bytes(job.request) for job in agent.jobs]
    if features:
        assert relayed == [True, True, True]
        assert sent == [body for _, body in bodies]  # the client's bytes, as they came
        assert [job.stream for job in agent.jobs] == [msgspec.UNSET] * 3
    else:
        assert relayed == [False] * 3
        first = json.loads(sent[0])  # the hub asked for usage to meter the stream itself
        assert first["stream_options"] == {"include_usage": True}
    assert agent.cancels == []


def _text(answer: str) -> str:
    """The text of an answer: whole, or streamed in OpenAI's or Anthropic's events."""
    if not answer.startswith(("data:", "event:")):
        return str(json.loads(answer)["choices"][0]["message"]["content"])
    pieces = []
    for event in sse_data(answer):
        for choice in event.get("choices") or []:
            pieces.append(choice["delta"].get("content") or "")
        pieces.append((event.get("delta") or {}).get("text") or "")
    return "".join(pieces)


def _same_stream(text: str) -> list[Any]:
    """An OpenAI stream's payloads without what differs on every call (ids, clocks)."""
    return [
        {k: v for k, v in chunk.items() if k not in ("id", "created")} for chunk in sse_data(text)
    ]


@pytest.mark.parametrize("asks_usage", [False, True])
async def test_a_stream_through_a_modelport_agent_is_the_gateways_direct_stream(
    hub_gateway, gateway, engine, tmp_path: Path, asks_usage: bool
) -> None:
    """The client's answer is made once, by the agent's service, exactly as a gateway makes
    it: the usage chunk only when asked, [DONE] at the end; the hub's ledger has the
    tokens from job_done."""
    ledger = tmp_path / "hub.sqlite3"
    hub, hub_url = await hub_gateway(config=ledgered_hub_config(ledger), heartbeat_s=BEAT_S)
    records = watch(hub)
    _direct, direct_url = await gateway(backends=[{"kind": "vllm", "url": engine.url}])
    engine.default_reply = Reply(text=TEXT, usage=(9, 5))
    body: dict[str, Any] = {**OPENAI_BODY, "stream": True}
    if asks_usage:
        body["stream_options"] = {"include_usage": True}
    service = await service_for(("vllm", engine.url))
    caps = partial(capabilities, ("fake-model",))
    async with running_agent(ws_url(hub_url), service, caps=caps):
        assert await until(lambda: any(u.ready for u in hub.router.upstreams), within=5)
        direct_status, direct = await _post(direct_url, "/v1/chat/completions", json_of(body))
        status, through_hub = await _post(hub_url, "/v1/chat/completions", json_of(body))
    assert (status, direct_status) == (200, 200)
    assert _same_stream(through_hub) == _same_stream(direct)
    assert through_hub.rstrip().endswith("data: [DONE]")
    assert any("usage" in c and not c.get("choices") for c in sse_data(through_hub)) is asks_usage
    (record,) = records
    assert (record.stream, record.passthrough, record.error) == (True, True, "")
    assert (record.input_tokens, record.output_tokens) == (9, 5)
    await hub.stop(grace_s=0)  # the ledger is written at the latest now
    (row,) = usage_totals(ledger, by="backend")
    assert row.group.startswith("agent:") and (row.input_tokens, row.output_tokens) == (9, 5)


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/chat/completions", OPENAI_BODY), ("/v1/messages", ANTHROPIC_BODY)],
    ids=["openai", "anthropic"],
)
async def test_an_engine_failing_midway_gives_the_client_one_error_event(
    hub_gateway, engine, path: str, body: dict[str, Any]
) -> None:
    """The agent sends job_error and no error frame of its own; the hub writes the one
    error event the client reads, in its dialect, with the engine's message."""
    hub, hub_url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(hub)
    engine.default_reply = Reply(text="abcdefghijkl", chunk_chars=2, fail_after_chunks=3)
    service = await service_for(("vllm", engine.url))
    caps = partial(capabilities, ("fake-model",))
    async with running_agent(ws_url(hub_url), service, caps=caps):
        assert await until(lambda: any(u.ready for u in hub.router.upstreams), within=5)
        status, text = await _post(hub_url, path, json_of({**body, "stream": True}))
    assert status == 200
    errors = [e for e in sse_data(text) if "error" in e]
    assert len(errors) == 1 and DEFAULT_ERROR_MESSAGE in json.dumps(errors[0])
    if path == "/v1/messages":
        assert text.count("event: error") == 1
    (record,) = records
    assert record.error and record.passthrough


def json_of(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.parametrize("stream", [True, False])
async def test_an_answer_larger_than_the_hubs_frame_cap_arrives_whole(
    hub_gateway, engine, stream: bool
) -> None:
    """One SSE event of 1.5 MB (a long answer in one delta) is more than a WebSocket
    message the hub takes (`[hub] max_frame_kb`, 1 MiB): the agent sends it in pieces, so
    the client gets it whole and the agent's other jobs are not cut off with its socket."""
    hub, hub_url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(hub)
    text = "x" * 1_500_000
    engine.default_reply = Reply(text=text, chunk_chars=len(text))
    service = await service_for(("vllm", engine.url))
    caps = partial(capabilities, ("fake-model",))
    async with running_agent(ws_url(hub_url), service, caps=caps):
        assert await until(lambda: any(u.ready for u in hub.router.upstreams), within=5)
        status, answer = await _post(
            hub_url, "/v1/chat/completions", json_of({**OPENAI_BODY, "stream": stream})
        )
    assert status == 200 and _text(answer) == text
    (record,) = records
    assert record.error == "" and record.output_tokens > 0


# A relay job's bytes cut anywhere, as a modelport agent cuts a frame over 256 KiB: the
# hub still gives its client whole frames only.
CUT = 7


async def test_a_cut_end_line_still_waits_for_job_done(hub_gateway, engine) -> None:
    """`data: [DONE]` split across two chunks is still found, and held until job_done: a
    client that leaves at once (Codex) is not recorded as cancelled."""
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    kw = {"features": (RELAY_JOBS,), "relay_cut": CUT}
    async with await ready_agent(gw, url, engine, **kw) as agent:
        agent.plan.append("late_done")
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                url + "/v1/chat/completions", json={**OPENAI_BODY, "stream": True}
            )
            await leave_at(answer, b"[DONE]")
        assert await until(lambda: len(records) == 1, within=3)
        assert records[0].error == "" and records[0].status == 200
        assert agent.cancels == [] and agent.ended == {agent.jobs[0].job_id: "done"}


@pytest.mark.parametrize("step", ["error_mid", "drop_mid"])
async def test_a_failure_after_a_cut_frame_is_one_whole_error_event(
    hub_gateway, engine, step: str
) -> None:
    """The start of a frame whose rest never comes is not the client's: its stream is
    whole events, then the one error event."""
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    engine.default_reply = Reply(text="word " * 200, chunk_chars=5)
    kw = {"features": (RELAY_JOBS,), "relay_cut": CUT}
    async with await ready_agent(gw, url, engine, **kw) as agent:
        agent.plan.append(step)
        status, text = await _post(
            url, "/v1/chat/completions", json_of({**OPENAI_BODY, "stream": True})
        )
    assert status == 200
    events = sse_data(text)  # every data line parses: no frame was cut short
    assert [e for e in events if "error" in e] == [events[-1]]
    assert _text(text).startswith("word")
