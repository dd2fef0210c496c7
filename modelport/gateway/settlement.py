"""The ledger by hub agent: jobs, tokens and earnings per agent (and model, and key), for
`modelport usage --by agent`, `modelport usage export` and GET /v1/hub/agents.

Earnings are what the agent advertised when it served each request (the price is in the
ledger row, recorded at the time): tokens x price per million, in USDC micro-units. They
are summed exactly (Python integers, never floats) per price, and rounded once per output
row to the nearest micro-unit, half up.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from modelport.config import parse_rfc3339
from modelport.gateway.ledger import AGENT_BACKEND, EARNED, FAILED, parse_duration

__all__ = [
    "GROUPS",
    "AgentUsage",
    "agent_usage",
    "export_csv",
    "export_json",
    "parse_time",
    "render_agent_usage",
]

MICRO = 1_000_000  # micro-units in one USDC; also tokens in the "per million" of a price
# Group name -> SQL over `sales` (an agent is its backend id without the "agent:" prefix).
GROUPS = {"agent": f"substr(backend, {len(AGENT_BACKEND) + 1})", "model": "model", "key": "key_id"}


@dataclass(frozen=True)
class AgentUsage:
    """Totals for one agent (and model and key, when grouped by them)."""

    agent: str  # the agent's provider id
    model: str | None
    key_id: str | None  # the gateway key the requests came with ("" without auth)
    jobs: int
    errors: int
    input_tokens: int
    output_tokens: int
    earnings_micro: int  # USDC micro-units

    @property
    def earnings_usdc(self) -> str:
        return usdc(self.earnings_micro)


def usdc(micro: int) -> str:
    """Micro-units as a decimal USDC amount, all six places: "0.001250"."""
    return f"{Decimal(micro) / MICRO:.6f}"


def parse_time(text: str, *, now: float | None = None) -> float:
    """Unix seconds for `--since`/`--until`: an RFC 3339 time, or a duration back from now
    ("24h": a day ago). ValueError saying which forms it takes."""
    try:
        return parse_rfc3339(text).timestamp()
    except ValueError:
        pass
    try:
        return (time.time() if now is None else now) - parse_duration(text)
    except ValueError:
        raise ValueError(
            f"bad time {text!r}: use an RFC 3339 time (2026-12-01T00:00:00Z) "
            "or a duration back from now (30m, 24h, 7d)"
        ) from None


def agent_usage(
    path: Path,
    *,
    by: Sequence[str] = ("agent",),
    since: float | None = None,
    until: float | None = None,
) -> list[AgentUsage]:
    """Requests served by hub agents in [since, until), grouped by agent and any of
    "model" and "key"; the highest earnings first."""
    unknown = [name for name in by if name not in GROUPS]
    if unknown or "agent" not in by:
        raise ValueError(f"cannot group agent usage by {'+'.join(by)!r}: agent[+model][+key]")
    if not path.exists():
        raise FileNotFoundError(f"no usage ledger at {path}")
    names = [name for name in GROUPS if name in by]  # always agent, model, key order
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "sales" not in tables:
            return []  # a ledger no gateway with hub agents has opened: none served anything
        sql = _sql([GROUPS[name] for name in names])
        rows = db.execute(sql, (since or 0.0, until or float("inf"))).fetchall()
    finally:
        db.close()
    return _totals(rows, names)


def _sql(columns: list[str]) -> str:
    group = ", ".join(columns)
    # ledger.EARNED, summed in SQLite: a sum of integers, so exact (as earnings_totals).
    return f"""
        SELECT {group}, COUNT(*), SUM({FAILED}),
               COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
               COALESCE(SUM({EARNED}), 0)
        FROM sales WHERE backend LIKE '{AGENT_BACKEND}%' AND time >= ? AND time < ?
        GROUP BY {group}
    """  # columns come from GROUPS, never from the caller


def _totals(rows: Iterable[tuple[Any, ...]], names: list[str]) -> list[AgentUsage]:
    width = len(names)
    found = []
    for row in rows:
        named = dict(zip(names, row[:width], strict=True))
        jobs, errors, tokens_in, tokens_out, owed = (int(v) for v in row[width:])
        found.append(
            AgentUsage(
                agent=str(named["agent"]),
                model=_text(named, "model"),
                key_id=_text(named, "key"),
                jobs=jobs,
                errors=errors,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                earnings_micro=(owed + MICRO // 2) // MICRO,
            )
        )
    found.sort(key=lambda u: (-u.earnings_micro, -u.jobs, u.agent, u.model or "", u.key_id or ""))
    return found


def _text(named: dict[str, object], column: str) -> str | None:
    if column not in named:
        return None
    value = named[column]
    return "" if value is None else str(value)


# -- rendering ---------------------------------------------------------------------------


def render_agent_usage(rows: list[AgentUsage]) -> str:
    """A plain-text table with a total line, for `modelport usage --by agent[+model][+key]`."""
    if not rows:
        return "no requests served by hub agents\n"
    groups = [name for name, present in _present(rows) if present]
    header = (*groups, "jobs", "input", "output", "errors", "earned USDC")
    lines = [(*_group_cells(r, groups), *_figures(r)) for r in rows]
    total = AgentUsage(
        agent="total",
        model=None,
        key_id=None,
        jobs=sum(r.jobs for r in rows),
        errors=sum(r.errors for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        earnings_micro=sum(r.earnings_micro for r in rows),
    )
    total_line = ("total", *("" for _ in groups[1:]), *_figures(total))
    table = [header, *lines, total_line]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    n = len(groups)

    def fmt(row: tuple[str, ...]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [cell.ljust(w) if i < n else cell.rjust(w) for i, (cell, w) in pairs]
        return "  ".join(cells).rstrip()

    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *map(fmt, lines), rule, fmt(total_line)]) + "\n"


def _present(rows: list[AgentUsage]) -> list[tuple[str, bool]]:
    first = rows[0]
    return [("agent", True), ("model", first.model is not None), ("key", first.key_id is not None)]


def _group_cells(row: AgentUsage, groups: list[str]) -> tuple[str, ...]:
    values = {"agent": row.agent, "model": row.model, "key": row.key_id}
    return tuple(values[name] or "-" for name in groups)


def _figures(row: AgentUsage) -> tuple[str, ...]:
    return (
        f"{row.jobs:,}",
        f"{row.input_tokens:,}",
        f"{row.output_tokens:,}",
        f"{row.errors:,}",
        row.earnings_usdc,
    )


# -- export for settlement ---------------------------------------------------------------

EXPORT_FIELDS = (
    "agent",
    "model",
    "jobs",
    "errors",
    "input_tokens",
    "output_tokens",
    "earnings_micro_usdc",
    "earnings_usdc",
)


def _export_row(row: AgentUsage) -> dict[str, object]:
    return {
        "agent": row.agent,
        "model": row.model or "",
        "jobs": row.jobs,
        "errors": row.errors,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "earnings_micro_usdc": row.earnings_micro,
        "earnings_usdc": row.earnings_usdc,
    }


def export_csv(rows: list[AgentUsage]) -> str:
    """One line per agent and model, with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_export_row(row) for row in rows)
    return out.getvalue()


def export_json(rows: list[AgentUsage], *, since: float | None, until: float) -> str:
    """The rows with the range they cover and their total, as settlement wants them."""
    owed = sum(row.earnings_micro for row in rows)
    document = {
        "since": None if since is None else _rfc3339(since),
        "until": _rfc3339(until),
        "currency": "USDC",
        "rows": [_export_row(row) for row in rows],
        "total": {
            "jobs": sum(row.jobs for row in rows),
            "input_tokens": sum(row.input_tokens for row in rows),
            "output_tokens": sum(row.output_tokens for row in rows),
            "earnings_micro_usdc": owed,
            "earnings_usdc": usdc(owed),
        },
    }
    return json.dumps(document, indent=2) + "\n"


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
