"""Model name -> the backends that can serve it, with admission, health and a breaker.

The router owns its upstreams: they come and go through `Router.add` and `Router.remove`,
and one background task owns the refresh of health and model lists; request handlers only
read what it last saw. Admission and the breaker are per upstream and purely local state,
so they need no lock beyond the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import difflib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from modelport.backends.base import Backend
from modelport.errors import BackendError, DeadlineSpent, QueueFull, RateLimited, Starting
from modelport.types import BackendHealth, BackendModel

log = logging.getLogger("modelport.router")
T = TypeVar("T")


class Admission:
    """At most `max_concurrent` in flight, at most `max_queue` waiting, each at most
    `queue_timeout_s`. A full queue answers at once; nobody waits forever."""

    def __init__(self, max_concurrent: int, max_queue: int, queue_timeout_s: float) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self.in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    def try_acquire(self) -> bool:
        """Take a free slot now if there is one and nobody is waiting for it; never waits."""
        if self.in_flight < self.max_concurrent and (not self._waiters or not self.queued):
            self.in_flight += 1
            return True
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        if self.queued >= self.max_queue:
            raise QueueFull(
                f"{self.in_flight} requests in flight and {self.queued} queued",
                retry_after=1.0,
            )
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot reached us as we left: hand it on
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise QueueFull(
                    f"waited {self.queue_timeout_s:g}s in the queue", retry_after=1.0
                ) from None
            raise

    def release(self) -> None:
        """Give the slot to the next waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


class Breaker:
    """Opens after `threshold` consecutive failures; after `cooldown_s`, lets one trial through."""

    def __init__(
        self,
        threshold: int = 3,
        cooldown_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._cooled() else "open"

    def _cooled(self) -> bool:
        return self.opened_at is not None and self.clock() - self.opened_at >= self.cooldown_s

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if self._cooled() and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._trial = False

    def failure(self) -> None:
        self.failures += 1
        if self._trial or self.failures >= self.threshold:
            self.opened_at = self.clock()
        self._trial = False

    def neutral(self) -> None:
        """An attempt ended saying nothing of the backend's health (a 429, a bad request,
        the request's own deadline, the client leaving): the count stays, and a half-open
        trial it held is given back, so the next request may be the trial."""
        self._trial = False


class RateLimits:
    """Which of one upstream's models said 429 with a Retry-After, and until when: the
    candidate loop passes over them until then. Per model, since engines and cloud APIs
    limit per model; a 429 says nothing of the upstream's health (it is no breaker fault)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._until: dict[str, float] = {}

    def hold(self, model: str, seconds: float) -> None:
        """Keep requests for `model` off this upstream for `seconds` (its Retry-After)."""
        until = self.clock() + seconds
        if until > self._until.get(model, 0.0):
            self._until[model] = until

    def remaining(self, model: str) -> float:
        """Seconds until `model` may be asked again; 0 when it may be now."""
        until = self._until.get(model)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._until[model]  # expired holds do not pile up
            return 0.0
        return left


@dataclass(frozen=True)
class Limits:
    """How much one upstream takes at once: Admission's three numbers."""

    max_concurrent: int = 8
    max_queue: int = 64
    queue_timeout_s: float = 30.0

    def admission(self) -> Admission:
        return Admission(self.max_concurrent, self.max_queue, self.queue_timeout_s)


@dataclass(eq=False)
class Upstream:
    """One backend as the router sees it: limits, breaker and what it last reported."""

    name: str
    backend: Backend
    admission: Admission
    breaker: Breaker = field(default_factory=Breaker)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    # Seconds an attempt may wait for its first byte before the next candidate is tried;
    # None: the service's default (server.first_byte_timeout_s).
    first_byte_timeout_s: float | None = None
    priority: int = 0
    local: bool = True
    allow: frozenset[str] | None = None
    discovered: bool = False
    # What config says its models can do, over what the engine reports: for every model,
    # then per model name (capability name -> value).
    capabilities: Mapping[str, bool] = field(default_factory=dict)
    model_capabilities: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    models: dict[str, BackendModel] = field(default_factory=dict)
    health: BackendHealth | None = None

    def described(self, model: BackendModel) -> BackendModel:
        """`model` as the engine reported it, with what config says it can do on top."""
        overrides = {**self.capabilities, **self.model_capabilities.get(model.id, {})}
        if not overrides:
            return model
        capabilities = model.capabilities.with_overrides(overrides)
        return msgspec.structs.replace(model, capabilities=capabilities)

    @property
    def ready(self) -> bool:
        return self.health is not None and self.health.ready

    @property
    def starting(self) -> bool:
        """Not ready yet but on its way up: a request may wait for it (a managed engine)."""
        return self.health is not None and self.health.starting

    def serves(self, model: str) -> bool:
        if self.allow is not None and model not in self.allow:
            return False
        return model in self.models


@dataclass(frozen=True)
class Route:
    upstream: Upstream
    model: str  # the name the engine knows the model by

    @property
    def price(self) -> Price | None:
        """What serving this model costs as its upstream advertises it (an agent does)."""
        return advertised_price(self.upstream.models.get(self.model))


@dataclass(frozen=True, slots=True)
class Price:
    """An advertised price, in USDC micro-units per million tokens (usepod's unit)."""

    input_per_1m: int
    output_per_1m: int


def advertised_price(model: BackendModel | None) -> Price | None:
    """The price in a model's native entry (`input_per_1m`, `output_per_1m`: a hub agent's
    capabilities put them there); None when it advertises none, as engines here do not."""
    if model is None:
        return None
    given, made = model.native.get("input_per_1m"), model.native.get("output_per_1m")
    # bool is an int subclass; `type(...) is int` keeps True from passing for 1.
    if type(given) is int and type(made) is int and given >= 0 and made >= 0:
        return Price(given, made)
    return None


# Routing policies: how candidates for one model are ordered. "local-first": this machine's
# engines before remote ones (agents, cloud), then by priority. "price": the cheapest
# advertised price (input + output per million) first, then as local-first; a backend
# advertising no price (this machine's engines, cloud backends configured here) counts as
# free: it costs the hub's settlement nothing.
POLICIES = ("local-first", "price")


def preference(policy: str, upstream: Upstream, model: str) -> tuple[int, ...]:
    """The sort key of `upstream` among the candidates for `model`: lower is tried first."""
    order = (int(not upstream.local), -upstream.priority)
    if policy != "price":
        return order
    price = advertised_price(upstream.models.get(model))
    return (0 if price is None else price.input_per_1m + price.output_per_1m, *order)


# Called at the start of every refresh; it adds what it finds through `Router.add`.
Discover = Callable[["Router"], Awaitable[None]]


class Router:
    """Owns the upstreams: only `add` and `remove` change the set, only `refresh` reads them.

    One background loop refreshes every `refresh_s` (or at once after `refresh_soon`):
    discovery first, so an engine found now is described in the same pass, then each
    upstream's health and model list, each asked once.
    """

    def __init__(
        self,
        *,
        aliases: dict[str, tuple[str, ...]] | None = None,
        refresh_s: float = 30.0,
        discover: Discover | None = None,
        probe_timeout_s: float = 5.0,
        policy: str = "local-first",
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown routing policy {policy!r}: use {' or '.join(POLICIES)}")
        self.policy = policy
        self._upstreams: list[Upstream] = []
        self.aliases = dict(aliases or {})
        self.refresh_s = refresh_s
        self.discover = discover
        self.probe_timeout_s = probe_timeout_s
        self.on_refresh: Callable[[Upstream], None] | None = None
        # Called as `remove` takes an upstream out: the gateway drops its metric series.
        self.on_remove: Callable[[Upstream], None] | None = None
        # Called once a whole pass is done (every upstream described): the agent's watch
        # compares what it advertises then, not halfway through a pass.
        self.on_pass: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._waiting: list[asyncio.Future[None]] = []

    @property
    def upstreams(self) -> tuple[Upstream, ...]:
        """A snapshot; change the set with `add` and `remove`."""
        return tuple(self._upstreams)

    # -- the set of upstreams -----------------------------------------------------

    def add(
        self,
        backend: Backend,
        limits: Limits,
        *,
        name: str | None = None,
        priority: int = 0,
        local: bool = True,
        allow: frozenset[str] | None = None,
        discovered: bool = False,
        capabilities: Mapping[str, bool] | None = None,
        model_capabilities: Mapping[str, Mapping[str, bool]] | None = None,
        first_byte_timeout_s: float | None = None,
    ) -> Upstream:
        """Serve `backend` from the next refresh on. A taken name gets a "-2", "-3" suffix
        (configured labels are unique, so only discovered engines ever get one)."""
        upstream = Upstream(
            name=self._free_name(name or backend.kind),
            backend=backend,
            admission=limits.admission(),
            priority=priority,
            local=local,
            allow=allow,
            discovered=discovered,
            capabilities=dict(capabilities or {}),
            model_capabilities=dict(model_capabilities or {}),
            first_byte_timeout_s=first_byte_timeout_s,
        )
        self._upstreams.append(upstream)
        log.info("serving %s (%s)", upstream.name, backend.url or backend.id)
        return upstream

    async def remove(self, name: str) -> Upstream | None:
        """Stop routing to the upstream called `name` and close its backend."""
        upstream = self.by_name(name)
        if upstream is None:
            return None
        self._upstreams.remove(upstream)
        if self.on_remove is not None:
            self.on_remove(upstream)
        await upstream.backend.aclose()
        return upstream

    def by_url(self, url: str) -> Upstream | None:
        return next((u for u in self._upstreams if u.backend.url == url), None)

    def _free_name(self, base: str) -> str:
        names = {u.name for u in self._upstreams}
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        return name

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Read every upstream once before serving, then keep refreshing in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="modelport-router-refresh")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for waiter in self._waiting:
            waiter.cancel()
        await asyncio.gather(*(u.backend.aclose() for u in self._upstreams), return_exceptions=True)

    async def refresh_soon(self) -> None:
        """Have the loop refresh now (not in `refresh_s`) and wait until it has."""
        if self._task is None:  # not started: there is no loop to ask
            await self.refresh()
            return
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(done)
        self._wake.set()
        await done

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.refresh_s):
                    await self._wake.wait()
            self._wake.clear()
            waiting, self._waiting = self._waiting, []
            try:
                await self.refresh()
            except Exception:  # the loop must outlive any one bad refresh
                log.exception("refresh failed")
            for done in waiting:
                if not done.done():
                    done.set_result(None)

    async def refresh(self) -> None:
        """Discover, then describe every upstream (health and models, once each) at once."""
        if self.discover is not None:
            try:
                await self.discover(self)
            except Exception:  # the engines we know still need their refresh
                log.exception("discovery failed")
        await asyncio.gather(*(self._refresh_one(u) for u in self._upstreams))
        if self.on_pass is not None:
            self.on_pass()

    async def _refresh_one(self, upstream: Upstream) -> None:
        health, models = await asyncio.gather(
            self._timed(upstream.backend.health()),
            self._timed(upstream.backend.list_models()),
            return_exceptions=True,
        )
        if isinstance(health, BaseException):
            health = BackendHealth(alive=False, ready=False, last_error=_failure_text(health))
        upstream.health = health
        if isinstance(models, list):
            upstream.models = {
                m.id: upstream.described(m)
                for m in models
                if upstream.allow is None or m.id in upstream.allow
            }
        # An upstream removed while it was being asked is not reported: it is gone.
        if self.on_refresh is not None and upstream in self._upstreams:
            self.on_refresh(upstream)

    async def _timed(self, work: Awaitable[T]) -> T:
        async with asyncio.timeout(self.probe_timeout_s):
            return await work

    # -- lookups ------------------------------------------------------------------

    def by_name(self, name: str) -> Upstream | None:
        return next((u for u in self._upstreams if u.name == name), None)

    def resolve(self, model: str) -> list[Route]:
        """Candidates in the order to try them: aliases in their order, else by preference."""
        targets = self.aliases.get(model, (model,))
        routes: list[Route] = []
        for target in targets:
            for route in self._resolve_one(target):
                if route not in routes:
                    routes.append(route)
        return routes

    def _resolve_one(self, model: str) -> list[Route]:
        prefix, sep, rest = model.partition("/")
        named = self.by_name(prefix) if sep else None
        if named is not None and rest and (named.allow is None or rest in named.allow):
            return [Route(named, rest)]
        serving = [u for u in self._upstreams if u.serves(model)]
        serving.sort(key=lambda u: preference(self.policy, u, model))
        return [Route(u, model) for u in serving]

    def models(self) -> list[tuple[Upstream, BackendModel]]:
        """Every model once, owned by the upstream a request for it would try first."""
        pairs = [(u, m) for u in self._upstreams for m in u.models.values()]
        pairs.sort(key=lambda pair: preference(self.policy, pair[0], pair[1].id))
        seen: dict[str, tuple[Upstream, BackendModel]] = {}
        for upstream, model in pairs:
            seen.setdefault(model.id, (upstream, model))
        return list(seen.values())

    def describe(self, name: str) -> tuple[Upstream, BackendModel] | None:
        """The model a request for `name` reaches first (aliases expanded, `upstream/model`
        names honoured) with its upstream, as that upstream last listed it; None when no
        upstream lists it."""
        for route in self.resolve(name):
            model = route.upstream.models.get(route.model)
            if model is not None:
                return route.upstream, model
        return None

    def suggestions(self, model: str, limit: int = 3) -> list[str]:
        names = [m.id for _, m in self.models()] + list(self.aliases)
        return difflib.get_close_matches(model, names, n=limit, cutoff=0.5)

    def ready(self) -> bool:
        return any(u.ready for u in self._upstreams)


def is_upstream_fault(exc: BackendError) -> bool:
    """Failures that say the upstream is unwell (and count against its breaker): retryable
    ones, except our own full queue, the engine's 429 (it is up, and says when to come
    back), the request's deadline spent before the engine had its chance, and an engine
    that is still starting (it is on its way up, and says what it is doing)."""
    return exc.retryable and not isinstance(exc, QueueFull | RateLimited | DeadlineSpent | Starting)


def _failure_text(exc: BaseException) -> str:
    """What a failed health check shows: our errors' messages (scrubbed where they are
    made); of anything else only its kind, since its text may quote what the engine sent."""
    if isinstance(exc, BackendError):
        return exc.message
    return f"health check failed: {type(exc).__name__}"
