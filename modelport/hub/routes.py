"""GET /v1/hub/agents: the agents connected to the hub, their models, heartbeats, in-flight
jobs, and what each has served and earned (from the usage ledger).

Registered on the gateway's app when the hub is on (`add_hub_routes`), so the gateway's
key middleware guards it like every /v1 path. The JSON shape is in docs/hub.md.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec
from aiohttp import web

from modelport.gateway.settlement import AgentUsage, agent_usage, usdc
from modelport.hub.link import AgentView

__all__ = ["HUB_AGENTS_PATH", "add_hub_routes", "agents_document", "hub_agents_handler"]

log = logging.getLogger("modelport.hub")
HUB_AGENTS_PATH = "/v1/hub/agents"


class AgentsSource(Protocol):
    def agents(self) -> Sequence[AgentView]: ...


def agents_document(
    views: Sequence[AgentView], earned: dict[str, AgentUsage], *, ledger: bool
) -> dict[str, Any]:
    """The page's JSON: one entry per connected agent, its ledger figures beside it."""
    return {
        "object": "list",
        "ledger": ledger,  # false: earnings are not recorded (server.ledger = "off")
        "data": [_agent_entry(view, earned.get(view.provider_id)) for view in views],
    }


def _agent_entry(view: AgentView, usage: AgentUsage | None) -> dict[str, Any]:
    owed = usage.earnings_micro if usage else 0
    return {
        "provider_id": view.provider_id,
        "pubkey": view.pubkey,
        "upstream": view.upstream,
        "agent_version": view.agent_version,
        "address": view.address,
        "connected_at": datetime.fromtimestamp(view.connected_at, UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "ready": view.ready,
        "in_flight": view.in_flight,
        "heartbeat_age_s": view.heartbeat_age_s,
        "heartbeat": msgspec.to_builtins(view.heartbeat),
        "formats": list(view.formats),
        "models": [msgspec.to_builtins(model) for model in view.models],
        "jobs": usage.jobs if usage else 0,
        "errors": usage.errors if usage else 0,
        "input_tokens": usage.input_tokens if usage else 0,
        "output_tokens": usage.output_tokens if usage else 0,
        "earnings_micro_usdc": owed,
        "earnings_usdc": usdc(owed),
    }


def _earnings(ledger: Path | None) -> dict[str, AgentUsage]:
    """All-time figures per agent; none when there is no ledger (yet)."""
    if ledger is None or not ledger.exists():
        return {}
    try:
        return {row.agent: row for row in agent_usage(ledger, by=("agent",))}
    except (OSError, sqlite3.Error) as exc:  # the page still lists the agents
        log.warning("cannot read the usage ledger %s: %s", ledger, exc)
        return {}


def hub_agents_handler(
    hub: AgentsSource, ledger: Path | None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def hub_agents(request: web.Request) -> web.Response:
        views = hub.agents()
        earned = await asyncio.to_thread(_earnings, ledger)  # SQLite off the event loop
        return web.json_response(agents_document(views, earned, ledger=ledger is not None))

    return hub_agents


def add_hub_routes(app: web.Application, hub: AgentsSource, ledger: Path | None) -> None:
    """Serve GET /v1/hub/agents on the gateway's app (before it starts)."""
    app.router.add_get(HUB_AGENTS_PATH, hub_agents_handler(hub, ledger))
