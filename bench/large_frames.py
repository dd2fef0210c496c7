"""One huge SSE frame from an engine, direct and through `modelport serve`, before and after.

    .venv/bin/python bench/large_frames.py [--before REV] [--sizes 4,16,64]

A fake OpenAI-compatible engine (this file, `--fake`, its own process) answers a streamed
chat with one content chunk of N MiB (N from the request's `max_tokens`), written in
64 KiB pieces, then the finish chunk and `[DONE]`. For each size the client (this process)
times the whole answer straight from the fake, then through a gateway from `--before`
(default: where this branch left main; a `git archive` export) and one from the working
tree, and polls each gateway's /health every 10 ms meanwhile: its worst latency is how long
the event loop stalled.
The old tree gets a config without the keys it does not know (max_frame_mb).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from servers import (
    HOST,
    ROOT,
    Processes,
    bench_env,
    export_commit,
    free_port,
    serve_argv,
    short_commit,
    wait_ready,
)

MiB = 1024 * 1024
PIECE = 64 * 1024
MODEL = "big"


# -- the fake engine ------------------------------------------------------------------


async def _chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    size = int(body.get("max_tokens") or 1) * MiB
    head = {"id": "chatcmpl-big", "object": "chat.completion.chunk", "created": 0, "model": MODEL}
    content = json.dumps({**head, "choices": [{"index": 0, "delta": {"content": "x" * size}}]})
    finish = json.dumps(
        {
            **head,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )
    frame = f"data: {content}\n\n".encode()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for start in range(0, len(frame), PIECE):
        await resp.write(frame[start : start + PIECE])
    await resp.write(f"data: {finish}\n\ndata: [DONE]\n\n".encode())
    await resp.write_eof()
    return resp


async def _models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})


def serve_fake(port: int) -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", lambda request: _models(request))
    web.run_app(app, host=HOST, port=port, access_log=None, print=None)


# -- the gateways ---------------------------------------------------------------------


def gateway_config(fake: str, port: int, project: Path) -> str:
    knows_caps = "max_frame_mb" in (project / "modelport/config/schema.py").read_text()
    caps = "max_frame_mb = 128\n" if knows_caps else ""
    return (
        f'[server]\nhost = "{HOST}"\nport = {port}\napi_keys_env = []\nledger = "off"\n'
        f'log_level = "warning"\n{caps}\n'
        f'[[backends]]\nkind = "vllm"\nname = "fake"\nurl = "{fake}"\n'
    )


def start_gateway(procs: Processes, name: str, fake: str, project: Path) -> str:
    port = free_port()
    config = procs.workdir / f"{name}.toml"
    config.write_text(gateway_config(fake, port, project))
    env = {**bench_env(), "PYTHONPATH": str(project)}
    argv = [*serve_argv(project), "--config", str(config), "--no-discovery"]
    proc = procs.start(name, argv, env)
    url = f"http://{HOST}:{port}"
    wait_ready(url + "/v1/models", proc, 60, expect=lambda body: MODEL.encode() in body)
    return url


# -- the client -----------------------------------------------------------------------


async def one_frame(session: aiohttp.ClientSession, url: str, mib: int) -> float:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "max_tokens": mib,
    }
    started = time.perf_counter()
    async with session.post(url + "/v1/chat/completions", json=body) as resp:
        data = await resp.read()
    took = time.perf_counter() - started
    if resp.status != 200 or data.count(b"x") < mib * MiB:
        raise RuntimeError(f"{url}: {resp.status} {data[:300]!r}")
    return took


async def with_health(session: aiohttp.ClientSession, url: str, mib: int) -> tuple[float, float]:
    """(seconds for the frame, worst /health latency meanwhile)."""
    frame = asyncio.create_task(one_frame(session, url, mib))
    worst = 0.0
    while not frame.done():
        started = time.perf_counter()
        async with session.get(url + "/health") as resp:
            await resp.read()
        worst = max(worst, time.perf_counter() - started)
        await asyncio.sleep(0.01)
    return await frame, worst


async def measure(fake: str, gateways: dict[str, str], sizes: list[int]) -> None:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await one_frame(session, fake, 1)  # warm up every path once
        for url in gateways.values():
            await one_frame(session, url, 1)
        print(f"{'frame':>6} {'direct':>9} " + " ".join(f"{n:>22}" for n in gateways))
        for mib in sizes:
            direct = await one_frame(session, fake, mib)
            cells = []
            for url in gateways.values():
                took, worst = await with_health(session, url, mib)
                cells.append(f"{took:7.2f} s /health {worst * 1000:5.0f} ms")
            print(f"{mib:>3} MiB {direct:7.2f} s " + " ".join(f"{c:>22}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--before", help="the commit to compare with (default: where this branch left main)"
    )
    parser.add_argument("--sizes", default="4,16,64", help="frame sizes in MiB")
    parser.add_argument("--fake", type=int, help=argparse.SUPPRESS)  # run the fake engine
    args = parser.parse_args()
    if args.fake:
        serve_fake(args.fake)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.before is None:
        args.before = subprocess.run(
            ["git", "merge-base", "main", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="large-frames-") as tmp:
        procs = Processes(Path(tmp))
        try:
            port = free_port()
            fake_proc = procs.start("fake", [sys.executable, __file__, "--fake", str(port)])
            fake = f"http://{HOST}:{port}"
            wait_ready(fake + "/v1/models", fake_proc, 30, expect=lambda body: True)
            before = export_commit(args.before, Path(tmp) / "before")
            gateways = {
                f"before ({short_commit(args.before)})": start_gateway(
                    procs, "before", fake, before
                ),
                "after (working tree)": start_gateway(procs, "after", fake, ROOT),
            }
            asyncio.run(measure(fake, gateways, sizes))
        finally:
            procs.stop_all()


if __name__ == "__main__":
    main()
