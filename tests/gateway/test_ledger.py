"""The usage ledger: rows land off the hot path, totals read them back, failures never raise."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from modelport.gateway.ledger import (
    INSERT,
    EarningsRow,
    Ledger,
    UsageRow,
    earnings_totals,
    parse_duration,
    render_usage,
    usage_totals,
)
from modelport.records import RequestRecord

COLUMNS = [
    "time", "request_id", "key_id", "format", "endpoint", "model", "backend", "stream",
    "passthrough", "status", "input_tokens", "output_tokens", "ttft_ms", "duration_ms", "error",
]  # fmt: skip


def rec(**kw: object) -> RequestRecord:
    base: dict[str, object] = {
        "request_id": "r",
        "format": "openai",
        "endpoint": "chat",
        "model": "llama3",
        "backend": "ollama",
        "status": 200,
    }
    base.update(kw)
    return RequestRecord(**base)  # type: ignore[arg-type]


def rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM requests ORDER BY time, request_id").fetchall()


def test_rows_land_after_close_with_exact_values(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "usage.db"  # parent dirs are created
    ledger = Ledger(path)
    ledger.start()
    a = rec(
        request_id="a",
        key_id="KEY_A",
        format="anthropic",
        stream=True,
        passthrough=True,
        input_tokens=12,
        output_tokens=34,
        ttft_ms=5.5,
        duration_ms=120.25,
        time=1000.0,
    )
    b = rec(
        request_id="b",
        endpoint="embeddings",
        backend="",
        status=502,
        error="Unreachable",
        time=1001.0,
    )
    ledger.record(a)
    ledger.record(b)
    ledger.close()
    assert rows(path) == [
        (1000.0, "a", "KEY_A", "anthropic", "chat", "llama3", "ollama", 1, 1, 200, 12, 34,
         5.5, 120.25, ""),
        (1001.0, "b", "", "openai", "embeddings", "llama3", "", 0, 0, 502, 0, 0,
         None, 0.0, "Unreachable"),
    ]  # fmt: skip
    assert ledger.dropped == 0 and ledger.error is None


def test_schema_index_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    ledger.start()
    ledger.close()
    with sqlite3.connect(path) as db:
        info = db.execute("PRAGMA table_info(requests)").fetchall()
        assert [c[1] for c in info] == COLUMNS
        assert [c[2] for c in info] == [
            "REAL", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "INTEGER", "INTEGER",
            "INTEGER", "INTEGER", "INTEGER", "REAL", "REAL", "TEXT",
        ]  # fmt: skip
        indexes = db.execute("PRAGMA index_list(requests)").fetchall()
        assert [db.execute(f"PRAGMA index_info({i[1]})").fetchall()[0][2] for i in indexes] == [
            "time"
        ]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_rows_land_without_close_within_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    ledger.start()
    try:
        ledger.record(rec(request_id="x"))
        deadline = time.monotonic() + 3
        while not rows(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r[1] for r in rows(path)] == ["x"]
    finally:
        ledger.close()


def test_many_records_from_several_threads(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    ledger.start()
    threads, per_thread = 8, 2000

    def work(t: int) -> None:
        for i in range(per_thread):
            ledger.record(rec(request_id=f"{t}-{i}", input_tokens=i, output_tokens=1))

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    ledger.close()
    with sqlite3.connect(path) as db:
        n, distinct, tin, tout = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT request_id), SUM(input_tokens), SUM(output_tokens)"
            " FROM requests"
        ).fetchone()
    assert n == distinct == threads * per_thread
    assert tin == threads * sum(range(per_thread))
    assert tout == threads * per_thread
    assert ledger.dropped == 0


def test_record_before_start_is_kept_and_after_close_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    ledger.record(rec(request_id="early"))
    ledger.start()
    ledger.close()
    ledger.record(rec(request_id="late"))  # must not raise
    ledger.record(rec(request_id="later"))
    ledger.close()  # idempotent
    assert [r[1] for r in rows(path)] == ["early"]
    assert ledger.dropped == 2
    with pytest.raises(RuntimeError):
        ledger.start()


def test_close_without_start_counts_queued_rows(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "usage.db")
    ledger.record(rec())
    ledger.record(rec())
    ledger.close()
    assert ledger.dropped == 2
    assert not (tmp_path / "usage.db").exists()


def test_unwritable_path_drops_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    ledger = Ledger(blocker / "usage.db")  # its parent is a file: nothing can be created there
    ledger.record(rec(request_id="queued-before-start"))
    with caplog.at_level(logging.ERROR, logger="modelport.gateway.ledger"):
        ledger.start()  # must not raise: the gateway keeps serving without a ledger
        for i in range(10):
            ledger.record(rec(request_id=str(i)))
        ledger.close()
    assert ledger.dropped == 11
    assert ledger.error is not None and "cannot open usage ledger" in ledger.error
    assert len(caplog.records) == 1


def test_failing_writer_logs_once_and_counts_every_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    ledger.start()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE requests")  # every insert now fails
    with caplog.at_level(logging.ERROR, logger="modelport.gateway.ledger"):
        for i in range(600):  # three batches
            ledger.record(rec(request_id=str(i)))
        ledger.close()
    assert ledger.dropped == 600
    assert ledger.error is not None and "failed to write" in ledger.error
    assert len(caplog.records) == 1


def write(path: Path, records: list[RequestRecord]) -> None:
    ledger = Ledger(path)
    ledger.start()
    for r in records:
        ledger.record(r)
    ledger.close()


def test_usage_totals_by_model_backend_and_key_with_since(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    now = time.time()
    old = now - 3 * 86400
    write(
        path,
        [
            rec(model="a", backend="x", key_id="K1", input_tokens=10, output_tokens=1,
                ttft_ms=10, duration_ms=100, time=now - 60),
            rec(model="a", backend="y", key_id="K1", input_tokens=20, output_tokens=2,
                ttft_ms=30, duration_ms=300, time=now - 120),
            rec(model="a", backend="y", key_id="K2", status=200, error="Timeout",
                duration_ms=50, time=now - 30),
            rec(model="b", backend="x", key_id="", status=429, error="RateLimited",
                duration_ms=2, time=now - 10),
            rec(model="b", backend="x", key_id="K2", input_tokens=1000, output_tokens=500,
                ttft_ms=100, duration_ms=1000, time=old),
            rec(model="b", backend="x", key_id="K2", input_tokens=1000, output_tokens=500,
                ttft_ms=100, duration_ms=1000, time=old),
            rec(model="b", backend="x", key_id="K2", input_tokens=1000, output_tokens=500,
                ttft_ms=100, duration_ms=1000, time=old),
        ],
    )  # fmt: skip

    assert usage_totals(path, by="model", since_s=86400) == [
        UsageRow("a", 3, 30, 3, 1, 20.0, 150.0),
        UsageRow("b", 1, 0, 0, 1, None, 2.0),
    ]
    assert usage_totals(path, by="model") == [  # all time: b is now the busiest
        UsageRow("b", 4, 3000, 1500, 1, 100.0, 3002 / 4),
        UsageRow("a", 3, 30, 3, 1, 20.0, 150.0),
    ]
    assert usage_totals(path, by="backend", since_s=86400) == [
        UsageRow("x", 2, 10, 1, 1, 10.0, 51.0),
        UsageRow("y", 2, 20, 2, 1, 30.0, 175.0),
    ]
    assert usage_totals(path, by="key", since_s=86400) == [
        UsageRow("K1", 2, 30, 3, 0, 20.0, 200.0),
        UsageRow("", 1, 0, 0, 1, None, 2.0),
        UsageRow("K2", 1, 0, 0, 1, None, 50.0),
    ]
    assert usage_totals(path, since_s=1) == []


def test_usage_totals_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no usage ledger"):
        usage_totals(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()  # reading never creates the file
    with pytest.raises(ValueError, match="model, backend or key"):
        usage_totals(tmp_path / "missing.db", by="user")  # type: ignore[arg-type]


def test_usage_totals_reads_while_a_gateway_writes(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    ledger = Ledger(path)
    ledger.start()
    try:
        ledger.record(rec(request_id="1"))
        deadline = time.monotonic() + 3
        while not usage_totals(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert usage_totals(path)[0].requests == 1
    finally:
        ledger.close()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("24h", 86400),
        ("7d", 604800),
        ("1w", 604800),
        (" 1.5h ", 5400),
        ("1h30m", 5400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "24", "h", "24x", "-1h", "1 h", "1H", "0m", "inf", "1e3s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


def test_render_usage() -> None:
    rows = [
        UsageRow("llama3", 1200, 1_234_567, 89_012, 3, 41.25, 1500.0),
        UsageRow("", 2, 0, 0, 2, None, 3.0),
    ]
    assert render_usage(rows, by="model") == (
        "model   requests      input  output  errors  avg ttft ms   avg ms\n"
        "-----------------------------------------------------------------\n"
        "llama3     1,200  1,234,567  89,012       3         41.2  1,500.0\n"
        "-              2          0       0       2            -      3.0\n"
        "-----------------------------------------------------------------\n"
        "total      1,202  1,234,567  89,012       5            -  1,497.5\n"
    )
    assert render_usage([], by="key") == "no requests recorded\n"


def test_a_ledger_from_before_sales_gains_the_table_and_records_priced_rows(tmp_path: Path) -> None:
    """Priced rows (an agent's jobs, a hub agent's) are also kept with their prices in a
    table of their own, so the requests table keeps its columns and an older file is
    migrated by opening it."""
    path = tmp_path / "usage.db"
    with sqlite3.connect(path) as db:  # a ledger written before the sales table existed
        db.executescript(
            "CREATE TABLE requests (time REAL, request_id TEXT, key_id TEXT, format TEXT,"
            " endpoint TEXT, model TEXT, backend TEXT, stream INTEGER, passthrough INTEGER,"
            " status INTEGER, input_tokens INTEGER, output_tokens INTEGER, ttft_ms REAL,"
            " duration_ms REAL, error TEXT);"
        )
        db.execute(INSERT, _old_row())
    db.close()
    assert earnings_totals(path) == []  # no prices yet: nothing earned, no error
    ledger = Ledger(path)
    ledger.start()
    price = {"price_in_per_1m": 300, "price_out_per_1m": 450}
    ledger.record(rec(request_id="job-1", input_tokens=1_000, output_tokens=2_000, **price))
    ledger.record(rec(request_id="job-2", status=502, error="Unreachable", **price))
    ledger.record(rec(request_id="gateway-request", input_tokens=5))  # no price: not a job
    ledger.close()
    with sqlite3.connect(path) as db:
        info = db.execute("PRAGMA table_info(requests)").fetchall()
        assert [c[1] for c in info] == COLUMNS
        sold = "SELECT request_id, status, input_tokens, output_tokens, price_in_per_1m,"
        sold += " price_out_per_1m FROM sales ORDER BY request_id"
        assert db.execute(sold).fetchall() == [
            ("job-1", 200, 1_000, 2_000, 300, 450),
            ("job-2", 502, 0, 0, 300, 450),
        ]
    db.close()
    assert len(rows(path)) == 4
    assert earnings_totals(path) == [
        EarningsRow("llama3", 2, 1, 1_000, 2_000, Decimal(1_000 * 300 + 2_000 * 450) / 10**12)
    ]


def _old_row() -> tuple[object, ...]:
    return (time.time(), "old", "", "openai", "chat", "llama3", "ollama", 0, 0, 200, 1, 1,
            None, 1.0, "")  # fmt: skip


def _thread_cpu_s(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def test_recording_wakes_no_thread_per_row(tmp_path: Path) -> None:
    """A row costs the request path an append, not a wake-up of the writer: a thread woken
    per row takes the GIL from the event loop once per request (seen as a third of an
    agent's CPU under load). Rows recorded within one flush interval cost the writer
    nothing until the interval ends."""
    ledger = Ledger(tmp_path / "usage.db")
    ledger.start()
    writer = next(t for t in threading.enumerate() if t.name == "modelport-ledger")
    try:
        ledger.record(rec(request_id="first"))  # the writer wakes for the first row ...
        time.sleep(0.05)
        before = _thread_cpu_s(writer)
        started = time.monotonic()
        for i in range(2_000):
            ledger.record(rec(request_id=str(i)))
            time.sleep(0)  # a syscall, as an event loop makes between requests: the GIL is free
        recorded_in = time.monotonic() - started
        spent = _thread_cpu_s(writer) - before
    finally:
        ledger.close()
    assert recorded_in < 0.4, "recording took longer than the flush interval: no verdict"
    assert spent < 0.01, f"the writer ran {spent * 1000:.1f} ms while 2,000 rows came in"
    assert len(rows(tmp_path / "usage.db")) == 2_001
