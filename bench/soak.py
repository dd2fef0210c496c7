"""The soak (issue 11): minutes of bounded concurrent streams through `modelport serve`.

`concurrency` clients stream without pause through the gateway to the fake upstream
(bench/fake_upstream.py, its `slow` models: 100 chunks, about a second a stream), cycling
through every client dialect: OpenAI chat (passthrough and transcoded), Anthropic Messages,
the Responses API, Ollama's /api/chat and legacy completions. A share of them hang up
mid-stream. Meanwhile the gateway process's RSS and open fds are sampled every second,
with the in-flight and queued gauges from /metrics. It prints RSS and fds at start, peak and
end with their slope, the gauges at the end (they must be back to zero), requests done,
disconnects and errors.

    .venv/bin/python bench/soak.py                 # 3 minutes, 50 streams, 20% hang up
    .venv/bin/python bench/soak.py --seconds 10    # a smoke

Exit status 1 when a request failed or a gauge did not come back to zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from fake_upstream import HOST, SLOW_MODEL, SLOW_TRANS_MODEL
from servers import (
    Proc,
    Processes,
    bench_env,
    free_port,
    raise_fd_limit,
    serve_argv,
    start_fake,
    terminated_on_sigterm,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent.parent
HI = [{"role": "user", "content": "hi"}]
# How each dialect says a stream failed (SSE error events, an OpenAI error frame, an Ollama line)
ERROR_MARKERS = (b"event: error", b"response.failed", b'data: {"error"', b'\n{"error"')


@dataclass(frozen=True)
class Route:
    """One client dialect: where it posts, its body, and the marker that ends a good stream."""

    name: str
    path: str
    body: dict[str, object]
    end: bytes


ROUTES = (
    Route("openai", "/v1/chat/completions", {"model": SLOW_MODEL, "messages": HI}, b"[DONE]"),
    Route(
        "openai-transcoded",
        "/v1/chat/completions",
        {"model": SLOW_TRANS_MODEL, "messages": HI},
        b"[DONE]",
    ),
    Route(
        "anthropic",
        "/v1/messages",
        {"model": SLOW_MODEL, "max_tokens": 200, "messages": HI},
        b"message_stop",
    ),
    Route(
        "responses",
        "/v1/responses",
        {"model": SLOW_TRANS_MODEL, "input": "hi"},
        b"response.completed",
    ),
    Route("ollama", "/api/chat", {"model": SLOW_MODEL, "messages": HI}, b'"done":true'),
    Route("completions", "/v1/completions", {"model": SLOW_MODEL, "prompt": "hi"}, b"[DONE]"),
)


def soak_config(fake: str, port: int) -> str:
    def backend(kind: str, name: str, model: str) -> str:
        return (
            f'[[backends]]\nkind = "{kind}"\nname = "{name}"\nurl = "{fake}"\n'
            f'models = ["{model}"]\nmax_concurrent = 64\nmax_queue = 256\n'
        )

    head = (
        f'[server]\nhost = "{HOST}"\nport = {port}\napi_keys_env = []\nledger = "off"\n'
        'log_level = "warning"\n\n[discovery]\nenabled = false\n\n'
    )
    return (
        head + backend("vllm", "pass", SLOW_MODEL) + backend("localai", "trans", SLOW_TRANS_MODEL)
    )


# -- the client ------------------------------------------------------------------------------


@dataclass
class Tally:
    done: dict[str, int] = field(default_factory=dict)
    hung_up: int = 0
    errors: list[str] = field(default_factory=list)


async def one_request(
    session: aiohttp.ClientSession, url: str, route: Route, hang_up: bool, tally: Tally
) -> None:
    body = {**route.body, "stream": True}
    headers = {"anthropic-version": "2023-06-01"} if route.name == "anthropic" else {}
    try:
        async with session.post(url + route.path, json=body, headers=headers) as resp:
            if resp.status != 200:
                tally.errors.append(f"{route.name}: {resp.status} {(await resp.read())[:200]!r}")
                return
            if hang_up:  # a few chunks, then the client goes away mid-stream
                for _ in range(random.randint(1, 20)):
                    if not await resp.content.readany():
                        break
                resp.close()
                tally.hung_up += 1
                return
            raw = await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.errors.append(f"{route.name}: {type(exc).__name__}: {exc}")
        return
    if route.end not in raw or any(marker in raw for marker in ERROR_MARKERS):
        found = [m for m in ERROR_MARKERS if m in raw]
        at = raw.find(found[0]) if found else -1
        why = f"the error event {raw[max(0, at - 100) : at + 200]!r}" if found else "no end marker"
        tally.errors.append(f"{route.name}: stream failed: {why}")
        return
    tally.done[route.name] = tally.done.get(route.name, 0) + 1


async def client(
    session: aiohttp.ClientSession,
    url: str,
    until: float,
    hang_up_share: float,
    n: int,
    tally: Tally,
) -> None:
    loop = asyncio.get_running_loop()
    i = n
    while loop.time() < until:
        route = ROUTES[i % len(ROUTES)]
        i += 1
        await one_request(session, url, route, random.random() < hang_up_share, tally)


# -- the sampler -----------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int
    in_flight: float
    queued: float


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def gauges(session: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    """Sums of modelport_in_flight and modelport_queued over every backend."""
    async with session.get(url + "/metrics") as resp:
        text = await resp.text()
    in_flight = queued = 0.0
    for line in text.splitlines():
        if line.startswith("modelport_in_flight{"):
            in_flight += float(line.rsplit(" ", 1)[1])
        elif line.startswith("modelport_queued{"):
            queued += float(line.rsplit(" ", 1)[1])
    return in_flight, queued


async def sample(session: aiohttp.ClientSession, url: str, pid: int, t0: float) -> Sample:
    in_flight, queued = await gauges(session, url)
    return Sample(time.monotonic() - t0, rss_kib(pid), open_fds(pid), in_flight, queued)


async def sampler(
    session: aiohttp.ClientSession,
    url: str,
    pid: int,
    t0: float,
    stop: asyncio.Event,
    out: list[Sample],
) -> None:
    while not stop.is_set():
        out.append(await sample(session, url, pid, t0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def slope_per_min(samples: list[Sample], attr: str) -> float:
    """Least-squares slope of `attr` over time, per minute (the first 10% left out: warm-up)."""
    rest = samples[len(samples) // 10 :]
    if len(rest) < 2:
        return 0.0
    xs = [s.t for s in rest]
    ys = [float(getattr(s, attr)) for s in rest]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return (
        0.0
        if den == 0
        else 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
    )


async def soak(
    url: str, pid: int, seconds: float, concurrency: int, hang_up_share: float, idle_s: float
) -> int:
    connector = aiohttp.TCPConnector(limit=concurrency + 8)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = time.monotonic()
        start = await sample(session, url, pid, t0)
        samples: list[Sample] = [start]
        stop = asyncio.Event()
        watcher = asyncio.create_task(sampler(session, url, pid, t0, stop, samples))
        tally = Tally()
        until = asyncio.get_running_loop().time() + seconds
        await asyncio.gather(
            *(client(session, url, until, hang_up_share, n, tally) for n in range(concurrency))
        )
        stop.set()
        await watcher
        ended = time.monotonic() - t0
    # The clients' connections closed: what the gateway still holds is its own.
    async with aiohttp.ClientSession(timeout=timeout) as session:
        end = await _settled(session, url, pid, t0)
        await asyncio.sleep(idle_s)  # idle keep-alive connections to the upstream time out
        idle = await sample(session, url, pid, t0)
    return report(
        samples,
        start,
        end,
        idle,
        tally,
        seconds=ended,
        concurrency=concurrency,
        share=hang_up_share,
    )


async def _settled(session: aiohttp.ClientSession, url: str, pid: int, t0: float) -> Sample:
    """The end sample, once the gauges read zero (up to 5 s after the last client)."""
    for _ in range(50):
        end = await sample(session, url, pid, t0)
        if end.in_flight == 0 and end.queued == 0:
            return end
        await asyncio.sleep(0.1)
    return end


def report(
    samples: list[Sample],
    start: Sample,
    end: Sample,
    idle: Sample,
    tally: Tally,
    *,
    seconds: float,
    concurrency: int,
    share: float,
) -> int:
    peak_rss = max(s.rss_kib for s in samples)
    peak_fds = max(s.fds for s in samples)
    done = sum(tally.done.values())
    print(
        f"soak: {seconds:.0f} s, {concurrency} concurrent streams, {share:.0%} hang up mid-stream"
    )
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"load average at the end: {load}, {os.cpu_count()} cores")
    print(
        f"RSS MiB   start {start.rss_kib / 1024:.1f}  peak {peak_rss / 1024:.1f}  "
        f"end {end.rss_kib / 1024:.1f}  "
        f"slope {slope_per_min(samples, 'rss_kib') / 1024:+.2f} MiB/min"
    )
    print(
        f"open fds  start {start.fds}  peak {peak_fds}  end {end.fds}  "
        f"slope {slope_per_min(samples, 'fds'):+.2f}/min"
    )
    print(f"after {idle.t - end.t:.0f} s idle: RSS {idle.rss_kib / 1024:.1f} MiB, {idle.fds} fds")
    print(f"gauges at the end: in_flight {end.in_flight:g}, queued {end.queued:g}")
    per_route = ", ".join(f"{k} {v}" for k, v in sorted(tally.done.items()))
    print(
        f"requests: {done} streamed to the end ({per_route}), {tally.hung_up} hung up, "
        f"{len(tally.errors)} errors"
    )
    for error in tally.errors[:10]:
        print(f"  error: {error}")
    ok = not tally.errors and end.in_flight == 0 and end.queued == 0
    return 0 if ok else 1


# -- the command line ----------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="how long (default 180)")
    parser.add_argument("--concurrency", type=int, default=50, help="streams at once (default 50)")
    parser.add_argument("--hang-up", type=float, default=0.2, help="share hanging up (default 0.2)")
    parser.add_argument(
        "--idle", type=float, default=35.0, help="seconds idle before the last sample (default 35)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    print(f"load average at start: {Path('/proc/loadavg').read_text().split()[0]}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="modelport-soak-") as tmp, terminated_on_sigterm():
        procs = Processes(Path(tmp))
        try:
            _fake_proc, fake = start_fake(procs)
            port = free_port()
            config = procs.workdir / "soak.toml"
            config.write_text(soak_config(fake, port))
            argv_ = [*serve_argv(ROOT), "--config", str(config), "--no-discovery"]
            gateway: Proc = procs.start("modelport", argv_, bench_env())
            url = f"http://{HOST}:{port}"
            wait_ready(url + "/ready", gateway, 60, expect=_all_ready)
            return asyncio.run(
                soak(url, gateway.pid, args.seconds, args.concurrency, args.hang_up, args.idle)
            )
        finally:
            procs.stop_all()


def _all_ready(body: bytes) -> bool:
    answer = json.loads(body)
    if "backends" not in answer:  # a public /ready that says only ready or not
        return bool(answer.get("status") == "ready")
    backends = answer["backends"]
    return len(backends) == 2 and all(b["ready"] for b in backends)


if __name__ == "__main__":
    sys.exit(main())
