"""The ledger by hub agent: jobs, tokens and earnings at the advertised prices per agent,
model and key; `modelport usage --by agent`; `modelport usage export` for settlement."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from modelport.gateway.ledger import Ledger, usage_totals
from modelport.gateway.settlement import (
    AgentUsage,
    agent_usage,
    export_csv,
    export_json,
    parse_time,
    render_agent_usage,
)
from modelport.records import RequestRecord
from modelport.router import Limits, Router
from modelport.service import Service
from modelport.types import WireFormat
from tests.fakes import FakeEngine
from tests.hub.helpers import agent_backend

FakeFactory = Callable[..., Awaitable[FakeEngine]]
A, B = "prov_aaaaaaaaaaaaaaaaaaaaaaaa", "prov_bbbbbbbbbbbbbbbbbbbbbbbb"
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def rec(backend: str, *, price: tuple[int, int] | None = None, **kw: object) -> RequestRecord:
    base: dict[str, object] = {
        "request_id": "r",
        "format": "openai",
        "endpoint": "chat",
        "model": "llama3",
        "backend": backend,
        "status": 200,
        "time": T0,
        "price_in_per_1m": None if price is None else price[0],
        "price_out_per_1m": None if price is None else price[1],
    }
    base.update(kw)
    return RequestRecord(**base)  # type: ignore[arg-type]


def write(path: Path, *records: RequestRecord) -> None:
    ledger = Ledger(path)
    ledger.start()
    for record in records:
        ledger.record(record)
    ledger.close()
    assert ledger.error is None and ledger.dropped == 0


def test_only_agents_jobs_are_settled_and_requests_keep_their_shape(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    write(
        path,
        rec(f"agent:{A}", price=(1_000_000, 2_000_000), input_tokens=10, output_tokens=20),
        rec("vllm:http://127.0.0.1:8000", input_tokens=5, output_tokens=5),
    )
    with sqlite3.connect(path) as db:
        assert len(db.execute("PRAGMA table_info(requests)").fetchall()) == 15
        assert db.execute("SELECT COUNT(*) FROM requests").fetchone() == (2,)
    assert [u.requests for u in usage_totals(path, by="backend")] == [1, 1]
    (row,) = agent_usage(path)
    # 10 x 1 USDC/M + 20 x 2 USDC/M = 50 micro-units.
    assert row == AgentUsage(
        agent=A,
        model=None,
        key_id=None,
        jobs=1,
        errors=0,
        input_tokens=10,
        output_tokens=20,
        earnings_micro=50,
    )
    assert row.earnings_usdc == "0.000050"


def test_a_ledger_from_before_gains_the_table_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    with sqlite3.connect(path) as db:  # the schema every ledger had until now
        db.execute(
            "CREATE TABLE requests (time REAL, request_id TEXT, key_id TEXT, format TEXT, "
            "endpoint TEXT, model TEXT, backend TEXT, stream INTEGER, passthrough INTEGER, "
            "status INTEGER, input_tokens INTEGER, output_tokens INTEGER, ttft_ms REAL, "
            "duration_ms REAL, error TEXT)"
        )
        db.execute(
            "INSERT INTO requests VALUES (1.0, 'old', '', 'openai', 'chat', 'm', 'vllm', 0, 0, "
            "200, 1, 2, NULL, 3.0, '')"
        )
    db.close()
    assert agent_usage(path) == []  # read-only: an old file has no agent_jobs yet
    write(path, rec(f"agent:{A}", price=(10, 10), input_tokens=100_000, output_tokens=0))
    assert [r["request_id"] for r in _requests(path)] == ["old", "r"]
    assert [(u.agent, u.earnings_micro) for u in agent_usage(path)] == [(A, 1)]


def _requests(path: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        found = db.execute("SELECT * FROM requests ORDER BY time").fetchall()
    db.close()
    return found


def test_grouping_and_exact_earnings_across_price_changes(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    write(
        path,
        # Agent A, llama3, two prices over time; 3 x 333_333 tokens at 1 micro per token
        # would lose a micro-unit per row if each row were rounded: the sum is rounded once.
        rec(f"agent:{A}", price=(1_000_000, 0), input_tokens=333_333, key_id="TEAM"),
        rec(f"agent:{A}", price=(1_000_000, 0), input_tokens=333_333, key_id="TEAM"),
        rec(f"agent:{A}", price=(1_000_000, 0), input_tokens=333_334, key_id="CI"),
        rec(f"agent:{A}", price=(500_000, 500_000), input_tokens=1, output_tokens=1, model="qwen"),
        rec(f"agent:{B}", price=(3, 7), input_tokens=1_000_000, output_tokens=1_000_000),
        rec(f"agent:{B}", price=(3, 7), status=502, error="Unreachable"),
    )
    by_agent = {u.agent: u for u in agent_usage(path)}
    assert (by_agent[A].jobs, by_agent[A].earnings_micro) == (4, 1_000_001)
    assert (by_agent[B].jobs, by_agent[B].errors, by_agent[B].earnings_micro) == (2, 1, 10)
    assert [u.agent for u in agent_usage(path)] == [A, B]  # the highest earnings first
    by_model = {
        (u.agent, u.model): u.earnings_micro for u in agent_usage(path, by=("agent", "model"))
    }
    assert by_model == {(A, "llama3"): 1_000_000, (A, "qwen"): 1, (B, "llama3"): 10}
    by_key = {
        (u.agent, u.model, u.key_id): u.input_tokens
        for u in agent_usage(path, by=("agent", "model", "key"))
    }
    assert by_key[(A, "llama3", "TEAM")] == 666_666 and by_key[(A, "llama3", "CI")] == 333_334
    with pytest.raises(ValueError, match="agent\\[\\+model\\]\\[\\+key\\]"):
        agent_usage(path, by=("model",))


def test_a_time_range_selects_rows(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    write(
        path,
        *(
            rec(f"agent:{A}", price=(0, 1_000_000), output_tokens=1, time=T0 + h * 3600)
            for h in range(5)
        ),
    )
    rows = agent_usage(path, since=T0 + 3600, until=T0 + 3 * 3600)  # [since, until)
    assert [(r.jobs, r.earnings_micro) for r in rows] == [(2, 2)]


def test_parse_time_takes_rfc3339_and_durations() -> None:
    assert parse_time("2027-01-15T08:00:00Z") == T0
    assert parse_time("2027-01-15T09:00:00+01:00") == T0
    assert parse_time("24h", now=T0) == T0 - 86400
    with pytest.raises(ValueError, match=r"RFC 3339 time .* or a duration"):
        parse_time("yesterday")


def test_render_and_export(tmp_path: Path) -> None:
    rows = [
        AgentUsage(A, "llama3", None, 3, 1, 1200, 3400, 1_234_567),
        AgentUsage(B, "qwen", None, 1, 0, 10, 20, 5),
    ]
    table = render_agent_usage(rows).splitlines()
    assert table[0].split() == [
        "agent",
        "model",
        "jobs",
        "input",
        "output",
        "errors",
        "earned",
        "USDC",
    ]
    assert table[2].split() == [A, "llama3", "3", "1,200", "3,400", "1", "1.234567"]
    assert table[-1].split() == ["total", "4", "1,210", "3,420", "1", "1.234572"]
    assert next(csv.DictReader(io.StringIO(export_csv(rows)))) == {
        "agent": A,
        "model": "llama3",
        "jobs": "3",
        "errors": "1",
        "input_tokens": "1200",
        "output_tokens": "3400",
        "earnings_micro_usdc": "1234567",
        "earnings_usdc": "1.234567",
    }
    document = json.loads(export_json(rows, since=None, until=T0))
    assert document["since"] is None and document["until"] == "2027-01-15T08:00:00Z"
    assert document["currency"] == "USDC" and len(document["rows"]) == 2
    assert document["total"] == {
        "jobs": 4,
        "input_tokens": 1210,
        "output_tokens": 3420,
        "earnings_micro_usdc": 1_234_572,
        "earnings_usdc": "1.234572",
    }
    assert render_agent_usage([]) == "no requests served by hub agents\n"


async def test_served_by_an_agent_through_the_service_lands_with_its_price(
    fake_engine: FakeFactory, tmp_path: Path
) -> None:
    """The price the route advertised reaches the ledger: service -> record -> agent_jobs."""
    fake = await fake_engine("vllm", models=["llama3"])
    path = tmp_path / "usage.sqlite3"
    ledger = Ledger(path)
    ledger.start()
    router = Router()
    backend = agent_backend(fake.url, 1, {"llama3": (2_000_000, 4_000_000)})
    router.add(backend, Limits(), local=False)
    service = Service(router, observe=ledger.record)
    try:
        await router.refresh()
        body = b'{"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}'
        reply = await service.chat(WireFormat.OPENAI, body, key_id="TEAM")
        assert reply.status == 200
    finally:
        await router.aclose()
        ledger.close()
    (row,) = agent_usage(path, by=("agent", "model", "key"))
    assert (row.agent, row.model, row.key_id) == (backend.id[len("agent:") :], "llama3", "TEAM")
    assert row.input_tokens > 0 and row.output_tokens > 0
    assert row.earnings_micro == 2 * row.input_tokens + 4 * row.output_tokens


async def modelport(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "modelport.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_usage_by_agent_and_export_from_the_cli(tmp_path: Path) -> None:
    import time

    now = time.time()
    path = tmp_path / "usage.sqlite3"
    write(
        path,
        rec(
            f"agent:{A}",
            price=(1_000_000, 1_000_000),
            input_tokens=5,
            output_tokens=5,
            time=now - 60,
        ),
        rec(
            f"agent:{A}", price=(1_000_000, 1_000_000), input_tokens=7, model="qwen", time=now - 60
        ),
        rec(f"agent:{B}", price=(1, 1), input_tokens=1, time=now - 3 * 86400),
        rec("ollama", input_tokens=99, time=now - 60),
    )
    config = tmp_path / "modelport.toml"
    config.write_text(f'[server]\nledger = "{path}"\n')
    code, out, err = await modelport("usage", "--config", str(config), "--by", "agent")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["agent", "jobs"]
    assert lines[2].split() == [A, "2", "12", "5", "0", "0.000017"]
    code, out, _ = await modelport(
        "usage", "-c", str(config), "--by", "agent+model", "--since", "1d"
    )
    assert [line.split()[:2] for line in out.splitlines()[2:4]] == [[A, "llama3"], [A, "qwen"]]
    assert B not in out  # three days ago
    code, out, err = await modelport("usage", "export", "-c", str(config), "--since", "24h")
    assert code == 0, err
    exported = list(csv.DictReader(io.StringIO(out)))
    assert {(r["agent"], r["model"], r["earnings_micro_usdc"]) for r in exported} == {
        (A, "llama3", "10"),
        (A, "qwen", "7"),
    }
    code, out, err = await modelport("usage", "export", "-c", str(config), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["total"]["earnings_micro_usdc"] == 17  # B's 1 x 1/M rounds to 0
    code, _, err = await modelport("usage", "export", "-c", str(config), "--format", "xml")
    assert code == 2 and "--format takes csv or json" in err
    code, _, err = await modelport("usage", "export", "-c", str(config), "--until", "soon")
    assert code == 2 and "bad time 'soon'" in err
    code, _, err = await modelport("usage", "-c", str(config), "--by", "agent+color")
    assert code == 2 and "cannot group agent usage by 'agent+color'" in err
    code, out, _ = await modelport("usage", "-c", str(config), "--by", "model")  # as before
    assert code == 0 and "ollama" not in out and "llama3" in out
