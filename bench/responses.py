"""Server CPU per request of the Responses dialect, in process (issue 9's speed rule).

    .venv/bin/python bench/responses.py [--requests 300] [--chunks 100]

One fake engine runs in a child process (tests/fakes: a vLLM fake, which serves chat
completions and /v1/responses, and a LocalAI fake, chat completions only). This process
runs the Service with no HTTP server in front (so no client HTTP cost is counted) and
drives it sequentially, measuring this process's CPU time (time.process_time) per request:

- chat completions relayed (vLLM): the baseline;
- Responses transcoded to chat completions (LocalAI);
- Responses relayed (vLLM);

each streamed (`--chunks` text chunks) and whole. The rule: Responses transcoded costs at
most 1.5x chat completions relayed. Prints a table; wall clock moves with machine load, CPU
per request much less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modelport.backends import connect  # noqa: E402
from modelport.router import Limits, Router  # noqa: E402
from modelport.service import Service  # noqa: E402
from modelport.types import WireFormat  # noqa: E402

_FAKE = """
import asyncio, sys
from tests.fakes import FakeEngine, Reply
async def main(kind, chunks):
    fake = FakeEngine(kind, models=["m"])
    fake.default_reply = Reply(text="x" * (4 * chunks), chunk_chars=4, usage=(20, chunks))
    await fake.start()
    fake.requests = _Drop()
    print(fake.url, flush=True)
    await asyncio.Event().wait()
class _Drop(list):
    def append(self, item): pass  # keep memory flat over thousands of requests
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def start_fake(kind: str, chunks: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _FAKE, kind, str(chunks)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


async def run_one(service: Service, fmt: WireFormat, body: bytes, stream: bool) -> None:
    reply = await service.chat(fmt, body)
    assert reply.status == 200, reply.body[:300]
    if stream:
        assert reply.chunks is not None
        async for _ in reply.chunks:
            pass
        await reply.chunks.aclose()


async def measure(
    service: Service, fmt: WireFormat, body: dict[str, object], n: int
) -> tuple[float, float]:
    """(CPU ms per request, wall ms per request) over `n` sequential requests."""
    raw = json.dumps(body).encode()
    stream = bool(body.get("stream"))
    for _ in range(max(5, n // 10)):
        await run_one(service, fmt, raw, stream)  # warm up: connections, imports
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await run_one(service, fmt, raw, stream)
    return (
        (time.process_time() - cpu) * 1000 / n,
        (time.perf_counter() - wall) * 1000 / n,
    )


async def main(n: int, chunks: int) -> None:
    vllm, vllm_url = start_fake("vllm", chunks)
    local, local_url = start_fake("localai", chunks)
    router = Router(refresh_s=3600)
    try:
        router.add(connect(f"vllm:{vllm_url}"), Limits(), name="vllm")
        router.add(connect(f"localai:{local_url}"), Limits(), name="localai")
        await router.refresh()
        service = Service(router)
        chat = {"messages": [{"role": "user", "content": "hi"}]}
        resp = {"input": "hi"}
        cases = [
            ("chat completions, relayed", WireFormat.OPENAI, "vllm/m", chat),
            ("responses, transcoded to chat", WireFormat.RESPONSES, "localai/m", resp),
            ("responses, relayed", WireFormat.RESPONSES, "vllm/m", resp),
        ]
        rows: dict[tuple[str, bool], float] = {}
        print(f"{n} sequential requests each, {chunks} chunks a stream; ms per request")
        print(f"{'case':34} {'mode':6} {'cpu':>7} {'wall':>7}")
        for stream in (True, False):
            for label, fmt, model, base in cases:
                body = {**base, "model": model, "stream": stream}
                cpu, wall = await measure(service, fmt, body, n)
                rows[(label, stream)] = cpu
                mode = "stream" if stream else "whole"
                print(f"{label:34} {mode:6} {cpu:7.3f} {wall:7.3f}")
        for stream in (True, False):
            base_cpu = rows[("chat completions, relayed", stream)]
            ratio = rows[("responses, transcoded to chat", stream)] / base_cpu
            mode = "stream" if stream else "whole"
            print(f"responses transcoded / chat relayed ({mode}): {ratio:.2f}x (rule: <= 1.5x)")
    finally:
        await router.aclose()
        for proc in (vllm, local):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--chunks", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.chunks))
