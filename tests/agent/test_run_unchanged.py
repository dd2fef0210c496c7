"""Issue 12 "Done when": an agent.toml and identity made for usepod-agent run unchanged.

The real `modelport agent run -c agent.toml --allow-insecure` process, against the fake
coordinator (tests/fakes/coordinator.py, a real WebSocket server) and engine protocol
fakes. agent.toml is usepod-agent's agent.example.toml (tests/agent/samples.py) with this
machine's addresses put in (the hub, the engine, the metrics port, the key file) and its
OpenRouter row replaced by a llama.cpp one (a BYOK row would dial the vendor); it has no
`[modelport]` table. The identity file is written with `cryptography` as identity.rs
writes it (tests/hub/processes.py), without a provider_id: the agent enrolls with the
file's enrollment code and persists the id it is given, in usepod's format.

Heartbeats come every 15 s (heartbeat.rs; agent.toml has no knob for it), so this test
waits about that long for one.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelport.wire.provider import Capabilities, Heartbeat, JobDone
from tests.agent.samples import USEPOD_EXAMPLE_TOML
from tests.fakes.coordinator import CoordinatorConn, FakeCoordinator
from tests.fakes.core import Reply
from tests.fakes.engine import FakeEngine
from tests.hub.processes import (
    Proc,
    free_port,
    identity_text,
    modelport,
    pubkey_b64,
    run_modelport,
    until,
    write_identity,
)

LLAMA = "meta-llama/Llama-3.3-70B-Instruct"  # priced in the example's [pricing.models]
LOCAL = "gemma-local"  # on the llama.cpp engine: the default prices
ENROLL = "POD-ENROLL-7K9X4LM2"  # the example's enrollment code
HI = [{"role": "user", "content": "hi"}]
TEXT = "Hello from the fake."


def usepod_agent_toml(
    hub_url: str, key_path: Path, vllm_url: str, llama_url: str, metrics: int
) -> str:
    text = USEPOD_EXAMPLE_TOML
    byok = '[[backends]]\nkind = "openrouter"\napi_key_env = "OPENROUTER_API_KEY"\nmarkup = 0.05\n'
    assert byok in text
    for old, new in (
        ("wss://api.usepod.ai/provider/connect", hub_url),
        ("~/.usepod-agent/identity.key", str(key_path)),
        ("http://localhost:8000", vllm_url),
        (byok, f'[[backends]]\nkind = "llamacpp"\nurl = "{llama_url}"\n'),
        ("127.0.0.1:9090", f"127.0.0.1:{metrics}"),
    ):
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.fixture
async def engines() -> AsyncIterator[tuple[FakeEngine, FakeEngine]]:
    async with (
        FakeEngine("vllm", models=[LLAMA], context_window=32768) as vllm,
        FakeEngine("llamacpp", models=[LOCAL], context_window=8192) as llama,
    ):
        yield vllm, llama


def sse_payloads(data: bytes) -> list[dict[str, object]]:
    return [
        json.loads(line[5:])
        for line in data.decode().splitlines()
        if line.startswith("data:") and line[5:].strip() != "[DONE]"
    ]


async def test_usepod_files_run_unchanged(
    tmp_path: Path, engines: tuple[FakeEngine, FakeEngine]
) -> None:
    vllm, llama = engines
    key_path = tmp_path / "keys" / "identity.key"
    key = write_identity(key_path)
    metrics = free_port()
    async with FakeCoordinator(provider_id="prov-fake-1") as hub:
        config = tmp_path / "agent.toml"
        config.write_text(usepod_agent_toml(hub.url, key_path, vllm.url, llama.url, metrics))
        agent = modelport(
            "agent", "agent", "run", "-c", str(config), "--allow-insecure", home=tmp_path
        )
        try:
            conn = await hub.next_connection(timeout=30)
            await _first_connection(conn, key, key_path)
            await _jobs(conn, vllm, llama)
            await _metrics(metrics)
            # heartbeat.rs: the first one an interval (15 s) after auth, with real figures
            beat = await conn.next_frame("heartbeat", timeout=20)
            assert isinstance(beat, Heartbeat)
            assert beat.queue_depth == 0 and beat.p50_latency_ms > 0
            assert beat.tokens_per_sec_p50 > 0
            await _drain_and_back(hub, conn, agent)
            stopped = time.monotonic()
            assert agent.stop() == 0, agent.tail()
            stop_s = time.monotonic() - stopped
        finally:
            agent.stop()
    output = agent.output()
    assert "Traceback" not in output, output
    assert stop_s < 5, stop_s
    await _status(config, tmp_path)


async def _first_connection(conn: CoordinatorConn, key: Ed25519PrivateKey, key_path: Path) -> None:
    # The fake verified the signature over its nonce (check_signature) before auth_ok.
    assert conn.auth_result == "ok"
    assert conn.auth_response is not None
    assert conn.auth_response.pubkey == pubkey_b64(key)
    assert conn.auth_response.enrollment_code == ENROLL  # no provider_id stored yet
    # The provider id is persisted in usepod's format: the file is identity.rs's
    # `serialize` with the id, nothing else changed.
    await until(lambda: "provider_id" in _read(key_path)[0])
    assert _read(key_path) == (identity_text(key, "prov-fake-1"), 0o600)
    caps = await conn.next_frame("capabilities", timeout=10)
    assert isinstance(caps, Capabilities)
    rows = {m.model_id: m for m in caps.models}
    assert set(rows) == {LLAMA, LOCAL}
    assert (rows[LLAMA].input_per_1m, rows[LLAMA].output_per_1m) == (300_000, 450_000)
    assert (rows[LOCAL].input_per_1m, rows[LOCAL].output_per_1m) == (500_000, 750_000)
    assert (rows[LLAMA].backend, rows[LLAMA].context_window) == ("vllm", 32768)
    assert (rows[LOCAL].backend, rows[LOCAL].context_window) == ("llamacpp", 8192)
    assert {m.max_concurrent for m in caps.models} == {8}
    assert (caps.limits.max_concurrent_total, caps.limits.max_tokens_per_minute) == (8, 200_000)
    assert caps.metadata.agent_version
    assert await conn.ping(b"are you there") == b"are you there"


def _read(path: Path) -> tuple[str, int]:
    """The file's text and permission bits."""
    return path.read_text(), path.stat().st_mode & 0o777


async def _jobs(conn: CoordinatorConn, vllm: FakeEngine, llama: FakeEngine) -> None:
    job = await conn.send_job(LLAMA, {"messages": HI})
    done = await conn.job_end(job, timeout=15)
    assert isinstance(done, JobDone), done
    assert (done.tokens.input_tokens, done.tokens.output_tokens) == (7, 5)
    text = "".join(
        c["delta"].get("content") or ""  # type: ignore[index, union-attr]
        for p in sse_payloads(conn.job_bytes(job))
        for c in p.get("choices", [])  # type: ignore[union-attr]
    )
    assert text == TEXT

    job = await conn.send_job(LOCAL, {"max_tokens": 64, "messages": HI}, format="anthropic")
    done = await conn.job_end(job, timeout=15)
    assert isinstance(done, JobDone), done
    events = sse_payloads(conn.job_bytes(job))
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    assert (
        "".join(
            e["delta"].get("text", "")  # type: ignore[index, union-attr]
            for e in events
            if e["type"] == "content_block_delta"
        )
        == TEXT
    )

    # job_cancel: the engine sees its request closed, and the job gets no terminal frame.
    vllm.replies.append(Reply(text="word " * 200, chunk_chars=5, delay_s=0.05))
    job = await conn.send_job(LLAMA, {"messages": HI})
    await until(lambda: conn.job_chunks(job))
    await conn.cancel(job)
    assert await vllm.wait_disconnects(1, within=5) == 1
    late = len(conn.raw)
    await until(lambda: len(conn.raw) > late, within=20)  # anything after the cancel (a beat)
    assert conn.ended(job) is None
    assert llama.disconnects == 0


async def _metrics(port: int) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as answer,
    ):
        text = await answer.text()
    assert "modelport_agent_connected 1" in text
    assert re.search(r'modelport_agent_jobs_total\{error_code="",outcome="done"\} 2\.0', text), text
    assert re.search(r'modelport_agent_jobs_total\{error_code="",outcome="cancelled"\} 1\.0', text)


async def _drain_and_back(hub: FakeCoordinator, conn: CoordinatorConn, agent: Proc) -> None:
    """Close 1001 drain:deploy: a planned disconnect; the agent comes back after its 1 s
    backoff (x0.8-1.2), without the enrollment code now that it has a provider id."""
    closed = time.monotonic()
    await conn.close(1001, "drain:deploy")
    again = await hub.next_connection(timeout=10)
    gap = again.opened_at - closed
    assert 0.7 < gap < 3, gap
    assert again.auth_response is not None and again.auth_response.enrollment_code is None
    assert isinstance(await again.next_frame("capabilities", timeout=10), Capabilities)
    await agent.wait_for("drain:deploy")


async def _status(config: Path, home: Path) -> None:
    code, out = await run_modelport("agent", "status", "-c", str(config), home=home)
    assert code == 0, out
    assert "prov-fake-1" in out
    assert "not running" in out
    all_time = out.split("jobs, all time")[1].split("jobs, last 24 h")[0]
    rows = {line.split()[0]: line.split() for line in all_time.splitlines()[2:] if line.strip()}
    # model, jobs, errors, tokens in, tokens out, earned USDC: the cancelled job counts as a
    # failed job that earned nothing; 7 in and 5 out at 300_000 / 450_000 micro-USDC per
    # million is 4.35 micro-USDC, at the default 500_000 / 750_000 7.25
    assert rows[LLAMA][1:] == ["2", "1", "7", "5", "0.000004"], out
    assert rows[LOCAL][1:] == ["1", "0", "7", "5", "0.000007"], out
    assert rows["total"][1:] == ["3", "1", "14", "10", "0.000012"], out


async def test_status_shows_a_ws_coordinator_without_the_flag(tmp_path: Path) -> None:
    """`agent status` never dials: a team agent's ws:// hub (run with --allow-insecure) is
    shown, not refused as `run` refuses it without the flag."""
    key_path = tmp_path / "identity.key"
    write_identity(key_path)
    config = tmp_path / "agent.toml"
    hub = "ws://127.0.0.1:9/provider/connect"
    config.write_text(
        usepod_agent_toml(hub, key_path, "http://127.0.0.1:9", "http://127.0.0.1:10", free_port())
    )
    code, out = await run_modelport("agent", "status", "-c", str(config), home=tmp_path)
    assert code == 0, out
    assert hub in out and "not running" in out
    code, out = await run_modelport("agent", "validate", "-c", str(config), home=tmp_path)
    assert code == 1 and "--allow-insecure" in out, out  # validate still says it
