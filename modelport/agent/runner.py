"""`modelport agent run`: the agent's parts put together, until told to stop.

    AgentStats ◄──── records, jobs, link ups and downs ────┐
    AgentEngines (router + service) ── capabilities ──► AgentSession ◄──► the hub
                       └── JobRunner (each job through the service) ◄──┘
    serve_metrics: GET /metrics on [observability] prometheus_addr

Started in that order and stopped in reverse: the session (its jobs cancelled upstream),
rediscovery, the metrics server, the engines.
"""

from __future__ import annotations

import asyncio
import contextlib

from modelport.agent.config import DEFAULT_PROMETHEUS_ADDR, AgentConfig
from modelport.agent.engines import AgentEngines
from modelport.agent.jobs import JobRunner
from modelport.agent.metrics import serve_metrics
from modelport.agent.session import AgentIdentity, AgentSession, Send, check_url
from modelport.agent.stats import AgentStats


async def run_agent(
    config: AgentConfig,
    identity: AgentIdentity,
    *,
    allow_insecure: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve jobs from the hub until `stop` is set (forever without one)."""
    check_url(config.coordinator_url, allow_insecure=allow_insecure)  # before any engine
    stats = AgentStats(config)
    engines = await AgentEngines.start(config, observe=stats.observe, on_backend=stats.backend_up)
    try:
        # Loopback unless agent.toml names another address (an operator's choice, e.g.
        # 0.0.0.0:9090 in a container, as usepod-agent's Dockerfile exposes 9090).
        addr = config.observability.prometheus_addr
        metrics = await serve_metrics(addr, stats, allow_public=addr != DEFAULT_PROMETHEUS_ADDR)
        try:

            def job_runner(send: Send) -> JobRunner:
                return JobRunner(
                    engines.service,
                    max_concurrent=config.limits.max_concurrent,
                    send=send,
                    observer=stats,
                )

            session = AgentSession(
                config.coordinator_url,
                identity,
                capabilities=engines.capabilities,
                jobs=job_runner,
                heartbeat=stats.heartbeat,
                enrollment_code=config.enrollment_code,
                allow_insecure=allow_insecure,
                observer=stats,
            )
            rediscovery = asyncio.create_task(engines.watch(session.send_capabilities))
            try:
                await session.run(stop)
            finally:
                rediscovery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await rediscovery
        finally:
            await metrics.cleanup()
    finally:
        await engines.aclose()
