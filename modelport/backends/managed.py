"""A llama-server child process that modelport starts, supervises and stops.

One supervisor task owns the process (llama-swap style): it starts it on a free loopback
port, waits for `/health`, restarts it with backoff when it dies, and stops it when it has
been idle too long. Requests only ask for it to be running and wait until it is; the
HTTP work itself is the llamacpp profile's (`OpenAICompatBackend`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from modelport.backends.openai_compat import OpenAICompatBackend
from modelport.errors import BackendError, Overloaded, Unreachable, Unsupported
from modelport.types import (
    BackendHealth,
    BackendModel,
    Capabilities,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResult,
    Event,
    FinishReason,
    Usage,
    WireFormat,
)

log = logging.getLogger("modelport.managed")
T = TypeVar("T")
engine_log = logging.getLogger("modelport.managed.llama-server")

STOP_GRACE_S = 5.0
READY_TIMEOUT_S = 120.0
MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class ManagedSpec:
    """How to run one model: the binary, the GGUF file and llama-server's knobs."""

    binary: Path
    model_path: Path
    alias: str
    ctx_size: int = 4096
    threads: int | None = None
    parallel: int = 2
    chat_template: str | None = None
    idle_unload_s: float = 0.0  # 0: never unload
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def command(self, port: int) -> list[str]:
        cmd = [
            str(self.binary),
            "--model", str(self.model_path),
            "--alias", self.alias,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--ctx-size", str(self.ctx_size),
            "--parallel", str(self.parallel),
        ]  # fmt: skip
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        if self.chat_template:
            cmd += ["--chat-template", self.chat_template]
        return [*cmd, *self.args]


class Fleet:
    """Caps how many managed engines run at once; the least recently used idle one yields."""

    def __init__(self, max_running: int = 1) -> None:
        self.max_running = max_running
        self.members: list[ManagedBackend] = []

    async def make_room(self, starting: ManagedBackend) -> None:
        while True:
            running = [m for m in self.members if m is not starting and m.running]
            if len(running) < self.max_running:
                return
            idle = [m for m in running if m.in_flight == 0]
            if idle:
                victim = min(idle, key=lambda m: m.last_used)
                log.info("stopping %s to make room for %s", victim.id, starting.id)
                await victim.unload()
                continue
            await asyncio.sleep(0.1)  # every runner is busy: wait for one to finish


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: its own process group, and SIGKILL when we die (Linux)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ManagedBackend:
    """kind "managed": a llama-server modelport runs itself. Speaks what llama-server speaks."""

    kind = "managed"
    formats = frozenset({WireFormat.OPENAI, WireFormat.ANTHROPIC})

    def __init__(self, spec: ManagedSpec, *, fleet: Fleet | None = None) -> None:
        self.spec = spec
        self.id = f"managed:{spec.alias}"
        self.fleet = fleet
        if fleet is not None:
            fleet.members.append(self)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._http = OpenAICompatBackend("llamacpp", self.url, name=self.id)
        self._process: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._wanted = False  # whether the supervisor should keep it running
        self._supervisor: asyncio.Task[None] | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.last_error: str | None = None
        self.restarts = 0
        self.in_flight = 0
        self.last_used = time.monotonic()
        self._models: list[BackendModel] = []

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Ask for the engine to run; returns once it is ready (or raises why it is not)."""
        self.last_used = time.monotonic()  # asking for it is using it: not idle from here
        async with self._lock:
            if not self._wanted:
                if self.fleet is not None:
                    await self.fleet.make_room(self)
                self._wanted = True
                self._ready.clear()
                self._supervisor = asyncio.create_task(self._supervise(), name=self.id)
            if self._idle_task is None and self.spec.idle_unload_s > 0:
                self._idle_task = asyncio.create_task(self._unload_when_idle())
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        ready = asyncio.create_task(self._ready.wait())
        assert self._supervisor is not None
        done, _ = await asyncio.wait(
            {ready, self._supervisor}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if ready in done:
            return
        ready.cancel()
        why = self.last_error or "still loading"
        raise Overloaded(
            f"llama-server for {self.spec.alias} is not ready: {why}",
            backend_id=self.id,
            retry_after=5.0,
        )

    async def _supervise(self) -> None:
        """The one loop that owns the child: run it, and run it again when it dies."""
        backoff = 1.0
        while self._wanted:
            started = time.monotonic()
            try:
                await self._run_once()
            except BackendError as exc:
                self.last_error = exc.message
            if not self._wanted:
                break
            self.restarts += 1
            if time.monotonic() - started > 60:
                backoff = 1.0  # it ran a good while: this is a fresh failure, not a loop
            log.warning(
                "llama-server for %s exited (%s); restarting in %.0fs",
                self.spec.alias, self.last_error, backoff,
            )  # fmt: skip
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _run_once(self) -> None:
        self._ready.clear()
        if not self.spec.binary.exists():
            self._wanted = False
            raise Unreachable(f"no llama-server at {self.spec.binary}", backend_id=self.id)
        command = self.spec.command(self.port)
        log.info("starting %s", " ".join(command))
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
            env={**os.environ, **self.spec.env},
        )
        stderr_task = asyncio.create_task(self._pipe_stderr(self._process))
        ready_task = asyncio.create_task(self._poll_health())
        exited = asyncio.create_task(self._process.wait())
        try:
            await asyncio.wait({ready_task, exited}, return_when=asyncio.FIRST_COMPLETED)
            if ready_task.done() and not ready_task.exception():
                self.last_error = None
                self._ready.set()
                log.info("%s ready on %s (pid %s)", self.spec.alias, self.url, self._process.pid)
            code = await exited
            self.last_error = f"llama-server exited with code {code}"
        finally:
            self._ready.clear()
            for task in (ready_task, exited, stderr_task):
                task.cancel()
            await self._kill()

    async def _poll_health(self) -> None:
        while True:
            health = await self._http.health()
            if health.ready:
                return
            self.last_error = health.last_error or "loading"
            await asyncio.sleep(0.1)

    async def _pipe_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            engine_log.debug("%s", line.decode("utf-8", "replace").rstrip())

    async def _kill(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after the grace period."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    async def unload(self) -> None:
        """Stop the child but stay usable: the next request starts it again."""
        async with self._lock:
            self._wanted = False
            supervisor, self._supervisor = self._supervisor, None
            await self._kill()
            if supervisor is not None:
                supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervisor
            self._ready.clear()
            await self._http.aclose()

    async def _unload_when_idle(self) -> None:
        while True:
            await asyncio.sleep(min(self.spec.idle_unload_s, 5.0))
            idle_for = time.monotonic() - self.last_used
            loaded = self._ready.is_set()  # an engine still loading is not idle
            if loaded and self.in_flight == 0 and idle_for >= self.spec.idle_unload_s:
                log.info("unloading %s after %.0fs idle", self.spec.alias, idle_for)
                await self.unload()

    async def aclose(self) -> None:
        if self._idle_task is not None:
            self._idle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_task
            self._idle_task = None
        await self.unload()
        if self.fleet is not None and self in self.fleet.members:
            self.fleet.members.remove(self)

    # -- the Backend protocol -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _in_use(self) -> AsyncIterator[None]:
        """Busy for the duration of a request, so idle unload and the fleet leave it be."""
        self.in_flight += 1
        self.last_used = time.monotonic()
        try:
            yield
        finally:
            self.in_flight -= 1
            self.last_used = time.monotonic()

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` against a running engine; if the engine just died, wait for its restart."""
        await self.start()
        try:
            return await work()
        except Unreachable:
            if not await self._died():
                raise
        await self.start()
        return await work()

    async def _died(self) -> bool:
        """Whether the child is gone (a crash the supervisor will mend), waiting a moment."""
        process = self._process
        if not self._wanted or process is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), 2.0)
        if process.returncode is None:
            return False
        self._ready.clear()
        return True

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        async with self._in_use():
            events = await self._call(lambda: _first(self._http.stream(request)))
            async for event in events:
                yield event

    async def chat(self, request: ChatRequest) -> ChatResponse:
        async with self._in_use():
            return await self._call(lambda: self._http.chat(request))

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        async with self._in_use():
            return await self._call(lambda: self._http.embed(request))

    async def relay(self, format: WireFormat, body: bytes) -> _HeldRelay:
        self.in_flight += 1
        self.last_used = time.monotonic()
        try:
            relay = await self._call(lambda: self._http.relay(format, body))
        except BaseException:
            self.in_flight -= 1
            raise
        return _HeldRelay(relay, self)

    async def count_tokens(self, request: ChatRequest) -> int:
        async with self._in_use():
            return await self._call(lambda: self._http.count_tokens(request))

    async def list_models(self) -> list[BackendModel]:
        if self.running and self._ready.is_set():
            self._models = await self._http.list_models()
        if self._models:
            return self._models
        # Not running (idle or not started yet): what it will serve once it is. llama-server
        # splits --ctx-size across its parallel slots, so that is what one request gets.
        return [
            BackendModel(
                id=self.spec.alias,
                context_window=self.spec.ctx_size // self.spec.parallel,
                capabilities=Capabilities(tools=True),
                loaded=False,
            )
        ]

    async def health(self) -> BackendHealth:
        if not self._wanted:
            # Unloaded on purpose: a request will start it and wait, so it counts as ready.
            note = "not running; starts on the next request"
            return BackendHealth(alive=True, ready=True, last_error=note)
        if not self._ready.is_set():
            return BackendHealth(alive=self.running, ready=False, last_error=self.last_error)
        return await self._http.health()


async def _first(events: AsyncIterator[Event]) -> AsyncIterator[Event]:
    """Open a stream far enough to know the engine answered (the first event), then hand it on.

    A stream that fails to connect raises here, inside `_call`, where a crash can be mended.
    """
    iterator = aiter(events)
    try:
        first = await anext(iterator)
    except StopAsyncIteration:
        first = None
    except BaseException:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()
        raise

    async def chained() -> AsyncIterator[Event]:
        try:
            if first is not None:
                yield first
            async for event in iterator:
                yield event
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    return chained()


class _HeldRelay:
    """A relay that keeps its managed engine marked busy until the stream is over."""

    def __init__(self, relay: Any, owner: ManagedBackend) -> None:
        self._relay = relay
        self._owner = owner
        self._held = True

    @property
    def status(self) -> int:
        return int(self._relay.status)

    @property
    def content_type(self) -> str:
        return str(self._relay.content_type)

    @property
    def usage(self) -> Usage | None:
        usage: Usage | None = self._relay.usage
        return usage

    @property
    def finish_reason(self) -> FinishReason | None:
        reason: FinishReason | None = self._relay.finish_reason
        return reason

    def _release(self) -> None:
        if self._held:
            self._held = False
            self._owner.in_flight -= 1
            self._owner.last_used = time.monotonic()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._relay:
                yield chunk
        finally:
            self._release()

    async def aclose(self) -> None:
        try:
            await self._relay.aclose()
        finally:
            self._release()


BUNDLED_ALIAS = "gemma-3-270m"


def bundled(model_path: str | None = None, *, fleet: Fleet | None = None) -> ManagedBackend:
    """A managed engine on the installed llama-server: the bundled model, or `model_path`."""
    from modelport.engine import installed

    paths = installed()
    if paths is None:
        raise Unsupported(
            "the embedded engine is not installed: run `modelport engine install`",
            backend_id="managed",
        )
    model = Path(model_path).expanduser() if model_path else paths.model
    alias = BUNDLED_ALIAS if model_path is None else model.stem
    return ManagedBackend(ManagedSpec(paths.llama_server, model, alias), fleet=fleet)
