"""What does `modelport serve` add on top of a direct call, and how does it compare with LiteLLM?

Run (from the repository root; LiteLLM and its proxy come from the `bench` extra):

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -e ".[bench]" matplotlib py-spy
    .venv-bench/bin/python bench/gateway.py                # full run, about 5 minutes
    .venv-bench/bin/python bench/gateway.py --quick        # smoke run, about 1.5 minutes

Options: `--commit REV` measures modelport as committed at REV (a `git archive` export)
instead of the working tree; `--profile` adds a py-spy look at the gateway under streaming
load (needs py-spy); `--uvloop` is a what-if with modelport on uvloop (prints only);
`--no-write` prints only. matplotlib draws the chart; without it there is no chart.
Wall-clock numbers move with whatever else runs on the machine: the report says how much
CPU other processes took meanwhile; the server CPU per request hardly moves with it.

One run starts three servers on 127.0.0.1, each in its own process group:

- a fake upstream (this file, `--fake-upstream`): aiohttp, answers at once, OpenAI
  chat-completions and Anthropic messages, whole or streamed as exactly 100 content
  chunks (OpenAI: then a finish chunk, a usage chunk and [DONE]; Anthropic: 100 text
  deltas between the usual start and stop events);
- `modelport serve` (one process, ledger off, log level warning, no discovery) with three
  backends on the fake: `vllm` (speaks both formats: passthrough), `localai` (OpenAI only:
  an Anthropic client is transcoded) and `anthropic` (Anthropic only: an OpenAI client is
  transcoded);
- LiteLLM's proxy (`litellm --num_workers 1`) with `openai/` models on the fake, asked in
  the OpenAI format (/v1/chat/completions) and the Anthropic one (/v1/messages).

It measures, against each, sequential latency (p50/p99; for streams time to first byte and
to last byte) and throughput at 64 concurrent requests, whole and streamed; then the RSS
of the modelport process holding 1,000 idle streams open. It prints the table and the
ratios the product is judged by, and writes bench/results/gateway.md and gateway.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
CHUNKS = 100
CONCURRENCY = 64
IDLE_STREAMS = 1000

# Model names on the fake; the modelport backends are restricted to one each.
PASS_MODEL = "bench-pass"  # vllm backend: passthrough for both formats
TRANS_MODEL = "bench-trans"  # localai backend: OpenAI only
ANTH_MODEL = "bench-anth"  # anthropic backend: Anthropic only
IDLE_MODEL = "bench-idle"  # streams one chunk, then waits for /release (at most IDLE_CAP_S)
IDLE_TRANS_MODEL = "bench-idle-trans"
FAKE_MODELS = (PASS_MODEL, TRANS_MODEL, ANTH_MODEL, IDLE_MODEL, IDLE_TRANS_MODEL)
IDLE_CAP_S = 30.0

UVLOOP_SERVE = (
    "import asyncio, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy()); "
    "from modelport.cli import main; main()"
)

TOKENS = [f" tok{i}" for i in range(CHUNKS)]
TEXT = "".join(TOKENS)


# -- the fake upstream ------------------------------------------------------------------


def _sse(obj: dict[str, Any], event: str | None = None) -> bytes:
    data = json.dumps(obj, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


def openai_frames(model: str) -> list[bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": model}
    frames = []
    for i, token in enumerate(TOKENS):
        delta = {"role": "assistant", "content": token} if i == 0 else {"content": token}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        frames.append(_sse({**base, "choices": [choice]}))
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    frames.append(_sse({**base, "choices": [finish]}))
    usage = {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 12 + CHUNKS}
    frames.append(_sse({**base, "choices": [], "usage": usage}))
    frames.append(b"data: [DONE]\n\n")
    return frames


def openai_whole(model: str) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 12 + CHUNKS},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def anthropic_frames(model: str) -> list[bytes]:
    def ev(obj: dict[str, Any]) -> bytes:
        return _sse(obj, event=obj["type"])

    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": model,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 0},
    }
    frames = [
        ev({"type": "message_start", "message": message}),
        ev(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
    ]
    for token in TOKENS:
        delta = {"type": "text_delta", "text": token}
        frames.append(ev({"type": "content_block_delta", "index": 0, "delta": delta}))
    frames.append(ev({"type": "content_block_stop", "index": 0}))
    frames.append(
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": CHUNKS},
            }
        )
    )
    frames.append(ev({"type": "message_stop"}))
    return frames


def anthropic_whole(model: str) -> bytes:
    body = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": CHUNKS},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def run_fake_upstream() -> None:
    """Serve the fake on a free port; print the port on stdout; run until killed."""
    from aiohttp import web

    whole: dict[tuple[str, str], bytes] = {}
    frames: dict[tuple[str, str], list[bytes]] = {}
    builders = {
        "openai": (openai_whole, openai_frames),
        "anthropic": (anthropic_whole, anthropic_frames),
    }
    state = {"release": asyncio.Event()}

    def cached(fmt: str, model: str) -> tuple[bytes, list[bytes]]:
        key = (fmt, model)
        if key not in whole:
            build_whole, build_frames = builders[fmt]
            whole[key], frames[key] = build_whole(model), build_frames(model)
        return whole[key], frames[key]

    async def answer(request: web.Request, fmt: str) -> web.StreamResponse:
        payload = json.loads(await request.read())
        model = str(payload.get("model", ""))
        body, stream_frames = cached(fmt, model)
        if payload.get("stream") is not True:
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        rest = stream_frames
        if "idle" in model:
            await response.write(stream_frames[0])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state["release"].wait(), IDLE_CAP_S)
            rest = stream_frames[1:]
        for frame in rest:
            await response.write(frame)
        await response.write_eof()
        return response

    async def chat(request: web.Request) -> web.StreamResponse:
        return await answer(request, "openai")

    async def messages(request: web.Request) -> web.StreamResponse:
        return await answer(request, "anthropic")

    async def models(request: web.Request) -> web.StreamResponse:
        data = [
            {"id": m, "object": "model", "owned_by": "bench", "max_model_len": 4096}
            for m in FAKE_MODELS
        ]
        return web.json_response({"object": "list", "data": data, "has_more": False})

    async def ok(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def release(request: web.Request) -> web.StreamResponse:
        state["release"].set()
        state["release"] = asyncio.Event()
        return web.json_response({"released": True})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_post("/v1/messages", messages)
        app.router.add_get("/v1/models", models)
        app.router.add_get("/health", ok)
        app.router.add_get("/readyz", ok)
        app.router.add_post("/release", release)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0, backlog=4096)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# -- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Processes:
    """Children, each in its own process group, all stopped on the way out."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            _signal_group(proc.popen, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in reversed(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(proc.popen, signal.SIGKILL)  # stragglers in the group too
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)
        self.procs.clear()


def _signal_group(popen: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)  # start_new_session: the group id is the child's pid


def start_fake(procs: Processes) -> tuple[Proc, int]:
    proc = procs.start("fake", [sys.executable, str(Path(__file__).resolve()), "--fake-upstream"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = proc.log.read_text().strip()
        if text.splitlines() and text.splitlines()[0].isdigit():
            return proc, int(text.splitlines()[0])
        if proc.popen.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"the fake upstream did not start:\n{proc.tail()}")


def modelport_config(fake: str, port: int) -> str:
    def backend(kind: str, name: str, models: list[str]) -> str:
        listed = ", ".join(f'"{m}"' for m in models)
        return (
            f'[[backends]]\nkind = "{kind}"\nname = "{name}"\nurl = "{fake}"\n'
            f"models = [{listed}]\nmax_concurrent = 4096\nmax_queue = 4096\n"
        )

    return "\n".join(
        [
            "[server]",
            f'host = "{HOST}"',
            f"port = {port}",
            "api_keys_env = []",
            'ledger = "off"',
            'log_level = "warning"',
            "",
            "[discovery]",
            "enabled = false",
            "",
            backend("vllm", "pass", [PASS_MODEL, IDLE_MODEL]),
            backend("localai", "trans", [TRANS_MODEL, IDLE_TRANS_MODEL]),
            backend("anthropic", "anth", [ANTH_MODEL]),
        ]
    )


def litellm_config(fake: str) -> str:
    entries = []
    for model in (PASS_MODEL,):
        entries.append(
            f"  - model_name: {model}\n"
            "    litellm_params:\n"
            f"      model: openai/{model}\n"
            f"      api_base: {fake}/v1\n"
            "      api_key: sk-bench\n"
        )
    return "model_list:\n" + "".join(entries)


# -- the client --------------------------------------------------------------------------


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
        messages = [{"role": "user", "content": "Say a hundred tokens."}]
        body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": 256}
        if stream:
            body["stream"] = True
        return json.dumps(body).encode()


def endpoint(base: str, fmt: str) -> str:
    return base + ("/v1/messages" if fmt == "anthropic" else "/v1/chat/completions")


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
        async for chunk in response.content.iter_any():
            if not first:
                first = time.perf_counter()
            tail = (tail + chunk)[-64:]
        done = time.perf_counter()
    end = b"data: [DONE]" if target.fmt == "openai" else b"message_stop"
    if end not in tail:
        raise RequestFailed(f"{target.label}: stream ended without {end!r}: {tail!r}")
    return first - started, done - started


async def check_answer(session: Any, target: Target, stream: bool) -> str:
    """One request read in full and decoded: the text must be the fake's 100 tokens."""
    async with session.post(target.url, data=target.body(stream), headers=target.headers) as r:
        raw = await r.read()
        if r.status != 200:
            raise RequestFailed(f"{target.label}: HTTP {r.status}: {raw[:300]!r}")
    if not stream:
        obj = json.loads(raw)
        if target.fmt == "openai":
            text = obj["choices"][0]["message"]["content"]
        else:
            text = "".join(b.get("text", "") for b in obj["content"])
        pieces = 1
    else:
        texts = []
        for line in raw.decode().splitlines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            obj = json.loads(line[6:])
            if target.fmt == "openai":
                for choice in obj.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        texts.append(piece)
            elif obj.get("type") == "content_block_delta":
                piece = obj["delta"].get("text")
                if piece:
                    texts.append(piece)
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


async def throughput(
    session: Any, target: Target, stream: bool, seconds: float, cap: int
) -> tuple[float, int, float]:
    """Requests per second with CONCURRENCY workers, for `seconds` or `cap` requests, and the
    server's CPU time per request in microseconds (user + system, whole process group)."""
    body = target.body(stream)
    done = 0
    errors = 0

    async def warm() -> None:
        await one(session, target, stream, body)

    await asyncio.gather(*(warm() for _ in range(CONCURRENCY)))
    cpu_before = group_cpu(target.server)
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal done, errors
        while done + errors < cap and time.perf_counter() < deadline:
            try:
                await one(session, target, stream, body)
                done += 1
            except Exception as exc:  # RequestFailed, aiohttp.ClientError, OSError, timeouts
                errors += 1
                if errors <= 3:
                    print(f"    error: {type(exc).__name__}: {exc}", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    cpu_us = (group_cpu(target.server) - cpu_before) / max(done, 1) * 1e6
    return done / elapsed, errors, cpu_us


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


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (steal included) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


@dataclass(frozen=True)
class Plan:
    warmup: int
    seq_n: int
    rounds: int
    seconds: float
    cap: int


async def measure_all(
    session: Any, targets: list[Target], plan: Plan
) -> list[tuple[Target, Measure]]:
    """Latency in interleaved rounds (a slow drift of the machine hits every target alike),
    then throughput target by target."""
    rows = [(target, Measure()) for target in targets]
    for target, m in rows:
        m.pieces = await check_answer(session, target, True)
        await check_answer(session, target, False)
    samples: dict[str, dict[str, list[float]]] = {
        t.key: {"whole": [], "first": [], "last": []} for t in targets
    }
    per_round = max(1, plan.seq_n // plan.rounds)
    for round_no in range(plan.rounds):
        print(f"  latency, round {round_no + 1} of {plan.rounds} ...", file=sys.stderr, flush=True)
        warmup = plan.warmup if round_no == 0 else 0
        for target in targets:
            got = samples[target.key]
            _, lasts = await sequential(session, target, False, warmup, per_round)
            got["whole"] += lasts
            firsts, lasts = await sequential(session, target, True, warmup, per_round)
            got["first"] += firsts
            got["last"] += lasts
    for target, m in rows:
        got = samples[target.key]
        m.seq_p50, m.seq_p99 = pct(got["whole"], 50), pct(got["whole"], 99)
        m.ttft_p50, m.ttft_p99 = pct(got["first"], 50), pct(got["first"], 99)
        m.ttlb_p50, m.ttlb_p99 = pct(got["last"], 50), pct(got["last"], 99)
    for target, m in rows:
        print(f"  throughput, {target.key} ...", file=sys.stderr, flush=True)
        m.rps, e1, m.cpu_us = await throughput(session, target, False, plan.seconds, plan.cap)
        m.stream_rps, e2, m.stream_cpu_us = await throughput(
            session, target, True, plan.seconds, plan.cap
        )
        m.errors = e1 + e2
        print(
            f"    whole p50 {m.seq_p50:.2f} ms, stream TTLB p50 {m.ttlb_p50:.2f} ms, "
            f"{m.rps:,.0f} / {m.stream_rps:,.0f} req/s, {m.cpu_us:,.0f} / "
            f"{m.stream_cpu_us:,.0f} us CPU per request ({m.pieces})",
            file=sys.stderr,
            flush=True,
        )
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


# -- profiling -------------------------------------------------------------------------


def py_spy() -> str | None:
    exe = Path(sys.executable).parent / "py-spy"
    return str(exe) if exe.exists() else None


def start_profile(
    procs: Processes, pid: int, seconds: float, out: Path
) -> tuple[Proc, Path] | None:
    exe = py_spy()
    if exe is None:
        return None
    argv = [exe, "record", "--pid", str(pid), "--duration", str(round(seconds)), "--rate", "250"]
    argv += ["--format", "raw", "--output", str(out), "--nonblocking"]
    return procs.start(f"py-spy-{out.stem}", argv), out


def top_functions(raw: Path, limit: int = 18) -> list[tuple[str, float, float]]:
    """py-spy raw (collapsed) stacks -> (function, self %, inclusive %)."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    if not total:
        return []
    rows = sorted(own.items(), key=lambda kv: -kv[1])[:limit]
    return [(name, 100 * n / total, 100 * inclusive[name] / total) for name, n in rows]


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    parts = Path(path).parts
    if "modelport" in parts:
        short = "/".join(parts[parts.index("modelport") :])
    elif "site-packages" in parts:
        short = "/".join(parts[parts.index("site-packages") + 1 :])
    else:
        short = Path(path).name
    return f"{name} ({short})"


# -- report ----------------------------------------------------------------------------


def fmt_ms(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"


def fmt_rps(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"


def table(rows: list[tuple[Target, Measure]]) -> list[str]:
    head = (
        "| target | client -> upstream | whole p50 ms | whole p99 ms | stream TTFB p50 ms "
        "| stream TTLB p50 ms | stream TTLB p99 ms | whole req/s @64 | stream req/s @64 "
        "| server CPU us/req, whole | server CPU us/req, stream | errors |"
    )
    lines = [head, "|" + "---|" * 12]
    for target, m in rows:
        lines.append(
            f"| {target.label} | {target.key} | {fmt_ms(m.seq_p50)} | {fmt_ms(m.seq_p99)} "
            f"| {fmt_ms(m.ttft_p50)} | {fmt_ms(m.ttlb_p50)} | {fmt_ms(m.ttlb_p99)} "
            f"| {fmt_rps(m.rps)} | {fmt_rps(m.stream_rps)} | {fmt_rps(m.cpu_us)} "
            f"| {fmt_rps(m.stream_cpu_us)} | {m.errors} |"
        )
    return lines


@dataclass
class Verdicts:
    lines: list[str] = field(default_factory=list)
    bars: dict[str, Any] = field(default_factory=dict)

    def add(self, text: str) -> None:
        self.lines.append(text)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def ratios(results: dict[str, Measure], rss: dict[str, dict[str, float]]) -> Verdicts:
    v = Verdicts()
    d_oa, d_an = results["direct-openai"], results["direct-anthropic"]
    mp, mp_an = results["mp-pass-openai"], results["mp-pass-anthropic"]
    tr_ao, tr_oa = results["mp-trans-anth>oai"], results["mp-trans-oai>anth"]
    ll, ll_an = results["litellm-openai"], results["litellm-anth>oai"]

    def added(m: Measure, base: Measure) -> tuple[float, float]:
        return m.seq_p50 - base.seq_p50, m.ttlb_p50 - base.ttlb_p50

    mp_whole, mp_stream = added(mp, d_oa)
    ll_whole, ll_stream = added(ll, d_oa)
    tr_whole, tr_stream = added(tr_ao, d_oa)  # the gateway calls the fake's OpenAI endpoint
    tro_whole, tro_stream = added(tr_oa, d_an)  # ... and here its Anthropic endpoint
    lla_whole, lla_stream = added(ll_an, d_oa)
    mpa_whole, mpa_stream = added(mp_an, d_an)

    v.add("Added p50 latency over a direct call to the same upstream endpoint (ms):")
    v.add("")
    v.add("| path | whole | stream (last byte) |")
    v.add("|---|---|---|")
    for name, whole, stream in (
        ("modelport passthrough, OpenAI client -> vllm", mp_whole, mp_stream),
        ("modelport passthrough, Anthropic client -> vllm", mpa_whole, mpa_stream),
        ("modelport transcoding, Anthropic client -> localai (OpenAI)", tr_whole, tr_stream),
        ("modelport transcoding, OpenAI client -> anthropic", tro_whole, tro_stream),
        ("LiteLLM, OpenAI client -> openai/", ll_whole, ll_stream),
        ("LiteLLM /v1/messages, Anthropic client -> openai/", lla_whole, lla_stream),
    ):
        v.add(f"| {name} | {whole:.3f} | {stream:.3f} |")
    v.add("")

    ratio_whole = mp_whole / ll_whole if ll_whole > 0 else float("nan")
    ratio_stream = mp_stream / ll_stream if ll_stream > 0 else float("nan")
    v.add("Goals:")
    v.add("")
    v.add(
        f"- added p50 latency, modelport / LiteLLM: whole {ratio_whole:.3f}, "
        f"stream {ratio_stream:.3f} (goal <= 0.1): "
        f"{verdict(ratio_whole <= 0.1 and ratio_stream <= 0.1)}"
    )
    v.add(
        f"- added p50 latency through modelport (passthrough, whole answer): {mp_whole:.3f} ms "
        f"(goal < 0.5 ms): {verdict(mp_whole < 0.5)}; streamed 100 chunks: {mp_stream:.3f} ms"
    )
    t_whole = mp.rps / ll.rps
    t_stream = mp.stream_rps / ll.stream_rps
    t_an_whole = tr_ao.rps / ll_an.rps
    t_an_stream = tr_ao.stream_rps / ll_an.stream_rps
    v.add(
        f"- throughput @64, modelport / LiteLLM: OpenAI whole {t_whole:.1f}x, stream "
        f"{t_stream:.1f}x; Anthropic client (both transcode) whole {t_an_whole:.1f}x, stream "
        f"{t_an_stream:.1f}x (goal >= 5x): "
        f"{verdict(min(t_whole, t_stream, t_an_whole, t_an_stream) >= 5)}"
    )
    v.add(
        f"- server CPU per request, LiteLLM / modelport (capacity per core, insensitive to "
        f"other load): OpenAI whole {ll.cpu_us / mp.cpu_us:.1f}x, stream "
        f"{ll.stream_cpu_us / mp.stream_cpu_us:.1f}x; Anthropic client whole "
        f"{ll_an.cpu_us / tr_ao.cpu_us:.1f}x, "
        f"stream {ll_an.stream_cpu_us / tr_ao.stream_cpu_us:.1f}x"
    )
    cost = [
        ("whole req/s", mp.rps / tr_ao.rps, mp.rps / tr_oa.rps),
        ("stream req/s", mp.stream_rps / tr_ao.stream_rps, mp.stream_rps / tr_oa.stream_rps),
        ("whole p50", tr_ao.seq_p50 / mp.seq_p50, tr_oa.seq_p50 / mp.seq_p50),
        ("stream TTLB p50", tr_ao.ttlb_p50 / mp.ttlb_p50, tr_oa.ttlb_p50 / mp.ttlb_p50),
    ]
    cost += [
        ("server CPU whole", tr_ao.cpu_us / mp.cpu_us, tr_oa.cpu_us / mp.cpu_us),
        (
            "server CPU stream",
            tr_ao.stream_cpu_us / mp.stream_cpu_us,
            tr_oa.stream_cpu_us / mp.stream_cpu_us,
        ),
    ]
    worst = max(max(a, b) for _, a, b in cost)
    parts = ", ".join(f"{name} {a:.2f}x / {b:.2f}x" for name, a, b in cost)
    v.add(
        f"- transcoding cost vs passthrough (Anthropic->OpenAI / OpenAI->Anthropic; >1 = "
        f"slower): {parts} (goal <= 1.5x): {verdict(worst <= 1.5)}"
    )
    if rss:
        peak = max(r["peak"] for r in rss.values())
        detail = "; ".join(
            f"{name}: {r['before']:.0f} MB before, {r['peak']:.0f} MB with "
            f"{r['opened']:.0f} open (opened in {r['open_s']:.1f} s), {r['after']:.0f} MB after"
            for name, r in rss.items()
        )
        v.add(
            f"- RSS of modelport with {IDLE_STREAMS} idle streams: peak {peak:.0f} MB "
            f"(goal < 200 MB): {verdict(peak < 200)} ({detail})"
        )
    v.bars = {
        "added": {
            "modelport pass": (mp_whole, mp_stream),
            "modelport transcode A>O": (tr_whole, tr_stream),
            "LiteLLM": (ll_whole, ll_stream),
            "LiteLLM /v1/messages": (lla_whole, lla_stream),
        },
        "rps": {
            "direct": (d_oa.rps, d_oa.stream_rps),
            "modelport pass": (mp.rps, mp.stream_rps),
            "modelport transcode A>O": (tr_ao.rps, tr_ao.stream_rps),
            "LiteLLM": (ll.rps, ll.stream_rps),
            "LiteLLM /v1/messages": (ll_an.rps, ll_an.stream_rps),
        },
    }
    return v


def chart(bars: dict[str, Any], path: Path, subtitle: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for ax, key, title, unit in (
        (left, "added", "Added p50 latency over a direct call", "ms (log)"),
        (right, "rps", "Throughput at 64 concurrent requests", "requests/s (log)"),
    ):
        names = list(bars[key])
        width = 0.38
        xs = range(len(names))
        whole = [max(bars[key][n][0], 1e-3) for n in names]
        stream = [max(bars[key][n][1], 1e-3) for n in names]
        b1 = ax.bar([x - width / 2 for x in xs], whole, width, label="whole answer")
        b2 = ax.bar([x + width / 2 for x in xs], stream, width, label="stream, 100 chunks")
        ax.bar_label(b1, labels=[_short_number(x) for x in whole], fontsize=8)
        ax.bar_label(b2, labels=[_short_number(x) for x in stream], fontsize=8)
        ax.set_yscale("log")
        ax.set_xticks(list(xs), names, rotation=15, fontsize=8)
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
    fig.suptitle(subtitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def short_commit(rev: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def export_commit(rev: str, into: Path) -> Path:
    """`git archive` of the modelport package at `rev` into `into`; the repo is not touched."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", rev, "modelport"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    found = subprocess.run(
        [sys.executable, "-c", "import modelport; print(modelport.__file__)"],
        env={**os.environ, "PYTHONPATH": str(into)},
        cwd=into,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not found.startswith(str(into)):
        raise RuntimeError(f"the export of {rev} is shadowed: modelport loads from {found}")
    return into


def _short_number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def machine(commit_arg: str | None) -> dict[str, str]:
    if commit_arg:
        commit = commit_arg
        dirty = ""
    else:
        commit = short_commit("HEAD")
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "modelport"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    litellm_version = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "modelport": commit
        + (" (git archive of that commit)" if commit_arg else "")
        + (" (working tree: modelport/ has uncommitted changes)" if dirty else ""),
        "litellm": litellm_version or "?",
    }


# -- the run ---------------------------------------------------------------------------


@contextlib.contextmanager
def terminated_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop every child."""

    def raise_exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_ready(url: str, proc: Proc, seconds: float, *, expect: Callable[[bytes], bool]) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and expect(response.read()):
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{proc.name} not ready at {url} after {seconds:g}s:\n{proc.tail()}")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 16384 if hard == resource.RLIM_INFINITY else min(hard, 16384)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def run_client(
    targets: list[Target],
    plan: Plan,
    idle: list[tuple[str, Target]],
    release_url: str,
    mp_pid: int,
    hold_s: float,
    profile: Callable[[str], tuple[Proc, Path] | None] | None,
    servers: list[int],
) -> tuple[list[tuple[Target, Measure]], dict[str, dict[str, float]], dict[str, Path], float]:
    """Measure every target, profile if asked, then the idle streams. The last value is the
    CPU (in cores, on average) that processes other than this benchmark's used meanwhile."""
    import aiohttp

    def ours() -> float:
        own = os.times()
        return own.user + own.system + sum(group_cpu(pgid) for pgid in servers)

    connector = aiohttp.TCPConnector(limit=IDLE_STREAMS + CONCURRENCY + 16, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=120)
    rss: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        busy, mine, started = machine_busy(), ours(), time.perf_counter()
        rows = await measure_all(session, targets, plan)
        elapsed = time.perf_counter() - started
        others = max(0.0, (machine_busy() - busy) - (ours() - mine)) / elapsed
        profiles: dict[str, Path] = {}
        if profile is not None:
            for target in targets:
                if target.key in ("mp-pass-openai", "mp-trans-anth>oai"):
                    print(f"  profiling {target.key} ...", file=sys.stderr, flush=True)
                    started = profile(target.key)
                    if started is None:
                        continue
                    spy, raw = started
                    await asyncio.sleep(1.0)  # py-spy attaches
                    await throughput(session, target, True, plan.seconds, plan.cap)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        await asyncio.to_thread(spy.popen.wait, 60)
                    if raw.exists():
                        profiles[target.key] = raw
                    else:
                        print(f"    py-spy wrote nothing:\n{spy.tail()}", file=sys.stderr)
        for name, target in idle:
            print(f"  {IDLE_STREAMS} idle streams, {name} ...", file=sys.stderr, flush=True)
            rss[name] = await idle_streams(
                session, target, release_url, mp_pid, IDLE_STREAMS, hold_s
            )
    return rows, rss, profiles, others


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also record modelport with py-spy while it is under load and list hot functions",
    )
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="what-if: run modelport serve on uvloop (LiteLLM's uvicorn uses it already); "
        "prints only",
    )
    parser.add_argument(
        "--commit",
        metavar="REV",
        help="benchmark modelport as committed at REV (a git archive export) instead of the "
        "working tree the venv's editable install points at",
    )
    parser.add_argument("--fake-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only; keep results/")
    args = parser.parse_args()
    if args.fake_upstream:
        run_fake_upstream()
        return 0

    plan = Plan(warmup=50, seq_n=300, rounds=3, seconds=10.0, cap=20000)
    hold_s = 8.0
    if args.quick:
        plan = Plan(warmup=10, seq_n=50, rounds=1, seconds=2.0, cap=2000)
        hold_s = 2.0
    # Resolved once: HEAD may move while the benchmark runs.
    commit = short_commit(args.commit) if args.commit else None
    raise_fd_limit()
    load_before = Path("/proc/loadavg").read_text().split()[0]
    if float(load_before) > 0.5:
        print(
            f"warning: the machine is busy (load average {load_before}): numbers will be noisy",
            file=sys.stderr,
        )
    env = dict(os.environ)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no fetch of the price list at start
    env.setdefault("LITELLM_LOG", "ERROR")
    # No client keys on either gateway (modelport: api_keys_env = []), the like-for-like
    # setting; LiteLLM refuses to start keyless unless told so.
    env["LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY"] = "true"
    # /v1/messages on an openai/ model goes to the upstream's Responses API by default; the
    # fake (like vLLM, LocalAI, ...) has chat completions, which is also what modelport calls.
    env["LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES"] = "True"
    env["PYTHONUNBUFFERED"] = "1"

    with tempfile.TemporaryDirectory(prefix="modelport-bench-") as tmp, terminated_on_sigterm():
        work = Path(tmp)
        procs = Processes(work)
        try:
            print("starting the fake upstream, modelport and LiteLLM ...", file=sys.stderr)
            fake_proc, fake_port = start_fake(procs)
            fake = f"http://{HOST}:{fake_port}"

            mp_port = free_port()
            (work / "modelport.toml").write_text(modelport_config(fake, mp_port))
            mp_cmd = [sys.executable, "-m", "modelport.cli", "serve"]
            if args.uvloop:  # a what-if: modelport itself runs on asyncio's own loop
                mp_cmd = [sys.executable, "-c", UVLOOP_SERVE, "serve"]
            mp_cmd += ["--config", str(work / "modelport.toml"), "--no-discovery"]
            mp_env = env
            if args.commit:
                mp_env = {**env, "PYTHONPATH": str(export_commit(commit, work / "src"))}
            mp = procs.start("modelport", mp_cmd, mp_env)
            mp_url = f"http://{HOST}:{mp_port}"

            ll_port = free_port()
            (work / "litellm.yaml").write_text(litellm_config(fake))
            litellm = str(Path(sys.executable).parent / "litellm")
            ll_cmd = [litellm, "--config", str(work / "litellm.yaml")]
            ll_cmd += ["--host", HOST, "--port", str(ll_port), "--num_workers", "1"]
            ll = procs.start("litellm", ll_cmd, env)
            ll_url = f"http://{HOST}:{ll_port}"

            def all_ready(body: bytes) -> bool:
                backends = json.loads(body).get("backends", [])
                return len(backends) == 3 and all(b["ready"] for b in backends)

            wait_ready(mp_url + "/ready", mp, 60, expect=all_ready)
            wait_ready(ll_url + "/health/liveliness", ll, 180, expect=lambda b: True)

            def target(key: str, label: str, base: str, fmt: str, model: str) -> Target:
                server = {fake: fake_proc.pid, mp_url: mp.pid, ll_url: ll.pid}[base]
                url = endpoint(base, fmt)
                return Target(key, label, url, fmt, model, headers_for(fmt), server)

            targets = [
                target("direct-openai", "direct", fake, "openai", PASS_MODEL),
                target("direct-anthropic", "direct", fake, "anthropic", PASS_MODEL),
                target("mp-pass-openai", "modelport", mp_url, "openai", PASS_MODEL),
                target("mp-pass-anthropic", "modelport", mp_url, "anthropic", PASS_MODEL),
                target("mp-trans-anth>oai", "modelport", mp_url, "anthropic", TRANS_MODEL),
                target("mp-trans-oai>anth", "modelport", mp_url, "openai", ANTH_MODEL),
                target("litellm-openai", "LiteLLM", ll_url, "openai", PASS_MODEL),
                target("litellm-anth>oai", "LiteLLM", ll_url, "anthropic", PASS_MODEL),
            ]
            idle = [
                ("passthrough", target("idle", "modelport", mp_url, "openai", IDLE_MODEL)),
                (
                    "transcoded",
                    target("idle", "modelport", mp_url, "anthropic", IDLE_TRANS_MODEL),
                ),
            ]
            profile_hook = None
            if args.profile and py_spy() is None:
                print("py-spy is not installed in this venv: no profile", file=sys.stderr)
            elif args.profile:

                def profile_hook(key: str) -> tuple[Proc, Path] | None:
                    out = work / f"{key.replace('>', '-')}.raw"
                    return start_profile(procs, mp.pid, plan.seconds + 1, out)

            print(f"measuring ({'quick' if args.quick else 'full'} run) ...", file=sys.stderr)
            servers = [fake_proc.pid, mp.pid, ll.pid]
            rows, rss, profiles, others = asyncio.run(
                run_client(
                    targets, plan, idle, fake + "/release", mp.pid, hold_s, profile_hook, servers
                )
            )
            results = {t.key: m for t, m in rows}
            v = ratios(results, rss)
            info = machine(commit)
            info["others"] = f"{others:.2f}"
            info["uvloop"] = "yes" if args.uvloop else ""
            info["load_before"] = load_before
            profile_lines: list[str] = []
            for key, raw in profiles.items():
                profile_lines += [
                    f"py-spy on the modelport process during {key}, streams at "
                    f"{CONCURRENCY} concurrent (self % = samples in that function itself):",
                    "",
                    "| function | self % | total % |",
                    "|---|---|---|",
                ]
                profile_lines += [
                    f"| `{name}` | {own:.1f} | {incl:.1f} |"
                    for name, own, incl in top_functions(raw)
                ]
                profile_lines.append("")
        finally:
            procs.stop_all()

    # The what-if run prints only: results/ holds the product as it ships.
    write = not (args.no_write or args.uvloop)
    report(rows, v, info, plan, args.quick, profile_lines, write=write)
    return 0


def report(
    rows: list[tuple[Target, Measure]],
    v: Verdicts,
    info: dict[str, str],
    plan: Plan,
    quick: bool,
    profile_lines: list[str],
    *,
    write: bool,
) -> None:
    how = (
        f"{plan.seq_n} sequential requests per target after {plan.warmup} warm-up for latency "
        f"(in {plan.rounds} interleaved rounds); "
        f"{CONCURRENCY} concurrent for {plan.seconds:g} s (at most {plan.cap} requests) for "
        "throughput; one aiohttp client session; everything on 127.0.0.1"
    )
    machine_line = (
        f"{info['date']}; {info['nproc']} CPUs ({info['cpu']}); Python {info['python']}; "
        f"modelport {info['modelport']}; LiteLLM {info['litellm']}; load average "
        f"{info['load_before']} at start; other processes used {info['others']} CPUs on "
        "average while the targets were measured"
        + ("; modelport on uvloop (--uvloop what-if)" if info.get("uvloop") else "")
        + ("; QUICK run (smoke test, not a measurement)" if quick else "")
    )
    lines = table(rows)
    print()
    print(machine_line)
    print(how)
    print()
    print("\n".join(lines))
    print()
    print("\n".join(v.lines))
    if profile_lines:
        print()
        print("\n".join(profile_lines))
    if not write:
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    subtitle = (
        f"modelport {info['modelport'].split()[0]} vs LiteLLM {info['litellm']}, fake upstream "
        f"answering at once, {info['nproc']} CPUs, {info['date']}"
    )
    charted = chart(v.bars, RESULTS / "gateway.png", subtitle)
    md = [
        "# Gateway benchmark: modelport serve vs LiteLLM proxy vs a direct call",
        "",
        f"Machine and run: {machine_line}.",
        "",
        f"Method: {how}. The upstream is a fake that answers at once (100 content chunks "
        "per stream), so every millisecond here is the client's, the gateway's or the fake's "
        "own CPU; on a machine this small the three processes share the cores.",
        "",
        "Command: `"
        + " ".join([".venv-bench/bin/python", "bench/gateway.py", *sys.argv[1:]])
        + "`",
        "",
        "Latency in ms (TTFB: first body byte of the stream; TTLB: its last byte), "
        "throughput in requests per second at 64 concurrent.",
        "",
        *lines,
        "",
        "Targets: `direct-*` is the client calling the fake itself; `mp-pass-*` is modelport "
        "relaying to its `vllm` backend (the client's format is the engine's); "
        "`mp-trans-anth>oai` is an Anthropic client on the `localai` backend (OpenAI only), "
        "`mp-trans-oai>anth` an OpenAI client on the `anthropic` backend; `litellm-openai` is "
        "LiteLLM's /v1/chat/completions on an `openai/` model, `litellm-anth>oai` its "
        "/v1/messages on the same model (LiteLLM transcodes).",
        "",
        "Setup, the same for both gateways where it can be: no client keys (LiteLLM started "
        "with LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true); one process each "
        "(modelport is single-process, LiteLLM `--num_workers 1`); modelport with the ledger "
        "off, log level warning, and `max_concurrent = 4096` per backend (the default 8 would "
        "queue at 64 concurrent and measure admission, not overhead); LiteLLM with "
        "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES=True (its /v1/messages would "
        "otherwise call the upstream's Responses API, which vLLM-like engines lack), "
        "LITELLM_LOCAL_MODEL_COST_MAP=True, LITELLM_LOG=ERROR, defaults otherwise. "
        "`server CPU` is the user + system CPU time of the server's process group per "
        "request during the 64-concurrent phase (the fake's, for the direct rows): it does "
        "not move with other load on the machine, wall-clock numbers do. An upstream that "
        "answers at once delivers many SSE frames per network read: modelport's passthrough "
        "writes once per read, its transcoder once per event (about 100 per stream), so the "
        "streaming gap between the two is wider here than behind a real engine, which sends "
        "a token per read.",
        "",
        *v.lines,
        "",
        *profile_lines,
    ]
    if charted:
        md += ["![added latency and throughput](gateway.png)", ""]
    (RESULTS / "gateway.md").write_text("\n".join(md).rstrip() + "\n")
    print(f"\nwrote {RESULTS / 'gateway.md'}" + (" and gateway.png" if charted else ""))


if __name__ == "__main__":
    sys.exit(main())
