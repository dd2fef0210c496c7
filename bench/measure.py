"""The benchmark's client: targets, one request, sequential latency, throughput at 64
concurrent with the server's CPU time per request, and idle streams against RSS.

One aiohttp session; every request is checked (HTTP 200, a stream that ends properly).
Server CPU is read from /proc for the target's whole process group: unlike wall-clock figures,
it hardly moves when other processes load the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fake_upstream import IDLE_CAP_S, TEXT

CONCURRENCY = 64
IDLE_STREAMS = 1000
PROMPT = "Say a hundred tokens."
# What a client's format calls (the fake serves the first two; modelport and LiteLLM all
# three), and the mark a stream must end with: OpenAI's [DONE], Anthropic's message_stop,
# the Responses API's response.completed event (which carries the whole response, so it is
# looked for in every chunk, not in the last bytes).
PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "responses": "/v1/responses",
}
STREAM_ENDS = {
    "openai": b"data: [DONE]",
    "anthropic": b"message_stop",
    "responses": b"response.completed",
}


@dataclass(frozen=True)
class Target:
    key: str  # short id used in the ratios
    label: str
    url: str
    fmt: str  # "openai" or "anthropic": the client's format
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    server: int = 0  # process group whose CPU time a request costs (the gateway, or the fake)

    def body(self, stream: bool) -> bytes:
        body: dict[str, Any] = {"model": self.model}
        if self.fmt == "responses":
            body |= {"input": PROMPT, "max_output_tokens": 256}
        else:
            body |= {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 256}
        if stream:
            body["stream"] = True
        return json.dumps(body).encode()


def endpoint(base: str, fmt: str) -> str:
    return base + PATHS[fmt]


def headers_for(fmt: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if fmt == "anthropic":
        headers |= {"anthropic-version": "2023-06-01", "x-api-key": "sk-bench"}
    else:
        headers["Authorization"] = "Bearer sk-bench"
    return headers


class RequestFailed(Exception):
    pass


async def one(session: Any, target: Target, stream: bool, body: bytes) -> tuple[float, float]:
    """One request; (seconds to first body byte, seconds to last byte)."""
    headers = target.headers
    started = time.perf_counter()
    async with session.post(target.url, data=body, headers=headers) as response:
        if response.status != 200:
            text = (await response.read())[:300]
            raise RequestFailed(f"{target.label}: HTTP {response.status}: {text!r}")
        if not stream:
            await response.read()
            done = time.perf_counter()
            return done - started, done - started
        first = 0.0
        tail = b""
        end = STREAM_ENDS[target.fmt]
        ended = False
        async for chunk in response.content.iter_any():
            if not first:
                first = time.perf_counter()
            window = tail + chunk
            ended = ended or (target.fmt == "responses" and end in window)
            tail = window[-64:]
        done = time.perf_counter()
    if not (ended or end in tail):
        raise RequestFailed(f"{target.label}: stream ended without {end!r}: {tail!r}")
    return first - started, done - started


def whole_text(fmt: str, obj: dict[str, Any]) -> str:
    """The text of a whole answer in the client's format."""
    if fmt == "openai":
        return str(obj["choices"][0]["message"]["content"])
    if fmt == "anthropic":
        return "".join(b.get("text", "") for b in obj["content"])
    return "".join(
        part.get("text", "")
        for item in obj["output"]
        if item.get("type") == "message"
        for part in item["content"]
        if part.get("type") == "output_text"
    )


def stream_pieces(fmt: str, obj: dict[str, Any]) -> list[str]:
    """The text pieces one decoded stream event carries, in the client's format."""
    if fmt == "openai":
        deltas = [choice.get("delta") or {} for choice in obj.get("choices") or []]
        return [d["content"] for d in deltas if d.get("content")]
    if fmt == "anthropic" and obj.get("type") == "content_block_delta":
        return [obj["delta"]["text"]] if obj["delta"].get("text") else []
    if fmt == "responses" and obj.get("type") == "response.output_text.delta":
        return [obj["delta"]] if obj.get("delta") else []
    return []


async def check_answer(session: Any, target: Target, stream: bool) -> str:
    """One request read in full and decoded: the text must be the fake's 100 tokens."""
    async with session.post(target.url, data=target.body(stream), headers=target.headers) as r:
        raw = await r.read()
        if r.status != 200:
            raise RequestFailed(f"{target.label}: HTTP {r.status}: {raw[:300]!r}")
    if not stream:
        text, pieces = whole_text(target.fmt, json.loads(raw)), 1
    else:
        texts = []
        for line in raw.decode().splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                texts += stream_pieces(target.fmt, json.loads(line[6:]))
        text, pieces = "".join(texts), len(texts)
    if text != TEXT:
        raise RequestFailed(f"{target.label}: wrong text {text[:80]!r}...")
    return f"{pieces} text pieces" if stream else "whole"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Measure:
    seq_p50: float = float("nan")  # ms; whole answer
    seq_p99: float = float("nan")
    ttft_p50: float = float("nan")  # ms; stream, first body byte
    ttft_p99: float = float("nan")
    ttlb_p50: float = float("nan")  # ms; stream, last byte
    ttlb_p99: float = float("nan")
    rps: float = float("nan")  # whole answers per second at CONCURRENCY
    stream_rps: float = float("nan")
    cpu_us: float = float("nan")  # server CPU per whole answer at CONCURRENCY
    stream_cpu_us: float = float("nan")
    errors: int = 0
    pieces: str = ""


async def sequential(
    session: Any, target: Target, stream: bool, warmup: int, n: int
) -> tuple[list[float], list[float]]:
    body = target.body(stream)
    for _ in range(warmup):
        await one(session, target, stream, body)
    firsts, lasts = [], []
    for _ in range(n):
        first, last = await one(session, target, stream, body)
        firsts.append(first * 1000)
        lasts.append(last * 1000)
    return firsts, lasts


@dataclass
class Load:
    """What one throughput phase did: requests done and failed, wall and server CPU seconds."""

    done: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0

    def add(self, other: Load) -> None:
        self.done += other.done
        self.errors += other.errors
        self.seconds += other.seconds
        self.cpu_s += other.cpu_s

    @property
    def rps(self) -> float:
        return self.done / self.seconds if self.seconds else float("nan")

    @property
    def cpu_us(self) -> float:
        """Server CPU time per request done, in microseconds."""
        return self.cpu_s / max(self.done, 1) * 1e6


async def throughput(
    session: Any,
    target: Target,
    stream: bool,
    seconds: float,
    cap: int,
    cpu: Callable[[int], float] | None = None,
) -> Load:
    """CONCURRENCY workers for `seconds` or `cap` requests, after one warm-up request each;
    the server's CPU time is that of its whole process group (user + system), read by `cpu`
    (default group_cpu)."""
    cpu = cpu or group_cpu
    body = target.body(stream)
    load = Load()

    async def warm() -> None:
        await one(session, target, stream, body)

    await asyncio.gather(*(warm() for _ in range(CONCURRENCY)))
    cpu_before = cpu(target.server)
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        while load.done + load.errors < cap and time.perf_counter() < deadline:
            try:
                await one(session, target, stream, body)
                load.done += 1
            except Exception as exc:  # RequestFailed, aiohttp.ClientError, OSError, timeouts
                load.errors += 1
                if load.errors <= 3:
                    print(f"    error: {type(exc).__name__}: {exc}", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    load.seconds = time.perf_counter() - started
    load.cpu_s = cpu(target.server) - cpu_before
    return load


TICK = os.sysconf("SC_CLK_TCK")


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # fields[0] is the state; pgrp is two after it
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def group_cpu_fine(pgid: int) -> float:
    """CPU seconds the live threads of a process group have run, to the nanosecond
    (/proc/<pid>/task/<tid>/schedstat): no 10 ms ticks to round a short phase by. Threads
    that exit take their time with them, so it suits servers that keep their threads (two
    modelports compared) and not a figure to quote against other servers."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for task in (stat.parent / "task").glob("*/schedstat"):
                total += int(task.read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (steal included) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


class OthersMeter:
    """CPU (in cores, on average) that processes other than this benchmark's (this client
    and the servers' process groups) used since it was made: how loaded the machine was."""

    def __init__(self, pgids: list[int]) -> None:
        self.pgids = pgids
        self.busy, self.ours, self.started = machine_busy(), self._ours(), time.perf_counter()

    def _ours(self) -> float:
        own = os.times()
        return own.user + own.system + sum(group_cpu(pgid) for pgid in self.pgids)

    def cores(self) -> float:
        elapsed = time.perf_counter() - self.started
        others = (machine_busy() - self.busy) - (self._ours() - self.ours)
        return max(0.0, others) / elapsed


@contextlib.asynccontextmanager
async def client_session() -> AsyncIterator[Any]:
    """The one aiohttp session of a run: room for the idle streams and the concurrent load."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=IDLE_STREAMS + CONCURRENCY + 16, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield session


@dataclass(frozen=True)
class Plan:
    warmup: int
    seq_n: int
    rounds: int
    seconds: float
    cap: int


async def check_answers(session: Any, rows: list[tuple[Target, Measure]]) -> None:
    """Every target must give the fake's text, whole and streamed, before it is timed."""
    for target, m in rows:
        m.pieces = await check_answer(session, target, True)
        await check_answer(session, target, False)


async def latency(session: Any, rows: list[tuple[Target, Measure]], plan: Plan) -> None:
    """Sequential latency in interleaved rounds (a slow drift of the machine hits every target
    alike): whole answers, then streams (first and last byte)."""
    # By position, not key: two targets may share a key (bench/compare.py: one per commit).
    samples: list[dict[str, list[float]]] = [{"whole": [], "first": [], "last": []} for _ in rows]
    per_round = max(1, plan.seq_n // plan.rounds)
    for round_no in range(plan.rounds):
        print(f"  latency, round {round_no + 1} of {plan.rounds} ...", file=sys.stderr, flush=True)
        warmup = plan.warmup if round_no == 0 else 0
        for (target, _), got in zip(rows, samples, strict=True):
            _, lasts = await sequential(session, target, False, warmup, per_round)
            got["whole"] += lasts
            firsts, lasts = await sequential(session, target, True, warmup, per_round)
            got["first"] += firsts
            got["last"] += lasts
    for (_, m), got in zip(rows, samples, strict=True):
        m.seq_p50, m.seq_p99 = pct(got["whole"], 50), pct(got["whole"], 99)
        m.ttft_p50, m.ttft_p99 = pct(got["first"], 50), pct(got["first"], 99)
        m.ttlb_p50, m.ttlb_p99 = pct(got["last"], 50), pct(got["last"], 99)


def record_load(m: Measure, whole: Load, stream: Load) -> None:
    m.rps, m.cpu_us = whole.rps, whole.cpu_us
    m.stream_rps, m.stream_cpu_us = stream.rps, stream.cpu_us
    m.errors = whole.errors + stream.errors


def say_measure(m: Measure) -> None:
    print(
        f"    whole p50 {m.seq_p50:.2f} ms, stream TTLB p50 {m.ttlb_p50:.2f} ms, "
        f"{m.rps:,.0f} / {m.stream_rps:,.0f} req/s, {m.cpu_us:,.0f} / "
        f"{m.stream_cpu_us:,.0f} us CPU per request ({m.pieces})",
        file=sys.stderr,
        flush=True,
    )


async def measure_all(
    session: Any, targets: list[Target], plan: Plan
) -> list[tuple[Target, Measure]]:
    """Answers checked, latency in interleaved rounds, then throughput target by target."""
    rows = [(target, Measure()) for target in targets]
    await check_answers(session, rows)
    await latency(session, rows, plan)
    for target, m in rows:
        print(f"  throughput, {target.key} ...", file=sys.stderr, flush=True)
        whole = await throughput(session, target, False, plan.seconds, plan.cap)
        stream = await throughput(session, target, True, plan.seconds, plan.cap)
        record_load(m, whole, stream)
        say_measure(m)
    return rows


# -- idle streams and RSS ----------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def idle_streams(
    session: Any, target: Target, release_url: str, pid: int, count: int, hold_s: float
) -> dict[str, float]:
    """Open `count` streams that idle after their first chunk; RSS while all are open."""
    body = target.body(True)
    opened = 0
    all_open = asyncio.Event()
    failures: list[str] = []

    async def stream() -> None:
        nonlocal opened
        try:
            async with session.post(target.url, data=body, headers=target.headers) as response:
                if response.status != 200:
                    failures.append(f"HTTP {response.status}")
                    return
                first = True
                async for _chunk in response.content.iter_any():
                    if first:
                        first = False
                        opened += 1
                        if opened == count:
                            all_open.set()
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")

    before = rss_mb(pid)
    tasks = [asyncio.create_task(stream()) for _ in range(count)]
    started = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_open.wait(), IDLE_CAP_S - hold_s - 2)
    open_s = time.perf_counter() - started
    peak = rss_mb(pid)
    hold_until = time.perf_counter() + hold_s
    while time.perf_counter() < hold_until:  # bounded: hold_s seconds
        await asyncio.sleep(0.5)
        peak = max(peak, rss_mb(pid))
    still_open = opened
    async with session.post(release_url) as response:
        await response.read()
    await asyncio.gather(*tasks)
    after = rss_mb(pid)
    if failures:
        print(f"    {len(failures)} idle streams failed, first: {failures[0]}", file=sys.stderr)
    return {
        "before": before,
        "peak": peak,
        "after": after,
        "opened": float(still_open),
        "open_s": open_s,
        "failed": float(len(failures)),
    }
