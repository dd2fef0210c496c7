"""Jobs on the real engine: the bundled llama-server, served by an agent to the fake
coordinator, in both job formats.

It needs `modelport engine install`, as tests/test_real_engine.py does; without the engine
these tests fail and say so (a tier that cannot run is never skipped in silence).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from modelport.backends.managed import BUNDLED_ALIAS
from modelport.config import parse_config
from modelport.engine import installed
from modelport.gateway.server import Gateway
from modelport.wire.provider import JobDone
from tests.agent.harness import running_agent
from tests.fakes.coordinator import FakeCoordinator

PROMPT = [{"role": "user", "content": "The capital of France is"}]


@pytest.fixture(scope="module")
def engine_paths():  # type: ignore[no-untyped-def]
    paths = installed()
    if paths is None:
        pytest.fail(
            "the embedded engine is not installed, so the real-engine tier cannot run: "
            "run `modelport engine install` (bash .ci/run does it)"
        )
    return paths


@pytest.fixture
async def gateway(engine_paths, tmp_path) -> AsyncIterator[Gateway]:  # type: ignore[no-untyped-def]
    """The gateway's own service over the bundled engine: the agent runs jobs through it."""
    config = parse_config(
        f"""
        [server]
        ledger = "{tmp_path / "usage.sqlite3"}"
        request_timeout_s = 60
        [discovery]
        enabled = false
        [[backends]]
        name = "embedded"
        kind = "managed"
        ctx_size = 2048
        parallel = 2
        """
    )
    config = msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, port=0))
    gw = Gateway(config, env={})
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop(grace_s=1)


def payloads(stream: bytes) -> list[Any]:
    return [
        json.loads(line[5:])
        for line in stream.decode().splitlines()
        if line.startswith("data:") and line[5:].strip() != "[DONE]"
    ]


# Each job gets a gateway of its own: this llama-server build closes its connection right
# after a streamed answer while announcing keep-alive, so a request sent at once after one
# can take the closed connection from the pool and fail ("Server disconnected"), through
# the gateway as through the agent (docs/agent.md, "Jobs").


async def test_an_openai_job_on_the_real_engine(gateway: Gateway) -> None:
    async with FakeCoordinator() as hub, running_agent(hub.url, gateway.service) as agent:
        conn = await hub.next_connection()
        job_id = await conn.send_job(
            BUNDLED_ALIAS, {"messages": PROMPT, "max_tokens": 8, "temperature": 0}
        )
        end = await conn.job_end(job_id, timeout=120)
        assert isinstance(end, JobDone), end
        assert end.tokens.input_tokens > 0 and 0 < end.tokens.output_tokens <= 8
        chunks = payloads(conn.job_bytes(job_id))
        text = "".join(
            (c.get("delta") or {}).get("content") or ""
            for p in chunks
            for c in p.get("choices", [])
        )
        assert text.strip()
        # The usage chunk include_usage asked for is in the stream, and agrees.
        usage = next(p["usage"] for p in chunks if p.get("usage"))
        assert usage["completion_tokens"] == end.tokens.output_tokens
        (record,) = agent.records
        assert record.format == "openai" and record.passthrough and not record.error


async def test_an_anthropic_job_on_the_real_engine(gateway: Gateway) -> None:
    async with FakeCoordinator() as hub, running_agent(hub.url, gateway.service) as agent:
        conn = await hub.next_connection()
        job_id = await conn.send_job(
            BUNDLED_ALIAS, {"messages": PROMPT, "max_tokens": 8}, format="anthropic"
        )
        end = await conn.job_end(job_id, timeout=120)
        assert isinstance(end, JobDone), end
        assert end.tokens.input_tokens > 0 and 0 < end.tokens.output_tokens <= 8
        events = payloads(conn.job_bytes(job_id))
        assert events[0]["type"] == "message_start"
        assert events[-1]["type"] == "message_stop"
        assert "".join(
            e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta"
        ).strip()
        (record,) = agent.records
        assert record.format == "anthropic" and record.passthrough and not record.error
