"""`modelport hub ...`: who may join this gateway's hub (`serve --hub`).

add-agent and revoke change the agents file (`[hub] agents_file`); a running gateway
re-reads it when it changes, so neither needs a restart. `hub agents` lists the file, or,
with `--url`, the agents connected to a running gateway (GET /v1/hub/agents).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from modelport.cli import ConfigOption, _load, fail

hub_app: typer.Typer = typer.Typer(
    help="Who may join this gateway's hub (serve --hub).", no_args_is_help=True
)


def _agents_file(config_file: Path | None) -> tuple[Path, tuple[str, ...]]:
    from modelport.config import agents_file_path

    config, _ = _load(config_file)
    return agents_file_path(config), config.hub.agent_keys


@hub_app.command("add-agent")
def add_agent(
    pubkey: Annotated[str, typer.Argument(help="The agent's public key (base64, 32 bytes).")],
    name: Annotated[str, typer.Option("--name", help="A name to know it by.")] = "",
    config_file: ConfigOption = None,
) -> None:
    """Admit an agent's key (`modelport agent enroll` on its machine prints it)."""
    from modelport.hub.access import add_agent as add

    path, _ = _agents_file(config_file)
    try:
        record = add(path, pubkey.strip(), name=name)
    except ValueError as exc:
        raise fail(f"not an agent key: {exc}", 2) from None
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc}") from None
    typer.echo(f"admitted {record.provider_id}{f' ({record.name})' if record.name else ''}")
    typer.echo(f"agents file: {path}")


@hub_app.command("revoke")
def revoke(
    who: Annotated[str, typer.Argument(help="The agent's public key or provider id.")],
    config_file: ConfigOption = None,
) -> None:
    """Refuse an agent from now on; a running gateway disconnects it within a second."""
    from modelport.hub.access import revoke_agent

    path, config_keys = _agents_file(config_file)
    try:
        record = revoke_agent(path, who.strip(), config_keys=config_keys)
    except LookupError as exc:
        raise fail(str(exc.args[0]), 2) from None
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc}") from None
    typer.echo(f"revoked {record.provider_id} at {record.revoked_at}")


@hub_app.command("agents")
def agents(
    url: Annotated[
        str | None,
        typer.Option("--url", help="A running gateway (http://hub:7878): its connected agents."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    config_file: ConfigOption = None,
) -> None:
    """The agents file's agents, or with --url the agents connected to a gateway now."""
    if url is not None:
        document = _fetch_agents(url)
        typer.echo(json.dumps(document, indent=2) if as_json else _render_live(document))
        return
    from modelport.hub.access import AgentsFile

    path, _ = _agents_file(config_file)
    try:
        records = AgentsFile(path).read().agents
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        import msgspec

        typer.echo(msgspec.json.format(msgspec.json.encode(records), indent=2).decode())
        return
    rows = [
        (r.name or "-", r.provider_id, r.pubkey, r.added_at or "-", r.revoked_at or "-")
        for r in records
    ]
    typer.echo(_table(("name", "provider id", "public key", "added", "revoked"), rows, path))


def _fetch_agents(url: str) -> dict[str, Any]:
    """GET /v1/hub/agents with the first key in $MODELPORT_API_KEY, if one is set."""
    request = urllib.request.Request(url.rstrip("/") + "/v1/hub/agents")
    from modelport.config.derive import split_keys
    from modelport.scrub import redact_url

    keys = split_keys(os.environ.get("MODELPORT_API_KEY", ""))
    if keys:
        key = keys[0]
        request.add_header("Authorization", f"Bearer {key}")
    shown = redact_url(url)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            document: dict[str, Any] = json.load(answer)
    except urllib.error.HTTPError as exc:
        said = exc.read(500).decode(errors="replace")
        raise fail(f"{shown} answered {exc.code}: {said}") from None
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the agents of {shown}: {exc}") from None
    return document


def _render_live(document: dict[str, Any]) -> str:
    rows = []
    for agent in document.get("data", []):
        age = agent.get("heartbeat_age_s")
        rows.append(
            (
                agent.get("provider_id", "?"),
                agent.get("address", ""),
                "ready" if agent.get("ready") else "not ready",
                "-" if age is None else f"{age:.0f}s",
                str(agent.get("in_flight", 0)),
                ", ".join(m.get("model_id", "?") for m in agent.get("models", [])) or "-",
                str(agent.get("jobs", 0)),
                str(agent.get("earnings_usdc", "0")),
            )
        )
    header = ("provider id", "address", "state", "heartbeat", "in flight", "models", "jobs")
    return _table((*header, "earned USDC"), rows, None)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], path: Path | None) -> str:
    if not rows:
        return "no agents" + (f" in {path}" if path is not None else " connected")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)
