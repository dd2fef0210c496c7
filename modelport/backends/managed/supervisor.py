"""The owner task of one managed engine: the only code that changes its state.

Requests, the idle timer and the Fleet never touch the child or the state: they put a
message on the supervisor's queue and wait on the future it answers (llama-swap's rule:
one owner per process). Helper tasks (waiting for a fleet slot, polling /health, watching
for the exit, killing, the restart timer) only do I/O and post what happened back as
messages tagged with the run's generation, so news of an older run is recognised and dropped.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from modelport.backends.managed.messages import (
    Acquire,
    Admitted,
    Close,
    EndOf,
    Exited,
    Healthy,
    HelperFailed,
    IdleTick,
    Lease,
    Loading,
    Message,
    Release,
    Report,
    Retry,
    Stop,
    Stopped,
    Unprepared,
)
from modelport.backends.managed.process import (
    EngineProcess,
    ManagedSpec,
    Prerequisite,
    wait_healthy,
)
from modelport.backends.managed.states import ALLOWED, Snapshot, State
from modelport.backends.openai_compat import OpenAICompatBackend
from modelport.errors import BackendError, Overloaded, Starting, Unreachable

if TYPE_CHECKING:
    from modelport.backends.managed.fleet import Fleet

log = logging.getLogger("modelport.managed")
T = TypeVar("T")

READY_TIMEOUT_S = 60.0  # how long a request waits for a start, unless told otherwise
STARTING_RETRY_AFTER_S = 5.0
MAX_BACKOFF_S = 30.0
FRESH_FAILURE_AFTER_S = 60.0  # a child that ran this long and died is not a crash loop


class Supervisor:
    """Owns one child and its `State`; every other task asks it through `post`ed messages."""

    def __init__(
        self, spec: ManagedSpec, port: int, http: OpenAICompatBackend, backend_id: str,
        fleet: Fleet | None = None, *, start_wait_s: float = READY_TIMEOUT_S,
        prerequisite: Prerequisite | None = None,
    ) -> None:  # fmt: skip
        self.spec = spec
        self.start_wait_s = start_wait_s
        self.prerequisite = prerequisite
        self.port = port
        self.id = backend_id
        self.fleet = fleet
        self._http = http
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._owner: asyncio.Task[None] | None = None
        # Everything below is written by the owner task only.
        self._state = State.STOPPED
        self._generation = 0
        self._process: EngineProcess | None = None
        self._helper: asyncio.Task[None] | None = None  # admission+health, stopper or timer
        self._watcher: asyncio.Task[None] | None = None
        self._waiters: list[asyncio.Future[Lease]] = []
        self._stop_waiters: list[asyncio.Future[bool]] = []
        self._end_waiters: dict[int, list[asyncio.Future[bool]]] = {}
        self._ended: dict[int, bool] = {}  # generation -> whether it crashed (recent ones)
        self._closing = False
        self._in_flight = 0
        self._last_used = time.monotonic()
        self._last_error: str | None = None
        self._restarts = 0
        self._backoff = 1.0
        self._run_started = 0.0
        self.history: collections.deque[State] = collections.deque([State.STOPPED], maxlen=256)
        self.snapshot = self._take_snapshot()

    # -- asking (any task) ----------------------------------------------------------------

    def post(self, message: Message) -> None:
        self._queue.put_nowait(message)

    async def acquire(self, *, patient: bool = False) -> Lease:
        """A lease on the engine once it is ready; starts it if it is not running.

        Waits at most `start_wait_s` (`patient`: as long as the start takes), then raises
        `Starting` saying what the start is doing.
        """
        future: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        try:
            return await self._ask(Acquire(future), future, None if patient else self.start_wait_s)
        except TimeoutError:
            why = self.snapshot.last_error or "starting llama-server"
            raise Starting(
                f"model {self.spec.alias!r} is starting: {why}",
                backend_id=self.id,
                retry_after=STARTING_RETRY_AFTER_S,
            ) from None

    async def stop(self, *, only_if_idle: bool = False) -> bool:
        """Stop the child; with `only_if_idle`, refuse (False) while anyone uses or awaits it."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        return await self._ask(Stop(future, only_if_idle), future)

    async def report(self) -> Snapshot:
        future: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        return await self._ask(Report(future), future)

    async def crashed(self, lease: Lease, within: float = 2.0) -> bool:
        """Whether the run `lease` was taken on died by itself, waiting up to `within` s."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        try:
            return await self._ask(EndOf(lease.generation, future), future, within)
        except TimeoutError:
            return False

    async def close(self) -> None:
        """Stop the child and end the owner task (a later ask starts a new owner)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._ask(Close(future), future)
        if self._owner is not None:
            await asyncio.wait({self._owner})

    async def _ask(
        self, message: Message, future: asyncio.Future[T], within: float | None = None
    ) -> T:
        self.post(message)
        deadline = None if within is None else time.monotonic() + within
        try:
            while not future.done():
                owner = self._ensure_owner()
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                waitables: set[asyncio.Future[Any]] = {future, owner}
                await asyncio.wait(waitables, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                if owner.done() and not owner.cancelled() and owner.exception() is not None:
                    raise RuntimeError(f"the supervisor of {self.id} failed") from owner.exception()
                if deadline is not None and time.monotonic() >= deadline and not future.done():
                    raise TimeoutError
            return future.result()
        except BaseException:
            _abandon(future)
            raise

    def _ensure_owner(self) -> asyncio.Task[None]:
        if self._owner is None or self._owner.done():
            self._closing = False
            self._owner = asyncio.create_task(self._own(), name=f"supervisor {self.id}")
        return self._owner

    # -- owning (the owner task only) ------------------------------------------------------

    async def _own(self) -> None:
        while True:
            message = await self._next_message()
            await self._handle(message)
            self.snapshot = self._take_snapshot()
            if self._closing and self._state is State.STOPPED:
                return

    async def _next_message(self) -> Message:
        deadline = self._idle_deadline()
        if deadline is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return IdleTick()

    def _idle_deadline(self) -> float | None:
        """When a ready engine nobody uses may be unloaded (loading never counts as idle)."""
        idle_unload_s = self.spec.idle_unload_s
        if idle_unload_s <= 0 or self._state is not State.READY:
            return None
        if self._in_flight or self._live_waiters():
            return None
        return self._last_used + idle_unload_s

    async def _handle(self, message: Message) -> None:
        handler: Callable[[Any], Any] = getattr(self, f"_on_{type(message).__name__}")
        result = handler(message)
        if asyncio.iscoroutine(result):
            await result

    def _enter(self, state: State) -> None:
        if (self._state, state) not in ALLOWED:
            raise AssertionError(f"{self.id}: no transition {self._state} -> {state}")
        log.debug("%s: %s -> %s", self.id, self._state.value, state.value)
        self._state = state
        self.history.append(state)

    def _take_snapshot(self) -> Snapshot:
        return Snapshot(
            state=self._state,
            pid=self._process.pid if self._process is not None else None,
            in_flight=self._in_flight,
            waiting=len(self._live_waiters()),
            last_used=self._last_used,
            last_error=self._last_error,
            restarts=self._restarts,
            retrying=self._state is State.FAILED and self._helper is not None,
        )

    def _live_waiters(self) -> list[asyncio.Future[Lease]]:
        self._waiters = [w for w in self._waiters if not w.done()]
        return self._waiters

    # -- asks ------------------------------------------------------------------------------

    def _on_Acquire(self, message: Acquire) -> None:
        if message.future.done():
            return  # the asker gave up before we got to it
        if self._state is State.READY:
            self._grant(message.future)
            return
        self._waiters.append(message.future)
        if self._state is State.STOPPED or (self._state is State.FAILED and self._helper is None):
            self._begin_start()

    def _grant(self, future: asyncio.Future[Lease]) -> None:
        self._in_flight += 1
        self._last_used = time.monotonic()
        future.set_result(Lease(self.post, self._generation))

    def _on_Release(self, message: Release) -> None:
        self._in_flight -= 1
        self._last_used = time.monotonic()

    def _on_Stop(self, message: Stop) -> None:
        if message.only_if_idle and not self._take_snapshot().idle:
            _answer(message.future, False)
        elif self._state is State.STOPPED:
            _answer(message.future, True)
        else:
            self._stop_waiters.append(message.future)
            if self._state is not State.STOPPING:
                self._begin_stop("asked to stop")

    def _on_Report(self, message: Report) -> None:
        _answer(message.future, self._take_snapshot())

    def _on_EndOf(self, message: EndOf) -> None:
        ended = self._ended.get(message.generation)
        if ended is not None:
            _answer(message.future, ended)
        elif message.generation == self._generation and self._state in _RUNNING:
            self._end_waiters.setdefault(message.generation, []).append(message.future)
        else:
            _answer(message.future, False)

    def _on_Close(self, message: Close) -> None:
        self._closing = True
        self._stop_waiters.append(message.future)
        if self._state is State.STOPPED:
            self._finish_stop()
        elif self._state is not State.STOPPING:
            self._begin_stop("closing")

    def _on_IdleTick(self, message: IdleTick) -> None:
        deadline = self._idle_deadline()
        if deadline is not None and time.monotonic() >= deadline:
            idle_for = time.monotonic() - self._last_used
            log.info("unloading %s after %.1fs idle", self.spec.alias, idle_for)
            self._begin_stop("idle")

    # -- starting --------------------------------------------------------------------------

    def _start_helper(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A starting helper whose failure (a bug, not a cancel) the owner hears about."""
        generation = self._generation
        task = asyncio.create_task(work)

        def done(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                self.post(HelperFailed(generation, repr(task.exception())))

        task.add_done_callback(done)
        return task

    def _on_HelperFailed(self, message: HelperFailed) -> None:
        if message.generation == self._generation and self._state is State.STARTING:
            log.error("%s: starting failed: %s", self.id, message.error)
            self._helper = None
            self._begin_stop(f"starting failed: {message.error}")
            self._last_error = message.error

    def _begin_start(self) -> None:
        self._enter(State.STARTING)
        self._generation += 1
        self._helper = self._start_helper(self._admit(self._generation))

    async def _admit(self, generation: int) -> None:
        """Helper: wait for what must be in place (the install) and for a fleet slot (the
        Fleet may stop others), then report it."""
        if self.prerequisite is not None:
            try:
                await self.prerequisite.wait(lambda note: self.post(Loading(generation, note)))
            except BackendError as exc:
                self.post(Unprepared(generation, exc.message))
                return
        if self.fleet is not None:
            await self.fleet.make_room(self)
        self.post(Admitted(generation))

    async def _on_Admitted(self, message: Admitted) -> None:
        if message.generation != self._generation or self._state is not State.STARTING:
            return
        try:
            process = await EngineProcess.spawn(self.spec, self.port, self.id)
        except Unreachable as exc:
            self._fail(exc.message, restart=False)
            return
        self._process = process
        self._run_started = time.monotonic()
        self._watcher = asyncio.create_task(self._watch(message.generation, process))
        self._helper = self._start_helper(self._poll_health(message.generation))

    async def _watch(self, generation: int, process: EngineProcess) -> None:
        self.post(Exited(generation, await process.wait()))

    async def _poll_health(self, generation: int) -> None:
        await wait_healthy(self._http, lambda note: self.post(Loading(generation, note)))
        self.post(Healthy(generation))

    def _on_Unprepared(self, message: Unprepared) -> None:
        if message.generation == self._generation and self._state is State.STARTING:
            self._fail(message.why, restart=False)

    def _on_Loading(self, message: Loading) -> None:
        if message.generation == self._generation and self._state is State.STARTING:
            self._last_error = message.note

    def _on_Healthy(self, message: Healthy) -> None:
        if message.generation != self._generation or self._state is not State.STARTING:
            return
        self._enter(State.READY)
        self._helper = None
        self._last_error = None
        self._last_used = time.monotonic()  # idle time counts from here, not from the ask
        assert self._process is not None
        url = f"http://127.0.0.1:{self.port}"
        log.info("%s ready on %s (pid %s)", self.spec.alias, url, self._process.pid)
        for waiter in self._live_waiters():
            self._grant(waiter)
        self._waiters.clear()

    # -- failing and restarting ------------------------------------------------------------

    def _on_Exited(self, message: Exited) -> None:
        if message.generation != self._generation or self._state not in _RUNNING:
            return  # a stop we asked for: the stopper reports it
        self._last_error = f"llama-server exited with code {message.code}"
        self._end_run(crashed=True)
        self._fail(self._last_error, restart=True)

    def _fail(self, why: str, *, restart: bool) -> None:
        self._cancel_helper()
        self._last_error = why
        self._enter(State.FAILED)
        if not restart:
            for waiter in self._live_waiters():
                waiter.set_exception(self._not_ready(why))
            self._waiters.clear()
            self._release_slot()
            return
        self._restarts += 1
        if time.monotonic() - self._run_started > FRESH_FAILURE_AFTER_S:
            self._backoff = 1.0  # it ran a good while: a fresh failure, not a loop
        log.warning(
            "llama-server for %s exited (%s); restarting in %.0fs",
            self.spec.alias, why, self._backoff,
        )  # fmt: skip
        self._helper = asyncio.create_task(self._retry_after(self._generation, self._backoff))
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)

    async def _retry_after(self, generation: int, delay: float) -> None:
        await asyncio.sleep(delay)
        self.post(Retry(generation))

    def _on_Retry(self, message: Retry) -> None:
        if message.generation == self._generation and self._state is State.FAILED:
            self._begin_start()

    # -- stopping --------------------------------------------------------------------------

    def _begin_stop(self, why: str) -> None:
        """Forced from here on: waiters are told no, the child is killed by a helper."""
        for waiter in self._live_waiters():
            waiter.set_exception(self._not_ready(f"it was stopped ({why})"))
        self._waiters.clear()
        helper, self._helper = self._helper, None
        if helper is not None:
            helper.cancel()
        self._enter(State.STOPPING)
        self._helper = asyncio.create_task(self._kill(self._generation, helper, self._process))

    async def _kill(
        self, generation: int, previous: asyncio.Task[None] | None, process: EngineProcess | None
    ) -> None:
        """Helper: let the cancelled helper finish (no health poll outlives its run), kill."""
        if previous is not None:
            await asyncio.wait({previous})
        if process is not None:
            await process.kill()
        self.post(Stopped(generation))

    def _on_Stopped(self, message: Stopped) -> None:
        if message.generation != self._generation or self._state is not State.STOPPING:
            return
        self._helper = None
        self._end_run(crashed=False)
        self._enter(State.STOPPED)
        self._finish_stop()

    def _finish_stop(self) -> None:
        self._release_slot()
        for future in self._stop_waiters:
            _answer(future, True)
        self._stop_waiters.clear()
        if self._live_waiters() and not self._closing:
            self._begin_start()  # asked for while it was stopping: start it again

    def _end_run(self, *, crashed: bool) -> None:
        """The child of this generation is gone: forget it and tell who asked how it ended."""
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        self._process = None
        self._ended[self._generation] = crashed
        for old in [g for g in self._ended if g < self._generation - 8]:
            del self._ended[old]
        for future in self._end_waiters.pop(self._generation, []):
            _answer(future, crashed)

    def _cancel_helper(self) -> None:
        if self._helper is not None:
            self._helper.cancel()
            self._helper = None

    def _release_slot(self) -> None:
        if self.fleet is not None:
            self.fleet.release(self)

    def _not_ready(self, why: str) -> Overloaded:
        return Overloaded(
            f"llama-server for {self.spec.alias} is not ready: {why}",
            backend_id=self.id,
            retry_after=5.0,
        )


_RUNNING = (State.STARTING, State.READY)


def _answer(future: asyncio.Future[T], value: T) -> None:
    if not future.done():
        future.set_result(value)


def _abandon(future: asyncio.Future[Any]) -> None:
    """The asker stopped waiting: cancel its ask, or give back a lease already granted."""
    if not future.done():
        future.cancel()
    elif not future.cancelled() and future.exception() is None:
        result = future.result()
        if isinstance(result, Lease):
            result.release()
