"""The embedded engine's install, run in the background while the gateway already serves.

On a first run `serve` has no llama-server and no model: the model download takes seconds,
the llama-server build minutes. The cheap checks (`EngineSource.plan`: a compiler, cmake,
disk space) run before the gateway binds, so a machine that cannot build says so at once;
the slow rest runs in a worker thread while the gateway answers `/health`, lists the
bundled model as not ready and tells requests what is happening.

Ownership (llama-swap's rule, one owner per process's state): `Installation` owns the
install (its worker thread, what it is doing, how it ended); the managed engine's
supervisor owns the llama-server child and waits on the install before its first spawn,
through the `Prerequisite` protocol, hearing its progress as the start's note
("building llama-server, 40%").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from modelport.engine import EngineInstallError, EnginePaths, Progress, describe_stage
from modelport.errors import Unreachable

log = logging.getLogger("modelport.gateway")


class Plan(Protocol):
    """An install that passed its cheap checks (`modelport.engine.InstallPlan`)."""

    @property
    def paths(self) -> EnginePaths:
        """Where the binary and the model will be once `run()` is done."""
        ...

    def run(self) -> object:
        """Download and build what is missing (blocking; minutes on a first run)."""
        ...


class EngineSource(Protocol):
    """Where the embedded engine comes from: the seam tests replace with a slow installer."""

    def installed(self) -> EnginePaths | None:
        """What is in place already (a few `stat` calls), or None."""
        ...

    def plan(self, progress: Progress, cancel: threading.Event) -> Plan:
        """The cheap checks (blocking, about a second): raises EngineInstallError when the
        install cannot work; `progress` hears every stage of the run to come; once
        `cancel` is set the run ends (raising) as soon as it can."""
        ...


class PinnedEngine:
    """The pinned llama.cpp build and the bundled model (`modelport.engine`)."""

    def installed(self) -> EnginePaths | None:
        from modelport.engine import installed

        return installed()

    def plan(self, progress: Progress, cancel: threading.Event) -> Plan:
        from modelport.engine import plan_install

        return plan_install(progress=progress, cancel=cancel)


class Installation:
    """One engine install in a worker thread, and who waits for it (a `Prerequisite`).

    Built on the event loop; the worker reports progress through `progress`, which hops
    back to the loop, so `note` and the listeners are only touched there. A failed install
    is run again by the next `wait` (the next request), as a missing binary is.
    """

    def __init__(
        self, say: Callable[[str], None], on_note: Callable[[], None] | None = None
    ) -> None:
        """`say`: the console; `on_note`: told when what it is doing changes (the gateway
        refreshes the router then, so /ready and the listings say it)."""
        self._loop = asyncio.get_running_loop()
        self._say = say
        self._on_note = on_note
        self.note = "installing the embedded engine"
        self._plan: Plan | None = None
        self._run: asyncio.Future[None] | None = None
        self._listeners: list[Callable[[str], None]] = []
        self._said: dict[str, int] = {}  # stage -> the last tenth said on the console
        self.cancel = threading.Event()  # the install's commands watch it (see `close`)

    def progress(self, stage: str, fraction: float | None) -> None:
        """The install's progress callback: called from its thread."""
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            self._loop.call_soon_threadsafe(self._publish, stage, fraction)

    def _publish(self, stage: str, fraction: float | None) -> None:
        if self.cancel.is_set():
            return  # closed: news of a run being killed interests nobody
        self.note = describe_stage(stage, fraction)
        for listener in list(self._listeners):
            listener(self.note)
        if self._on_note is not None:
            self._on_note()
        tenth = -1 if fraction is None else int(fraction * 10)
        if self._said.get(stage) != tenth:  # each stage once, then every tenth
            self._said[stage] = tenth
            self._say(f"  {self.note}")

    def begin(self, plan: Plan) -> None:
        """What to run; the first `wait` (the engine's start, at once) runs it."""
        self._plan = plan

    def close(self) -> None:
        """The gateway stops: end a run under way (its build is killed), start no other."""
        self.cancel.set()
        self._plan = None

    async def wait(self, note: Callable[[str], None]) -> None:
        """The `Prerequisite` protocol: return once installed; `note` hears the progress."""
        if self._plan is None:
            if self.cancel.is_set():
                raise Unreachable("the gateway is stopping")
            return
        if self._run is None or (self._run.done() and self._run.exception() is not None):
            self._run = self._start()  # the last one failed: this ask tries again
        note(self.note)
        self._listeners.append(note)
        try:
            await asyncio.shield(self._run)
        except EngineInstallError as exc:
            why = _first_line(exc)
            raise Unreachable(f"the embedded engine could not be installed: {why}") from exc
        finally:
            self._listeners.remove(note)

    def _start(self) -> asyncio.Future[None]:
        """The install in a daemon thread: a `serve` stopped mid-build does not wait for it
        (the build's scratch dir is removed by the next install)."""
        assert self._plan is not None
        plan, loop = self._plan, self._loop
        finished: asyncio.Future[None] = loop.create_future()
        self.note = "installing the embedded engine"

        def work() -> None:
            error: BaseException | None = None
            try:
                plan.run()
            except BaseException as exc:  # reported to the loop, raised to whoever waits
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed before the install ended
                loop.call_soon_threadsafe(_settle, finished, error)

        finished.add_done_callback(self._ended)
        threading.Thread(target=work, name="modelport-engine-install", daemon=True).start()
        return finished

    def _ended(self, finished: asyncio.Future[None]) -> None:
        if finished.cancelled():
            return
        error = finished.exception()
        if self.cancel.is_set():
            return  # stopped on purpose: nothing to report
        if error is None:
            self.note = "installed; starting llama-server"
            self._say("embedded engine installed")
            return
        self.note = f"the install failed: {_first_line(error)}"
        log.error("the embedded engine could not be installed: %s", error)


def _first_line(error: BaseException) -> str:
    """An install error's first line: the rest is a build log's tail, for the server log."""
    lines = str(error).splitlines()
    return lines[0].rstrip(":") if lines else type(error).__name__


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
