"""UsepodAgent: an in-process agent that behaves like usepod-agent 0.3.3, quirks included.

    async with FakeCoordinator() as hub, FakeEngine("vllm", models=["m"]) as engine:
        async with UsepodAgent(hub.url, engine.url, seed=b"\\1" * 32) as agent:
            conn = await hub.next_connection()
            ...

From Sortis-AI/usepod-agent (tag v0.3.3 = d63ebc0); the file is named where each
behaviour is built:
- ws_client.rs `run`: reconnect forever; backoff 1 s doubling to 60 s, times a jitter in
  [0.8, 1.2), back to 1 s after a session that got past auth (post-auth end or clean close).
- ws_client.rs `connect_once`: challenge -> auth_response (the enrollment code only while no
  provider_id is stored) -> auth_ok (provider_id kept) / auth_failed; discovery and
  `capabilities` after every auth; one loop that both writes the outbound queue (64 frames)
  and reads: a Ping gets a Pong, Close ends the session, text goes to `handle_inbound_text`.
  No timeout anywhere: a hub that never challenges holds the agent, and there is no
  liveness timer (a silent hub is never noticed).
- ws_client.rs `handle_inbound_text` / `parse_job`: invalid JSON, a job whose job_id is not a
  UUID or lacks model_id/request, unknown types: logged and dropped (nothing is answered).
  `format` is read and ignored; `deadline_ms` defaults to 60000 (and is cut to 32 bits).
- job_executor.rs: `out_of_capacity` beyond max_concurrent (no queue), `model_not_loaded`
  for a model no backend listed, a task per job relaying chunks (a 5 s send timeout each),
  `job_done` / `job_error` with `tokens_emitted` = BYTES relayed, nothing after a cancel.
  Its in-flight counter is a u32 decremented both by `cancel` and at the task's end: a
  cancel that lands after the task's decrement but before it leaves the active map
  decrements twice, and the counter wraps to 2**32-1: every later job is refused
  `out_of_capacity` until the next connection builds a new executor. In Rust the window is
  the task's `active.lock().await`, contended from another thread; asyncio has no threads,
  so `cancel_race_window_s` holds it open for tests (0: the window is closed). (The other
  way in: `dispatch` inserts a job into the map after spawning it, so a job that ends on
  another worker before the insert leaves a stale entry for a later cancel to hit; asyncio
  cannot run the task before the insert, so that one is not reproduced.)
  Jobs outlive their connection: each stops at its next send (the queue is gone).
- heartbeat.rs: zeros every 15 s (the first one an interval after auth).
The job side is in usepod_jobs.py, the backend side (discovery, the HTTP relay, usage, the
error mapping) in usepod_backend.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import time
import uuid
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from modelport.wire.provider import AgentFrame, FrameError, decode_agent_frame

from .usepod_backend import AGENT_VERSION, USER_AGENT, Discovery, HttpBackend, dumps, loads
from .usepod_jobs import SEND_TIMEOUT_S, Executor, Outbox, OutboxClosed, parse_job

MAX_MSG = 64 << 20  # tungstenite's default max_message_size


class HandshakeError(Exception):
    """ConnectError::PreAuth: before the session was established (backoff grows)."""


def _abort(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Close the socket under the WebSocket: no Close frame (aiohttp has no public way)."""
    connection = ws._response.connection
    if connection is not None and connection.transport is not None:
        connection.transport.abort()


class UsepodAgent:
    """usepod-agent 0.3.3 as a task: one `[[backends]]` entry (kind `backend_kind`, default
    vllm) at `engine_url`, `[limits] max_concurrent`, `[coordinator] enrollment_code`."""

    def __init__(
        self,
        hub_url: str,
        engine_url: str,
        *,
        seed: bytes | None = None,
        models: list[str] | None = None,
        max_concurrent: int = 8,
        enrollment_code: str | None = None,
        heartbeat_s: float = 15.0,
        provider_id: str | None = None,
        backend_kind: str = "vllm",
        prices: dict[str, tuple[int, int]] | None = None,
        default_prices: tuple[int, int] = (500_000, 750_000),
        max_tokens_per_minute: int | None = None,
        backoff_start_s: float = 1.0,
        backoff_max_s: float = 60.0,
        send_timeout_s: float = SEND_TIMEOUT_S,
        cancel_race_window_s: float = 0.0,
    ) -> None:
        self.hub_url = hub_url
        self.engine_url = engine_url
        key = Ed25519PrivateKey.from_private_bytes(seed) if seed else Ed25519PrivateKey.generate()
        self._key = key
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.pubkey = base64.b64encode(raw).decode()
        #: identity.rs: stored after the first auth_ok that names one (in memory here)
        self.provider_id = provider_id
        self.max_concurrent = max_concurrent
        self.enrollment_code = enrollment_code
        self.heartbeat_s = heartbeat_s
        self.discovery = Discovery(
            kind=backend_kind,
            allow=models,
            default_prices=default_prices,
            prices=prices,
            max_concurrent=max_concurrent,
            max_tokens_per_minute=max_tokens_per_minute,
        )
        self.backoff_start_s = backoff_start_s
        self.backoff_max_s = backoff_max_s
        self.send_timeout_s = send_timeout_s
        self.cancel_race_window_s = cancel_race_window_s
        #: every frame written to the socket, decoded by modelport's decoder; and as text
        self.frames_sent: list[AgentFrame] = []
        self.job_frames: list[dict[str, Any]] = []  # every job frame received, parsed JSON
        self.texts_sent: list[str] = []
        #: hub frames dropped as ws_client.rs drops them: (text, why)
        self.dropped: list[tuple[str, str]] = []
        self.dials: list[float] = []  # time.monotonic() of each connection attempt
        self.backoffs: list[float] = []  # each sleep before redialling, seconds
        self.auth_failures: list[str] = []  # auth_failed reasons
        self.sessions = 0  # connections that got past auth
        self.session_errors: list[str] = []  # why each dial ended (pre- or post-auth)
        self.executor: Executor | None = None
        self._outbox = Outbox()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._engine: aiohttp.ClientSession | None = None
        self._rng = random.Random()

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._run_task is not None:
            return
        self._engine = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT}, skip_auto_headers=("Accept-Encoding",)
        )
        self._run_task = asyncio.create_task(self._run())

    async def kill(self) -> None:
        """The process dies: the socket drops at once (no Close frame), jobs and all."""
        if self._ws is not None:
            _abort(self._ws)
        tasks = [t for t in (self._run_task, *self._tasks) if t is not None]
        self._run_task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._engine is not None:
            await self._engine.close()
            self._engine = None

    async def aclose(self) -> None:
        """usepod-agent has no shutdown path (no signal handler): stopping it is killing it."""
        await self.kill()

    async def __aenter__(self) -> UsepodAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def in_flight(self) -> int:
        """The current session's in-flight counter (job_executor.rs `queue_depth()`)."""
        return self.executor.in_flight if self.executor else 0

    @property
    def outbox_depth(self) -> int:
        """Frames waiting in the session's outbound queue (at most 64)."""
        return self._outbox.queue.qsize()

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    # -- ws_client.rs run ---------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self.backoff_start_s
        while True:
            try:
                await self._connect_once()
                backoff = self.backoff_start_s  # a clean close: "reconnecting"
            except HandshakeError as exc:
                self.session_errors.append(f"pre-auth: {exc}")
            except Exception as exc:
                self.session_errors.append(f"post-auth: {exc}")
                backoff = self.backoff_start_s  # a planned cycle: no escalation
            sleep_s = backoff * self._rng.uniform(0.8, 1.2)
            self.backoffs.append(sleep_s)
            await asyncio.sleep(sleep_s)
            backoff = min(backoff * 2, self.backoff_max_s)

    async def _connect_once(self) -> None:
        self.dials.append(time.monotonic())
        async with aiohttp.ClientSession() as session:
            try:
                # autoping off: the loop answers Pings itself, when it gets to them
                ws = await session.ws_connect(self.hub_url, autoping=False, max_msg_size=MAX_MSG)
            except (aiohttp.ClientError, OSError) as exc:
                raise HandshakeError(f"connecting to {self.hub_url}: {exc}") from None
            self._ws = ws
            try:
                await self._authenticate(ws)
                await self._session(ws)
            finally:
                self._outbox.close()
                self._ws = None
                if not ws.closed:
                    _abort(ws)  # dropped, as the Rust stream is: no Close frame

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        challenge = await self._recv_json(ws)
        if not isinstance(challenge, dict) or challenge.get("type") != "auth_challenge":
            raise HandshakeError(f"expected auth_challenge, got {challenge}")
        nonce_b64 = challenge.get("nonce")
        if not isinstance(nonce_b64, str):
            raise HandshakeError("auth_challenge missing nonce")
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
        except ValueError:
            raise HandshakeError("decoding challenge nonce") from None
        response = {
            "type": "auth_response",
            "pubkey": self.pubkey,
            "signature": base64.b64encode(self._key.sign(nonce)).decode(),
            "agent_version": AGENT_VERSION,
        }
        if self.provider_id is None and self.enrollment_code is not None:
            response["enrollment_code"] = self.enrollment_code
        await self._write(ws, dumps(response), HandshakeError)
        ack = await self._recv_json(ws)
        kind = ack.get("type") if isinstance(ack, dict) else None
        if kind == "auth_failed":
            reason = ack.get("reason")
            reason = reason if isinstance(reason, str) else "unknown"
            self.auth_failures.append(reason)
            raise HandshakeError(f"coordinator rejected auth: {reason}")
        if kind != "auth_ok":
            raise HandshakeError(f"expected auth_ok, got type={kind!r}")
        provider_id = ack.get("provider_id")
        if isinstance(provider_id, str) and provider_id != self.provider_id:
            self.provider_id = provider_id  # "persisting provider_id from coordinator"

    async def _recv_json(self, ws: aiohttp.ClientWebSocketResponse) -> Any:
        """ws_client.rs `recv_json`: the next text frame as JSON, no time limit."""
        while True:
            try:
                message = await ws.receive()
            except (aiohttp.ClientError, OSError) as exc:
                raise HandshakeError(f"ws read: {exc}") from None
            if message.type is aiohttp.WSMsgType.TEXT:
                try:
                    return loads(message.data)
                except ValueError:
                    raise HandshakeError("parsing ws JSON") from None
            if message.type is aiohttp.WSMsgType.BINARY:
                raise HandshakeError("unexpected binary frame during handshake")
            if message.type is aiohttp.WSMsgType.PING:
                # tungstenite queues the Pong itself; it goes out with the next write
                await ws.pong(message.data)
                continue
            if message.type is aiohttp.WSMsgType.PONG:
                continue
            if message.type is aiohttp.WSMsgType.CLOSE:
                raise HandshakeError("ws closed during handshake")
            raise HandshakeError("ws closed before message received")

    async def _write(self, ws: aiohttp.ClientWebSocketResponse, text: str, error: type) -> None:
        try:
            await ws.send_str(text)
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            raise error(str(exc)) from None
        self.texts_sent.append(text)
        try:
            frame = decode_agent_frame(text)
        except FrameError:
            return
        if frame is not None:
            self.frames_sent.append(frame)

    # -- after auth_ok --------------------------------------------------------------------

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        assert self._engine is not None
        backend = HttpBackend(self.discovery.kind, self.engine_url, self._engine)
        models = await self.discovery.models(backend)
        self.sessions += 1  # the coordinator has accepted us: what follows is post-auth
        await self._write(ws, dumps(self.discovery.capabilities(models)), ConnectionError)
        self._outbox = Outbox()
        self.executor = Executor(
            backend,
            [m["model_id"] for m in models],
            self._outbox,
            max_concurrent=self.max_concurrent,
            send_timeout_s=self.send_timeout_s,
            cancel_race_window_s=self.cancel_race_window_s,
            tasks=self._tasks,
        )
        heartbeats = asyncio.create_task(self._heartbeats(self._outbox))
        self._tasks.add(heartbeats)
        heartbeats.add_done_callback(self._tasks.discard)
        try:
            await self._pump(ws, self.executor)
        finally:
            heartbeats.cancel()  # hb_handle.abort()

    async def _heartbeats(self, outbox: Outbox) -> None:
        """heartbeat.rs `spawn_loop`: the first tick is skipped, then one every interval."""
        started = time.monotonic()
        ticks = 0
        zeros = {
            "type": "heartbeat",
            "queue_depth": 0,
            "tokens_per_sec_p50": 0.0,
            "p50_latency_ms": 0,
            "p95_latency_ms": 0,
            "error_rate_60s": 0.0,
            "last_error_at": None,
            "last_error_code": None,
        }
        while True:
            ticks += 1
            await asyncio.sleep(max(0.0, started + ticks * self.heartbeat_s - time.monotonic()))
            try:
                await outbox.send(dumps(zeros))
            except OutboxClosed:
                return

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse, executor: Executor) -> None:
        """The `tokio::select!` loop: one outbound frame written, or one inbound handled."""
        outbound = asyncio.ensure_future(self._outbox.queue.get())
        inbound = asyncio.ensure_future(ws.receive())
        try:
            while True:
                await asyncio.wait({outbound, inbound}, return_when=asyncio.FIRST_COMPLETED)
                if outbound.done():
                    await self._write(ws, outbound.result(), ConnectionError)
                    outbound = asyncio.ensure_future(self._outbox.queue.get())
                    continue
                message = inbound.result()
                kind = message.type
                if kind is aiohttp.WSMsgType.TEXT:
                    await self._inbound(executor, message.data)
                elif kind is aiohttp.WSMsgType.PING:
                    await ws.pong(message.data)
                elif kind is aiohttp.WSMsgType.CLOSE:
                    return  # a clean close
                elif kind is aiohttp.WSMsgType.CLOSED:  # no Close frame came: tungstenite's
                    raise ConnectionError("ws read error: reset without closing handshake")
                elif kind is aiohttp.WSMsgType.ERROR:
                    raise ConnectionError(f"ws read error: {message.data}")
                inbound = asyncio.ensure_future(ws.receive())  # Binary, Pong: ignored
        finally:
            for pending in (outbound, inbound):
                pending.cancel()

    async def _inbound(self, executor: Executor, text: str) -> None:
        """ws_client.rs `handle_inbound_text`."""
        try:
            frame = loads(text)
        except ValueError:
            self.dropped.append((text, "invalid json"))
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "job":
            self.job_frames.append(frame)  # what the hub sent, as it came (for tests)
            job = parse_job(frame)
            if job is None:
                self.dropped.append((text, "malformed job"))
                return
            await executor.dispatch(job)
        elif kind == "job_cancel":
            try:
                job_id = str(uuid.UUID(frame.get("job_id")))
            except (TypeError, ValueError, AttributeError):
                self.dropped.append((text, "bad job_id in job_cancel"))
                return
            await executor.cancel(job_id)
        elif isinstance(kind, str):
            self.dropped.append((text, "unhandled message type"))
        else:
            self.dropped.append((text, "missing 'type'"))
