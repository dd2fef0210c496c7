"""The agent's hub link (modelport/agent/session.py) against the fake coordinator
(tests/fakes/coordinator.py, the hub side as usepod-agent 0.3.3's ws_client.rs expects it):
handshake, enrollment code, provider id, refusals, Ping/Pong, frames it must ignore, planned
drains, the reconnect backoff and its reset, heartbeats and capabilities."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from modelport import __version__
from modelport.agent.session import AgentSession, Timings, check_url
from modelport.wire.provider import Capabilities, Heartbeat, JobDone
from tests.agent.harness import FAST, KeyIdentity, capabilities, eventually, running_agent
from tests.fakes.coordinator import FakeCoordinator


async def test_handshake_signs_the_nonce_and_sends_capabilities_then_heartbeats() -> None:
    identity = KeyIdentity()
    async with FakeCoordinator() as hub, running_agent(hub.url, identity=identity) as agent:
        conn = await hub.next_connection()
        # The fake verified the signature over the raw nonce bytes (check_signature).
        assert conn.auth_result == "ok"
        response = conn.auth_response
        assert response is not None
        assert response.pubkey == identity.public_key_b64
        assert response.agent_version == __version__
        assert response.enrollment_code is None
        caps = await conn.next_frame("capabilities")
        assert isinstance(caps, Capabilities)
        assert caps.models == []  # an empty list is still sent
        assert caps.metadata.formats == ("openai", "anthropic")
        assert caps.metadata.agent_version == __version__
        beat = await conn.next_frame("heartbeat", timeout=2)
        assert isinstance(beat, Heartbeat) and beat.queue_depth == 0
        # The first heartbeat comes one interval after auth, not at once (heartbeat.rs).
        assert conn.frames.index(caps) < conn.frames.index(beat)
        assert agent.observed.ups == [True]


async def test_provider_id_is_persisted_only_when_it_differs() -> None:
    fresh = KeyIdentity()
    hub = FakeCoordinator(provider_id="prov-abc")
    async with hub, running_agent(hub.url, identity=fresh):
        await hub.next_connection()
        await eventually(lambda: fresh.saved == ["prov-abc"])
    known = KeyIdentity(provider_id="prov-abc")
    hub = FakeCoordinator(provider_id="prov-abc")
    async with hub, running_agent(hub.url, identity=known):
        conn = await hub.next_connection()
        await conn.next_frame("capabilities")
        assert known.saved == []


@pytest.mark.parametrize(
    ("stored", "configured", "sent"),
    [
        (None, "ENROLL-1", "ENROLL-1"),  # no provider id yet: the code goes
        ("prov-1", "ENROLL-1", None),  # enrolled already: never again
        (None, None, None),  # nothing configured
    ],
)
async def test_enrollment_code_only_before_enrollment(
    stored: str | None, configured: str | None, sent: str | None
) -> None:
    identity = KeyIdentity(provider_id=stored)
    async with (
        FakeCoordinator() as hub,
        running_agent(hub.url, identity=identity, enrollment_code=configured),
    ):
        conn = await hub.next_connection()
        assert conn.auth_response is not None
        assert conn.auth_response.enrollment_code == sent


class WrongKey(KeyIdentity):
    """Signs with another key than the one it presents."""

    def sign_b64(self, message: bytes) -> str:
        return KeyIdentity(bytes(32)).sign_b64(message)


async def test_auth_failed_is_logged_and_retried_without_crashing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="modelport.agent.session")
    refusals = ["unknown key", "revoked key"]

    def accept(pubkey: str) -> str | None:
        return refusals.pop(0) if refusals else None

    async with FakeCoordinator(accept=accept) as hub, running_agent(hub.url) as agent:
        conn = await hub.next_connection()  # the third attempt is admitted
        assert [c.auth_result for c in hub.connections] == ["unknown key", "revoked key", "ok"]
        await conn.next_frame("capabilities")
        assert not agent.task.done()
    text = caplog.text
    assert "the hub refused this agent: unknown key" in text
    assert "the hub refused this agent: revoked key" in text


async def test_a_wrong_signature_is_refused_by_the_hub() -> None:
    async with FakeCoordinator() as hub, running_agent(hub.url, identity=WrongKey()):
        # Two connections whose handshakes are over (a second may be mid-way when it opens).
        await eventually(
            lambda: (
                len(hub.connections) >= 2
                and all(c.auth_result is not None for c in hub.connections[:2])
            )
        )
        assert {c.auth_result for c in hub.connections[:2]} == {"invalid signature"}
        assert hub.authenticated == []


async def test_ping_is_answered_with_pong() -> None:
    async with FakeCoordinator() as hub, running_agent(hub.url):
        conn = await hub.next_connection()
        assert await conn.ping(b"are-you-there") == b"are-you-there"


async def test_malformed_unknown_and_binary_frames_are_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="modelport.agent.session")
    async with FakeCoordinator() as hub, running_agent(hub.url) as agent:
        conn = await hub.next_connection()
        await conn.send_raw("{not json")
        await conn.send_raw('{"type": "job", "job_id": "j1"}')  # no model, no request
        await conn.send_raw('{"no_type": 1}')
        await conn.send_raw('{"type": "config_update", "x": 1}')
        await conn.send_bytes(b"\x00\x01binary")
        await conn.send_raw('{"type": "job_cancel", "job_id": "never-started"}')
        # Still the same connection, still answering.
        assert await conn.ping(b"still") == b"still"
        assert len(hub.connections) == 1 and not conn.closed.is_set()
        assert agent.runner.in_flight == 0
    assert "malformed job frame" in caplog.text
    assert "frame is not JSON" in caplog.text
    assert "ignored a binary frame" in caplog.text


async def test_close_1001_drain_is_planned_and_the_agent_comes_back_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="modelport.agent.session")
    async with FakeCoordinator() as hub, running_agent(hub.url) as agent:
        first = await hub.next_connection()
        await first.close(1001, "drain:deploy")
        second = await hub.next_connection()
        await second.close(1001, "drain:operator")
        third = await hub.next_connection()
        await third.next_frame("capabilities")  # capabilities again on every connection
        # Back after the first step of the backoff each time (reset after an auth), with a
        # second's slack for a loaded machine: the reset itself is pinned by the backoff
        # test below, this one that a drain is not an error that waits long.
        for before, after in ((first, second), (second, third)):
            assert before.closed_at is not None
            assert after.opened_at - before.closed_at < FAST.backoff_start_s * 1.2 + 1.0
        assert agent.observed.ups == [True, False, True, False, True]
        assert agent.observed.reconnects == 2
    assert "planned drain (drain:deploy)" in caplog.text
    assert "planned drain (drain:operator)" in caplog.text


async def test_backoff_doubles_to_its_cap_and_resets_after_an_auth() -> None:
    timings = Timings(heartbeat_interval_s=5, backoff_start_s=0.1, backoff_max_s=0.4)
    refusals = 5

    def accept(pubkey: str) -> str | None:
        nonlocal refusals
        refusals -= 1
        return "unknown key" if refusals >= 0 else None

    async with FakeCoordinator(accept=accept) as hub, running_agent(hub.url, timings=timings):
        conn = await hub.next_connection(timeout=10)
        await conn.close(1001, "drain:deploy")
        again = await hub.next_connection()
        opened = [c.opened_at for c in hub.connections]
        gaps = [b - a for a, b in itertools.pairwise(opened)]
        # Refused five times: 0.1, 0.2, 0.4, 0.4, 0.4 (x0.8-1.2), then admitted.
        expected = [0.1, 0.2, 0.4, 0.4, 0.4]
        for gap, step in zip(gaps[:5], expected, strict=True):
            assert step * 0.8 - 0.01 <= gap <= step * 1.2 + 0.1, gaps
        # After the authenticated connection ended, back to the first step.
        assert again.opened_at - (conn.closed_at or 0) <= 0.1 * 1.2 + 0.1


async def test_heartbeat_carries_the_figures_and_the_queue_depth() -> None:
    def figures(depth: int) -> Heartbeat:
        return Heartbeat(queue_depth=depth, tokens_per_sec_p50=42.5, p95_latency_ms=7)

    async with FakeCoordinator() as hub, running_agent(hub.url, heartbeat=figures):
        conn = await hub.next_connection()
        beat = await conn.next_frame("heartbeat", timeout=2)
        assert beat == Heartbeat(queue_depth=0, tokens_per_sec_p50=42.5, p95_latency_ms=7)
        await conn.next_frame("heartbeat", timeout=2)  # and again, every interval


async def test_a_failing_heartbeat_figure_still_sends_the_queue_depth() -> None:
    def broken(depth: int) -> Heartbeat:
        raise ZeroDivisionError("no jobs yet")

    async with FakeCoordinator() as hub, running_agent(hub.url, heartbeat=broken):
        conn = await hub.next_connection()
        assert await conn.next_frame("heartbeat", timeout=2) == Heartbeat(queue_depth=0)
        await conn.next_frame("heartbeat", timeout=2)


async def test_send_capabilities_on_rediscovery() -> None:
    async with FakeCoordinator() as hub, running_agent(hub.url) as agent:
        conn = await hub.next_connection()
        await conn.next_frame("capabilities")
        await agent.session.send_capabilities(capabilities(("llama3",)))
        again = await conn.next_frame("capabilities")
        assert isinstance(again, Capabilities)
        assert [m.model_id for m in again.models] == ["llama3"]
        assert again.metadata.formats == ("openai", "anthropic")


async def test_stop_closes_the_link() -> None:
    async with FakeCoordinator() as hub:
        async with running_agent(hub.url) as agent:
            conn = await hub.next_connection()
        assert agent.task.done()
        await conn.wait_closed()
        assert conn.close_code == 1000


def test_wss_is_required_unless_insecure_is_allowed() -> None:
    check_url("wss://api.usepod.ai/provider/connect", allow_insecure=False)
    check_url("ws://127.0.0.1:1/provider/connect", allow_insecure=True)
    with pytest.raises(ValueError, match="not encrypted"):
        check_url("ws://127.0.0.1:1/provider/connect", allow_insecure=False)
    with pytest.raises(ValueError, match="wss://"):
        check_url("https://api.usepod.ai/provider/connect", allow_insecure=True)
    with pytest.raises(ValueError, match="not encrypted"):
        AgentSession(
            "ws://127.0.0.1:1/x",
            KeyIdentity(),
            capabilities=capabilities,
            jobs=lambda send: None,  # type: ignore[arg-type,return-value]
        )


async def test_a_hub_that_never_challenges_is_left_after_the_handshake_timeout() -> None:
    from aiohttp import web

    async def silent(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        opened.append(asyncio.get_running_loop().time())
        await asyncio.sleep(30)
        return ws

    opened: list[float] = []
    app = web.Application()
    app.router.add_get("/provider/connect", silent)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    timings = Timings(handshake_timeout_s=0.2, backoff_start_s=0.05, backoff_max_s=0.05)
    try:
        async with running_agent(f"ws://127.0.0.1:{port}/provider/connect", timings=timings):
            await eventually(lambda: len(opened) >= 2)
        assert opened[1] - opened[0] < 1.0
    finally:
        await runner.cleanup()


async def test_run_agent_serves_jobs_from_the_configured_engines(fake_engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """run_agent's glue (H3's AgentEngines, AgentStats, serve_metrics): skipped until they
    are merged beside it."""
    pytest.importorskip("modelport.agent.engines")
    from modelport.agent.config import (
        AgentConfig,
        BackendEntry,
        ModelportSettings,
        Observability,
    )
    from modelport.agent.runner import run_agent

    engine = await fake_engine("vllm", models=["m1"])
    async with FakeCoordinator() as hub:
        config = AgentConfig(
            coordinator_url=hub.url,
            backends=(BackendEntry(kind="vllm", url=engine.url),),
            observability=Observability(prometheus_addr="127.0.0.1:0"),
            modelport=ModelportSettings(discover=False, ledger_path=tmp_path / "ledger.sqlite"),
        )
        with pytest.raises(ValueError, match="not encrypted"):
            await run_agent(config, KeyIdentity())
        stop = asyncio.Event()
        task = asyncio.create_task(run_agent(config, KeyIdentity(), allow_insecure=True, stop=stop))
        try:
            conn = await hub.next_connection(timeout=10)
            caps = await conn.next_frame("capabilities")
            assert isinstance(caps, Capabilities)
            assert [m.model_id for m in caps.models] == ["m1"]
            job_id = await conn.send_job("m1", {"messages": [{"role": "user", "content": "hi"}]})
            end = await conn.job_end(job_id)
            assert isinstance(end, JobDone), end
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        await conn.wait_closed()
