"""The agent's Prometheus endpoint: GET /metrics on `[observability] prometheus_addr`.

usepod-agent 0.3.x declares the address and serves nothing there; here it answers, with
AgentStats' own registry (no process collectors, labels bounded, no secrets: backend
labels are upstream names, never URLs or keys). Every other path and method is a 404.

Loopback by default: `serve_metrics` refuses an address other hosts can reach unless the
caller passes `allow_public=True`. The runner passes it when agent.toml names an address
other than the default 127.0.0.1:9090 (an operator wrote it, e.g. 0.0.0.0:9090 inside a
container, as usepod-agent's Dockerfile exposes 9090), and logs that it is public.
"""

from __future__ import annotations

import logging

from aiohttp import web

from modelport.agent.config import split_listen_addr
from modelport.agent.stats import AgentStats
from modelport.config import is_loopback

log = logging.getLogger("modelport.agent.metrics")

METRICS_PATH = "/metrics"


class MetricsAddressError(ValueError):
    """The metrics address cannot be read, is not loopback without leave, or is taken."""


def split_addr(addr: str) -> tuple[str, int]:
    """ "127.0.0.1:9090", "[::1]:9090" or "localhost:0" -> (host, port)."""
    split = split_listen_addr(addr)
    if split is None:
        raise MetricsAddressError(
            f"prometheus_addr {addr!r} is not HOST:PORT (e.g. 127.0.0.1:9090)"
        )
    return split


async def serve_metrics(
    addr: str, stats: AgentStats, *, allow_public: bool = False
) -> web.AppRunner:
    """Serve GET /metrics at `addr` until the returned runner is cleaned up."""
    host, port = split_addr(addr)
    if not is_loopback(host):
        if not allow_public:
            raise MetricsAddressError(
                f"prometheus_addr {addr!r} is reachable from other machines; "
                "the metrics endpoint listens on loopback unless told otherwise"
            )
        log.warning("metrics served on %s: reachable from other machines", addr)

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD") or request.path != METRICS_PATH:
            return web.Response(status=404, text="not found\n")
        body, content_type = stats.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise MetricsAddressError(f"cannot serve metrics on {addr}: {exc.strerror or exc}") from exc
    return runner
