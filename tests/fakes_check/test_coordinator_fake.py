"""The fake coordinator (tests/fakes/coordinator.py), driven by a minimal agent written here:
the handshake and its refusals, what it records, and each way it can script the hub's side."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from modelport.wire.provider import Capabilities, Heartbeat, JobDone, JobError
from tests.fakes.coordinator import AUTH_FAILED_CLOSE, FakeCoordinator, JobLost

SEED = bytes(range(32))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class MiniAgent:
    """Just enough of an agent to drive the fake: connect, answer the challenge, send frames."""

    def __init__(self, seed: bytes = SEED) -> None:
        self.key = Ed25519PrivateKey.from_private_bytes(seed)
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.pubkey = b64(raw)
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.nonce = b""

    async def connect(self, url: str, *, autoping: bool = True, **auth: Any) -> dict[str, Any]:
        """Connect and authenticate; the hub's answer (auth_ok or auth_failed)."""
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(url, autoping=autoping)
        challenge = await self.ws.receive_json()
        assert challenge["type"] == "auth_challenge"
        self.nonce = base64.b64decode(challenge["nonce"])
        signature = auth.pop("signature", None) or b64(self.key.sign(self.nonce))
        frame = {
            "type": "auth_response",
            "pubkey": self.pubkey,
            "signature": signature,
            "agent_version": "0.3.3",
            **auth,
        }
        await self.ws.send_str(json.dumps(frame))
        answer: dict[str, Any] = await self.ws.receive_json()
        return answer

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(frame))

    async def receive(self) -> aiohttp.WSMessage:
        assert self.ws is not None
        return await asyncio.wait_for(self.ws.receive(), 5)

    async def aclose(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()


@pytest.fixture
async def hub() -> AsyncIterator[FakeCoordinator]:
    async with FakeCoordinator() as coordinator:
        yield coordinator


@pytest.fixture
async def agent() -> AsyncIterator[MiniAgent]:
    mini = MiniAgent()
    yield mini
    await mini.aclose()


# -- the handshake ------------------------------------------------------------------------


async def test_handshake_signed_nonce_admits(hub: FakeCoordinator, agent: MiniAgent) -> None:
    assert hub.url.startswith("ws://127.0.0.1:") and hub.url.endswith("/provider/connect")
    answer = await agent.connect(hub.url, enrollment_code="POD-ENROLL-1")
    assert answer == {"type": "auth_ok", "provider_id": "prov-fake-1"}
    conn = await hub.next_connection()
    assert len(agent.nonce) == 32 and conn.nonce == agent.nonce
    assert conn.pubkey == agent.pubkey and conn.auth_result == "ok"
    assert conn.auth_response is not None
    assert conn.auth_response.enrollment_code == "POD-ENROLL-1"
    assert conn.auth_response.agent_version == "0.3.3"


async def test_each_challenge_has_a_fresh_nonce(hub: FakeCoordinator) -> None:
    nonces = []
    for _ in range(2):
        mini = MiniAgent()
        await mini.connect(hub.url)
        nonces.append(mini.nonce)
        await mini.aclose()
    assert nonces[0] != nonces[1]


async def test_a_fixed_nonce_for_replays() -> None:
    async with FakeCoordinator(nonce=b"n" * 32) as hub:
        first, second = MiniAgent(), MiniAgent()
        await first.connect(hub.url)
        replayed = b64(first.key.sign(b"n" * 32))
        assert (await second.connect(hub.url, signature=replayed))["type"] == "auth_ok"
        await first.aclose()
        await second.aclose()


async def test_a_wrong_signature_is_refused_and_closed(
    hub: FakeCoordinator, agent: MiniAgent
) -> None:
    other = Ed25519PrivateKey.generate()
    answer = await agent.connect(hub.url, signature=b64(other.sign(b"x" * 32)))
    assert answer == {"type": "auth_failed", "reason": "invalid signature"}
    closing = await agent.receive()
    assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == AUTH_FAILED_CLOSE
    assert hub.connections[0].auth_result == "invalid signature"
    with pytest.raises(TimeoutError):
        await hub.next_connection(timeout=0.2)


async def test_garbage_signature_and_key_are_refused(hub: FakeCoordinator) -> None:
    mini = MiniAgent()
    answer = await mini.connect(hub.url, signature="not base64!")
    assert answer["reason"] == "invalid signature"
    await mini.aclose()


async def test_signature_check_can_be_off(agent: MiniAgent) -> None:
    async with FakeCoordinator(check_signature=False) as hub:
        answer = await agent.connect(hub.url, signature=b64(b"\0" * 64))
        assert answer["type"] == "auth_ok"


async def test_accept_decides_with_its_reason(agent: MiniAgent) -> None:
    seen: list[str] = []

    def accept(pubkey: str) -> str | None:
        seen.append(pubkey)
        return "unknown key"

    async with FakeCoordinator(accept=accept) as hub:
        answer = await agent.connect(hub.url)
        assert answer == {"type": "auth_failed", "reason": "unknown key"}
        assert seen == [agent.pubkey]


async def test_auth_ok_without_provider_id(agent: MiniAgent) -> None:
    async with FakeCoordinator(provider_id=None) as hub:
        assert await agent.connect(hub.url) == {"type": "auth_ok"}
        assert (await hub.next_connection()).provider_id is None


async def test_a_provider_id_per_key(agent: MiniAgent) -> None:
    async with FakeCoordinator(provider_id=lambda pubkey: "prov-" + pubkey[:6]) as hub:
        answer = await agent.connect(hub.url)
        assert answer["provider_id"] == "prov-" + agent.pubkey[:6]
        assert (await hub.next_connection()).provider_id == answer["provider_id"]


async def test_a_small_receive_buffer(agent: MiniAgent) -> None:
    async with FakeCoordinator(recv_buffer=32768) as hub:
        await agent.connect(hub.url)
        conn = await hub.next_connection()
        sock = conn.request.transport.get_extra_info("socket")  # type: ignore[union-attr]
        # Linux doubles what is asked (room for its bookkeeping)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) <= 2 * 32768


async def test_a_first_frame_other_than_auth_response_is_refused(hub: FakeCoordinator) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(hub.url) as ws:
        await ws.receive_json()
        await ws.send_str('{"type":"heartbeat"}')
        assert await ws.receive_json() == {
            "type": "auth_failed",
            "reason": "expected auth_response",
        }
    async with aiohttp.ClientSession() as session, session.ws_connect(hub.url) as ws:
        await ws.receive_json()
        await ws.send_str("{not json")
        assert (await ws.receive_json())["reason"] == "malformed auth_response"
    assert hub.connections[1].errors[0][0] == "{not json"


async def test_a_silent_connection_times_out() -> None:
    async with (
        FakeCoordinator(auth_timeout=0.2) as hub,
        aiohttp.ClientSession() as session,
        session.ws_connect(hub.url) as ws,
    ):
        await ws.receive_json()
        assert await ws.receive_json() == {"type": "auth_failed", "reason": "auth timeout"}


# -- what it records ------------------------------------------------------------------------


async def test_records_frames_by_kind(hub: FakeCoordinator, agent: MiniAgent) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    caps = {
        "type": "capabilities",
        "models": [
            {
                "model_id": "m",
                "input_per_1m": 500000,
                "output_per_1m": 750000,
                "max_concurrent": 8,
                "backend": "vllm",
            }
        ],
        "limits": {"max_concurrent_total": 8, "max_tokens_per_minute": None},
        "metadata": {"agent_version": "0.3.3"},
    }
    await agent.send(caps)
    await agent.send({"type": "heartbeat", "queue_depth": 0, "last_error_at": None})
    await agent.send({"type": "telemetry", "x": 1})
    await agent.send({"type": "job_done"})  # no job_id: malformed
    assert agent.ws is not None
    await agent.ws.send_str("{oops")
    await agent.ws.send_bytes(b"\x00\x01")
    assert isinstance(await conn.next_frame("capabilities"), Capabilities)
    assert isinstance(await conn.next_frame("heartbeat"), Heartbeat)
    for _ in range(50):
        if len(conn.errors) == 3:
            break
        await asyncio.sleep(0.02)
    assert conn.capabilities[0].models[0].context_window is None
    assert conn.capabilities[0].models[0].backend == "vllm"
    assert conn.heartbeats == [Heartbeat()]
    assert conn.unknown == ['{"type": "telemetry", "x": 1}']
    assert [e[0] for e in conn.errors] == ['{"type": "job_done"}', "{oops", b"\x00\x01"]
    assert conn.errors[2][1] == "binary frame"
    assert len(conn.raw) == 7  # auth_response + the six above
    with pytest.raises(TimeoutError):
        await conn.next_frame("heartbeat", timeout=0.1)


async def test_job_chunks_reassembled_and_the_end(hub: FakeCoordinator, agent: MiniAgent) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    job_id = str(uuid.uuid4())
    ending = asyncio.ensure_future(conn.job_end(job_id))
    for piece in (b"data: {", b'"a":1}\n', b"\ndata: [DONE]\n\n"):
        await agent.send({"type": "job_chunk", "job_id": job_id, "data": b64(piece)})
    tokens = {"input": 3, "output": 4, "input_tokens": 3, "output_tokens": 4}
    done = {"type": "job_done", "job_id": job_id, "tokens": tokens, "duration_ms": 9}
    await agent.send(done)
    await agent.send({**done, "duration_ms": 10})  # a second terminal frame is kept apart
    end = await ending
    assert isinstance(end, JobDone) and end.tokens.output_tokens == 4 and end.duration_ms == 9
    assert conn.job_bytes(job_id) == b'data: {"a":1}\n\ndata: [DONE]\n\n'
    assert conn.job_chunks(job_id)[0] == b"data: {"
    await conn.next_frame("job_done")
    await conn.next_frame("job_done")
    assert conn.jobs[job_id].extra_ends[0].duration_ms == 10  # type: ignore[union-attr]
    assert conn.ended(job_id) == end
    error = {"type": "job_error", "job_id": "j2", "error_code": "internal", "tokens_emitted": 5}
    await agent.send(error)
    ended = await conn.job_end("j2")
    assert isinstance(ended, JobError) and ended.tokens_emitted == 5


async def test_a_job_without_an_end_is_lost_on_close(
    hub: FakeCoordinator, agent: MiniAgent
) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    job_id = await conn.send_job("m", {"messages": []})
    await agent.aclose()
    with pytest.raises(JobLost):
        await conn.job_end(job_id)
    await conn.wait_closed()
    assert conn.close_code == 1000 and conn.closed_at is not None


# -- scripting the hub ------------------------------------------------------------------------


async def test_send_job_fields(hub: FakeCoordinator, agent: MiniAgent) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    job_id = await conn.send_job("m", body, deadline_ms=1500)
    assert str(uuid.UUID(job_id)) == job_id
    first = json.loads((await agent.receive()).data)
    assert first == {
        "type": "job",
        "job_id": job_id,
        "model_id": "m",
        "request": body,
        "format": "openai",
        "deadline_ms": 1500,
    }
    raw = b'{"messages":[],  "stream":false}'
    await conn.send_job("m", raw, format=None, job_id="not-a-uuid")
    text = (await agent.receive()).data
    assert '"request":{"messages":[],  "stream":false}' in text  # the bytes as given
    assert json.loads(text).keys() == {"type", "job_id", "model_id", "request"}
    await conn.send_job("m", {}, format="anthropic")
    assert json.loads((await agent.receive()).data)["format"] == "anthropic"


async def test_cancel_raw_and_binary(hub: FakeCoordinator, agent: MiniAgent) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    await conn.cancel("j1")
    assert json.loads((await agent.receive()).data) == {"type": "job_cancel", "job_id": "j1"}
    await conn.send_raw('{"type":"config_update"')
    assert (await agent.receive()).data == '{"type":"config_update"'
    await conn.send_bytes(b"\xff")
    message = await agent.receive()
    assert message.type is aiohttp.WSMsgType.BINARY and message.data == b"\xff"


async def test_ping_waits_for_the_pong(hub: FakeCoordinator, agent: MiniAgent) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    reading = asyncio.ensure_future(agent.receive())  # aiohttp's client answers while reading
    assert await conn.ping(b"abc") == b"abc"
    assert len(await conn.ping()) == 8
    assert conn.pongs == [b"abc", conn.pongs[1]]
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading


async def test_ping_without_a_pong_times_out(hub: FakeCoordinator, agent: MiniAgent) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    with pytest.raises(TimeoutError):
        await conn.ping(timeout=0.2)  # nobody reads on the agent's side: no Pong


async def test_the_hub_answers_the_agents_ping(hub: FakeCoordinator) -> None:
    mini = MiniAgent()
    await mini.connect(hub.url, autoping=False)  # see the Pong, not have aiohttp swallow it
    conn = await hub.next_connection()
    assert mini.ws is not None
    await mini.ws.ping(b"hb")
    pong = await mini.receive()
    assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"hb")
    assert conn.pings == [b"hb"]
    await mini.aclose()


async def test_close_drain_deploy(hub: FakeCoordinator, agent: MiniAgent) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    closing = asyncio.ensure_future(conn.close())
    message = await agent.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert (message.data, message.extra) == (1001, "drain:deploy")
    await agent.aclose()
    await closing
    await conn.wait_closed()


async def test_close_drain_operator(hub: FakeCoordinator, agent: MiniAgent) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    closing = asyncio.ensure_future(conn.close(1001, "drain:operator"))
    message = await agent.receive()
    assert (message.data, message.extra) == (1001, "drain:operator")
    await closing


async def test_drop_sends_no_close_frame(hub: FakeCoordinator, agent: MiniAgent) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    await conn.drop()
    message = await agent.receive()
    # aiohttp's client reports a lost connection as CLOSED (no CLOSE frame came)
    assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert conn.closed.is_set() and conn.close_code is None


async def test_paused_reading_backs_the_agents_sends_up(
    hub: FakeCoordinator, agent: MiniAgent
) -> None:
    await agent.connect(hub.url)
    conn = await hub.next_connection()
    assert agent.ws is not None
    conn.pause_reading()
    piece = b64(b"x" * 48_000)
    sent = 0

    async def flood() -> None:
        nonlocal sent
        for _ in range(400):  # ~26 MB of frames: far past every socket buffer
            await agent.send({"type": "job_chunk", "job_id": "j", "data": piece})
            sent += 1

    flooding = asyncio.ensure_future(flood())
    await asyncio.sleep(0.5)
    stalled_at = sent
    await asyncio.sleep(0.3)
    assert not flooding.done() and sent == stalled_at < 400  # the agent's send blocks
    assert len(conn.job_chunks("j")) < stalled_at  # the hub holds back what it reads
    conn.resume_reading()
    await asyncio.wait_for(flooding, 10)
    for _ in range(200):
        if len(conn.job_chunks("j")) == 400:
            break
        await asyncio.sleep(0.02)
    assert len(conn.job_chunks("j")) == 400


async def test_close_and_drop_end_a_pause(hub: FakeCoordinator) -> None:
    for end in ("close", "drop"):
        mini = MiniAgent()
        await mini.connect(hub.url)
        conn = await hub.next_connection()
        conn.pause_reading()
        reading = asyncio.ensure_future(mini.receive())  # the client answers the Close
        started = asyncio.get_running_loop().time()
        await (conn.close() if end == "close" else conn.drop())
        await conn.wait_closed(timeout=2)
        assert asyncio.get_running_loop().time() - started < 2
        with contextlib.suppress(Exception):
            await reading
        await mini.aclose()
