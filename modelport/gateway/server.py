"""Gateway: a Config turned into a running server, and stopped again without losing anything.

Start order: backends, router (first health and model read), ledger, HTTP site. Stop
order is the reverse, with a drain in between so streams in flight can finish.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from modelport.backends import Backend, connect
from modelport.config import LEDGER_OFF, BackendConfig, Config, api_keys, requires_keys
from modelport.gateway.app import build_app, drain
from modelport.gateway.ledger import Ledger
from modelport.gateway.metrics import Metrics
from modelport.records import RequestRecord
from modelport.router import Admission, Router, Upstream
from modelport.serve import Service

log = logging.getLogger("modelport.gateway")
access_log = logging.getLogger("modelport.access")


class StartError(Exception):
    """The gateway refuses to start (non-loopback host without keys, port taken, ...)."""


def is_cloud(backend: Backend) -> bool:
    profile = getattr(backend, "profile", None)
    if profile is not None:
        return bool(profile.cloud)
    return bool(getattr(backend, "cloud", False))


def upstream_for(config: BackendConfig, env: Mapping[str, str]) -> Upstream:
    key = env.get(config.api_key_env) if config.api_key_env else None
    backend = connect(config.spec, api_key=key or None)
    return Upstream(
        name=config.label,
        backend=backend,
        admission=Admission(config.max_concurrent, config.max_queue, config.queue_timeout_s),
        priority=config.priority,
        local=not is_cloud(backend),
        allow=frozenset(config.models) if config.models else None,
    )


def ledger_path(config: Config) -> Path | None:
    value = config.server.ledger
    if value == LEDGER_OFF:
        return None
    if value:
        return Path(value)
    from platformdirs import user_data_dir

    return Path(user_data_dir("modelport")) / "usage.sqlite3"


class Gateway:
    def __init__(self, config: Config, *, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.env = dict(os.environ if env is None else env)
        self.metrics = Metrics()
        path = ledger_path(config)
        self.ledger = Ledger(path) if path is not None else None
        self.router = Router(
            [upstream_for(b, self.env) for b in config.backends],
            aliases=dict(config.aliases),
            refresh_s=config.discovery.refresh_s,
            discover=self._discover if config.discovery.enabled else None,
        )
        self.router.on_refresh = self._backend_state
        self.service = Service(
            self.router,
            observe=self._observe,
            request_timeout_s=config.server.request_timeout_s,
        )
        self.app = build_app(
            self.service,
            keys=api_keys(config, self.env),
            max_body_bytes=config.server.max_body_bytes,
            metrics=self._render_metrics,
        )
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _discover(self) -> list[Upstream]:
        from modelport.discovery import DEFAULT_PORTS, discover

        ports = list(dict.fromkeys([*DEFAULT_PORTS, *self.config.discovery.ports]))
        found = await discover(self.config.discovery.host, ports)
        return [
            Upstream(
                name=engine.kind,
                backend=connect(f"{engine.kind}:{engine.url}"),
                admission=Admission(8, 64, 30.0),
                discovered=True,
            )
            for engine in found
        ]

    def _observe(self, record: RequestRecord) -> None:
        self.metrics.observe(record)
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

    def _render_metrics(self) -> tuple[bytes, str]:
        for upstream in self.router.upstreams:
            self._backend_state(upstream)
        return self.metrics.render()

    async def start(self) -> str:
        refusal = requires_keys(self.config, self.env)
        if refusal:
            raise StartError(refusal)
        if self.ledger is not None:
            self.ledger.start()
        await self.router.start()
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        host, port = self.config.server.host, self.config.server.port
        site = web.TCPSite(self._runner, host, port, shutdown_timeout=1.0)
        try:
            await site.start()
        except OSError as exc:
            await self.stop(grace_s=0)
            raise StartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        bound = self._runner.addresses[0]
        self.url = f"http://{_url_host(host)}:{bound[1]}"
        return self.url

    async def stop(self, grace_s: float | None = None) -> None:
        grace = self.config.server.shutdown_grace_s if grace_s is None else grace_s
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()  # no new connections from here on
            await drain(self.app, grace)
            await self._runner.cleanup()
            self._runner = None
        await self.router.aclose()
        if self.ledger is not None:
            await asyncio.to_thread(self.ledger.close)

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
