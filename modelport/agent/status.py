"""`modelport agent status`: who this agent is, what it lends, whether it runs, what it earned.

Nothing here changes anything: the identity file is read, never created (identity.py's
reader, the one `run` uses, without loading the key: only `public` and `provider_id` are
shown, the secret never); whether the agent runs is asked of its /metrics endpoint; the
totals come from its ledger, opened read-only.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from modelport.agent.config import KINDS_NEEDING_KEY, AgentConfig
from modelport.agent.engines import agent_ledger_path, api_key_of
from modelport.agent.identity import expand_key_path, public_fields
from modelport.agent.metrics import MetricsAddressError, split_addr
from modelport.gateway.ledger import EarningsRow, earnings_totals

DAY_S = 86400.0
MICRO = Decimal("0.000001")
CONNECTED = "modelport_agent_connected "


def render_status(
    config: AgentConfig, *, env: Mapping[str, str] | None = None, timeout_s: float = 1.0
) -> str:
    """The status page as text (`env`: where BYOK key variables are looked up)."""
    variables = os.environ if env is None else env
    lines = _identity_lines(expand_key_path(config.key_path))
    lines.append(_row("coordinator", config.coordinator_url))
    lines += _backend_lines(config, variables)
    lines.append(_row("agent", _running(config.observability.prometheus_addr, timeout_s)))
    ledger = agent_ledger_path(config)
    lines.append(_row("ledger", str(ledger)))
    lines.append("")
    lines += _ledger_lines(ledger)
    return "\n".join(lines) + "\n"


def _row(name: str, text: str) -> str:
    return f"{name:<12} {text}".rstrip()


def read_identity(path: Path) -> dict[str, str]:
    """The fields of an identity file, secret left out (identity.py's reader)."""
    try:
        return public_fields(path)
    except ValueError as exc:
        raise ValueError(f"not an agent identity file ({exc})") from None


def _identity_lines(path: Path) -> list[str]:
    lines = [_row("identity", str(path))]
    try:
        fields = read_identity(path)
    except FileNotFoundError:
        return [*lines, _row("", "no identity yet: `modelport agent run` or `enroll` makes one")]
    except (OSError, ValueError) as exc:
        return [*lines, _row("", f"cannot read it: {exc}")]
    lines.append(_row("public key", fields.get("public", "(missing)")))
    provider = fields.get("provider_id") or "none yet (given at the first successful auth)"
    lines.append(_row("provider id", provider))
    return lines


def _backend_lines(config: AgentConfig, env: Mapping[str, str]) -> list[str]:
    rows: list[str] = []
    for entry in config.backends:
        if entry.kind in KINDS_NEEDING_KEY:
            name = entry.api_key_env or "?"
            where = f"key from ${name} ({'set' if api_key_of(entry, env) else 'NOT SET'})"
        else:
            where = entry.url or "(no url)"
        models = f"; models: {', '.join(entry.models)}" if entry.models is not None else ""
        rows.append(f"{entry.kind:<10}  {where}{models}")
    if not rows:
        rows.append("none configured")
    every = f"{config.modelport.rediscover_s:g} s"
    rows.append(
        f"+ engines found on this machine (every {every})"
        if config.modelport.discover
        else "(discovery off)"
    )
    return [_row("backends" if n == 0 else "", row) for n, row in enumerate(rows)]


def _running(addr: str, timeout_s: float) -> str:
    """Whether the agent runs: its metrics endpoint answers, and its connected gauge."""
    try:
        host, port = split_addr(addr)
    except MetricsAddressError as exc:
        return f"unknown: {exc}"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    url = f"http://[{host}]:{port}/metrics" if ":" in host else f"http://{host}:{port}/metrics"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        with opener.open(url, timeout=timeout_s) as answer:
            text = answer.read(1 << 20).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return f"not running (nothing answers at {url})"
    for line in text.splitlines():
        if line.startswith(CONNECTED):
            up = float(line.removeprefix(CONNECTED)) == 1.0
            state = "connected to the hub" if up else "not connected to the hub"
            return f"running, {state} (metrics at {url})"
    return f"not running (something else answers at {url})"


def _ledger_lines(path: Path) -> list[str]:
    try:
        periods = [
            ("jobs, all time", earnings_totals(path)),
            ("jobs, last 24 h", earnings_totals(path, since_s=DAY_S)),
        ]
    except FileNotFoundError:
        return ["no jobs recorded yet"]
    lines: list[str] = []
    for title, rows in periods:
        lines += [title, *_table(rows), ""]
    return lines[:-1]


def usdc(amount: Decimal) -> str:
    return str(amount.quantize(MICRO, rounding=ROUND_HALF_UP))


def _table(rows: list[EarningsRow]) -> list[str]:
    if not rows:
        return ["  none"]
    header = ("model", "jobs", "errors", "tokens in", "tokens out", "earned USDC")
    body = [
        (r.model or "-", f"{r.jobs:,}", f"{r.errors:,}", f"{r.input_tokens:,}",
         f"{r.output_tokens:,}", usdc(r.usdc))
        for r in rows
    ]  # fmt: skip
    total = (
        "total",
        f"{sum(r.jobs for r in rows):,}",
        f"{sum(r.errors for r in rows):,}",
        f"{sum(r.input_tokens for r in rows):,}",
        f"{sum(r.output_tokens for r in rows):,}",
        usdc(sum((r.usdc for r in rows), Decimal(0))),
    )
    table = [header, *body, total]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        return "  " + "  ".join(cells)

    return [fmt(row) for row in table]
