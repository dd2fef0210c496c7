"""The engines an agent lends: agent.toml's `[[backends]]` (and what discovery finds) as a
Router and a Service, and the capabilities frame that says what they serve.

usepod-agent 0.3.x (`src/discovery.rs`) reads its backends once at start; here the router
owns them, refreshes them every `[modelport] rediscover_s` (health, model lists, and the
usual local ports fingerprinted for engines started since), and at once when a job finds
an engine gone. `watch` hands the hub a new frame whenever what it advertises changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

import platformdirs

from modelport import __version__
from modelport.agent.config import (
    KINDS_NEEDING_KEY,
    KINDS_NEEDING_URL,
    AgentConfig,
    BackendEntry,
)
from modelport.backends import Backend, connect
from modelport.backends.profiles import DISCOVERY_PORTS
from modelport.config import is_loopback
from modelport.config.derive import split_url
from modelport.discovery import serve_new_engines
from modelport.gateway.ledger import Ledger
from modelport.records import RequestRecord
from modelport.router import Limits, Price, Router, Upstream
from modelport.service import Service
from modelport.wire.provider import (
    JOB_FORMATS,
    AgentMetadata,
    Capabilities,
    CapabilityLimits,
    CapabilityModel,
    encode,
)

log = logging.getLogger("modelport.agent.engines")

# discovery.rs `kind_priority`: when one model is on several backends the lowest number
# is advertised (local engines before BYOK passthroughs); kinds it does not know come last.
KIND_PRIORITY = {"vllm": 0, "llamacpp": 1, "lmstudio": 2, "ollama": 3, "venice": 4, "openrouter": 5}
UNKNOWN_KIND_PRIORITY = 100
LEDGER_FILE = "agent-ledger.sqlite3"
# Discovery looks on this machine only: an agent lends what runs beside it.
DISCOVERY_HOST = "127.0.0.1"
# A job that finds its engine unreachable has the router look again at once.
ENGINE_GONE = "Unreachable"


def agent_ledger_path(config: AgentConfig) -> Path:
    """`[modelport] ledger_path` (the loader expanded it), else the user data dir's
    agent-ledger.sqlite3."""
    if config.modelport.ledger_path is not None:
        return config.modelport.ledger_path
    return Path(platformdirs.user_data_dir("modelport")) / LEDGER_FILE


def agent_limits(config: AgentConfig) -> Limits:
    """Admission per upstream: `[limits] max_concurrent` in flight and no queue, so a job
    over the limit is refused at once (out_of_capacity), never parked."""
    return Limits(max_concurrent=config.limits.max_concurrent, max_queue=0, queue_timeout_s=0.0)


def kind_priority(kind: str) -> int:
    return KIND_PRIORITY.get(kind, UNKNOWN_KIND_PRIORITY)


def api_key_of(entry: BackendEntry, env: Mapping[str, str]) -> str:
    """The key a BYOK row's `api_key_env` names, from `env`; "" when unset or blank (the
    row is then skipped). `validate` and `status` say "not set" by the same rule."""
    return env.get(entry.api_key_env or "", "").strip()


def build_backend(entry: BackendEntry, env: Mapping[str, str]) -> Backend | None:
    """The backend for one `[[backends]]` row, or None (logged) when it cannot be built:
    a BYOK row whose variable is unset or empty is skipped, as discovery.rs does.

    usepod-agent's kinds are rows of modelport's kind table under the same names; its
    `ollama` becomes our native Ollama backend (its /api gives context windows; jobs are
    still relayed to its /v1 when the format allows). A BYOK row may carry a `url` (a
    proxy, a test double): modelport honours it, usepod-agent always dials the vendor.
    `markup` is read and not used, as in usepod-agent 0.3.x (config.rs parses it, nothing
    reads it): prices come from `[pricing]` alone."""
    # The kind lists are the loader's (config.py), modelport's own kinds included: a kind
    # agent.toml accepts must never be skipped here as unknown.
    if entry.kind in KINDS_NEEDING_URL:
        if not entry.url:
            log.warning("skipping %s backend: it needs a url", entry.kind)
            return None
        return connect(f"{entry.kind}:{entry.url}")
    if entry.kind in KINDS_NEEDING_KEY:  # openrouter, venice, openai, anthropic
        key = api_key_of(entry, env)
        if not key:
            log.warning(
                "skipping %s backend: no API key in $%s", entry.kind, entry.api_key_env or "?"
            )
            return None
        spec = f"{entry.kind}:{entry.url}" if entry.url else entry.kind
        return connect(spec, api_key=key)
    log.warning("skipping backend of unknown kind %r", entry.kind)
    return None


class AgentEngines:
    """The agent's router and service, its ledger, and the capabilities they add up to."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        observe: Callable[[RequestRecord], None],
        ports: Iterable[int] = DISCOVERY_PORTS,
        on_backend: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.config = config
        self.limits = agent_limits(config)
        self._observer = observe
        self._on_backend = on_backend
        # Ports a configured local engine already uses on this machine are not probed:
        # `http://localhost:8000` and a found `http://127.0.0.1:8000` are one engine.
        taken = _loopback_ports(config.backends)
        self._ports = tuple(p for p in dict.fromkeys(ports) if p not in taken)
        self.router = Router(
            refresh_s=config.modelport.rediscover_s,
            discover=self._discover if config.modelport.discover else None,
        )
        self.router.on_refresh = self._refreshed
        self.router.on_pass = self._passed
        self.service = Service(
            self.router,
            observe=self._observe,
            price=self._price,
            first_byte_timeout_s=config.modelport.first_byte_timeout_s,
        )
        self.ledger = Ledger(agent_ledger_path(config))
        self._pass = asyncio.Event()
        self._poke: asyncio.Task[None] | None = None
        self._unpriced: set[str] = set()  # models already logged as dropped

    @classmethod
    async def start(
        cls,
        config: AgentConfig,
        *,
        observe: Callable[[RequestRecord], None],
        env: Mapping[str, str] | None = None,
        ports: Iterable[int] = DISCOVERY_PORTS,
        on_backend: Callable[[str, bool], None] | None = None,
    ) -> AgentEngines:
        """Build the backends, open the ledger, and read every engine once.

        `env`: where BYOK keys are read (os.environ); `ports`: where discovery looks (the
        usual engine ports); `on_backend(name, up)`: each upstream's state after each
        refresh (AgentStats.backend_up)."""
        engines = cls(config, observe=observe, ports=ports, on_backend=on_backend)
        variables = os.environ if env is None else env
        for entry in config.backends:
            backend = build_backend(entry, variables)
            if backend is None:
                continue
            local = entry.kind in KINDS_NEEDING_URL
            engines.router.add(
                backend,
                engines.limits,
                name=entry.kind,
                priority=-kind_priority(entry.kind),
                local=local,
                allow=frozenset(entry.models) if entry.models is not None else None,
            )
        engines.ledger.start()
        await engines.router.start()
        return engines

    async def _discover(self, router: Router) -> None:
        for upstream in await serve_new_engines(router, DISCOVERY_HOST, self._ports, self.limits):
            upstream.priority = -kind_priority(upstream.backend.kind)

    def _refreshed(self, upstream: Upstream) -> None:
        if self._on_backend is not None:
            self._on_backend(upstream.name, upstream.ready)

    def _passed(self) -> None:
        self._pass.set()

    def _price(self, model: str) -> Price:
        """What a job's record says its model cost: as advertised now ([pricing] is read once
        per run)."""
        price = self.config.pricing.price(model)
        return Price(price.input_per_1m, price.output_per_1m)

    def _observe(self, record: RequestRecord) -> None:
        self.ledger.record(record)
        self._observer(record)
        if record.error == ENGINE_GONE and (self._poke is None or self._poke.done()):
            self._poke = asyncio.get_running_loop().create_task(self.router.refresh_soon())

    def capabilities(self) -> Capabilities:
        """The frame for what the router sees now: each model once, from a ready upstream,
        priced by `[pricing]` (a model priced 0 is not offered, as in discovery.rs), on the
        backend discovery.rs would pick (local before BYOK, then its kind order), by id."""
        best: dict[str, tuple[tuple[bool, int, int], CapabilityModel]] = {}
        for order, upstream in enumerate(self.router.upstreams):
            if not upstream.ready:
                continue
            kind = upstream.backend.kind
            rank = (not upstream.local, kind_priority(kind), order)
            for model in upstream.models.values():
                offer = self._offer(model.id, kind, model.context_window)
                if offer is not None and (model.id not in best or rank < best[model.id][0]):
                    best[model.id] = (rank, offer)
        limits = self.config.limits
        return Capabilities(
            models=[best[model_id][1] for model_id in sorted(best)],
            limits=CapabilityLimits(limits.max_concurrent, limits.max_tokens_per_minute),
            metadata=AgentMetadata(agent_version=__version__, formats=tuple(JOB_FORMATS)),
        )

    def _offer(self, model_id: str, kind: str, context: int | None) -> CapabilityModel | None:
        price = self.config.pricing.price(model_id)
        if price.input_per_1m <= 0 or price.output_per_1m <= 0:
            if model_id not in self._unpriced:
                self._unpriced.add(model_id)
                log.warning("no pricing for model %r: not offered", model_id)
            return None
        return CapabilityModel(
            model_id=model_id,
            input_per_1m=price.input_per_1m,
            output_per_1m=price.output_per_1m,
            max_concurrent=self.config.limits.max_concurrent,
            backend=kind,
            context_window=context,
        )

    async def watch(self, on_change: Callable[[Capabilities], Awaitable[None]]) -> None:
        """Until cancelled: after every router pass (every rediscover_s, or sooner when a
        job found an engine gone), call `on_change` with the frame if its content differs
        from the last one handed over (the frame at the start counts as handed over: the
        session sends `capabilities()` itself after each auth). A failing `on_change` is
        logged and tried again after the next pass."""
        last = encode(self.capabilities())
        while True:
            await self._pass.wait()
            self._pass.clear()
            frame = self.capabilities()
            data = encode(frame)
            if data == last:
                continue
            try:
                await on_change(frame)
            except Exception:
                log.exception("sending new capabilities failed")
                continue
            last = data

    async def aclose(self) -> None:
        if self._poke is not None:
            self._poke.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poke
        await self.router.aclose()
        await asyncio.to_thread(self.ledger.close)


def _loopback_ports(entries: Iterable[BackendEntry]) -> set[int]:
    ports: set[int] = set()
    for entry in entries:
        parts = split_url(entry.url) if entry.url and entry.kind in KINDS_NEEDING_URL else None
        if parts is not None and parts.hostname and is_loopback(parts.hostname) and parts.port:
            ports.add(parts.port)
    return ports
