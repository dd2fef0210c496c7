"""A stand-in llama-server binary: `python -m tests.fakes.llama_server --port N --alias A ...`.

It is a FakeEngine("llamacpp") on the port the managed backend chose, so the supervisor's
spawn, /health wait, crash and kill paths run against a real child process in the tests,
with no model and no build. llama-server's own flags are accepted and ignored; these are its:

    --fake-load-s S   answer 503 "loading" (on /health too) for S seconds after start
    --fake-delay-s S  wait S seconds before each content chunk (and S x chunks for a whole answer)
    --fake-term-s S   on SIGTERM, linger S seconds before exiting (a slow shutdown)
    --fake-log PATH   append "start PID" at startup and "stop PID" on SIGTERM

Like llama-server, /v1/embeddings answers 501 unless it was started with --embeddings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from aiohttp import web

from tests.fakes.catalog import llamacpp_without_embeddings
from tests.fakes.core import Reply
from tests.fakes.engine import FakeEngine


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--alias", default="fake.gguf")
    parser.add_argument("--ctx-size", type=int, default=4096)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--fake-load-s", type=float, default=0.3)
    parser.add_argument("--fake-delay-s", type=float, default=0.0)
    parser.add_argument("--fake-term-s", type=float, default=0.0)
    parser.add_argument("--fake-log", type=Path)
    parser.add_argument("--embeddings", "--embedding", action="store_true")
    options, _ = parser.parse_known_args()  # --model, --threads, ...: llama-server's, ignored
    return options


def _note(log: Path | None, what: str) -> None:
    if log is not None:
        with log.open("a") as out:
            out.write(f"{what} {os.getpid()}\n")


async def _finish_loading(fake: FakeEngine, after_s: float) -> None:
    await asyncio.sleep(after_s)
    fake.loading = False


async def main() -> None:
    options = _options()
    _note(options.fake_log, "start")
    fake = FakeEngine(
        "llamacpp",
        models=[options.alias],
        context_window=options.ctx_size // max(1, options.parallel),
        loading=options.fake_load_s > 0,
    )
    fake.default_reply = Reply(
        text="one two three four five six seven eight nine ten", delay_s=options.fake_delay_s
    )
    if not options.embeddings:
        llamacpp_without_embeddings(fake)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake._dispatch)  # FakeEngine's own router
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, options.host, options.port).start()
    loading = asyncio.create_task(_finish_loading(fake, options.fake_load_s))
    terminated = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)
    await terminated.wait()
    loading.cancel()
    _note(options.fake_log, "stop")
    await asyncio.sleep(options.fake_term_s)
    os._exit(0)  # like a real engine: open connections just drop


if __name__ == "__main__":
    asyncio.run(main())
