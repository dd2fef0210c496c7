"""Gateway: a Config turned into a running server, and stopped again without losing anything.

Start order: backends, router (first health and model read), ledger, the embedded engine
when nothing else serves (its install and start go on in the background), HTTP site. Stop
order is the reverse, with a drain in between so streams in flight can finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from modelport.backends import Backend, connect
from modelport.backends.http import BodyLimits, set_body_limits
from modelport.backends.managed import (
    BUNDLED_ALIAS,
    BUNDLED_POOLING,
    Fleet,
    ManagedBackend,
    ManagedSpec,
    bundled_spec,
    model_alias,
)
from modelport.config import (
    BackendConfig,
    Config,
    ServerConfig,
    agents_file_path,
    api_keys,
    backend_key,
    discovery_ports,
    is_cloud,
    kind_of,
    ledger_path,
    requires_keys,
)
from modelport.engine import EngineInstallError, installed
from modelport.gateway.app import build_app, drain
from modelport.gateway.browser import BrowserPolicy
from modelport.gateway.connections import CappedSite, ConnectionLimits, fit_open_files
from modelport.gateway.embedded import EngineSource, Installation, PinnedEngine
from modelport.gateway.ledger import Ledger
from modelport.gateway.metrics import FORGET_GONE_BACKEND_S, Metrics
from modelport.hub.endpoint import Admission
from modelport.hub.hub import Hub
from modelport.hub.routes import add_hub_routes
from modelport.records import RequestRecord
from modelport.router import Limits, Router, Upstream
from modelport.service import Service
from modelport.wire.provider import HEARTBEAT_INTERVAL_S

log = logging.getLogger("modelport.gateway")
access_log = logging.getLogger("modelport.access")


class StartError(Exception):
    """The gateway refuses to start (non-loopback host without keys, port taken, ...)."""


def managed_backend(
    config: BackendConfig, fleet: Fleet, start_wait_s: float = ServerConfig().start_wait_s
) -> ManagedBackend:
    """A configured llama-server of our own; binary and model default to the installed ones."""
    paths = installed()
    binary = Path(config.llama_server).expanduser() if config.llama_server else None
    model = Path(config.model).expanduser() if config.model else None
    alias = config.alias or model_alias(model)
    if binary is None or model is None:
        if paths is None:
            raise StartError(
                f"backend {config.label!r} needs the embedded engine: run "
                "`modelport engine install` (or set llama_server and model)"
            )
        binary = binary or paths.llama_server
        model = model or paths.model
    spec = ManagedSpec(
        binary=binary,
        model_path=model,
        alias=alias,
        ctx_size=config.ctx_size,
        threads=config.threads,
        parallel=config.parallel,
        chat_template=config.chat_template,
        idle_unload_s=config.idle_unload_s,
        embeddings=config.embeddings,
        pooling=BUNDLED_POOLING if config.model is None else None,
        args=config.args,
    )
    return ManagedBackend(spec, fleet=fleet, start_wait_s=start_wait_s)


def limits_of(config: BackendConfig) -> Limits:
    return Limits(config.max_concurrent, config.max_queue, config.queue_timeout_s)


# What a backend gets when nothing says otherwise: discovered and embedded engines.
DEFAULT_LIMITS = limits_of(BackendConfig(kind=""))


def backend_for(
    config: BackendConfig, env: Mapping[str, str], fleet: Fleet, start_wait_s: float
) -> Backend:
    if kind_of(config).runs_engine:
        return managed_backend(config, fleet, start_wait_s)
    return connect(config.spec, api_key=backend_key(config, env))


def add_backends(router: Router, config: Config, env: Mapping[str, str], fleet: Fleet) -> None:
    """The configured backends, each an upstream of `router` with its limits and overrides."""
    for backend in config.backends:
        router.add(
            backend_for(backend, env, fleet, config.server.start_wait_s),
            limits_of(backend),
            name=backend.label,
            priority=backend.priority,
            local=not is_cloud(backend),
            allow=frozenset(backend.models) if backend.models else None,
            capabilities=backend.capabilities.overrides(),
            model_capabilities={
                name: caps.overrides() for name, caps in backend.model_capabilities.items()
            },
            first_byte_timeout_s=backend.first_byte_timeout_s,
        )


class Gateway:
    def __init__(
        self,
        config: Config,
        *,
        env: Mapping[str, str] | None = None,
        say: Callable[[str], None] | None = None,
        engine: EngineSource | None = None,
        hub_access: Admission | None = None,
        hub_heartbeat_s: float = HEARTBEAT_INTERVAL_S,
        forget_gone_backend_s: float = FORGET_GONE_BACKEND_S,
    ) -> None:
        """`engine`: where the embedded engine comes from (tests give a slow installer);
        `hub_access`: who may join the hub (default: `[hub]` and its agents file);
        `hub_heartbeat_s`: the agents' heartbeat interval (tests shorten it);
        `forget_gone_backend_s`: how long what a backend the router dropped served stays
        on /metrics (tests shorten it)."""
        self.config = config
        self.engine = engine or PinnedEngine()
        self.env = dict(os.environ if env is None else env)
        self.say = say or (lambda message: log.info("%s", message))
        self.metrics = Metrics()
        path = ledger_path(config)
        self.ledger = Ledger(path) if path is not None else None
        self.fleet = Fleet(config.server.max_managed)
        self.router = Router(
            aliases=dict(config.aliases),
            refresh_s=config.discovery.refresh_s,
            discover=self._discover if config.discovery.enabled else None,
            policy=config.hub.policy,
        )
        add_backends(self.router, config, self.env, self.fleet)
        self.router.on_refresh = self._backend_state
        self.router.on_remove = self._backend_gone
        self.forget_gone_backend_s = forget_gone_backend_s
        self._forgetting: dict[str, asyncio.TimerHandle] = {}  # backend id -> its forget
        self.service = Service(
            self.router,
            observe=self._observe,
            request_timeout_s=config.server.request_timeout_s,
            first_byte_timeout_s=config.server.first_byte_timeout_s,
        )
        self.browser = BrowserPolicy(config.server.allowed_origins, config.server.allowed_hosts)
        self.hub = self._hub(hub_access, hub_heartbeat_s) if config.hub.enabled else None
        self.app = build_app(
            self.service,
            keys=api_keys(config, self.env),
            max_body_bytes=config.server.max_body_bytes,
            metrics=self._render_metrics,
            browser=self.browser,
            secrets=self._upstream_keys(),
            hub=self.hub.connect if self.hub is not None else None,
        )
        if self.hub is not None:
            ledger = self.ledger.path if self.ledger is not None else None
            add_hub_routes(self.app, self.hub, ledger)
        self._runner: web.AppRunner | None = None
        self._body_limits: BodyLimits | None = None  # the ones ours replaced, while running
        self._embedded_start: asyncio.Task[None] | None = None
        self._installation: Installation | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._stale = False
        self.url = ""

    def _hub(self, access: Admission | None, heartbeat_s: float) -> Hub:
        """Agents join at /provider/connect (docs/hub.md); who may is the access policy's."""
        hub = self.config.hub
        if access is None:
            from modelport.hub.access import Access

            access = Access(hub, agents_file_path(self.config))
        return Hub(
            self.router,
            access,
            hub,
            deadline_s=self.config.server.request_timeout_s,
            heartbeat_interval_s=heartbeat_s,
            ping_s=heartbeat_s,
        )

    def _upstream_keys(self) -> tuple[str, ...]:
        """The keys the backends send: kept out of every status page."""
        keys = (backend_key(backend, self.env) for backend in self.config.backends)
        return tuple(key for key in keys if key)

    async def _discover(self, router: Router) -> None:
        """Fingerprint the ports nothing is served from yet; hand new engines to the router."""
        from modelport.discovery import serve_new_engines

        host, ports = self.config.discovery.host, discovery_ports(self.config)
        await serve_new_engines(router, host, ports, DEFAULT_LIMITS)

    def _observe(self, record: RequestRecord) -> None:
        # Metric labels carry only models that reached a backend: client-chosen names that
        # match nothing would grow the series without bound. The ledger keeps them all.
        labelled = record if record.backend else msgspec.structs.replace(record, model="")
        self.metrics.observe(labelled)
        if self.ledger is not None:
            self.ledger.record(record)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(json.dumps(_log_fields(record), separators=(",", ":")))

    def _backend_state(self, upstream: Upstream) -> None:
        self.metrics.set_backend_state(
            upstream.backend.id,
            ready=upstream.ready,
            in_flight=upstream.admission.in_flight,
            queued=upstream.admission.queued,
        )

    def _backend_gone(self, upstream: Upstream) -> None:
        """The router dropped `upstream`: its state gauges go now, what it served once it
        has been gone `forget_gone_backend_s` (an agent that reconnects by then, under the
        same backend id, keeps counting in the same series). Another upstream sharing the
        backend id (two cloud backends of one kind) keeps them all."""
        backend = upstream.backend.id
        if self._serving(backend):
            return
        self.metrics.forget_backend_state(backend)
        pending = self._forgetting.pop(backend, None)
        if pending is not None:  # gone before, back, gone again: the wait starts again
            pending.cancel()
        self._forget_later(upstream)

    def _forget_later(self, upstream: Upstream) -> None:
        loop = asyncio.get_running_loop()
        self._forgetting[upstream.backend.id] = loop.call_later(
            self.forget_gone_backend_s, self._forget_backend, upstream
        )

    def _forget_backend(self, upstream: Upstream) -> None:
        backend = upstream.backend.id
        del self._forgetting[backend]
        if upstream.admission.in_flight:
            # A request still holds its slot (a client that reads slowly, say): its record
            # is yet to come and would put the series back for good. Wait for it.
            self._forget_later(upstream)
        elif not self._serving(backend):
            self.metrics.forget_backend(backend)

    def _serving(self, backend: str) -> bool:
        return any(u.backend.id == backend for u in self.router.upstreams)

    async def _render_metrics(self) -> tuple[bytes, str]:
        for upstream in self.router.upstreams:
            self._backend_state(upstream)
        # A big registry takes a while to render: keep it off the event loop.
        return await asyncio.to_thread(self.metrics.render)

    async def start(self) -> str:
        refusal = requires_keys(self.config, self.env)
        if refusal:
            raise StartError(refusal)
        if self.ledger is not None:
            self.ledger.start()
            if self.ledger.error:
                self.say(f"usage ledger off: {self.ledger.error}")
        server = self.config.server
        self._body_limits = set_body_limits(
            BodyLimits(
                frame_bytes=server.max_frame_bytes, body_bytes=server.max_upstream_body_bytes
            )
        )
        await self.router.start()
        if not self.router.upstreams and not self.config.backends and server.embedded:
            await self._start_embedded()
        limits = ConnectionLimits(
            header_timeout_s=server.header_timeout_s,
            body_timeout_s=server.body_timeout_s,
            keepalive_timeout_s=server.keepalive_timeout_s,
            max_connections=server.max_connections,
        )
        short = fit_open_files(limits.max_connections)
        if short:
            self.say(short)
        handler_args: dict[str, Any] = {"access_log": None}
        self._runner = web.AppRunner(
            self.app, handler_cancellation=True, shutdown_timeout=1.0, **handler_args
        )
        await self._runner.setup()
        host, port = server.host, server.port
        site = CappedSite(self._runner, host, port, limits=limits, handler_args=handler_args)
        try:
            await site.start()
        except OSError as exc:
            await self.stop(grace_s=0)
            raise StartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        bound = self._runner.addresses[0]
        self.browser.bind(host, bound[1])
        self.url = f"http://{_url_host(host)}:{bound[1]}"
        return self.url

    async def _start_embedded(self) -> None:
        """Nothing configured, nothing found: serve the bundled model so a request gets tokens.

        Its model is listed (not ready) from here on. On a first run the cheap checks run
        now (a machine that cannot build refuses to start) and the install goes on in the
        background: requests wait for it up to `start_wait_s`, then get 503 saying what
        it is doing."""
        paths = await asyncio.to_thread(self.engine.installed)
        installation = None
        if paths is None:
            self.say("no engine found: installing the embedded one (llama.cpp + Gemma 3 270M)")
            installation = Installation(self.say, on_note=self._refresh_soon)
            try:
                plan = await asyncio.to_thread(
                    self.engine.plan, installation.progress, installation.cancel
                )
            except EngineInstallError as exc:
                await self.stop(grace_s=0)
                raise StartError(
                    f"no engine is running and the embedded one could not be installed: {exc}. "
                    "Start an engine (see `modelport discover`), configure a backend, or run "
                    "`modelport engine install --llama-server PATH`."
                ) from exc
            installation.begin(plan)
            self._installation = installation
            paths = plan.paths
            self.say("serving while it installs: the model is listed as not ready until then")
        backend = ManagedBackend(
            bundled_spec(paths.llama_server, paths.model),
            fleet=self.fleet,
            start_wait_s=self.config.server.start_wait_s,
            prerequisite=installation,
        )
        upstream = self.router.add(backend, DEFAULT_LIMITS, name="embedded")
        self.say(f"starting the embedded engine: {BUNDLED_ALIAS} on llama-server")
        self._embedded_start = asyncio.create_task(self._load_embedded(upstream))
        await asyncio.sleep(0)  # the task asks for the start first: the refresh sees it starting
        await self.router.refresh_soon()

    def _refresh_soon(self) -> None:
        """Have the router look again soon, so the install's progress shows in /ready and
        the listings: one pass at a time, and one more if news came in during a pass."""
        self._stale = True
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh_while_stale())

    async def _refresh_while_stale(self) -> None:
        while self._stale:
            self._stale = False
            await self.router.refresh_soon()

    async def _load_embedded(self, upstream: Upstream) -> None:
        backend = upstream.backend
        assert isinstance(backend, ManagedBackend)
        try:
            await backend.start(patient=True)  # minutes on a first run: the install, the build
        except Exception as exc:
            log.error("the embedded engine did not start: %s", exc)
        await self.router.refresh_soon()
        if upstream.ready:
            self.say(f"embedded engine ready: model {BUNDLED_ALIAS!r}")

    async def stop(self, grace_s: float | None = None) -> None:
        grace = self.config.server.shutdown_grace_s if grace_s is None else grace_s
        if self._installation is not None:
            self._installation.close()  # a build under way is killed, not waited for
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
        if self._embedded_start is not None:
            self._embedded_start.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._embedded_start
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()  # no new connections from here on
            await asyncio.gather(drain(self.app, grace), self._drain_hub(grace_s))
            await self._runner.cleanup()
            self._runner = None
        if self.hub is not None:
            await self.hub.aclose()
        await self.router.aclose()
        for pending in self._forgetting.values():
            pending.cancel()
        self._forgetting.clear()
        if self._body_limits is not None:
            set_body_limits(self._body_limits)
            self._body_limits = None
        if self.ledger is not None:
            await asyncio.to_thread(self.ledger.close)

    async def _drain_hub(self, grace_s: float | None) -> None:
        """Agents' jobs finish (up to `[hub] drain_timeout_s`, less when the stop is in a
        hurry), then each agent gets Close 1001 "drain:deploy"."""
        if self.hub is None:
            return
        timeout = self.config.hub.drain_timeout_s
        await self.hub.drain(timeout if grace_s is None else min(grace_s, timeout))

    async def serve_forever(self) -> None:
        """Run until SIGINT or SIGTERM, then stop gracefully."""
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _log_fields(record: RequestRecord) -> dict[str, object]:
    return {
        "request_id": record.request_id,
        "format": record.format,
        "endpoint": record.endpoint,
        "model": record.model,
        "backend": record.backend,
        "status": record.status,
        "stream": record.stream,
        "passthrough": record.passthrough,
        "key_id": record.key_id,
        "tokens_in": record.input_tokens,
        "tokens_out": record.output_tokens,
        "ttft_ms": None if record.ttft_ms is None else round(record.ttft_ms, 2),
        "duration_ms": round(record.duration_ms, 2),
        "error": record.error,
    }
