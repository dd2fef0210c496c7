"""`modelport usage`: totals from the gateway's usage ledger, by model, backend, key or
hub agent; `modelport usage export`: the hub's settlement over a time range."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from modelport.cli import ConfigOption, _load, fail

usage_app: typer.Typer = typer.Typer(
    help="Token and request totals from the gateway's usage ledger."
)

UsageBy = Annotated[
    str,
    typer.Option(
        "--by", help="Group by model, backend or key; or by hub agent: agent, agent+model, ..."
    ),
]


@usage_app.callback(invoke_without_command=True)
def usage(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="Only the last DUR: 30m, 24h, 7d, 1w.")
    ] = None,
    by: UsageBy = "model",
    config_file: ConfigOption = None,
) -> None:
    """Token and request totals from the gateway's usage ledger."""
    from modelport.gateway.ledger import parse_duration, render_usage, usage_totals

    if ctx.invoked_subcommand is not None:
        return
    agent_groups = by.split("+") if by.startswith("agent") else None
    if agent_groups is None and by not in ("model", "backend", "key"):
        raise fail(f"--by takes model, backend, key or agent[+model][+key], not {by!r}", 2)
    try:
        since_s = parse_duration(since) if since else None
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    path = _ledger_or_exit(config_file)
    if path is None:
        return
    if agent_groups is not None:
        from modelport.gateway.settlement import agent_usage, render_agent_usage

        try:
            since_t = None if since_s is None else time.time() - since_s
            rows = agent_usage(path, by=agent_groups, since=since_t)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        typer.echo(render_agent_usage(rows))
        return
    totals = usage_totals(path, since_s=since_s, by=by)  # type: ignore[arg-type]
    typer.echo(render_usage(totals, by=by))


def _ledger_or_exit(config_file: Path | None, *, err: bool = False) -> Path | None:
    """The ledger's path; None (said) when nothing was recorded yet; exit when it is off.
    `err`: say it on stderr (an export's stdout is the document)."""
    from modelport.config import ledger_path

    config, _ = _load(config_file)
    path = ledger_path(config)
    if path is None:
        raise fail('the usage ledger is off in this config (server.ledger = "off")')
    if not path.exists():
        typer.echo(f"no usage recorded yet ({path} does not exist)", err=err)
        return None
    return path


@usage_app.command("export")
def usage_export(
    format: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    since: Annotated[
        str | None, typer.Option("--since", help="From: RFC 3339 time or DUR ago (24h, 7d).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="To (not included): RFC 3339 or DUR ago.")
    ] = None,
    config_file: ConfigOption = None,
) -> None:
    """Settlement: one row per hub agent and model with jobs, tokens and earnings."""
    from modelport.gateway.settlement import agent_usage, export_csv, export_json, parse_time

    if format not in ("csv", "json"):
        raise fail(f"--format takes csv or json, not {format!r}", 2)
    now = time.time()
    try:
        since_t = None if since is None else parse_time(since, now=now)
        until_t = now if until is None else parse_time(until, now=now)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    path = _ledger_or_exit(config_file, err=True)
    rows = (
        []
        if path is None
        else agent_usage(path, by=("agent", "model"), since=since_t, until=until_t)
    )
    if format == "csv":
        typer.echo(export_csv(rows), nl=False)
    else:
        typer.echo(export_json(rows, since=since_t, until=until_t), nl=False)
