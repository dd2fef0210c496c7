"""Relay jobs (modelport's protocol extension, docs/wire.md): a modelport agent advertises
`relay_jobs` and runs a `"relay": true` job as the client sent it, through the same service
path as a gateway request, so the job's bytes are exactly the answer a gateway would send
that client: metered at the agent (job_done carries the tokens), a usage-only chunk the
client did not ask for left out, and on a failure no error frame of the agent's own (the
hub writes the client's error event from job_error)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.agent.jobs import CHUNK_BYTES, relayed_body
from modelport.wire.provider import RELAY_JOBS, Job, JobDone, JobError
from tests.agent.harness import ANTHROPIC_HI, HI, MODEL, Started, eventually
from tests.agent.test_jobs import anthropic_text, openai_text, sse_data
from tests.fakes import Reply
from tests.fakes.core import DEFAULT_ERROR_MESSAGE

TEXT = "Hello from the fake."


async def test_a_modelport_agent_advertises_relay_jobs(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (_engine, _agent, conn):
        await eventually(lambda: bool(conn.capabilities))
        assert RELAY_JOBS in (conn.capabilities[0].metadata.features or ())


@pytest.mark.parametrize("asks_usage", [False, True])
async def test_a_relay_job_is_the_clients_stream_with_usage_only_if_asked(
    engine_and_agent: Started, asks_usage: bool
) -> None:
    async with engine_and_agent("vllm") as (engine, agent, conn):
        engine.default_reply = Reply(text=TEXT, usage=(11, 6))
        body: dict[str, Any] = {"model": MODEL, **HI, "stream": True}
        if asks_usage:
            body["stream_options"] = {"include_usage": True}
        job_id = await conn.send_job(MODEL, body, relay=True)
        end = await conn.job_end(job_id)
        assert isinstance(end, JobDone), end
        # Metered at the agent whether the client asked for usage or not.
        assert (end.tokens.input_tokens, end.tokens.output_tokens) == (11, 6)
        sent = engine.last.json
        assert sent["stream"] is True and sent["stream_options"]["include_usage"] is True
        stream = conn.job_bytes(job_id)
        assert openai_text(stream) == TEXT
        usage_chunks = [c for c in sse_data(stream) if c.get("usage") and not c.get("choices")]
        assert len(usage_chunks) == (1 if asks_usage else 0)
        assert stream.rstrip().endswith(b"data: [DONE]")
        (record,) = agent.records
        assert record.passthrough and record.stream and record.request_id == job_id


async def test_an_anthropic_relay_job_is_the_clients_stream(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (engine, _agent, conn):
        engine.default_reply = Reply(text=TEXT, usage=(11, 6))
        body = {"model": MODEL, **ANTHROPIC_HI, "stream": True}
        job_id = await conn.send_job(MODEL, body, format="anthropic", relay=True)
        end = await conn.job_end(job_id)
        assert isinstance(end, JobDone) and end.tokens.output_tokens == 6
        stream = conn.job_bytes(job_id)
        assert anthropic_text(stream) == TEXT
        assert b"event: message_stop" in stream


async def test_a_relay_job_without_stream_is_answered_whole(engine_and_agent: Started) -> None:
    async with engine_and_agent("vllm") as (engine, _agent, conn):
        engine.default_reply = Reply(text=TEXT, usage=(11, 6))
        job_id = await conn.send_job(MODEL, {"model": MODEL, **HI}, relay=True)
        end = await conn.job_end(job_id)
        assert isinstance(end, JobDone) and end.tokens.output_tokens == 6
        answer = json.loads(conn.job_bytes(job_id))
        assert answer["choices"][0]["message"]["content"] == TEXT
        assert not engine.last.json.get("stream")


@pytest.mark.parametrize("relay", [False, True])
async def test_a_failing_stream_ends_in_job_error_with_the_engines_message(
    engine_and_agent: Started, relay: bool
) -> None:
    """A usepod-style job forwards the service's error frame (the hub meters it); a relay
    job does not: its hub writes the client's one error event from job_error."""
    async with engine_and_agent("vllm") as (engine, _agent, conn):
        engine.default_reply = Reply(text="abcdefghijkl", chunk_chars=2, fail_after_chunks=3)
        job_id = await conn.send_job(MODEL, {"model": MODEL, **HI, "stream": True}, relay=relay)
        end = await conn.job_end(job_id)
        assert isinstance(end, JobError), end
        assert DEFAULT_ERROR_MESSAGE in end.message
        stream = conn.job_bytes(job_id)
        assert openai_text(stream) == "abcdef"
        errors = [c for c in sse_data(stream) if "error" in c]
        assert len(errors) == (0 if relay else 1)


def test_a_relay_body_is_the_clients_bytes_when_it_names_the_model() -> None:
    request = b'{"model": "m1", "stream": true, "messages": []}'
    job = Job("j", "m1", request, relay=True)  # type: ignore[arg-type]
    assert relayed_body(job) == request  # not re-encoded
    renamed = relayed_body(Job("j", "m2", request, relay=True))  # type: ignore[arg-type]
    assert renamed is not None and json.loads(renamed) == {
        "model": "m2",
        "stream": True,
        "messages": [],
    }
    assert relayed_body(Job("j", "m1", b"[1]", relay=True)) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("relay", [False, True])
async def test_a_stream_frame_longer_than_a_chunk_goes_in_pieces(
    engine_and_agent: Started, relay: bool
) -> None:
    """A hub takes WebSocket messages of 1 MiB by default: one SSE event of 1.5 MB (a long
    text in one delta) goes in job_chunks of at most CHUNK_BYTES, which rejoin as sent."""
    async with engine_and_agent("vllm") as (engine, _agent, conn):
        text = "y" * 1_500_000
        engine.default_reply = Reply(text=text, chunk_chars=len(text))
        job_id = await conn.send_job(MODEL, {"model": MODEL, **HI, "stream": True}, relay=relay)
        assert isinstance(await conn.job_end(job_id), JobDone)
        chunks = conn.job_chunks(job_id)
        assert max(len(c) for c in chunks) <= CHUNK_BYTES and len(chunks) >= 6
        assert openai_text(b"".join(chunks)) == text
