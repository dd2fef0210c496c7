"""Jobs from the hub, each run through the same service path as a gateway request.

A job is a client body in the job's format ("openai": Chat Completions, "anthropic":
Messages). The runner sets `stream: true` (and, for OpenAI, `stream_options.include_usage`)
and `model` = the job's model_id, as usepod-agent's `backend/http.rs` does; a whole job
(`"stream": false`, modelport's WHOLE_JOBS extension, which this agent advertises) runs
as the client sent it, not streamed, and its one JSON body goes out as job_chunk frames
of at most CHUNK_BYTES before job_done. Then the runner calls
`Service.chat(format, body, request_id=job_id)`: validation, routing, passthrough or
transcoding, metering are the gateway's. The reply's bytes go out as `job_chunk` frames,
then exactly one `job_done` or `job_error` (`job_executor.rs`), except for a cancelled job,
which gets none.

What differs from usepod-agent (docs/agent.md):
- error codes from our error classes (CONTRACTS's table): an upstream 404 is
  `model_not_loaded`, a 429 `out_of_capacity`, a 401/403 `auth_rejected_by_backend`, where
  usepod-agent says `internal`; an invalid body never reaches an engine;
- `tokens_emitted` counts output tokens (the service's meter), never bytes;
- tokens come from the service's own record of the request (`RequestRecord`), which the
  runner takes from the service's observer, passing every record on: the agent parses no
  stream for its counts;
- the in-flight count is the size of one dict that only a job's own task shrinks (or a
  cancel, which takes the job out at once): it cannot drift, where usepod-agent's cancel
  racing a job's end decrements its counter twice;
- backpressure, not a queue: a job reads its next chunk only once the socket took the
  last one, so an engine is read no faster than the hub reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from modelport.errors import (
    AuthError,
    BackendError,
    ContextWindowExceeded,
    ImagesRefused,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    RateLimited,
    TimedOut,
    Unreachable,
    Unsupported,
    UpstreamAuthError,
)
from modelport.records import RequestRecord
from modelport.scrub import public_message
from modelport.service import Service
from modelport.service.reply import Reply
from modelport.types import WireFormat
from modelport.wire.errors import error_fields, parse_error_body
from modelport.wire.provider import (
    INVALID_PREFIX,
    JOB_FORMATS,
    AgentFrame,
    Job,
    JobChunk,
    JobDone,
    JobError,
    tokens,
)

log = logging.getLogger("modelport.agent.jobs")

Send = Callable[[AgentFrame], Awaitable[None]]

# Our error -> job_error code (CONTRACTS.md, agent side); the first base that matches wins.
_CODES: tuple[tuple[type[BackendError], str], ...] = (
    (ModelNotFound, "model_not_loaded"),
    (UpstreamAuthError, "auth_rejected_by_backend"),
    (AuthError, "auth_rejected_by_backend"),
    (Unreachable, "backend_unreachable"),
    (TimedOut, "backend_timeout"),  # DeadlineSpent too
    (Overloaded, "out_of_capacity"),  # QueueFull and Starting too
    (RateLimited, "out_of_capacity"),
)
# The request's own fault: a hub answers these 400 with no fallback ("invalid request: ").
_INVALID: tuple[type[BackendError], ...] = (InvalidRequest, ContextWindowExceeded, Unsupported)
# The most bytes of an answer one job_chunk carries: base64 of it (4/3) stays well under a
# hub's default frame cap ([hub] max_frame_kb = 1024), which a longer message breaks (the
# hub closes the socket, and every job on it fails). A whole answer, or one stream frame
# longer than this (a long text in one delta), goes in pieces.
CHUNK_BYTES = 256 * 1024


@functools.cache
def _error_classes() -> dict[str, type[BackendError]]:
    """Every BackendError class by name, walked once (the classes are fixed at import),
    not on each failed job."""
    found: dict[str, type[BackendError]] = {}
    todo: list[type[BackendError]] = [BackendError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def error_code(error_name: str) -> str:
    """The job_error code for an error class named as a RequestRecord names it."""
    cls = _error_classes().get(error_name)
    if cls is None:
        return "internal"
    return next((code for base, code in _CODES if issubclass(cls, base)), "internal")


def error_message(error_name: str, message: str) -> str:
    """The message a job_error carries: scrubbed, and marked when the request was at fault."""
    cls = _error_classes().get(error_name)
    invalid = cls is not None and issubclass(cls, _INVALID) and not issubclass(cls, ImagesRefused)
    return public_message(INVALID_PREFIX + message if invalid else message)


class JobObserver(Protocol):
    def job_started(self, job_id: str, model: str) -> None: ...

    def job_finished(self, job_id: str, *, outcome: str, error_code: str | None) -> None: ...

    # outcome: "done" | "error" | "cancelled" | "refused" (never started)


@dataclass(eq=False)
class _Run:
    job: Job
    format: WireFormat
    task: asyncio.Task[None] | None = None
    cancelled: bool = False


class JobRunner:
    """Owns the in-flight jobs; `in_flight` is the heartbeat's queue_depth."""

    def __init__(
        self,
        service: Service,
        *,
        max_concurrent: int,
        send: Send,
        observer: JobObserver | None = None,
    ) -> None:
        self.service = service
        self.max_concurrent = max_concurrent
        self.send = send
        self.observer = observer
        self.stopping = False  # the agent stops: new jobs are refused, running ones finish
        self._jobs: dict[str, _Run] = {}  # the slots: a job holds one while it is here
        self._tasks: set[asyncio.Task[None]] = set()  # every job task alive, cancelled too
        self._closing: set[asyncio.Task[None]] = set()  # upstream closes that outlive a task
        self._records: dict[str, RequestRecord] = {}
        # The service reports each request's record to one observer; the runner stands in
        # front of it to learn its jobs' token counts, and passes every record on.
        passed_on = service.observe

        def observe(record: RequestRecord) -> None:
            if record.request_id in self._jobs:
                self._records[record.request_id] = record
            passed_on(record)

        service.observe = observe

    @property
    def in_flight(self) -> int:
        return len(self._jobs)

    async def submit(self, job: Job) -> None:
        """Start a job, or refuse it at once (never queued)."""
        if job.job_id in self._jobs:
            await self._refuse(job, "internal", f"duplicate job_id {job.job_id!r}: it is running")
            return
        format = JOB_FORMATS.get(job.format)
        if format is None:
            known = " and ".join(JOB_FORMATS)
            await self._refuse(
                job, "internal", f"unknown job format {job.format!r}; this agent serves {known}"
            )
            return
        if self.stopping:  # out_of_capacity: the hub tries another agent at once
            await self._refuse(job, "out_of_capacity", "the agent is stopping")
            return
        if len(self._jobs) >= self.max_concurrent:
            await self._refuse(
                job, "out_of_capacity", f"agent at max_concurrent ({self.max_concurrent})"
            )
            return
        run = _Run(job, format)
        self._jobs[job.job_id] = run
        task = asyncio.create_task(self._drive(run), name=f"modelport-job-{job.job_id}")
        run.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self, job_id: str) -> None:
        """The hub's job_cancel: the upstream request is aborted at once and the job sends
        no terminal frame. Its slot is free from now (the hub counts it free already)."""
        run = self._jobs.pop(job_id, None)
        if run is None or run.task is None:
            log.debug("cancel of job %s, which is not running", job_id)
            return
        run.cancelled = True
        run.task.cancel()
        log.info("job %s cancelled by the hub", job_id)

    async def cancel_all(self) -> None:
        """The connection ended: every job is cancelled upstream; waits until they are."""
        for job_id in list(self._jobs):
            self.cancel(job_id)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._closing, return_exceptions=True)

    async def _refuse(self, job: Job, code: str, message: str) -> None:
        log.warning("job %s refused: %s", job.job_id, message)
        if self.observer is not None:
            self.observer.job_finished(job.job_id, outcome="refused", error_code=code)
        with contextlib.suppress(ConnectionError):
            await self.send(JobError(job.job_id, code, message, 0))

    # -- one job -------------------------------------------------------------------------

    async def _drive(self, run: _Run) -> None:
        """A job from start to its terminal frame. The task's own end is the one place its
        slot is given back (unless a cancel took it first)."""
        job = run.job
        started = time.perf_counter()
        outcome: str = "error"
        code: str | None = "internal"
        # Here, not in submit: a job cancelled before its task ever ran never starts, and
        # so the observer hears of every job it was told started exactly once more.
        if self.observer is not None:
            self.observer.job_started(job.job_id, job.model_id)
        try:
            try:
                async with asyncio.timeout(max(job.deadline_ms, 1) / 1000):
                    terminal = await self._serve(run, started)
            except TimeoutError:
                record = self._records.get(job.job_id)
                terminal = JobError(
                    job.job_id,
                    "backend_timeout",
                    f"the job's deadline of {job.deadline_ms} ms passed",
                    record.output_tokens if record is not None else 0,
                )
            if isinstance(terminal, JobDone):
                outcome, code = "done", None
            else:
                code = terminal.error_code
                log.warning("job %s failed: %s %s", job.job_id, code, terminal.message)
            await self.send(terminal)
        except asyncio.CancelledError:
            outcome, code = "cancelled", None
            raise
        except ConnectionError:  # the link went: cancel_all is on its way
            outcome, code = "cancelled", None
        except Exception:
            log.exception("job %s failed", job.job_id)
            with contextlib.suppress(ConnectionError):
                await self.send(JobError(job.job_id, "internal", "the agent failed", 0))
        finally:
            if self._jobs.get(job.job_id) is run:
                del self._jobs[job.job_id]
            self._records.pop(job.job_id, None)
            if run.cancelled:
                outcome, code = "cancelled", None
            if self.observer is not None:
                self.observer.job_finished(job.job_id, outcome=outcome, error_code=code)

    async def _serve(self, run: _Run, started: float) -> JobDone | JobError:
        job = run.job
        body = job_body(job, run.format)
        if body is None:
            message = INVALID_PREFIX + "the job's request is not a JSON object"
            return JobError(job.job_id, "internal", message, 0)
        reply = await self.service.chat(run.format, body, request_id=job.job_id)
        if reply.chunks is None:
            if reply.status >= 400:
                return self._failed(job, reply)
            await self._send_chunks(job, reply.body)  # a whole answer
            return self._done(job, started)
        chunks = reply.chunks
        # A relay job's client gets its error event from the hub, made from job_error: the
        # service's own error frame does not go out, or the client would read two.
        keep_error_frame = not job.relayed
        try:
            async for chunk in chunks:
                if chunks.failure is not None and not keep_error_frame:
                    break
                if len(chunk) <= CHUNK_BYTES:
                    await self.send(JobChunk(job.job_id, chunk))
                else:
                    await self._send_chunks(job, chunk)
        finally:
            # Shielded: a second cancel (the deadline, then the link) must not cut the
            # upstream's close short and leave its admission slot taken; cancel_all waits
            # for it.
            closing = asyncio.ensure_future(chunks.aclose())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            await asyncio.shield(closing)
        record = self._records.get(job.job_id)
        if record is not None and record.error:
            code = error_code(record.error)
            failure = chunks.failure
            message = failure.message if failure else f"the stream failed: {record.error}"
            return JobError(
                job.job_id, code, error_message(record.error, message), record.output_tokens
            )
        return self._done(job, started)

    async def _send_chunks(self, job: Job, data: bytes) -> None:
        for start in range(0, len(data), CHUNK_BYTES):
            await self.send(JobChunk(job.job_id, data[start : start + CHUNK_BYTES]))

    def _done(self, job: Job, started: float) -> JobDone:
        record = self._records.get(job.job_id)
        used = tokens(record.input_tokens, record.output_tokens) if record else tokens(0, 0)
        duration_ms = int((time.perf_counter() - started) * 1000)
        return JobDone(job.job_id, used, duration_ms)

    def _failed(self, job: Job, reply: Reply) -> JobError:
        """The service answered with an error before any byte of an answer."""
        record = self._records.get(job.job_id)
        name = record.error if record is not None else ""
        message = error_fields(parse_error_body(reply.body)).message or f"HTTP {reply.status}"
        return JobError(job.job_id, error_code(name), error_message(name, message), 0)


class _Model(msgspec.Struct):
    model: Any = None


_model_of = msgspec.json.Decoder(_Model)


def job_body(job: Job, format: WireFormat) -> bytes | None:
    """The job's request as the service gets it, for its model: a relay job's as the client
    sent it; any other streamed, with usage, unless it is a whole job (`"stream": false`).
    None when the request is not a JSON object."""
    if job.relayed:
        return relayed_body(job)
    return streamed_body(job, format)


def relayed_body(job: Job) -> bytes | None:
    """A relay job's body: the client's bytes as they came when they already name the
    job's model (a modelport hub sends them so), else the same object naming it. The
    service decodes and validates them; this only reads the model."""
    request = bytes(job.request)
    try:
        if _model_of.decode(request).model == job.model_id:
            return request
        payload: Any = msgspec.json.decode(request)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not isinstance(payload, dict):
        return None
    payload["model"] = job.model_id
    return msgspec.json.encode(payload)


def streamed_body(job: Job, format: WireFormat) -> bytes | None:
    """A usepod-style job's body, for its model: streamed, with usage (as usepod-agent's
    `backend/http.rs` asks), or whole as the client sent it for a whole job."""
    try:
        payload: Any = msgspec.json.decode(bytes(job.request))
    except msgspec.DecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    payload["model"] = job.model_id
    if not job.streamed:
        payload["stream"] = False
        return msgspec.json.encode(payload)
    payload["stream"] = True
    if format is WireFormat.OPENAI:
        options = payload.get("stream_options")
        payload["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    return msgspec.json.encode(payload)
