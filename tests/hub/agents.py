"""Scripted agents for hub tests, over real WebSockets, and a gateway in hub mode.

`ScriptedAgent` plays the agent's side of usepod's protocol as usepod-agent 0.3.3 does
(src/ws_client.rs: the handshake, JSON text frames, capabilities right after auth_ok, a
heartbeat every interval; src/job_executor.rs: a job's request POSTed to the engine as it
came, its raw response bytes relayed as job_chunk frames, then job_done, or job_error with
a byte count in `tokens_emitted`; a job_cancel aborts the job and sends nothing). Each job
takes the next step of `plan` ("serve" when the plan is empty): an engine fake
(tests/fakes/engine.py) answers it, so the bytes are a real engine's SSE. Chunks are cut
every `chunk_bytes` bytes, so SSE events straddle job_chunk frames.

`FakeAccess` is an access policy that admits the keys it was given (every key when none),
with `modelport.hub.access`'s provider ids, and revokes those put in `revoked_keys`: the
hub's protocol tests choose who joins without an agents file. The real policy is tested in
test_access.py and, through a gateway built from `[hub]`, in test_team.py.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from modelport.config import Config
from modelport.gateway.metrics import FORGET_GONE_BACKEND_S
from modelport.gateway.server import Gateway
from modelport.hub.access import AccessDenied, provider_id_for
from modelport.wire.provider import (
    AgentMetadata,
    AuthChallenge,
    AuthFailed,
    AuthOk,
    AuthResponse,
    Capabilities,
    CapabilityLimits,
    CapabilityModel,
    Heartbeat,
    Job,
    JobCancel,
    JobChunk,
    JobDone,
    JobError,
    decode_hub_frame,
    encode,
    tokens,
)
from tests.gateway_harness import make_config

HEARTBEAT_S = 0.2  # the tests' heartbeat interval (usepod's is 15 s)


class FakeAccess:
    """Admits the keys in `keys` (all keys when None)."""

    def __init__(self, keys: set[str] | None = None) -> None:
        self.keys = keys
        self.asked: list[tuple[str, str | None]] = []
        self.revoked_keys: set[str] = set()

    def admit(self, pubkey_b64: str, enrollment_code: str | None) -> str:
        self.asked.append((pubkey_b64, enrollment_code))
        if self.keys is not None and pubkey_b64 not in self.keys:
            raise AccessDenied("unknown key")
        return provider_id_for(pubkey_b64)

    def revoked(self, pubkey_b64: str) -> bool:
        return pubkey_b64 in self.revoked_keys


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def pubkey_of(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def send_frame(frame: Any) -> str:
    return encode(frame).decode()


class ScriptedAgent:
    def __init__(
        self,
        hub_url: str,
        engine_url: str = "",
        *,
        models: tuple[str, ...] = ("fake-model",),
        formats: tuple[str, ...] | None = None,
        features: tuple[str, ...] | None = None,
        max_concurrent: int = 4,
        key: Ed25519PrivateKey | None = None,
        heartbeat_s: float | None = HEARTBEAT_S,
        context_window: int | None = 8192,
        chunk_bytes: int = 7,
        relay_cut: int | None = None,
    ) -> None:
        self.hub_url = hub_url
        self.engine_url = engine_url
        self.models = models
        self.formats = formats
        self.features = features  # modelport's extensions; usepod-agent 0.3.3 sends none
        self.max_concurrent = max_concurrent
        self.key = key or new_key()
        self.pubkey = pubkey_of(self.key)
        self.heartbeat_s = heartbeat_s
        self.context_window = context_window
        self.chunk_bytes = chunk_bytes
        # A relay job's bytes go in whole frames, or cut every `relay_cut` bytes, as a
        # modelport agent cuts a frame longer than its chunk (agent/jobs.py CHUNK_BYTES).
        self.relay_cut = relay_cut
        self.plan: collections.deque[str] = collections.deque()
        self.jobs: list[Job] = []
        self.cancels: list[str] = []
        self.ended: dict[str, str] = {}  # job id -> "done" | "error"
        self.provider_id: str | None = None
        self.failed: str | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.closed_after: dict[str, str] = {}
        self.closed = asyncio.Event()
        self.job_seen = asyncio.Event()
        self.cancel_seen = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}

    # -- connection ---------------------------------------------------------------------

    async def connect(self, *, sign: bytes | None = None) -> str | None:
        """Authenticate (signing `sign` instead of the nonce, to test refusals); the provider
        id, or None when refused (`failed` says why)."""
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.hub_url, autoping=True)
        challenge = decode_hub_frame((await self._ws.receive(timeout=5)).data)
        assert isinstance(challenge, AuthChallenge)
        signature = self.key.sign(challenge.nonce if sign is None else sign)
        answer = AuthResponse(
            self.pubkey, base64.b64encode(signature).decode(), agent_version="scripted/0.3.3"
        )
        await self._ws.send_str(send_frame(answer))
        msg = await self._ws.receive(timeout=5)
        reply = decode_hub_frame(msg.data) if msg.type is aiohttp.WSMsgType.TEXT else None
        if isinstance(reply, AuthFailed):
            self.failed = reply.reason
            await self._ws.receive(timeout=5)  # the close
            self.close_code = self._ws.close_code
            return None
        assert isinstance(reply, AuthOk), msg
        self.provider_id = reply.provider_id
        await self.send_capabilities()
        self._spawn(self._read())
        if self.heartbeat_s is not None:
            self._spawn(self._beat())
        return self.provider_id

    def capabilities(self) -> Capabilities:
        models = [
            CapabilityModel(
                model_id=m,
                input_per_1m=150,
                output_per_1m=600,
                max_concurrent=self.max_concurrent,
                backend="vllm",
                context_window=self.context_window,
            )
            for m in self.models
        ]
        limits = CapabilityLimits(max_concurrent_total=self.max_concurrent)
        metadata = AgentMetadata("scripted/0.3.3", self.formats, self.features)
        return Capabilities(models, limits, metadata)

    async def send_capabilities(self) -> None:
        await self.send(self.capabilities())

    async def send(self, frame: Any) -> None:
        assert self._ws is not None
        await self._ws.send_str(send_frame(frame))

    async def send_raw(self, text: str | bytes) -> None:
        assert self._ws is not None
        if isinstance(text, bytes):
            await self._ws.send_bytes(text)
        else:
            await self._ws.send_str(text)

    def stop_heartbeats(self) -> None:
        self.heartbeat_s = None

    async def kill(self) -> None:
        """Drop the TCP connection without a close frame (a crashed agent)."""
        assert self._ws is not None
        sock = self._ws.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        await self.aclose()

    async def aclose(self) -> None:
        others = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> ScriptedAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _beat(self) -> None:
        while self.heartbeat_s is not None:
            await asyncio.sleep(self.heartbeat_s)
            if self.heartbeat_s is not None:
                await self.send(Heartbeat())  # usepod-agent 0.3.3 sends zeros

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            while True:
                msg = await self._ws.receive()
                if msg.type is aiohttp.WSMsgType.CLOSE:
                    self.close_reason = msg.extra or ""
                if msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    break
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                frame = decode_hub_frame(msg.data)
                if isinstance(frame, Job):
                    self.jobs.append(frame)
                    self.job_seen.set()
                    self._running[frame.job_id] = self._spawn(self._run(frame))
                elif isinstance(frame, JobCancel):
                    self.cancels.append(frame.job_id)
                    self.cancel_seen.set()
                    task = self._running.pop(frame.job_id, None)
                    if task is not None:
                        task.cancel()  # silent, as usepod-agent is
        finally:
            self.close_code = self._ws.close_code
            self.closed_after = dict(self.ended)  # the jobs that had ended by the close
            self.closed.set()

    # -- jobs ---------------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        step = self.plan.popleft() if self.plan else "serve"
        if step in ("out_of_capacity", "model_not_loaded", "internal"):
            message = "invalid request: bad temperature" if step == "internal" else step
            await self._end(job, JobError(job.job_id, step, message, 0))
        elif step == "drop":
            await self.kill()
        elif step == "silent":
            await asyncio.Event().wait()
        else:
            await self._serve(job, step)

    async def _serve(self, job: Job, step: str) -> None:
        """POST the request to the engine as it came (job_executor.rs; `format` ignored,
        unless the agent said it serves anthropic) and relay its bytes."""
        path = "/v1/messages" if job.format == "anthropic" else "/v1/chat/completions"
        sent = 0
        assert self._session is not None
        async with self._session.post(
            self.engine_url + path,
            data=bytes(job.request),
            headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
        ) as response:
            stream = response.content.iter_any()
            if step == "no_usage_done":
                stream = _without_usage(await response.read())
            if job.relayed:  # a relay job's chunks hold whole frames (docs/wire.md)
                stream = _whole_frames(stream)
            async for data in stream:
                size = (self.relay_cut or len(data)) if job.relayed else self.chunk_bytes
                for i in range(0, len(data), size):
                    piece = data[i : i + size]
                    await self.send(JobChunk(job.job_id, piece))
                    sent += len(piece)
                    if step == "drop_mid" and sent > 600:
                        await self.kill()
                        return
                    if step == "hang_mid" and sent > 600:
                        await asyncio.Event().wait()
                    if step == "error_mid" and sent > 600:
                        error = JobError(job.job_id, "backend_timeout", "engine stalled", sent)
                        await self._end(job, error)
                        return
        if step == "late_done":  # a busy agent: job_done well after the last chunk
            await asyncio.sleep(0.5)
        if step == "no_usage_done":
            await self._end(job, JobDone(job.job_id, tokens(11, 22), 5))
        else:
            await self._end(job, JobDone(job.job_id, tokens(0, 0), 5))

    async def _end(self, job: Job, frame: JobDone | JobError) -> None:
        self.ended[job.job_id] = "done" if isinstance(frame, JobDone) else "error"
        self._running.pop(job.job_id, None)
        await self.send(frame)


async def _whole_frames(reads: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """An engine's reads regrouped into whole SSE frames, as a modelport agent sends them."""
    pending = b""
    async for data in reads:
        pending += data
        cut = pending.rfind(b"\n\n") + 2
        if cut > 1:
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


async def _without_usage(body: bytes) -> AsyncIterator[bytes]:
    """An engine stream whose usage-only chunk (`"choices":[]`) is left out."""
    events = [e for e in body.split(b"\n\n") if e and b'"choices":[]' not in e]
    yield b"".join(e + b"\n\n" for e in events)


def ledgered_hub_config(ledger: Path) -> Config:
    """A hub with no engine of its own (none embedded) that keeps its ledger at `ledger`."""
    config = make_config(ledger=ledger, server={"embedded": False})
    return msgspec.structs.replace(config, hub=msgspec.structs.replace(config.hub, enabled=True))


def hub_config(backends: list[dict[str, Any]] | None = None, **hub: Any) -> Config:
    """A gateway config in hub mode: no discovery, no embedded engine (agents serve)."""
    config = make_config(backends=backends, ledger="off", server={"embedded": False})
    table = msgspec.structs.replace(config.hub, enabled=True, **hub)
    return msgspec.structs.replace(config, hub=table)


@pytest.fixture
async def hub_gateway(tmp_path: Path) -> AsyncIterator[Any]:
    """`gw, url = await hub_gateway(access=..., config=..., **hub_table)`: a real gateway
    in hub mode on 127.0.0.1 (`heartbeat_s`, `forget_gone_backend_s`: the Gateway's, for
    tests that shorten them); stopped at teardown."""
    started: list[Gateway] = []

    async def start(
        *,
        access: Any = None,
        config: Config | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        forget_gone_backend_s: float = FORGET_GONE_BACKEND_S,
        **hub: Any,
    ) -> tuple[Gateway, str]:
        gw = Gateway(
            config or hub_config(**hub),
            env={},
            hub_access=access or FakeAccess(),
            hub_heartbeat_s=heartbeat_s,
            forget_gone_backend_s=forget_gone_backend_s,
        )
        url = await gw.start()
        started.append(gw)
        return gw, url

    yield start
    for gw in reversed(started):
        await gw.stop(grace_s=0)


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/provider/connect"


async def slow_reader(
    url: str, body: dict[str, Any]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client that POSTs `body` to /v1/chat/completions and then does not read: a 4 KiB
    receive buffer, so the gateway's writes to it soon stop. Read `reader` to let it go on;
    close `writer` at the end."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    address = url.removeprefix("http://")
    host, port = address.split(":")
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    data = json.dumps(body).encode()
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (address.encode(), len(data), data)
    )
    return reader, writer
