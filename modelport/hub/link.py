"""One authenticated agent connection: its state, its jobs, and how a job's frames arrive.

An `AgentLink` is what the hub knows of one agent between `auth_ok` and the socket's end:
its capabilities, its last heartbeat, and its jobs in flight. Each job is a `JobStream`: the
reader task (endpoint.py) feeds it the job's frames as they arrive, and the request that
started it (backend.py) reads them. One agent socket carries many jobs, so a slow client
must never stop the reader: each job buffers at most `max_buffer_bytes` of unread data, and
a job past that is cancelled at the agent and fails (the client gets an error event)
rather than holding the socket or growing without bound.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

import msgspec
from aiohttp import WSMsgType, web

from modelport.errors import (
    BackendError,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    TimedOut,
    Unreachable,
    Unsupported,
    UpstreamAuthError,
)
from modelport.wire.provider import (
    INVALID_PREFIX,
    RELAY_JOBS,
    WHOLE_JOBS,
    Capabilities,
    CapabilityModel,
    Heartbeat,
    Job,
    JobCancel,
    JobDone,
    JobError,
    encode,
)

log = logging.getLogger("modelport.hub")

# What one job may hold of data its client has not read yet (a slow client).
MAX_JOB_BUFFER_BYTES = 8 * 1024 * 1024
# usepod-agent 0.3.x sends no `formats`: it posts every job to chat completions.
USEPOD_FORMATS: tuple[str, ...] = ("openai",)


@dataclass(frozen=True)
class AgentView:
    """What /v1/hub/agents shows of one agent."""

    provider_id: str
    pubkey: str
    upstream: str
    agent_version: str
    address: str
    connected_at: float  # unix seconds
    heartbeat_age_s: float | None
    heartbeat: Heartbeat | None
    models: tuple[CapabilityModel, ...]
    formats: tuple[str, ...]
    in_flight: int
    ready: bool


def job_error(frame: JobError, agent: str) -> BackendError:
    """A job_error as our error (CONTRACTS.md's hub-side table): capacity and a model not
    loaded fall back to the next candidate; an invalid request is the client's (400)."""
    message = frame.message or frame.error_code
    code = frame.error_code
    if code == "out_of_capacity":
        return Overloaded(f"agent {agent} is out of capacity: {message}", retry_after=1.0)
    if code == "model_not_loaded":
        return ModelNotFound(f"agent {agent} has not loaded the model: {message}")
    if code == "backend_unreachable":
        return Unreachable(f"agent {agent} could not reach its engine: {message}")
    if code == "backend_timeout":
        return TimedOut(f"agent {agent}'s engine timed out: {message}")
    if code == "auth_rejected_by_backend":
        return UpstreamAuthError(agent, 401)
    if message.startswith(INVALID_PREFIX):
        return InvalidRequest(message[len(INVALID_PREFIX) :])
    return ProtocolError(f"agent {agent} failed the job ({code}): {message}")


class JobStream:
    """One job's frames as they arrive, read by the request that started it.

    Ends exactly once: `done` (job_done), `fail` (job_error, the agent gone, a buffer
    overrun) or `cancel` (the request left first: job_cancel goes to the agent, unless the
    job has already ended, which usepod-agent would not answer anyway)."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_link",
        "_wake",
        "done",
        "ended",
        "error",
        "job_id",
        "max_buffer_bytes",
    )

    def __init__(self, link: AgentLink, job_id: str, max_buffer_bytes: int) -> None:
        self._link = link
        self.job_id = job_id
        self.max_buffer_bytes = max_buffer_bytes
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._wake = asyncio.Event()
        self.done: JobDone | None = None
        self.error: BackendError | None = None
        self.ended = False  # a terminal frame came, or the job failed or was cancelled

    # -- the reader's side ------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.ended or not data:
            return
        self._buffered += len(data)
        if self._buffered > self.max_buffer_bytes:
            why = f"the client read too slowly: over {self.max_buffer_bytes} bytes buffered"
            self._link.cancel_job(self)
            self._chunks.clear()  # memory back now; the client gets the error next
            self._buffered = 0
            self._end(ProtocolError(f"job cancelled at agent {self._link.upstream}: {why}"))
            return
        self._chunks.append(data)
        self._wake.set()

    def finish(self, frame: JobDone) -> None:
        if not self.ended:
            self.done = frame
            self._end(None)

    def fail(self, error: BackendError) -> None:
        if not self.ended:
            self._end(error)

    def _end(self, error: BackendError | None) -> None:
        self.ended = True
        self.error = error
        self._link.forget(self.job_id)
        self._wake.set()

    # -- the request's side -----------------------------------------------------------

    async def next(self) -> bytes | None:
        """The next data, or None at job_done; raises the job's error."""
        while not self._chunks:
            if self.ended:
                if self.error is not None:
                    raise self.error
                return None
            self._wake.clear()
            await self._wake.wait()
        data = self._chunks.popleft()
        self._buffered -= len(data)
        return data

    async def cancel(self) -> None:
        """The request is gone before the job ended: tell the agent to stop (never after
        job_done or job_error)."""
        if self.ended:
            return
        self.ended = True
        self._link.forget(self.job_id)
        self._chunks.clear()
        await self._link.send_cancel(self.job_id)


class AgentLink:
    """One agent's authenticated connection and what it said: capabilities, heartbeats, jobs."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        provider_id: str,
        pubkey: str,
        agent_version: str,
        address: str,
        max_job_buffer_bytes: int = MAX_JOB_BUFFER_BYTES,
    ) -> None:
        self.ws = ws
        self.provider_id = provider_id
        self.pubkey = pubkey
        self.agent_version = agent_version
        self.address = address
        self.upstream = upstream_name(provider_id)
        self.connected_at = time.time()
        self.max_job_buffer_bytes = max_job_buffer_bytes
        self.capabilities: Capabilities | None = None
        self.heartbeat: Heartbeat | None = None
        self.heartbeat_at: float | None = None  # monotonic
        self.seen_at = time.monotonic()  # the last capabilities or heartbeat frame
        self.ready = False
        self.accepting = True  # False once the hub drains: no new jobs
        self.closed = False
        self.jobs: dict[str, JobStream] = {}
        self.idle = asyncio.Event()  # set while no job is in flight (the drain waits on it)
        self.idle.set()
        self._cancels: set[asyncio.Task[None]] = set()

    @property
    def formats(self) -> tuple[str, ...]:
        meta = self.capabilities.metadata if self.capabilities is not None else None
        return meta.formats if meta is not None and meta.formats else USEPOD_FORMATS

    @property
    def features(self) -> frozenset[str]:
        """modelport's protocol extensions the agent advertised (none for usepod-agent)."""
        meta = self.capabilities.metadata if self.capabilities is not None else None
        return frozenset(meta.features) if meta is not None and meta.features else frozenset()

    def view(self) -> AgentView:
        now = time.monotonic()
        caps = self.capabilities
        return AgentView(
            provider_id=self.provider_id,
            pubkey=self.pubkey,
            upstream=self.upstream,
            agent_version=self.agent_version,
            address=self.address,
            connected_at=self.connected_at,
            heartbeat_age_s=None if self.heartbeat_at is None else now - self.heartbeat_at,
            heartbeat=self.heartbeat,
            models=tuple(caps.models) if caps is not None else (),
            formats=self.formats,
            in_flight=len(self.jobs),
            ready=self.ready,
        )

    # -- jobs ---------------------------------------------------------------------------

    async def start_job(
        self,
        model_id: str,
        request: bytes,
        format: str,
        deadline_ms: int,
        *,
        stream: bool = True,
        relay: bool = False,
    ) -> JobStream:
        """Send a job; its frames arrive on the returned stream. `relay=True` (the client's
        body, streamed or not as it says: `stream` is not read) only to an agent that
        advertises RELAY_JOBS; `stream=False` (a whole answer) only to one that advertises
        WHOLE_JOBS."""
        if relay and RELAY_JOBS not in self.features:
            raise Unsupported(f"agent {self.upstream} does not serve relay jobs")
        if not (relay or stream or WHOLE_JOBS in self.features):
            raise Unsupported(f"agent {self.upstream} does not serve whole jobs")
        if self.closed or not self.accepting:
            raise Unreachable(
                f"agent {self.upstream} is not taking jobs (disconnected or draining)"
            )
        job_id = str(uuid.uuid4())
        job = JobStream(self, job_id, self.max_job_buffer_bytes)
        self.jobs[job_id] = job
        self.idle.clear()
        frame = Job(job_id, model_id, msgspec.Raw(request), format=format, deadline_ms=deadline_ms)
        if relay:
            frame.relay = True
        elif not stream:
            frame.stream = False
        try:
            # The encoded bytes as a text frame: no round trip through str, which costs a
            # UTF-8 decode and encode of the whole client body (500 us for 500 KB of
            # non-ASCII text).
            await self.ws.send_frame(encode(frame), WSMsgType.TEXT)
        except (ConnectionError, RuntimeError) as exc:
            job.fail(Unreachable(f"agent {self.upstream} dropped: {type(exc).__name__}"))
            raise job.error from None  # type: ignore[misc]
        return job

    def forget(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        if not self.jobs:
            self.idle.set()

    def cancel_job(self, job: JobStream) -> None:
        """job_cancel from the reader's side, which must not wait on the socket's writer."""
        task = asyncio.get_running_loop().create_task(self.send_cancel(job.job_id))
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def send_cancel(self, job_id: str) -> None:
        if self.closed:
            return
        # A socket that is going fails every job at its end anyway.
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_frame(encode(JobCancel(job_id)), WSMsgType.TEXT)

    def dropped(self, why: str) -> None:
        """The connection is gone: every job in flight fails now (before its first byte the
        candidate loop falls back; after it the client gets an error event)."""
        self.closed = True
        self.ready = False
        for job in list(self.jobs.values()):
            job.fail(Unreachable(f"agent {self.upstream} {why}"))


def upstream_name(provider_id: str) -> str:
    """The router name of an agent (CONTRACTS.md): `agent-` and 8 characters of its id."""
    tail = provider_id[5:13] if provider_id.startswith("prov_") else provider_id[:8]
    return f"agent-{tail}"
