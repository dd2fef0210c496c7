"""The agent's one outbound WebSocket to its hub: handshake, capabilities, heartbeats, the
read loop, and reconnecting forever.

The protocol is usepod-agent 0.3.x's (`src/ws_client.rs`, `src/heartbeat.rs`; frames in
`modelport/wire/provider.py`, facts in docs/agent.md):

- dial `wss://` (`ws://` only when the operator allowed it), answer Ping with Pong
  (aiohttp's autoping), read `auth_challenge`, send `auth_response` signed over the raw
  nonce bytes, read `auth_ok` (its provider_id is persisted when it differs) or
  `auth_failed` (logged; the session ends and reconnects with backoff, never a crash);
- after auth: `capabilities` (sent again by `send_capabilities` on rediscovery), a
  heartbeat every interval (the first one interval after auth, as heartbeat.rs skips its
  immediate tick), and the read loop: `job` to the job runner, `job_cancel` to it,
  other types ignored, malformed text frames logged and ignored, binary frames ignored;
- Close 1001 with `drain:deploy` / `drain:operator` is a planned disconnect (logged as
  such); every end of a connection cancels its jobs upstream, then the session dials
  again after a backoff: 1 s doubling to 60 s, times a jitter in [0.8, 1.2), back to 1 s
  after any connection that authenticated (ws_client.rs `run`: 0.3.3 resets after every
  post-auth end, so a hub's deploy never stretches the gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import msgspec

from modelport import __version__
from modelport.wire.provider import (
    BACKOFF_JITTER,
    BACKOFF_MAX_S,
    BACKOFF_START_S,
    CLOSE_GOING_AWAY,
    DEFAULT_DEADLINE_MS,
    DRAIN_DEPLOY,
    DRAIN_OPERATOR,
    HEARTBEAT_INTERVAL_S,
    JOB_FORMATS,
    RELAY_JOBS,
    WHOLE_JOBS,
    AgentFrame,
    AgentMetadata,
    AuthChallenge,
    AuthFailed,
    AuthOk,
    AuthResponse,
    Capabilities,
    FrameError,
    Heartbeat,
    Job,
    JobCancel,
    decode_hub_frame,
    encode,
)

log = logging.getLogger("modelport.agent.session")

# modelport's protocol extensions this agent serves (wire/provider.py; usepod-agent: none).
FEATURES = (WHOLE_JOBS, RELAY_JOBS)
# A job's request may carry images: tungstenite's default message cap (64 MiB), not
# aiohttp's 4 MiB.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

Send = Callable[[AgentFrame], Awaitable[None]]


class AgentIdentity(Protocol):
    """What the session needs of the identity file (modelport.agent.identity.Identity)."""

    @property
    def public_key_b64(self) -> str: ...

    @property
    def provider_id(self) -> str | None: ...

    def sign_b64(self, message: bytes) -> str: ...

    def set_provider_id(self, provider_id: str) -> None: ...


class Jobs(Protocol):
    """What the read loop hands jobs to (modelport.agent.jobs.JobRunner)."""

    @property
    def in_flight(self) -> int: ...

    stopping: bool  # set when the agent stops: new jobs are refused, running ones finish

    async def submit(self, job: Job) -> None: ...

    def cancel(self, job_id: str) -> None: ...

    async def cancel_all(self) -> None: ...


class SessionObserver(Protocol):
    """Told when the link goes up or down (modelport.agent.stats.AgentStats)."""

    def connected(self, up: bool) -> None: ...

    def reconnected(self) -> None: ...


class HandshakeError(Exception):
    """The hub said something out of turn before auth_ok (usepod-agent: a pre-auth error)."""


@dataclass(frozen=True)
class Timings:
    """Every clock of the session; defaults are the protocol's, tests pass short ones."""

    heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S
    backoff_start_s: float = BACKOFF_START_S
    backoff_max_s: float = BACKOFF_MAX_S
    jitter: tuple[float, float] = BACKOFF_JITTER
    # Dial + challenge + auth_ok. usepod-agent waits without limit; a hub that accepts the
    # socket and never challenges would hold the agent forever.
    handshake_timeout_s: float = 30.0
    # How long the hub may say nothing, not even a Pong to our Ping, before the link is
    # left and dialled again. usepod-agent has no such limit: a hung hub, or one gone
    # without a FIN, holds it (and its jobs) until TCP gives up, many minutes later. Long
    # enough for a Ping queued behind megabytes of job chunks on a slow uplink.
    hub_silence_s: float = 90.0
    # A stop lets the jobs in flight finish for up to this long (a job's default deadline),
    # refusing new ones; then the link closes and what still runs is cancelled upstream.
    stop_grace_s: float = DEFAULT_DEADLINE_MS / 1000


def check_url(url: str, *, allow_insecure: bool) -> None:
    """`wss://` always; `ws://` only when allowed (usepod-agent's `--allow-insecure`)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "wss" or (scheme == "ws" and allow_insecure):
        return
    if scheme == "ws":
        raise ValueError(f"coordinator url {url!r} is not encrypted: use wss://, or allow ws://")
    raise ValueError(f"coordinator url {url!r} must start with wss://")


class AgentSession:
    """One hub link at a time, for as long as `run` runs."""

    def __init__(
        self,
        url: str,
        identity: AgentIdentity,
        *,
        capabilities: Callable[[], Capabilities],
        jobs: Callable[[Send], Jobs],
        heartbeat: Callable[[int], Heartbeat] | None = None,
        enrollment_code: str | None = None,
        agent_version: str = __version__,
        allow_insecure: bool = False,
        timings: Timings = Timings(),
        observer: SessionObserver | None = None,
    ) -> None:
        """`jobs` builds the job runner from the session's `send`; `heartbeat(queue_depth)`
        gives the figures of each heartbeat (zeros but the queue depth when None)."""
        check_url(url, allow_insecure=allow_insecure)
        self.url = url
        self.identity = identity
        self.capabilities = capabilities
        self.heartbeat = heartbeat or (lambda depth: Heartbeat(queue_depth=depth))
        self.enrollment_code = enrollment_code
        self.agent_version = agent_version
        self.timings = timings
        self.observer = observer
        self.jobs = jobs(self.send)
        self.authenticated = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._send_lock = asyncio.Lock()
        self._sessions = 0  # connections that authenticated, for `reconnected`

    # -- sending ---------------------------------------------------------------------

    async def send(self, frame: AgentFrame) -> None:
        """One frame on the current connection; waits while the socket's buffer is full
        (aiohttp's drain), which is what holds a job's reading back when the hub reads
        slowly. Raises ConnectionResetError when there is no connection."""
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionResetError("not connected to the hub")
        data = encode(frame)
        async with self._send_lock:  # one writer at a time: frames never interleave
            await ws.send_frame(data, aiohttp.WSMsgType.TEXT)

    async def send_capabilities(self, frame: Capabilities) -> None:
        """Rediscovery's new frame. Not connected: nothing to do, the next connection
        sends what `capabilities()` says then."""
        if not self.authenticated:
            return
        with contextlib.suppress(ConnectionError):
            await self.send(self._stamped(frame))

    def _stamped(self, frame: Capabilities) -> Capabilities:
        metadata = AgentMetadata(
            agent_version=self.agent_version, formats=tuple(JOB_FORMATS), features=FEATURES
        )
        return msgspec.structs.replace(frame, metadata=metadata)

    # -- the reconnect loop --------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Connect, serve, reconnect, until `stop` is set (forever without one); then the
        jobs in flight finish (new ones refused) for up to `stop_grace_s`."""
        forever = asyncio.create_task(self._forever(), name="modelport-agent-session")
        if stop is None:
            await forever
            return
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({forever, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if forever not in done:
                await self._finish_jobs()
        finally:
            for task in (forever, stopper):
                task.cancel()
            await asyncio.gather(forever, stopper, return_exceptions=True)
        if forever in done:
            forever.result()  # it never ends by itself: a bug's exception goes to the caller

    async def _finish_jobs(self) -> None:
        self.jobs.stopping = True
        if self.jobs.in_flight:
            log.info("stopping: %d job(s) in flight may finish", self.jobs.in_flight)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timings.stop_grace_s):
                # Polled: the runner has no event for its last job's end, and a stop is rare.
                while self.jobs.in_flight:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

    async def _forever(self) -> None:
        t = self.timings
        backoff = t.backoff_start_s
        async with aiohttp.ClientSession() as http:
            while True:
                authenticated = False
                try:
                    authenticated = await self._connect_once(http)
                except (aiohttp.ClientError, OSError, TimeoutError, HandshakeError) as exc:
                    log.warning("hub connection failed: %s", _describe(exc))
                except Exception:  # a bug must not end the agent: log it and dial again
                    log.exception("hub connection failed unexpectedly")
                if authenticated:
                    backoff = t.backoff_start_s
                delay = backoff * random.uniform(*t.jitter)
                log.info("reconnecting to the hub in %.1fs", delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, t.backoff_max_s)

    async def _connect_once(self, http: aiohttp.ClientSession) -> bool:
        """One connection, to its end; whether it authenticated."""
        log.info("dialing the hub at %s", self.url)
        async with asyncio.timeout(self.timings.handshake_timeout_s):
            # aiohttp Pings after 2/3 of `hub_silence_s` with nothing from the hub and
            # leaves the link when no Pong comes in the last third.
            ws = await http.ws_connect(
                self.url,
                autoping=True,
                autoclose=True,
                max_msg_size=MAX_MESSAGE_BYTES,
                heartbeat=self.timings.hub_silence_s * 2 / 3,
            )
        try:
            async with asyncio.timeout(self.timings.handshake_timeout_s):
                accepted = await self._authenticate(ws)
            if not accepted:
                return False
            self._ws = ws
            await self._serve(ws)
            return True
        finally:
            await self._disconnected(ws)

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        challenge = await _handshake_frame(ws)
        if not isinstance(challenge, AuthChallenge):
            raise HandshakeError(f"expected auth_challenge, got {_frame_name(challenge)}")
        identity = self.identity
        code = self.enrollment_code if identity.provider_id is None else None
        response = AuthResponse(
            pubkey=identity.public_key_b64,
            signature=identity.sign_b64(challenge.nonce),
            agent_version=self.agent_version,
            enrollment_code=code or None,
        )
        await ws.send_frame(encode(response), aiohttp.WSMsgType.TEXT)
        answer = await _handshake_frame(ws)
        if isinstance(answer, AuthFailed):
            log.error("the hub refused this agent: %s", answer.reason)
            return False
        if not isinstance(answer, AuthOk):
            raise HandshakeError(f"expected auth_ok, got {_frame_name(answer)}")
        if answer.provider_id and answer.provider_id != identity.provider_id:
            log.info("the hub names this agent %s; saving it", answer.provider_id)
            identity.set_provider_id(answer.provider_id)
        return True

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """After auth_ok: capabilities, heartbeats, and the read loop until the link ends."""
        self.authenticated = True
        self._sessions += 1
        if self.observer is not None:
            self.observer.connected(True)
            if self._sessions > 1:
                self.observer.reconnected()
        log.info("authenticated with the hub")
        await self.send(self._stamped(self.capabilities()))
        beats = asyncio.create_task(self._heartbeats(), name="modelport-agent-heartbeat")
        try:
            await self._read(ws)
        finally:
            beats.cancel()
            await asyncio.gather(beats, return_exceptions=True)

    async def _heartbeats(self) -> None:
        interval = self.timings.heartbeat_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                frame = self.heartbeat(self.jobs.in_flight)
            except Exception:  # a figure that cannot be computed must not stop the beat
                log.exception("heartbeat figures failed; sending the queue depth alone")
                frame = Heartbeat(queue_depth=self.jobs.in_flight)
            try:
                await self.send(frame)
            except ConnectionError:
                return  # the read loop sees the end and tears down

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            message = await ws.receive()
            kind = message.type
            if kind == aiohttp.WSMsgType.TEXT:
                await self._handle(message.data)
            elif kind == aiohttp.WSMsgType.BINARY:
                log.debug("ignored a binary frame from the hub (%d bytes)", len(message.data))
            elif kind == aiohttp.WSMsgType.CLOSE:
                _log_close(message.data, message.extra)
                return
            elif kind == aiohttp.WSMsgType.ERROR:
                log.warning("hub connection failed: %s", _describe(message.data))
                return
            elif kind in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                log.warning("the hub connection dropped")
                return

    async def _handle(self, text: str) -> None:
        try:
            frame = decode_hub_frame(text)
        except FrameError as exc:
            log.warning("ignored a malformed frame from the hub: %s", exc)
            return
        if isinstance(frame, Job):
            await self.jobs.submit(frame)
        elif isinstance(frame, JobCancel):
            self.jobs.cancel(frame.job_id)
        else:  # an unknown type (None) or a handshake frame out of turn
            log.debug("ignored a %s frame from the hub", _frame_name(frame))

    async def _disconnected(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Every end of a connection: no more sends, its jobs cancelled upstream."""
        was_up = self.authenticated
        self.authenticated = False
        self._ws = None
        try:
            await self.jobs.cancel_all()
        finally:
            if was_up and self.observer is not None:
                self.observer.connected(False)
            await ws.close()


async def _handshake_frame(ws: aiohttp.ClientWebSocketResponse) -> object:
    """The next text frame before auth; pings are answered by aiohttp meanwhile."""
    message = await ws.receive()
    if message.type == aiohttp.WSMsgType.TEXT:
        try:
            return decode_hub_frame(message.data)
        except FrameError as exc:
            raise HandshakeError(str(exc)) from None
    if message.type == aiohttp.WSMsgType.BINARY:
        raise HandshakeError("unexpected binary frame during the handshake")
    if message.type == aiohttp.WSMsgType.CLOSE:
        what = f"{message.data} {message.extra or ''}".strip()
        raise HandshakeError(f"the hub closed during the handshake ({what})")
    raise HandshakeError(f"the hub connection ended during the handshake ({message.type.name})")


def _log_close(code: object, reason: object) -> None:
    if code == CLOSE_GOING_AWAY and reason in (DRAIN_DEPLOY, DRAIN_OPERATOR):
        log.info("the hub closed the connection for a planned drain (%s)", reason)
    else:
        log.warning("the hub closed the connection (code %s, reason %r)", code, reason or "")


def _frame_name(frame: object) -> str:
    if frame is None:
        return "an unknown type"
    tag = getattr(getattr(type(frame), "__struct_config__", None), "tag", None)
    return str(tag or type(frame).__name__)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
