"""The usage ledger: one SQLite row per finished request, written off the hot path.

The request path only appends the (immutable) record to a list; one writer thread, woken
once per flush interval, turns records into rows and inserts them in batches, so a slow
disk never slows an answer. A ledger that
cannot write logs once and drops rows, counting them in `dropped`; it never raises into the
request path. Reading (`usage_totals`) opens the file read-only and can run while a gateway
writes, thanks to WAL mode.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

from modelport.records import RequestRecord

log = logging.getLogger(__name__)

BATCH_ROWS = 256
FLUSH_S = 0.5
QUEUE_MAX = 100_000  # rows waiting for the writer; beyond it rows are dropped
CLOSE_WAIT_S = 30.0  # a stuck disk must not hang the gateway's shutdown

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    time REAL, request_id TEXT, key_id TEXT, format TEXT, endpoint TEXT, model TEXT,
    backend TEXT, stream INTEGER, passthrough INTEGER, status INTEGER, input_tokens INTEGER,
    output_tokens INTEGER, ttft_ms REAL, duration_ms REAL, error TEXT
);
CREATE INDEX IF NOT EXISTS requests_time ON requests (time);
CREATE TABLE IF NOT EXISTS sales (
    time REAL, request_id TEXT, backend TEXT, key_id TEXT, model TEXT, status INTEGER,
    error TEXT, input_tokens INTEGER, output_tokens INTEGER,
    price_in_per_1m INTEGER, price_out_per_1m INTEGER
);
CREATE INDEX IF NOT EXISTS sales_time ON sales (time);
"""
# `sales`: every priced request (`RequestRecord.price_*_per_1m` set: an agent's job at its
# `[pricing]`, a hub agent's at the price it advertised then; USDC micro-units per million
# tokens), with what earnings and settlement need. A table of its own rather than columns
# added to `requests`: a ledger written by an older modelport gains it when opened (CREATE
# IF NOT EXISTS), `requests` keeps its shape for every reader, and nothing joins the two
# (request ids come from clients and may repeat; rowids VACUUM may renumber).
INSERT = "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_SALE = "INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
AGENT_BACKEND = "agent:"  # a hub agent's backend id: "agent:" + its provider id
# What a request earned: its tokens at its prices, when it ended without an error (a job
# that failed midway is not paid for). The one rule: earnings_totals and settlement use it.
FAILED = "CASE WHEN status >= 400 OR error != '' THEN 1 ELSE 0 END"
EARNED = (
    f"CASE WHEN {FAILED} = 1 THEN 0"
    " ELSE input_tokens * price_in_per_1m + output_tokens * price_out_per_1m END"
)


def _row(r: RequestRecord) -> tuple[object, ...]:
    return (
        r.time, r.request_id, r.key_id, r.format, r.endpoint, r.model, r.backend,
        int(r.stream), int(r.passthrough), r.status, r.input_tokens, r.output_tokens,
        r.ttft_ms, r.duration_ms, r.error,
    )  # fmt: skip


def _priced(r: RequestRecord) -> bool:
    return r.price_in_per_1m is not None and r.price_out_per_1m is not None


def _sale_row(r: RequestRecord) -> tuple[object, ...]:
    return (
        r.time, r.request_id, r.backend, r.key_id, r.model, r.status, r.error, r.input_tokens,
        r.output_tokens, r.price_in_per_1m, r.price_out_per_1m,
    )  # fmt: skip


class Ledger:
    """Appends a row per request to a SQLite file from one background thread.

    `record()` may be called before `start()` (rows wait) and after `close()` (rows are
    dropped and counted). If the database cannot be opened, `start()` logs the reason,
    keeps it in `error`, and the ledger drops every row; the gateway keeps serving.

    A row costs the request path a list append under an uncontended lock: the writer is
    woken once per flush interval (by the first row after it last wrote), never per row.
    A thread woken per row takes the GIL from the event loop at each of its syscalls,
    which cost an agent under load about a fifth of its CPU (docs/hot-path.md).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dropped = 0
        self.error: str | None = None  # why the ledger is not writing, once it failed
        self._lock = threading.Lock()  # guards the rows, dropped and the flags below
        self._rows: list[RequestRecord] = []
        self._wake = threading.Event()  # set by the first row after a write, and by close()
        self._stop = threading.Event()  # close(): write what is there now and exit
        self._db: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self._closed = False
        self._broken = False  # the database could not be opened: drop everything

    def start(self) -> None:
        """Open the database and start the writer thread."""
        with self._lock:
            if self._started or self._closed:
                raise RuntimeError("a ledger starts once, and not after close()")
            self._started = True
        try:
            self._db = _open(self.path)
        except (OSError, sqlite3.Error) as exc:
            self._broken = True
            self._fail(f"cannot open usage ledger {self.path}: {exc}")
            self._drain()
            return
        self._thread = threading.Thread(target=self._run, name="modelport-ledger", daemon=True)
        self._thread.start()
        self._wake.set()  # rows recorded before start

    def record(self, record: RequestRecord) -> None:
        """Keep one row for the writer. Never blocks, never raises."""
        with self._lock:
            if self._closed or self._broken or len(self._rows) >= QUEUE_MAX:
                self.dropped += 1
                return
            self._rows.append(record)
            first = len(self._rows) == 1
        if first:
            self._wake.set()

    def close(self) -> None:
        """Write everything kept, stop the writer, close the database. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._stop.set()
            self._wake.set()
            thread.join(CLOSE_WAIT_S)
            if thread.is_alive():  # left to die with the process (a daemon thread)
                self._fail(
                    f"usage ledger {self.path} still writing after {CLOSE_WAIT_S:.0f} s, "
                    f"about {len(self._rows)} rows may be lost"
                )
                return
        self._drain()  # rows of a ledger never started or failed

    def _run(self) -> None:
        db = self._db
        assert db is not None
        try:
            stopping = False
            while not stopping:
                self._wake.wait()
                # Let the interval's rows gather into a few transactions; close() cuts it
                # short, and the rows kept until then are the last ones written.
                stopping = self._stop.wait(FLUSH_S)
                with self._lock:
                    batch, self._rows = self._rows, []
                    self._wake.clear()
                for start in range(0, len(batch), BATCH_ROWS):
                    self._write(db, batch[start : start + BATCH_ROWS])
        finally:
            db.close()

    def _write(self, db: sqlite3.Connection, batch: list[RequestRecord]) -> None:
        try:
            with db:  # one transaction per batch
                db.executemany(INSERT, [_row(r) for r in batch])
                db.executemany(INSERT_SALE, [_sale_row(r) for r in batch if _priced(r)])
        except Exception as exc:  # a full disk, a locked or broken file: drop, keep serving
            self._drop(len(batch))
            if self.error is None:  # log once; later batches are tried again
                self._fail(f"usage ledger {self.path} failed to write, dropping rows: {exc}")

    def _fail(self, message: str) -> None:
        self.error = message
        log.error("%s", message)

    def _drop(self, n: int) -> None:
        with self._lock:
            self.dropped += n

    def _drain(self) -> None:
        with self._lock:
            self.dropped += len(self._rows)
            self._rows = []


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The connection is made here and then used only by the writer thread.
    db = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: cheap commits; never corrupt, may lose the last batch on power loss.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


@dataclass
class UsageRow:
    """Totals for one model, backend or key."""

    group: str
    requests: int
    input_tokens: int
    output_tokens: int
    errors: int  # failed requests, including streams that failed after a 200
    avg_ttft_ms: float | None  # None when no request in the group had a first byte
    avg_duration_ms: float


_GROUP_COLUMNS = {"model": "model", "backend": "backend", "key": "key_id"}


def usage_totals(
    path: Path,
    *,
    since_s: float | None = None,
    by: Literal["model", "backend", "key"] = "model",
) -> list[UsageRow]:
    """Totals per group over the last `since_s` seconds (all time when None), busiest first."""
    column = _GROUP_COLUMNS.get(by)
    if column is None:
        raise ValueError(f"cannot group usage by {by!r}: use model, backend or key")
    if not path.exists():
        raise FileNotFoundError(f"no usage ledger at {path}")
    since = 0.0 if since_s is None else time.time() - since_s
    sql = f"""
        SELECT {column}, COUNT(*), COALESCE(SUM(input_tokens), 0),
               COALESCE(SUM(output_tokens), 0),
               SUM(CASE WHEN status >= 400 OR error != '' THEN 1 ELSE 0 END),
               AVG(ttft_ms), AVG(duration_ms)
        FROM requests WHERE time >= ? GROUP BY {column}
        ORDER BY COUNT(*) DESC, {column} ASC
    """  # column comes from the fixed map above, never from the caller
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute(sql, (since,)).fetchall()
    finally:
        db.close()
    return [
        UsageRow(
            group=g or "",
            requests=n,
            input_tokens=tin,
            output_tokens=tout,
            errors=err,
            avg_ttft_ms=ttft,
            avg_duration_ms=dur or 0.0,
        )
        for g, n, tin, tout, err, ttft, dur in rows
    ]


@dataclass
class EarningsRow:
    """What one model earned: priced requests (the agent's jobs) only."""

    model: str
    jobs: int
    errors: int  # jobs that failed: they earn nothing
    input_tokens: int
    output_tokens: int
    usdc: Decimal  # exact: tokens x USDC micro-units per million, / 10**12


PER_MILLION_MICRO = Decimal(10**12)  # tokens x micro-units per 1M tokens -> USDC


def earnings_totals(path: Path, *, since_s: float | None = None) -> list[EarningsRow]:
    """Jobs, tokens and earnings per model over the last `since_s` seconds (all time when
    None), by model name. Earnings count finished jobs without an error, at the prices
    stored beside each one; the sum is of integers, so it is exact."""
    if not path.exists():
        raise FileNotFoundError(f"no ledger at {path}")
    since = 0.0 if since_s is None else time.time() - since_s
    sql = f"""
        SELECT model, COUNT(*), SUM({FAILED}),
               COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
               COALESCE(SUM({EARNED}), 0)
        FROM sales WHERE time >= ? GROUP BY model ORDER BY model ASC
    """  # built from this module's constants, never from the caller's text
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute(sql, (since,)).fetchall()
    except sqlite3.OperationalError as exc:  # a ledger from before the sales table
        if "no such table" not in str(exc):
            raise
        rows = []
    finally:
        db.close()
    return [
        EarningsRow(model or "", n, err, tin, tout, Decimal(earned) / PER_MILLION_MICRO)
        for model, n, err, tin, tout, earned in rows
    ]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in "90s", "30m", "24h", "7d", "1w" or "1h30m" (for `--since`)."""
    spec = text.strip()
    if not _DURATION.fullmatch(spec):
        raise ValueError(
            f"bad duration {text!r}: use a number and a unit (s, m, h, d or w), e.g. 30m, 24h, 7d"
        )
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(spec))
    if seconds <= 0:
        raise ValueError(f"bad duration {text!r}: it must be longer than zero")
    return seconds


def render_usage(rows: list[UsageRow], *, by: str) -> str:
    """A plain-text table of `rows` with a total line, for `modelport usage`."""
    if not rows:
        return "no requests recorded\n"
    header = (by, "requests", "input", "output", "errors", "avg ttft ms", "avg ms")
    lines = [
        _cells(
            r.group or "-",
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.errors,
            r.avg_ttft_ms,
            r.avg_duration_ms,
        )
        for r in rows
    ]
    n = sum(r.requests for r in rows)
    # The duration average is exact (every request has one); the TTFT one would not be, since
    # the rows do not say how many requests had a first byte, so the total leaves it blank.
    total = _cells(
        "total",
        n,
        sum(r.input_tokens for r in rows),
        sum(r.output_tokens for r in rows),
        sum(r.errors for r in rows),
        None,
        sum(r.avg_duration_ms * r.requests for r in rows) / n,
    )
    table = [header, *lines, total]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        first = row[0].ljust(widths[0])
        rest = (cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *map(fmt, lines), rule, fmt(total)]) + "\n"


def _cells(
    group: str,
    requests: int,
    input_tokens: int,
    output_tokens: int,
    errors: int,
    ttft: float | None,
    duration: float,
) -> tuple[str, ...]:
    return (
        group,
        f"{requests:,}",
        f"{input_tokens:,}",
        f"{output_tokens:,}",
        f"{errors:,}",
        "-" if ttft is None else f"{ttft:,.1f}",
        f"{duration:,.1f}",
    )
