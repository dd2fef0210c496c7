"""FakeCoordinator: the hub side of the provider-agent protocol, a real aiohttp WebSocket server.

    async with FakeCoordinator() as hub:
        ...  # point an agent at hub.url
        conn = await hub.next_connection()
        job_id = await conn.send_job("m", {"messages": [...]})
        end = await conn.job_end(job_id)

usepod's coordinator is private; what it says is what usepod-agent 0.3.3 expects of it
(Sortis-AI/usepod-agent, tag v0.3.3 = d63ebc0):
- src/ws_client.rs `connect_once`: the first text frame is `auth_challenge` with a std-base64
  `nonce`; the agent signs the RAW nonce bytes and answers `auth_response`; then `auth_ok`
  (optional `provider_id`, which the agent persists) or `auth_failed` (`reason`).
- ws_client.rs `handle_inbound_text` / `parse_job`: `job` (job_id a UUID, model_id, request,
  optional `format` (default openai) and `deadline_ms` (default 60000)) and `job_cancel`;
  unknown types are ignored; the agent answers a Ping with a Pong.
- job_executor.rs: `job_chunk` (std base64 `data`), `job_done`, `job_error`.
- heartbeat.rs: `heartbeat` every 15 s; discovery.rs: `capabilities` after each auth.
- issue 12: Close 1001 with reason `drain:deploy` / `drain:operator` is a planned disconnect.
Where the coordinator's behaviour is unknown (nonce length, the close after auth_failed),
the choice is named where it is made.

Every frame the agent sends is recorded, decoded with modelport's `decode_agent_frame`
(malformed ones land in `errors`, unknown types in `unknown`). Waits take `timeout=` in
seconds, as the contract names it (hence the ASYNC109 waivers).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import WSMsgType, web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelport.wire.provider import (
    AgentFrame,
    AuthResponse,
    Capabilities,
    FrameError,
    Heartbeat,
    JobChunk,
    JobDone,
    JobError,
    decode_agent_frame,
)

PATH = "/provider/connect"
# The nonce's length is the coordinator's choice (not in usepod-agent's source): 32 bytes.
NONCE_BYTES = 32
# Closing after auth_failed: the code is the coordinator's choice; 1008 is "policy violation".
AUTH_FAILED_CLOSE = 1008

Accept = Callable[[str], str | None]
ProviderId = str | Callable[[str], str] | None


class JobLost(Exception):
    """job_end() of a job whose connection closed before its terminal frame came."""


@dataclass
class JobRecord:
    """What the agent sent for one job."""

    job_id: str
    chunks: list[bytes] = field(default_factory=list)
    end: asyncio.Future[JobDone | JobError] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    #: terminal frames after the first (a protocol violation the tests want to see)
    extra_ends: list[JobDone | JobError] = field(default_factory=list)


class CoordinatorConn:
    """One agent connection as the hub sees it: what it sent, and a handle to script it."""

    def __init__(self, hub: FakeCoordinator, request: web.Request, ws: web.WebSocketResponse):
        self.hub = hub
        self.request = request
        self.ws = ws
        self.opened_at = time.monotonic()
        self.closed_at: float | None = None
        self.nonce = b""
        self.pubkey: str | None = None
        self.auth_response: AuthResponse | None = None
        #: None until decided; then "ok" or the auth_failed reason
        self.auth_result: str | None = None
        self.provider_id: str | None = None  # what auth_ok said
        self.frames: list[AgentFrame] = []
        self.capabilities: list[Capabilities] = []
        self.heartbeats: list[Heartbeat] = []
        #: every message as it came: str (text), bytes (binary)
        self.raw: list[str | bytes] = []
        #: malformed frames: (the raw message, what was wrong)
        self.errors: list[tuple[str | bytes, str]] = []
        #: frames of a type modelport's decoder does not know
        self.unknown: list[str] = []
        self.pongs: list[bytes] = []
        self.pings: list[bytes] = []
        self.jobs: dict[str, JobRecord] = {}
        #: the close code the agent sent (None: no close frame, or not closed yet)
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._cursor: dict[str, int] = {}
        self._pong_waiters: list[asyncio.Future[bytes]] = []
        self._reading = asyncio.Event()
        self._reading.set()

    # -- scripting the hub's side ---------------------------------------------------------

    async def send_job(
        self,
        model_id: str,
        request: dict[str, Any] | bytes,
        *,
        format: str | None = "openai",
        deadline_ms: int | None = None,
        job_id: str | None = None,
        stream: bool | None = None,
        relay: bool | None = None,
    ) -> str:
        """Send a `job`; `format`/`deadline_ms` None leaves the field out (the agent's default).
        `stream=False` and `relay=True` are modelport's whole-job and relay-job extensions
        (usepod's coordinator never sends them)."""
        job_id = job_id or str(uuid.uuid4())
        body = request if isinstance(request, bytes) else msgspec.json.encode(request)
        frame: dict[str, Any] = {
            "type": "job",
            "job_id": job_id,
            "model_id": model_id,
            "request": msgspec.Raw(body),
        }
        if format is not None:
            frame["format"] = format
        if deadline_ms is not None:
            frame["deadline_ms"] = deadline_ms
        if stream is not None:
            frame["stream"] = stream
        if relay is not None:
            frame["relay"] = relay
        self._record_job(job_id)
        await self.ws.send_str(msgspec.json.encode(frame).decode())
        return job_id

    async def cancel(self, job_id: str) -> None:
        await self.send_raw(json.dumps({"type": "job_cancel", "job_id": job_id}))

    async def send_raw(self, text: str) -> None:
        """Any text frame as is: malformed JSON, unknown types, frames missing fields."""
        await self.ws.send_str(text)

    async def send_bytes(self, data: bytes) -> None:
        """A binary frame (the protocol has none; usepod-agent ignores them after auth)."""
        await self.ws.send_bytes(data)

    async def ping(self, payload: bytes | None = None, timeout: float = 5) -> bytes:  # noqa: ASYNC109
        """Send a Ping and wait for the agent's Pong; its payload."""
        payload = os.urandom(8) if payload is None else payload
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pong_waiters.append(waiter)
        await self.ws.ping(payload)
        try:
            return await asyncio.wait_for(waiter, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._pong_waiters.remove(waiter)

    async def close(self, code: int = 1001, reason: str = "drain:deploy") -> None:
        """A Close frame (default: a planned deploy drain), then wait for the agent's (up to
        aiohttp's 10 s). Ends a pause_reading(): the reply has to be read."""
        self.resume_reading()
        await self.ws.close(code=code, message=reason.encode())

    async def drop(self) -> None:
        """The TCP connection goes without a close frame (a crashed or partitioned hub)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self._reading.set()  # a paused read loop has to see the end
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), 5)

    def pause_reading(self) -> None:
        """A slow reader: stop reading the socket, so the agent's sends back up in TCP."""
        self._reading.clear()
        self.request.protocol.pause_reading()

    def resume_reading(self) -> None:
        if not self._reading.is_set():
            self.request.protocol.resume_reading()
            self._reading.set()

    # -- what the agent sent --------------------------------------------------------------

    async def job_end(self, job_id: str, timeout: float = 10) -> JobDone | JobError:  # noqa: ASYNC109
        """The job's terminal frame (job_done or job_error), waiting up to `timeout`."""
        record = self._record_job(job_id)
        return await asyncio.wait_for(asyncio.shield(record.end), timeout)

    def job_bytes(self, job_id: str) -> bytes:
        """The job's chunk data so far, reassembled."""
        record = self.jobs.get(job_id)
        return b"".join(record.chunks) if record else b""

    def job_chunks(self, job_id: str) -> list[bytes]:
        record = self.jobs.get(job_id)
        return list(record.chunks) if record else []

    def ended(self, job_id: str) -> JobDone | JobError | None:
        """The terminal frame if one came (no waiting)."""
        record = self.jobs.get(job_id)
        return record.end.result() if record and record.end.done() else None

    async def next_frame(self, type_: str, timeout: float = 5) -> AgentFrame:  # noqa: ASYNC109
        """The next frame of this type not yet returned by next_frame (already received
        ones included, in order), waiting up to `timeout` for it."""

        def pick() -> AgentFrame | None:
            seen = 0
            start = self._cursor.get(type_, 0)
            for frame in self.frames:
                if _type_of(frame) != type_:
                    continue
                if seen == start:
                    self._cursor[type_] = start + 1
                    return frame
                seen += 1
            return None

        async with self._arrived:
            found = await asyncio.wait_for(self._arrived.wait_for(pick), timeout)
        assert found is not None
        return found

    def of_type(self, type_: str) -> list[AgentFrame]:
        return [f for f in self.frames if _type_of(f) == type_]

    async def wait_closed(self, timeout: float = 5) -> None:  # noqa: ASYNC109
        await asyncio.wait_for(self.closed.wait(), timeout)

    # -- the server's side ----------------------------------------------------------------

    def _record_job(self, job_id: str) -> JobRecord:
        record = self.jobs.get(job_id)
        if record is None:
            record = self.jobs[job_id] = JobRecord(job_id)
        return record

    async def _authenticate(self) -> bool:
        hub = self.hub
        self.nonce = hub.nonce if hub.nonce is not None else os.urandom(NONCE_BYTES)
        challenge = {"type": "auth_challenge", "nonce": base64.b64encode(self.nonce).decode()}
        await self.ws.send_str(hub.challenge_text or json.dumps(challenge))
        try:
            message = await self._receive_first(hub.auth_timeout)
        except TimeoutError:
            return await self._refuse("auth timeout")
        if message is None:
            return False
        if message.type is not WSMsgType.TEXT:
            return await self._refuse("expected auth_response")
        try:
            frame = decode_agent_frame(message.data)
        except FrameError as exc:
            self.errors.append((message.data, str(exc)))
            return await self._refuse("malformed auth_response")
        if not isinstance(frame, AuthResponse):
            return await self._refuse("expected auth_response")
        self.auth_response, self.pubkey = frame, frame.pubkey
        reason = self._check(frame)
        if reason is None and hub.accept is not None:
            reason = hub.accept(frame.pubkey)
        if reason is not None:
            return await self._refuse(reason)
        ok: dict[str, Any] = {"type": "auth_ok"}
        given = hub.provider_id
        self.provider_id = given(frame.pubkey) if callable(given) else given
        if self.provider_id is not None:
            ok["provider_id"] = self.provider_id
        await self.ws.send_str(hub.auth_ok_text or json.dumps(ok))
        self.auth_result = "ok"
        return True

    def _check(self, frame: AuthResponse) -> str | None:
        if not self.hub.check_signature:
            return None
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(frame.pubkey, validate=True))
            key.verify(base64.b64decode(frame.signature, validate=True), self.nonce)
        except (ValueError, InvalidSignature):
            return "invalid signature"
        return None

    async def _receive_first(self, within: float) -> Any:
        """The first data message (answering pings meanwhile); None when the socket closed."""
        async with asyncio.timeout(within):
            while True:
                message = await self.ws.receive()
                if message.type is WSMsgType.PING:
                    await self.ws.pong(message.data)
                    continue
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    self._closing(message)
                    return None
                if message.type is WSMsgType.PONG:
                    continue
                self.raw.append(message.data)
                return message

    async def _refuse(self, reason: str) -> bool:
        self.auth_result = reason
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(json.dumps({"type": "auth_failed", "reason": reason}))
            await self.ws.close(code=AUTH_FAILED_CLOSE, message=b"auth failed")
        return False

    async def _read_loop(self) -> None:
        while True:
            await self._reading.wait()
            message = await self.ws.receive()
            kind = message.type
            if kind is WSMsgType.TEXT:
                self.raw.append(message.data)
                await self._on_text(message.data)
            elif kind is WSMsgType.BINARY:
                self.raw.append(message.data)
                self.errors.append((message.data, "binary frame"))
                await self._notify()
            elif kind is WSMsgType.PING:
                self.pings.append(message.data)
                await self.ws.pong(message.data)
            elif kind is WSMsgType.PONG:
                self.pongs.append(message.data)
                for waiter in self._pong_waiters:
                    if not waiter.done():
                        waiter.set_result(message.data)
                        break
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                self._closing(message)
                return

    def _closing(self, message: Any) -> None:
        if message.type is WSMsgType.CLOSE:
            self.close_code = message.data

    async def _on_text(self, text: str) -> None:
        try:
            frame = decode_agent_frame(text)
        except FrameError as exc:
            self.errors.append((text, str(exc)))
            await self._notify()
            return
        if frame is None:
            self.unknown.append(text)
            await self._notify()
            return
        self.frames.append(frame)
        if isinstance(frame, Capabilities):
            self.capabilities.append(frame)
        elif isinstance(frame, Heartbeat):
            self.heartbeats.append(frame)
        elif isinstance(frame, JobChunk):
            self._record_job(frame.job_id).chunks.append(frame.data)
        elif isinstance(frame, JobDone | JobError):
            record = self._record_job(frame.job_id)
            if record.end.done():
                record.extra_ends.append(frame)
            else:
                record.end.set_result(frame)
        await self._notify()

    async def _notify(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()


def _type_of(frame: AgentFrame) -> str:
    return str(type(frame).__struct_config__.tag)


class FakeCoordinator:
    """The hub: `accept(pubkey)` returns None to admit or the auth_failed reason."""

    def __init__(
        self,
        *,
        provider_id: ProviderId = "prov-fake-1",
        accept: Accept | None = None,
        check_signature: bool = True,
        nonce: bytes | None = None,
        auth_timeout: float = 10.0,
        recv_buffer: int | None = None,
        challenge_text: str | None = None,
        auth_ok_text: str | None = None,
    ) -> None:
        #: what auth_ok names: one id for all, an id per public key (a callable), or None to
        #: send auth_ok without one
        self.provider_id = provider_id
        self.accept = accept
        self.check_signature = check_signature
        #: a fixed nonce for every challenge (replay tests); None: fresh random bytes each time
        self.nonce = nonce
        #: how long an unauthenticated connection may stay before auth_failed "auth timeout"
        self.auth_timeout = auth_timeout
        #: SO_RCVBUF of every accepted socket (None: the kernel's, which autotunes up to
        #: tcp_rmem's max, tens of MB on loopback): small, a paused reader pushes back at once
        self.recv_buffer = recv_buffer
        #: sent as is in place of the challenge / of auth_ok (a broken hub); the fake goes on
        #: as if it had sent the real one
        self.challenge_text = challenge_text
        self.auth_ok_text = auth_ok_text
        self.url = ""
        self.connections: list[CoordinatorConn] = []
        self._authenticated: asyncio.Queue[CoordinatorConn] = asyncio.Queue()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        if self._runner is not None:
            return self.url
        app = web.Application()
        app.router.add_get(PATH, self._connect)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.recv_buffer is not None:  # before listen(): accepted sockets inherit it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.recv_buffer)
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self._runner, sock)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}{PATH}"
        return self.url

    async def aclose(self) -> None:
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        for conn in self.connections:
            if conn.request.transport is not None:
                conn.request.transport.abort()
        await runner.cleanup()

    async def __aenter__(self) -> FakeCoordinator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def next_connection(self, timeout: float = 5) -> CoordinatorConn:  # noqa: ASYNC109
        """The next connection that authenticated (in order; each returned once)."""
        return await asyncio.wait_for(self._authenticated.get(), timeout)

    @property
    def authenticated(self) -> list[CoordinatorConn]:
        return [c for c in self.connections if c.auth_result == "ok"]

    async def _connect(self, request: web.Request) -> web.WebSocketResponse:
        # autoping off: the fake answers Pings itself and sees the agent's Pongs (ping()).
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = CoordinatorConn(self, request, ws)
        self.connections.append(conn)
        try:
            if await conn._authenticate():
                self._authenticated.put_nowait(conn)
                await conn._read_loop()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            conn.closed_at = time.monotonic()
            conn.closed.set()
            for record in conn.jobs.values():
                if not record.end.done():
                    record.end.set_exception(
                        JobLost(f"connection closed before job {record.job_id} ended")
                    )
                    record.end.exception()  # retrieved: a job nobody awaits logs nothing
            await conn._notify()
        return ws
