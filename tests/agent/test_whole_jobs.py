"""Whole jobs (modelport's protocol extension, docs/wire.md): a modelport agent advertises
`whole_jobs` and answers a `"stream": false` job with the engine's one JSON body, run as
the client sent it, then job_done with the record's tokens; a failure sends no bytes before
its job_error (so the hub can still fall back)."""

from __future__ import annotations

import json

import msgspec
import pytest

from modelport.agent.jobs import CHUNK_BYTES, streamed_body
from modelport.types import WireFormat
from modelport.wire.provider import WHOLE_JOBS, Job, JobDone, JobError
from tests.agent.harness import ANTHROPIC_HI, HI, MODEL, Started, eventually
from tests.fakes import Reply

TEXT = "Hello from the fake."


async def test_a_modelport_agent_advertises_whole_jobs(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (_engine, _agent, conn):
        await eventually(lambda: bool(conn.capabilities))
        assert WHOLE_JOBS in (conn.capabilities[0].metadata.features or ())


@pytest.mark.parametrize(
    ("kind", "format", "passthrough"),
    [
        ("vllm", "openai", True),
        ("vllm", "anthropic", True),
        ("anthropic", "openai", False),  # transcoded at the agent: still one JSON body
    ],
)
async def test_a_whole_job_is_answered_with_the_engines_json_body(
    engine_and_agent: Started, kind: str, format: str, passthrough: bool
) -> None:
    async with engine_and_agent(kind) as (engine, agent, conn):
        engine.default_reply = Reply(text=TEXT, usage=(11, 6))
        body = HI if format == "openai" else ANTHROPIC_HI
        job_id = await conn.send_job(MODEL, {"model": "x", **body}, format=format, stream=False)
        end = await conn.job_end(job_id)
        assert isinstance(end, JobDone), end
        assert (end.tokens.input_tokens, end.tokens.output_tokens) == (11, 6)
        answer = json.loads(conn.job_bytes(job_id))  # one JSON object, no SSE
        if format == "openai":
            assert answer["object"] == "chat.completion"
            assert answer["choices"][0]["message"]["content"] == TEXT
        else:
            assert answer["type"] == "message" and answer["content"][0]["text"] == TEXT
        assert answer["model"] == MODEL
        # The engine was asked for a whole answer (never streamed, no stream_options).
        sent = engine.last.json
        assert not sent.get("stream") and "stream_options" not in sent
        (record,) = agent.records
        assert record.passthrough is passthrough and record.stream is False
        assert agent.observed.finished == [(job_id, "done", None)]


async def test_a_large_whole_answer_is_cut_into_chunks(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (engine, _agent, conn):
        engine.default_reply = Reply(text="x" * (CHUNK_BYTES + 1000))
        job_id = await conn.send_job(MODEL, HI, stream=False)
        assert isinstance(await conn.job_end(job_id), JobDone)
        chunks = conn.job_chunks(job_id)
        assert len(chunks) == 2 and len(chunks[0]) == CHUNK_BYTES
        assert len(json.loads(b"".join(chunks))["choices"][0]["message"]["content"]) > (CHUNK_BYTES)


async def test_a_failed_whole_job_sends_no_bytes_before_its_error(
    engine_and_agent: Started,
) -> None:
    async with engine_and_agent("vllm") as (engine, _agent, conn):
        engine.default_reply = Reply(status=429)
        job_id = await conn.send_job(MODEL, HI, stream=False)
        end = await conn.job_end(job_id)
        assert isinstance(end, JobError) and end.error_code == "out_of_capacity"
        assert conn.job_bytes(job_id) == b""


def test_a_whole_jobs_body_is_left_unstreamed() -> None:
    request = b'{"model":"x","stream":true,"messages":[]}'
    job = Job("j", "m1", msgspec.Raw(request), stream=False)
    body = json.loads(streamed_body(job, WireFormat.OPENAI) or b"")
    assert body == {"model": "m1", "stream": False, "messages": []}
