"""The Backend protocol over a managed llama-server.

The HTTP work is the llamacpp profile's (`OpenAICompatBackend`); whether the child runs is
the supervisor's business (supervisor.py). A request takes a lease (which starts the
engine and waits until it is ready), works, and gives the lease back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import msgspec

from modelport.backends.base import Relay
from modelport.backends.managed.fleet import Fleet
from modelport.backends.managed.messages import Lease
from modelport.backends.managed.process import ManagedSpec, Prerequisite, free_port
from modelport.backends.managed.states import State
from modelport.backends.managed.supervisor import READY_TIMEOUT_S, Supervisor
from modelport.backends.openai_compat import OpenAICompatBackend
from modelport.backends.profiles import PROFILES
from modelport.errors import Unreachable, Unsupported
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
    RelayContext,
    RelayedFormat,
    Usage,
)
from modelport.wire.fields import Target

T = TypeVar("T")


class ManagedBackend:
    """kind "managed": a llama-server modelport runs itself. Speaks what llama-server speaks."""

    kind = "managed"
    formats = PROFILES["llamacpp"].relay_formats
    transcodes_to = Target.OPENAI  # llama-server's chat completions

    def __init__(
        self,
        spec: ManagedSpec,
        *,
        fleet: Fleet | None = None,
        start_wait_s: float = READY_TIMEOUT_S,
        prerequisite: Prerequisite | None = None,
    ) -> None:
        """`start_wait_s`: how long a request waits for a start before it is told `Starting`;
        `prerequisite`: what must be in place before the first spawn (the engine's install)."""
        self.spec = spec
        self.id = f"managed:{spec.alias}"
        self.fleet = fleet
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._http = OpenAICompatBackend("llamacpp", self.url, name=self.id)
        self.supervisor = Supervisor(
            spec, self.port, self._http, self.id, fleet,
            start_wait_s=start_wait_s, prerequisite=prerequisite,
        )  # fmt: skip
        if fleet is not None:
            fleet.members.append(self.supervisor)
        self._models: list[BackendModel] = []

    # -- lifecycle: asks to the supervisor, and what it last reported -------------------

    @property
    def state(self) -> State:
        return self.supervisor.snapshot.state

    @property
    def running(self) -> bool:
        return self.supervisor.snapshot.pid is not None

    @property
    def pid(self) -> int | None:
        return self.supervisor.snapshot.pid

    @property
    def restarts(self) -> int:
        return self.supervisor.snapshot.restarts

    @property
    def last_error(self) -> str | None:
        return self.supervisor.snapshot.last_error

    @property
    def in_flight(self) -> int:
        return self.supervisor.snapshot.in_flight

    @property
    def last_used(self) -> float:
        return self.supervisor.snapshot.last_used

    async def start(self, *, patient: bool = False) -> None:
        """Ask for the engine to run; returns once it is ready (or raises why it is not).
        `patient`: wait as long as the start takes, not only `start_wait_s`."""
        lease = await self.supervisor.acquire(patient=patient)
        lease.release()

    async def unload(self) -> None:
        """Stop the child but stay usable: the next request starts it again."""
        await self.supervisor.stop()
        await self._http.aclose()

    async def aclose(self) -> None:
        await self.supervisor.close()
        await self._http.aclose()
        if self.fleet is not None and self.supervisor in self.fleet.members:
            self.fleet.members.remove(self.supervisor)

    # -- the Backend protocol -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _in_use(self) -> AsyncIterator[_Held]:
        """Busy for the duration of a request, so idle unload and the fleet leave it be."""
        held = _Held(self.supervisor)
        try:
            yield held
        finally:
            held.drop()

    async def _call(self, held: _Held, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` against a running engine; if the engine just died, wait for its restart."""
        lease = await held.take()
        try:
            return await work()
        except Unreachable:
            if not await self.supervisor.crashed(lease):
                raise
        held.drop()
        await held.take()
        return await work()

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        async with self._in_use() as held:
            events = await self._call(held, lambda: _first(self._http.stream(request)))
            async for event in events:
                yield event

    async def chat(self, request: ChatRequest) -> ChatResponse:
        async with self._in_use() as held:
            return await self._call(held, lambda: self._http.chat(request))

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        if not self.spec.serves_embeddings:  # say so before starting the engine for nothing
            raise Unsupported(
                f"model {self.spec.alias!r} was started without embeddings "
                "(set embeddings = true on its managed backend)",
                backend_id=self.id,
            )
        async with self._in_use() as held:
            return await self._call(held, lambda: self._http.embed(request))

    async def relay(
        self, format: RelayedFormat, body: bytes, context: RelayContext | None = None
    ) -> _HeldRelay:
        # Refusals (a field llama-server drops, such as `suffix`) come before the engine is
        # woken: an autocomplete client must not start an idle engine only to be refused.
        request = self._http.relay_request(format, body, context)
        held = _Held(self.supervisor)
        try:
            relay = await self._call(held, lambda: self._http.send_relay(format, request, context))
        except BaseException:
            held.drop()
            raise
        return _HeldRelay(relay, held)

    def relays(self, format: RelayedFormat, request: ChatRequest) -> bool:
        """The llamacpp profile's answer (see OpenAICompatBackend.relays)."""
        return self._http.relays(format, request)

    async def count_tokens(self, request: ChatRequest) -> int:
        async with self._in_use() as held:
            return await self._call(held, lambda: self._http.count_tokens(request))

    async def list_models(self) -> list[BackendModel]:
        """What llama-server reports (vision from /props), and embeddings as we started it:
        nothing llama-server serves says whether it has them, but we know."""
        if (await self.supervisor.report()).state is State.READY:
            self._models = [self._known(m) for m in await self._http.list_models()]
        return self._models or self.declared_models()

    def declared_models(self) -> list[BackendModel]:
        """What it serves before it runs (idle, starting, or its engine still being built),
        known from its spec: the alias. llama-server splits --ctx-size across its parallel
        slots, so that is what one request gets. Whether it sees images is known once it
        has run (/props)."""
        return [
            BackendModel(
                id=self.spec.alias,
                context_window=self.spec.ctx_size // self.spec.parallel,
                capabilities=Capabilities(
                    tools=True, vision=None, embeddings=self.spec.serves_embeddings
                ),
                loaded=False,
            )
        ]

    def _known(self, model: BackendModel) -> BackendModel:
        capabilities = model.capabilities.with_overrides(
            {"embeddings": self.spec.serves_embeddings}
        )
        return msgspec.structs.replace(model, capabilities=capabilities)

    async def health(self) -> BackendHealth:
        snapshot = await self.supervisor.report()
        if snapshot.state is State.READY:
            return await self._http.health()
        if snapshot.state in (State.STOPPED, State.STOPPING) or (
            snapshot.state is State.FAILED and not snapshot.retrying
        ):
            # Not running on purpose: a request will start it and wait, so it counts as ready.
            note = snapshot.last_error or "not running; starts on the next request"
            return BackendHealth(alive=True, ready=True, last_error=note)
        # Starting, or restarting after a crash: a request may wait for it (start_wait_s).
        return BackendHealth(
            alive=snapshot.pid is not None,
            ready=False,
            starting=True,
            last_error=snapshot.last_error or "starting llama-server",
        )


class _Held:
    """One request's lease, swapped for a fresh one when the engine dies and restarts."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self._lease: Lease | None = None

    async def take(self) -> Lease:
        if self._lease is None:
            self._lease = await self._supervisor.acquire()
        return self._lease

    def drop(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()


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
        await _close(iterator)
        raise

    async def chained() -> AsyncIterator[Event]:
        try:
            if first is not None:
                yield first
            async for event in iterator:
                yield event
        finally:
            await _close(iterator)

    return chained()


async def _close(events: AsyncIterator[Event]) -> None:
    """Close an engine's event stream; backends return async generators, which can be."""
    if isinstance(events, AsyncGenerator):
        await events.aclose()


class _HeldRelay:
    """A relay that keeps its managed engine marked busy until the stream is over."""

    def __init__(self, relay: Relay, held: _Held) -> None:
        self._relay = relay
        self._held = held

    @property
    def status(self) -> int:
        return self._relay.status

    @property
    def content_type(self) -> str:
        return self._relay.content_type

    @property
    def usage(self) -> Usage | None:
        return self._relay.usage

    @property
    def finish_reason(self) -> FinishReason | None:
        return self._relay.finish_reason

    def _release(self) -> None:
        self._held.drop()

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
# The bundled model's window: Gemma 3 270M was trained on 32k tokens, and coding agents open
# with prompts of 4k tokens and more (Claude Code's), which a 2k slot refuses. Gemma's
# sliding-window layers keep the KV cache small, so two 16k slots cost little memory.
BUNDLED_CTX_SIZE = 32768
# Its GGUF names no pooling type; mean pooling gives one vector per input (measured on
# llama-server b11434: 640 floats per input, 200).
BUNDLED_POOLING = "mean"


def model_alias(model_path: Path | None) -> str:
    """The name clients use for a managed engine's model unless told another: the bundled
    model's, or the given GGUF file's stem."""
    return BUNDLED_ALIAS if model_path is None else model_path.stem


def bundled_spec(llama_server: Path, model: Path) -> ManagedSpec:
    """The bundled model on `llama_server`, as `serve` runs it with nothing configured."""
    return ManagedSpec(llama_server, model, BUNDLED_ALIAS, BUNDLED_CTX_SIZE)


def bundled(model_path: str | None = None, *, fleet: Fleet | None = None) -> ManagedBackend:
    """A managed engine on the installed llama-server: the bundled model, or `model_path`."""
    from modelport.engine import installed

    paths = installed()
    if paths is None:
        raise Unsupported(
            "the embedded engine is not installed: run `modelport engine install`",
            backend_id="managed",
        )
    if not model_path:
        return ManagedBackend(bundled_spec(paths.llama_server, paths.model), fleet=fleet)
    given = Path(model_path).expanduser()
    return ManagedBackend(ManagedSpec(paths.llama_server, given, model_alias(given)), fleet=fleet)
