"""Jobs: a request in every client dialect served through an agent, passthrough and
transcoding, fallback before the first byte, an agent dropped mid-stream, cancel on client
disconnect (issue 13 point 3). The agents are scripted over real WebSockets (agents.py)
and relay a real engine fake's bytes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import msgspec
import pytest

from modelport.records import RequestRecord
from modelport.wire.provider import RELAY_JOBS
from tests.fakes.engine import FakeEngine
from tests.gateway_harness import settled, until
from tests.hub.agents import ScriptedAgent, slow_reader, ws_url

TEXT = "Hello from the fake."
# Jobs tests are not about heartbeats: an interval no busy loop misses twice.
BEAT_S = 2.0


def watch(gw: Any) -> list[RequestRecord]:
    records: list[RequestRecord] = []
    observe = gw.service.observe

    def both(record: RequestRecord) -> None:
        records.append(record)
        observe(record)

    gw.service.observe = both
    return records


async def ready_agent(gw: Any, url: str, engine: FakeEngine, **kw: Any) -> ScriptedAgent:
    agent = ScriptedAgent(ws_url(url), engine.url, heartbeat_s=BEAT_S, **kw)
    await agent.connect()
    name = f"agent-{agent.provider_id[5:13]}"  # type: ignore[index]
    assert await until(lambda: (u := gw.router.by_name(name)) is not None and u.ready)
    return agent


async def leave_at(answer: aiohttp.ClientResponse, last_event: bytes) -> None:
    """Read the stream until `last_event`, then close: the client is gone, as Codex is once
    it has its answer."""
    seen = b""
    while last_event not in seen:
        chunk = await asyncio.wait_for(answer.content.readany(), 5)
        assert chunk, seen
        seen += chunk
    answer.close()


def sse_data(body: str) -> list[Any]:
    out = []
    for line in body.splitlines():
        if line.startswith("data: ") and line[6:] != "[DONE]":
            out.append(json.loads(line[6:]))
    return out


OPENAI_BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


# -- every dialect ----------------------------------------------------------------------


@pytest.mark.parametrize("formats", [None, ("openai", "anthropic")])
async def test_every_dialect_through_an_agent(hub_gateway, engine, clients, formats) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    async with await ready_agent(gw, url, engine, formats=formats) as agent:
        oc = clients("openai", url)
        ac = clients("anthropic", url)
        # OpenAI chat, whole and streamed
        answer = await oc.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == TEXT
        stream = await oc.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert (
            "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == TEXT
        )
        # Responses, whole and streamed
        response = await oc.responses.create(model="fake-model", input="hi")
        assert response.output_text == TEXT
        events = [
            e async for e in await oc.responses.create(model="fake-model", input="hi", stream=True)
        ]
        assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == TEXT
        # Anthropic Messages, whole and streamed
        message = await ac.messages.create(
            model="fake-model", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].text == TEXT
        async with ac.messages.stream(
            model="fake-model", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as ms:
            assert "".join([t async for t in ms.text_stream]) == TEXT
        # Ollama /api/chat, whole and streamed (NDJSON)
        async with aiohttp.ClientSession() as http:
            body = {**OPENAI_BODY, "stream": False}
            whole = await (await http.post(url + "/api/chat", json=body)).json()
            assert whole["message"]["content"] == TEXT
            lines = (
                await (await http.post(url + "/api/chat", json=OPENAI_BODY)).text()
            ).splitlines()
            assert "".join(json.loads(x)["message"]["content"] for x in lines) == TEXT
            assert json.loads(lines[-1])["done"] is True
    # every job ran streamed, in a format the agent serves
    assert len(agent.jobs) == 8
    for job in agent.jobs:
        assert json.loads(bytes(job.request))["stream"] is True
        assert job.format in (formats or ("openai",))
        assert job.deadline_ms == int(gw.config.server.request_timeout_s * 1000)
    # passthrough only for a stream in a format the agent serves
    by_format = [(r.format, r.stream, r.passthrough) for r in records]
    assert ("openai", True, True) in by_format
    assert ("openai", False, False) in by_format
    assert ("anthropic", True, formats is not None) in by_format
    assert all(not r.passthrough for r in records if r.format in ("responses", "ollama"))
    assert all(r.status == 200 and r.backend.startswith("agent:") for r in records)
    assert all(r.output_tokens == 5 and r.input_tokens > 0 for r in records), records
    assert agent.cancels == []  # none after job_done
    # a streamed Anthropic request passes through to an agent that serves the format; a
    # whole answer is collected from an OpenAI job (every agent serves that)
    assert [j.format for j in agent.jobs].count("anthropic") == (1 if formats else 0)


# -- fallback before the first byte -------------------------------------------------------


@pytest.mark.parametrize("features", [None, (RELAY_JOBS,)], ids=["streamed-jobs", "relay-jobs"])
@pytest.mark.parametrize("step", ["out_of_capacity", "model_not_loaded", "drop", "silent"])
async def test_fallback_before_the_first_byte(hub_gateway, features, engine, step) -> None:
    from tests.hub.agents import hub_config

    config = hub_config()
    config = msgspec.structs.replace(
        config, server=msgspec.structs.replace(config.server, first_byte_timeout_s=0.5)
    )
    gw, url = await hub_gateway(config=config, heartbeat_s=BEAT_S)
    records = watch(gw)
    first = await ready_agent(gw, url, engine, features=features)
    second = await ready_agent(gw, url, engine, features=features)
    try:
        first.plan.append(step)
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                url + "/v1/chat/completions", json={**OPENAI_BODY, "stream": True}
            )
            assert answer.status == 200
            text = "".join(
                c["choices"][0]["delta"].get("content") or ""
                for c in sse_data(await answer.text())
                if c.get("choices")
            )
        assert text == TEXT
        assert len(first.jobs) == 1 and len(second.jobs) == 1
        assert records[-1].backend == f"agent:{second.provider_id}"
        if step == "silent":  # the first-byte limit fell back: the silent job is cancelled
            await asyncio.wait_for(first.cancel_seen.wait(), 5)
            assert first.cancels == [first.jobs[0].job_id]
        else:
            assert first.cancels == []
        assert second.cancels == []
        assert await settled(gw) == [(0, 0)] * len(gw.router.upstreams)
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.parametrize("features", [None, (RELAY_JOBS,)], ids=["streamed-jobs", "relay-jobs"])
async def test_an_invalid_request_said_by_the_agent_is_the_clients_400(
    hub_gateway, features, engine
) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    first = await ready_agent(gw, url, engine, features=features)
    second = await ready_agent(gw, url, engine, features=features)
    try:
        first.plan.append("internal")  # "invalid request: ..." in the message
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                url + "/v1/chat/completions", json={**OPENAI_BODY, "stream": True}
            )
            assert answer.status == 400
            assert "bad temperature" in (await answer.json())["error"]["message"]
        assert second.jobs == []  # no fallback for the client's own mistake
    finally:
        await first.aclose()
        await second.aclose()


# -- after the first byte ---------------------------------------------------------------


@pytest.mark.parametrize("features", [None, (RELAY_JOBS,)], ids=["streamed-jobs", "relay-jobs"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
async def test_an_agent_dropped_mid_stream_ends_the_stream_with_an_error(
    hub_gateway, features, engine, path
) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    engine.default_reply = type(engine.default_reply)(text="word " * 200, chunk_chars=5)
    agent = await ready_agent(gw, url, engine, features=features)
    try:
        agent.plan.append("drop_mid")
        body = (
            {**OPENAI_BODY, "stream": True}
            if "chat" in path
            else {"model": "fake-model", "input": "hi", "stream": True}
        )
        async with aiohttp.ClientSession() as http:
            started = asyncio.get_running_loop().time()
            answer = await http.post(url + path, json=body)
            text = await asyncio.wait_for(answer.text(), 5)
            took = asyncio.get_running_loop().time() - started
        assert took < 3  # at once, not at a deadline
        frames = sse_data(text)
        if "chat" in path:
            assert "error" in frames[-1] and "disconnected" in frames[-1]["error"]["message"]
        else:
            assert frames[-1]["type"] == "response.failed"
        assert await settled(gw) == [] or all(s == (0, 0) for s in await settled(gw))
    finally:
        await agent.aclose()


@pytest.mark.parametrize("features", [None, (RELAY_JOBS,)], ids=["streamed-jobs", "relay-jobs"])
async def test_a_client_that_leaves_cancels_the_job(hub_gateway, features, engine) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    engine.default_reply = type(engine.default_reply)(text="word " * 200, chunk_chars=5)
    agent = await ready_agent(gw, url, engine, features=features)
    try:
        agent.plan.append("hang_mid")
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                url + "/v1/chat/completions", json={**OPENAI_BODY, "stream": True}
            )
            await answer.content.readany()
            answer.close()
        await asyncio.wait_for(agent.cancel_seen.wait(), 5)
        assert agent.cancels == [agent.jobs[0].job_id]
        assert all(s == (0, 0) for s in await settled(gw))
    finally:
        await agent.aclose()


@pytest.mark.parametrize("features", [None, (RELAY_JOBS,)], ids=["streamed-jobs", "relay-jobs"])
async def test_usage_comes_from_job_done_when_the_stream_has_none(
    hub_gateway, features, engine
) -> None:
    """usepod-agent relays what its engine sent; a stream without usage is counted from
    job_done's tokens."""
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    agent = await ready_agent(gw, url, engine, features=features)
    try:
        agent.plan.append("no_usage_done")
        async with aiohttp.ClientSession() as http:
            body = {**OPENAI_BODY, "stream": True}
            answer = await http.post(url + "/v1/chat/completions", json=body)
            await answer.text()
        record = records[-1]
        assert record.passthrough
        assert (record.input_tokens, record.output_tokens) == (11, 22)
    finally:
        await agent.aclose()


@pytest.mark.parametrize("features", [None, (RELAY_JOBS,)], ids=["streamed-jobs", "relay-jobs"])
async def test_a_client_that_reads_too_slowly_has_its_job_cancelled(hub_gateway, features) -> None:
    """One agent socket carries many jobs, so a slow client never stops the hub reading
    it: past `max_job_buffer_bytes` unread, its job is cancelled at the agent and the
    client's stream ends with an error; the slot is freed."""
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    gw.hub.max_job_buffer_bytes = 256 * 1024
    async with FakeEngine("vllm", models=["fake-model"]) as big:
        big.default_reply = type(big.default_reply)(text="x" * 12_000_000, chunk_chars=65536)
        agent = await ready_agent(gw, url, big, features=features, chunk_bytes=65536)
        try:
            reader, writer = await slow_reader(url, {**OPENAI_BODY, "stream": True})
            await asyncio.wait_for(agent.cancel_seen.wait(), 10)  # not reading: the job is cut
            assert agent.cancels == [agent.jobs[0].job_id]
            rest = await asyncio.wait_for(reader.read(), 10)  # now read it all
            assert b"too slowly" in rest
            assert len(rest) < 8_000_000  # not the whole answer: the rest was never kept
            assert all(s == (0, 0) for s in await settled(gw))
            writer.close()
        finally:
            await agent.aclose()


async def test_local_engines_come_before_agents_and_agents_take_over(hub_gateway, engine) -> None:
    from tests.fakes.core import Reply
    from tests.hub.agents import hub_config

    async with FakeEngine("vllm", models=["fake-model"]) as local:
        config = hub_config(backends=[{"kind": "vllm", "url": local.url}])
        gw, url = await hub_gateway(config=config, heartbeat_s=BEAT_S)
        records = watch(gw)
        async with await ready_agent(gw, url, engine) as agent:
            async with aiohttp.ClientSession() as http:
                await (await http.post(url + "/v1/chat/completions", json=OPENAI_BODY)).json()
                assert records[-1].backend.startswith("vllm:") and agent.jobs == []
                local.replies.append(Reply(status=503))  # the local engine is busy
                answer = await (
                    await http.post(url + "/v1/chat/completions", json=OPENAI_BODY)
                ).json()
            assert answer["choices"][0]["message"]["content"] == TEXT
            assert records[-1].backend == f"agent:{agent.provider_id}" and len(agent.jobs) == 1


@pytest.mark.parametrize("features", [None, (RELAY_JOBS,)], ids=["streamed-jobs", "relay-jobs"])
@pytest.mark.parametrize("path", ["/v1/messages", "/api/chat"])
async def test_a_job_error_after_the_first_byte_is_an_error_in_the_clients_dialect(
    hub_gateway, features, engine, path
) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    engine.default_reply = type(engine.default_reply)(text="word " * 200, chunk_chars=5)
    agent = await ready_agent(gw, url, engine, features=features, formats=("openai", "anthropic"))
    try:
        agent.plan.append("error_mid")
        body: dict[str, Any] = {**OPENAI_BODY, "stream": True}
        if path == "/v1/messages":
            body["max_tokens"] = 100
        async with aiohttp.ClientSession() as http:
            answer = await http.post(url + path, json=body)
            assert answer.status == 200
            text = await asyncio.wait_for(answer.text(), 5)
        if path == "/v1/messages":  # passthrough of an anthropic job, then Anthropic's error
            assert agent.jobs[0].format == "anthropic"
            assert "event: error" in text and "engine stalled" in text
        else:  # transcoded from an openai job: Ollama's error line ends the NDJSON
            last = json.loads(text.splitlines()[-1])
            assert "engine stalled" in last["error"]
        assert agent.cancels == []  # the job ended: no cancel after job_error
        assert all(s == (0, 0) for s in await settled(gw))
    finally:
        await agent.aclose()


async def test_a_large_non_ascii_request_reaches_the_agent_as_sent(hub_gateway, engine) -> None:
    """The job frame goes out as the encoded bytes in one text frame (link.py, no round
    trip through str): non-ASCII text arrives at the agent unchanged, and the answer
    comes back."""
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    agent = await ready_agent(gw, url, engine)
    try:
        content = "é漢字🙂 " * 2_000  # 26 KB of UTF-8, inside the fake's context window
        body = {**OPENAI_BODY, "messages": [{"role": "user", "content": content}], "stream": True}
        async with aiohttp.ClientSession() as http:
            answer = await http.post(url + "/v1/chat/completions", json=body)
            assert answer.status == 200
            text = await answer.text()
        assert (
            "".join(
                c["choices"][0]["delta"].get("content") or ""
                for c in sse_data(text)
                if c["choices"]
            )
            == TEXT
        )
        sent = json.loads(bytes(agent.jobs[0].request))
        assert sent["messages"][0]["content"] == content
    finally:
        await agent.aclose()


async def test_a_busy_stream_is_not_a_frame_flood(hub_gateway, engine, clients) -> None:
    """The frame-rate limit counts frames the hub did not ask for: a job's chunks arrive as
    fast as its engine writes (20 streams of 100 tokens a second is 2,000 frames a second),
    so they must not close the agent's socket (bench/hub.py met it at the old default)."""
    gw, url = await hub_gateway(heartbeat_s=BEAT_S, max_frames_per_s=5)
    async with await ready_agent(gw, url, engine, chunk_bytes=2) as agent:
        oc = clients("openai", url)
        for _ in range(3):  # far over 5 frames in any second: 2-byte chunks of every stream
            stream = await oc.chat.completions.create(
                model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            assert text == TEXT
        assert not agent.closed.is_set() and len(gw.hub.agents()) == 1


async def test_an_image_goes_to_the_agent_which_knows_its_engine(hub_gateway, clients) -> None:
    """A capabilities frame says nothing of vision: the hub lets an image through (the
    agent's own service checks it against its engine) rather than refusing it itself."""
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAA"
        "BJRU5ErkJggg=="
    )
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
    ]
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    async with FakeEngine("vllm", models=["fake-vision-model"]) as engine:
        agent = await ready_agent(gw, url, engine, models=("fake-vision-model",))
        async with agent:
            oc = clients("openai", url)
            answer = await oc.chat.completions.create(
                model="fake-vision-model", messages=[{"role": "user", "content": content}]
            )
            assert answer.choices[0].message.content == TEXT
            assert png.encode() in engine.last.body


@pytest.mark.parametrize("features", [None, (RELAY_JOBS,)], ids=["streamed-jobs", "relay-jobs"])
@pytest.mark.parametrize(
    ("path", "body", "last_event"),
    [
        ("/v1/responses", {"input": "hi"}, b"response.completed"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, b"[DONE]"),
    ],
    ids=["transcoded", "passthrough"],
)
async def test_a_client_that_leaves_once_the_answer_is_complete_is_not_cancelled(
    hub_gateway, features, engine, path: str, body: dict[str, Any], last_event: bytes
) -> None:
    """Codex exits as soon as it reads response.completed. The hub must not have told it
    the answer was complete while the job still ran: the request would be recorded as
    cancelled (earning the agent nothing) and the job cancelled after it was served."""
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    async with await ready_agent(gw, url, engine, features=features) as agent:
        agent.plan.append("late_done")
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                url + path, json={"model": "fake-model", "stream": True, **body}
            )
            await leave_at(answer, last_event)
        assert await until(lambda: len(records) == 1, within=3)
        assert records[0].error == "" and records[0].status == 200
        assert agent.cancels == [] and agent.ended == {agent.jobs[0].job_id: "done"}


async def test_a_job_is_recorded_at_the_price_the_agent_advertised(hub_gateway, engine) -> None:
    """The capabilities' prices reach the record (settlement and `usage --by agent` read
    them from the ledger's sales) and the router's price ordering."""
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    records = watch(gw)
    async with await ready_agent(gw, url, engine) as agent:  # 150 in, 600 out per 1M
        (route,) = gw.router.resolve("fake-model")
        assert route.price is not None
        assert (route.price.input_per_1m, route.price.output_per_1m) == (150, 600)
        async with aiohttp.ClientSession() as http:
            answer = await http.post(url + "/v1/chat/completions", json=OPENAI_BODY)
            assert answer.status == 200
        assert await until(lambda: len(records) == 1)
        assert (records[0].price_in_per_1m, records[0].price_out_per_1m) == (150, 600)
        assert records[0].backend == f"agent:{agent.provider_id}"


async def test_a_whole_answer_through_an_agent_has_an_id(hub_gateway, engine, clients) -> None:
    gw, url = await hub_gateway(heartbeat_s=BEAT_S)
    async with await ready_agent(gw, url, engine):
        answer = await clients("openai", url).chat.completions.create(**OPENAI_BODY)
        message = await clients("anthropic", url).messages.create(max_tokens=10, **OPENAI_BODY)
        assert answer.id and message.id and answer.id != message.id
