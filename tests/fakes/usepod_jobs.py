"""usepod-agent 0.3.3's job side, for the UsepodAgent fake (usepod_agent.py).

From Sortis-AI/usepod-agent (tag v0.3.3 = d63ebc0):
- ws_client.rs `parse_job`: job_id must parse as a UUID (and goes back out lowercase and
  hyphenated, as serde writes a Uuid), model_id a string, `request` present (any JSON);
  `format` "anthropic" or else openai (then ignored); `deadline_ms` an unsigned integer or
  60000, cut to 32 bits.
- ws_client.rs: the outbound queue holds 64 frames (`mpsc::channel(64)`).
- job_executor.rs `JobExecutor`: see `Executor`; `WsJobSink`: see `JobSink`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from typing import Any

from .usepod_backend import U32, BackendError, HttpBackend, JobSpec, Other, as_u64, dumps

OUTBOX_CAPACITY = 64  # ws_client.rs: mpsc::channel::<Message>(64)
SEND_TIMEOUT_S = 5.0  # job_executor.rs SEND_TIMEOUT


class OutboxClosed(Exception):
    """The session's queue is gone (mpsc send on a dropped receiver)."""


class Outbox:
    """The session's bounded outbound queue (ws_client.rs `out_tx`)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(OUTBOX_CAPACITY)
        self.closed = False

    async def send(self, text: str) -> None:
        if self.closed:
            raise OutboxClosed
        await self.queue.put(text)
        if self.closed:
            raise OutboxClosed

    def close(self) -> None:
        self.closed = True
        while not self.queue.empty():  # wakes blocked senders, which then see `closed`
            self.queue.get_nowait()


class JobSink:
    """job_executor.rs WsJobSink: one `job_chunk` a read; counts the bytes it got out."""

    def __init__(self, job_id: str, outbox: Outbox, send_timeout_s: float) -> None:
        self.job_id, self.outbox, self.send_timeout_s = job_id, outbox, send_timeout_s
        self.bytes_sent = 0

    async def send_chunk(self, data: bytes) -> None:
        encoded = base64.b64encode(data).decode()
        frame = {"type": "job_chunk", "job_id": self.job_id, "data": encoded}
        try:
            await asyncio.wait_for(self.outbox.send(dumps(frame)), self.send_timeout_s)
        except OutboxClosed:
            raise Other("ws outbound closed") from None
        except TimeoutError:
            raise Other("ws outbound send timeout") from None
        self.bytes_sent += len(data)


class Executor:
    """job_executor.rs JobExecutor, for one session."""

    def __init__(
        self,
        backend: HttpBackend,
        models: list[str],
        outbox: Outbox,
        *,
        max_concurrent: int,
        send_timeout_s: float,
        cancel_race_window_s: float,
        tasks: set[asyncio.Task[Any]],
    ) -> None:
        self.backend = backend
        self.routes = set(models)
        self.outbox = outbox
        self.max_concurrent = max_concurrent
        self.send_timeout_s = send_timeout_s
        self.cancel_race_window_s = cancel_race_window_s
        self.tasks = tasks  # the agent's: kill() cancels them
        self.in_flight = 0  # a u32: every change is modulo 2**32
        self.active: dict[str, asyncio.Task[None]] = {}
        self.lock = asyncio.Lock()

    async def dispatch(self, job: JobSpec) -> None:
        prev = self.in_flight
        self.in_flight = (prev + 1) % U32
        if prev >= self.max_concurrent:
            self.in_flight = (self.in_flight - 1) % U32
            await self._refuse(job.job_id, "out_of_capacity", "agent at max_concurrent")
            return
        if job.model_id not in self.routes:
            self.in_flight = (self.in_flight - 1) % U32
            await self._refuse(job.job_id, "model_not_loaded", "no backend serves this model")
            return
        task = asyncio.create_task(self._drive(job))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        async with self.lock:
            self.active[job.job_id] = task

    async def _refuse(self, job_id: str, code: str, message: str) -> None:
        frame = {
            "type": "job_error",
            "job_id": job_id,
            "error_code": code,
            "message": message,
            "tokens_emitted": 0,
        }
        with contextlib.suppress(OutboxClosed):
            await self.outbox.send(dumps(frame))

    async def _drive(self, job: JobSpec) -> None:
        started = time.monotonic()
        sink = JobSink(job.job_id, self.outbox, self.send_timeout_s)
        deadline_s = max(job.deadline_ms, 1) / 1000
        final: dict[str, Any]
        try:
            found = await asyncio.wait_for(self.backend.execute(job, sink), deadline_s)
        except BackendError as err:
            final = self._error(job.job_id, err.code, str(err), sink.bytes_sent)
        except TimeoutError:
            message = "backend exceeded deadline_ms"
            final = self._error(job.job_id, "backend_timeout", message, sink.bytes_sent)
        else:
            input_tokens, output_tokens, duration_ms = found
            if duration_ms == 0:
                duration_ms = int((time.monotonic() - started) * 1000) % U32
            counts = {
                "input": input_tokens or 0,
                "output": output_tokens or 0,
                "input_tokens": input_tokens or 0,
                "output_tokens": output_tokens or 0,
            }
            final = {
                "type": "job_done",
                "job_id": job.job_id,
                "tokens": counts,
                "duration_ms": duration_ms,
            }
        with contextlib.suppress(OutboxClosed):  # "outbound closed before terminal frame"
            await self.outbox.send(dumps(final))
        self.in_flight = (self.in_flight - 1) % U32
        if self.cancel_race_window_s:
            await asyncio.sleep(self.cancel_race_window_s)  # see the module's docstring
        async with self.lock:
            self.active.pop(job.job_id, None)

    @staticmethod
    def _error(job_id: str, code: str, message: str, sent: int) -> dict[str, Any]:
        return {
            "type": "job_error",
            "job_id": job_id,
            "error_code": code,
            "message": message,
            "tokens_emitted": sent,
        }

    async def cancel(self, job_id: str) -> None:
        async with self.lock:
            task = self.active.pop(job_id, None)
        if task is None:
            return  # "cancel for unknown job (already done?)"
        task.cancel()  # JoinHandle::abort: the terminal frame never goes
        self.in_flight = (self.in_flight - 1) % U32


def parse_job(frame: dict[str, Any]) -> JobSpec | None:
    """ws_client.rs `parse_job`; None for a malformed job (logged and dropped)."""
    try:
        job_id = str(uuid.UUID(frame["job_id"]))  # Uuid::parse_str, written back lowercase
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    model_id = frame.get("model_id")
    if not isinstance(model_id, str) or "request" not in frame:
        return None
    fmt = "anthropic" if frame.get("format") == "anthropic" else "openai"
    deadline = as_u64(frame.get("deadline_ms"))
    deadline_ms = 60_000 if deadline is None else deadline % U32  # `as u32`
    return JobSpec(job_id, model_id, frame["request"], fmt, deadline_ms)
