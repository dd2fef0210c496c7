"""Jobs (modelport/agent/jobs.py) end to end: the fake coordinator sends them over a real
WebSocket, the agent serves them through the service to protocol fakes of the engines
(tests/fakes), and the fake hub reads the chunks and the terminal frame.

Both formats, passthrough and transcoded; every error code from an engine's real answer;
invalid jobs; deadlines; cancels (also racing the job's end); the capacity limit; a
dropped link; a hub that reads slowly."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp import web

from modelport.agent.jobs import error_code, streamed_body
from modelport.types import WireFormat
from modelport.wire.provider import Job, JobDone, JobError
from tests.agent.harness import (
    ANTHROPIC_HI,
    HI,
    MODEL,
    Started,
    eventually,
)
from tests.fakes import FakeEngine, Reply
from tests.fakes.coordinator import FakeCoordinator

SLOW = Reply(text="tick " * 200, chunk_chars=5, delay_s=0.02)  # about four seconds


def sse_data(stream: bytes) -> list[Any]:
    """The JSON payloads of an SSE stream (the hub's view of the reassembled chunks)."""
    out = []
    for line in stream.decode().splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            out.append(json.loads(line[5:]))
    return out


def openai_text(stream: bytes) -> str:
    return "".join(
        (c.get("delta") or {}).get("content") or ""
        for chunk in sse_data(stream)
        for c in chunk.get("choices", [])
    )


def anthropic_text(stream: bytes) -> str:
    return "".join(
        e["delta"].get("text", "")
        for e in sse_data(stream)
        if e.get("type") == "content_block_delta"
    )


# -- both formats ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "format", "passthrough"),
    [
        ("vllm", "openai", True),  # vLLM speaks Chat Completions
        ("vllm", "anthropic", True),  # and /v1/messages
        ("anthropic", "openai", False),  # an Anthropic engine: the OpenAI job is transcoded
        ("openai", "anthropic", False),  # an OpenAI engine: the Anthropic job is transcoded
    ],
)
async def test_a_job_streams_in_its_format_and_ends_with_its_tokens(
    engine_and_agent: Started, kind: str, format: str, passthrough: bool
) -> None:
    async with engine_and_agent(kind) as (engine, agent, conn):
        engine.default_reply = Reply(text="Hello from the fake.", usage=(11, 6))
        body = HI if format == "openai" else ANTHROPIC_HI
        job_id = await conn.send_job(MODEL, {"model": "whatever", **body}, format=format)
        end = await conn.job_end(job_id)
        assert isinstance(end, JobDone), end
        assert (end.tokens.input_tokens, end.tokens.output_tokens) == (11, 6)
        assert (end.tokens.input, end.tokens.output) == (11, 6)
        assert end.duration_ms >= 0
        stream = conn.job_bytes(job_id)
        text = openai_text(stream) if format == "openai" else anthropic_text(stream)
        assert text == "Hello from the fake."
        # The engine got a streamed request for the job's model.
        sent = engine.last.json
        assert sent["stream"] is True and sent["model"] == MODEL
        if engine.last.path.endswith("/chat/completions"):
            assert sent["stream_options"]["include_usage"] is True
        (record,) = agent.records
        assert record.passthrough is passthrough and record.request_id == job_id
        assert agent.observed.finished == [(job_id, "done", None)]


async def test_a_job_without_format_is_an_openai_job(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (engine, _agent, conn):
        job_id = await conn.send_job(MODEL, HI, format=None, deadline_ms=None)
        assert isinstance(await conn.job_end(job_id), JobDone)
        assert engine.last.path == "/v1/chat/completions"
        assert openai_text(conn.job_bytes(job_id)) == "Hello from the fake."


def test_the_body_is_streamed_with_usage_for_the_jobs_model() -> None:
    request = b'{"model":"x","stream":false,"stream_options":{"foo":1},"messages":[]}'
    job = Job("j", "m1", __import__("msgspec").Raw(request))
    body = json.loads(streamed_body(job, WireFormat.OPENAI) or b"")
    assert body["model"] == "m1" and body["stream"] is True
    assert body["stream_options"] == {"foo": 1, "include_usage": True}
    anthropic = json.loads(streamed_body(job, WireFormat.ANTHROPIC) or b"")
    assert anthropic["stream"] is True and anthropic["stream_options"] == {"foo": 1}


# -- refused before any engine ---------------------------------------------------------


async def test_an_invalid_job_never_reaches_the_engine(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (engine, _agent, conn):
        asked = len(engine.requests)
        bad = await conn.send_job(MODEL, {"messages": "not a list"})
        end = await conn.job_end(bad)
        assert isinstance(end, JobError) and end.error_code == "internal"
        assert end.message.startswith("invalid request: ") and "messages" in end.message
        not_object = await conn.send_job(MODEL, b"[1, 2]")
        end = await conn.job_end(not_object)
        assert isinstance(end, JobError) and end.message.startswith("invalid request: ")
        anthropic_bad = await conn.send_job(MODEL, {"messages": []}, format="anthropic")
        end = await conn.job_end(anthropic_bad)
        assert isinstance(end, JobError) and end.message.startswith("invalid request: ")
        assert engine.requests_to("/v1/chat/completions") == []
        assert engine.requests_to("/v1/messages") == []
        assert len(engine.requests) == asked
        assert conn.job_bytes(bad) == b""


async def test_an_unknown_format_is_refused_naming_it(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (engine, agent, conn):
        job_id = await conn.send_job(MODEL, HI, format="gemini")
        end = await conn.job_end(job_id)
        assert isinstance(end, JobError) and end.error_code == "internal"
        assert "'gemini'" in end.message
        assert engine.requests_to("/v1/chat/completions") == []
        assert agent.observed.finished == [(job_id, "refused", "internal")]


async def test_an_unknown_model_is_model_not_loaded(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (_engine, _agent, conn):
        end = await conn.job_end(await conn.send_job("no-such-model", HI))
        assert isinstance(end, JobError) and end.error_code == "model_not_loaded"
        assert "no-such-model" in end.message


# -- every error code from an engine's own answer ---------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (404, "model_not_loaded"),
        (401, "auth_rejected_by_backend"),
        (403, "auth_rejected_by_backend"),
        (429, "out_of_capacity"),
        (503, "out_of_capacity"),
        (500, "internal"),
    ],
)
async def test_engine_errors_map_to_their_codes(
    engine_and_agent: Started, status: int, code: str
) -> None:
    async with engine_and_agent("vllm") as (engine, agent, conn):
        engine.default_reply = Reply(status=status)
        end = await conn.job_end(await conn.send_job(MODEL, HI))
        assert isinstance(end, JobError), end
        assert (end.error_code, end.tokens_emitted) == (code, 0)
        assert end.message
        assert agent.observed.finished[-1][1:] == ("error", code)


async def test_an_unreachable_engine_is_backend_unreachable(engine_and_agent: Started) -> None:
    engine = FakeEngine("vllm", models=[MODEL])
    async with engine_and_agent("vllm", engine=engine) as (fake, _agent, conn):
        await fake.stop()  # it was there when the router read it; now the port refuses
        end = await conn.job_end(await conn.send_job(MODEL, HI))
        assert isinstance(end, JobError) and end.error_code == "backend_unreachable"
        assert "127.0.0.1" not in end.message  # no engine address leaves the agent


async def test_back_to_back_jobs_on_llama_server_never_fail(engine_and_agent: Started) -> None:
    # llama-server closes its connection right after a streamed answer (every job is one)
    # while saying keep-alive (docs/wire.md); the next job took that connection from the
    # pool and ended in backend_unreachable "Server disconnected".
    async with engine_and_agent("llamacpp") as (engine, agent, conn):
        engine.close_after_stream_s = 0.1  # its close comes late: the next job meets it
        for turn in range(6):
            body = HI if turn % 2 else ANTHROPIC_HI
            format = "openai" if turn % 2 else "anthropic"
            end = await conn.job_end(await conn.send_job(MODEL, body, format=format))
            assert isinstance(end, JobDone), (turn, end)
        assert [outcome for _, outcome, _ in agent.observed.finished] == ["done"] * 6


def test_error_code_table() -> None:
    assert error_code("DeadlineSpent") == "backend_timeout"
    assert error_code("QueueFull") == "out_of_capacity"
    assert error_code("UpstreamAuthError") == "auth_rejected_by_backend"
    assert error_code("ProtocolError") == "internal"
    assert error_code("NoSuchError") == "internal"


async def test_a_stream_failing_midway_forwards_its_error_frame_then_job_error(
    engine_and_agent: Started,
) -> None:
    async with engine_and_agent("vllm") as (engine, _agent, conn):
        engine.default_reply = Reply(text="abcdefghijkl", chunk_chars=2, fail_after_chunks=3)
        job_id = await conn.send_job(MODEL, HI)
        end = await conn.job_end(job_id)
        assert isinstance(end, JobError), end
        assert end.error_code == "internal" and end.message
        stream = conn.job_bytes(job_id)
        assert openai_text(stream) == "abcdef"
        assert "error" in sse_data(stream)[-1]  # the error frame went to the hub first
        assert conn.of_type("job_done") == []


# -- deadline, cancel, capacity -----------------------------------------------------------


async def test_deadline_before_the_first_byte(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (engine, agent, conn):
        engine.default_reply = Reply(hang=True)
        started = time.monotonic()
        end = await conn.job_end(await conn.send_job(MODEL, HI, deadline_ms=300))
        assert isinstance(end, JobError) and end.error_code == "backend_timeout"
        assert time.monotonic() - started < 2
        assert await engine.wait_disconnects(1, within=2) == 1  # the upstream was cancelled
        await eventually(lambda: agent.runner.in_flight == 0)


async def test_deadline_midway_counts_tokens_not_bytes(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (engine, _agent, conn):
        engine.default_reply = SLOW
        job_id = await conn.send_job(MODEL, HI, deadline_ms=400)
        end = await conn.job_end(job_id)
        assert isinstance(end, JobError) and end.error_code == "backend_timeout"
        assert len(conn.job_bytes(job_id)) > 0
        # The engine reported no usage before the cut: no tokens known, never a byte count.
        assert end.tokens_emitted == 0
        assert await engine.wait_disconnects(1, within=2) == 1


async def test_cancel_aborts_the_upstream_at_once_and_sends_nothing(
    engine_and_agent: Started,
) -> None:
    async with engine_and_agent("vllm") as (engine, agent, conn):
        engine.default_reply = SLOW
        job_id = await conn.send_job(MODEL, HI)
        await eventually(lambda: len(conn.job_bytes(job_id)) > 0)
        cancelled = time.monotonic()
        await conn.cancel(job_id)
        assert await engine.wait_disconnects(1, within=2) == 1
        assert time.monotonic() - cancelled < 0.5
        await eventually(lambda: agent.observed.outcome(job_id) is not None)
        await asyncio.sleep(0.2)
        assert conn.ended(job_id) is None  # no terminal frame for a cancelled job
        assert agent.observed.outcome(job_id) == ("cancelled", None)
        assert agent.runner.in_flight == 0


async def test_cancel_racing_the_end_leaves_the_count_right(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm", max_concurrent=3) as (engine, agent, conn):
        # Quick jobs, each cancelled as it is sent, as it ends and after it ended; and a
        # cancel of a job that never existed.
        for _ in range(10):
            a = await conn.send_job(MODEL, HI)
            await conn.cancel(a)
            b = await conn.send_job(MODEL, HI)
            await conn.job_end(b)
            await conn.cancel(b)
            c = await conn.send_job(MODEL, HI)
            await eventually(lambda c=c: len(conn.job_bytes(c)) > 0)  # type: ignore[misc]
            await conn.cancel(c)
            await conn.cancel("not-a-job")
        await eventually(lambda: agent.runner.in_flight == 0)
        # Every slot is free: max_concurrent slow jobs are all taken.
        engine.default_reply = SLOW
        held = [await conn.send_job(MODEL, HI) for _ in range(3)]
        await eventually(lambda: all(conn.job_bytes(j) for j in held))
        assert agent.runner.in_flight == 3
        assert [conn.ended(j) for j in held] == [None, None, None]
        for j in held:
            await conn.cancel(j)
        await eventually(lambda: agent.runner.in_flight == 0)


async def test_one_job_over_max_concurrent_is_refused_at_once(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm", max_concurrent=2) as (engine, agent, conn):
        engine.default_reply = SLOW
        held = [await conn.send_job(MODEL, HI) for _ in range(2)]
        extra = await conn.send_job(MODEL, HI)
        end = await conn.job_end(extra, timeout=1)
        assert isinstance(end, JobError) and end.error_code == "out_of_capacity"
        assert end.tokens_emitted == 0
        assert agent.observed.outcome(extra) == ("refused", "out_of_capacity")
        assert [conn.ended(j) for j in held] == [None, None]  # the others run on
        for j in held:
            await conn.cancel(j)
        await eventually(lambda: agent.runner.in_flight == 0)
        # A freed slot takes the next job.
        engine.default_reply = Reply()
        assert isinstance(await conn.job_end(await conn.send_job(MODEL, HI)), JobDone)


async def test_a_duplicate_job_id_is_refused_while_the_first_runs(
    engine_and_agent: Started,
) -> None:
    async with engine_and_agent("vllm") as (engine, agent, conn):
        engine.default_reply = SLOW
        job_id = await conn.send_job(MODEL, HI)
        await eventually(lambda: len(conn.job_bytes(job_id)) > 0)
        await conn.send_job(MODEL, HI, job_id=job_id)
        end = await conn.next_frame("job_error", timeout=2)
        assert isinstance(end, JobError) and end.error_code == "internal"
        assert "duplicate" in end.message
        assert agent.runner.in_flight == 1  # the first one still runs
        await conn.cancel(job_id)


# -- the link --------------------------------------------------------------------------


async def test_a_dropped_link_cancels_its_jobs_upstream(
    engine_and_agent: Started, hub: FakeCoordinator
) -> None:
    async with engine_and_agent("vllm") as (engine, agent, conn):
        engine.default_reply = SLOW
        jobs = [await conn.send_job(MODEL, HI) for _ in range(2)]
        await eventually(lambda: all(conn.job_bytes(j) for j in jobs))
        await conn.drop()
        assert await engine.wait_disconnects(2, within=2) == 2
        await eventually(lambda: agent.runner.in_flight == 0)
        assert sorted(o for _, o, _ in agent.observed.finished) == ["cancelled", "cancelled"]
        again = await hub.next_connection()  # and it comes back
        engine.default_reply = Reply()
        assert isinstance(await again.job_end(await again.send_job(MODEL, HI)), JobDone)


class CountingEngine(FakeEngine):
    """A FakeEngine that counts the bytes its chat streams have written so far."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.written = 0

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.endswith(("/chat/completions", "/v1/messages")):
            return
        write = response.write

        async def counted(data: bytes) -> None:
            await write(data)
            self.written += len(data)

        response.write = counted  # type: ignore[method-assign]


@pytest.mark.parametrize("kind", ["vllm", "anthropic"])  # passthrough, then transcoded
async def test_a_slow_hub_slows_the_engine_down(engine_and_agent: Started, kind: str) -> None:
    # 48 MiB of answer in 64 KiB chunks: more than the socket buffers on the way hold.
    total = 48 * 1024 * 1024
    engine = CountingEngine(kind, models=[MODEL])
    engine.default_reply = Reply(text="x" * total, chunk_chars=64 * 1024)
    async with engine_and_agent(kind, engine=engine) as (_fake, _agent, conn):
        conn.pause_reading()
        job_id = await conn.send_job(MODEL, HI)
        await eventually(lambda: engine.written > 0)
        await asyncio.sleep(0.5)
        stalled = engine.written
        await asyncio.sleep(0.5)
        # The engine waits on the agent, which waits on the hub: nothing moves, and what
        # the engine wrote is a small part of the answer (socket buffers, not the agent's
        # memory, hold it).
        assert engine.written == stalled
        assert stalled < total // 2, stalled
        conn.resume_reading()
        end = await conn.job_end(job_id, timeout=30)
        assert isinstance(end, JobDone), end
        assert engine.written > total
        assert len(openai_text(conn.job_bytes(job_id))) == total
