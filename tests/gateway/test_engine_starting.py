"""Known models while their engine starts (issue 11, point 10).

A managed engine takes a while to become ready (loading: seconds; on a first run the
embedded engine's install and llama-server build: minutes). Its model is known before
then, from config or the bundled default: it is listed as not ready, a request waits for
it up to `server.start_wait_s`, and past that gets 503 (Anthropic: 529) with Retry-After and
what the start is doing, in the client's dialect, never 404 "not served here". A first-run
`serve` binds at once and answers /health while the install runs in the background.

The managed child is tests/fakes/llama_server.py, the llama-server stand-in, which answers
503 "Loading model" on every route, as llama-server does while it loads one, for
--fake-load-s seconds. The slow install is injected through the gateway's `engine` seam
(an `EngineSource`), the way `modelport.engine.plan_install` is called.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from modelport.config import parse_config
from modelport.engine import EngineInstallError, EnginePaths
from modelport.gateway.server import Gateway
from tests.gateway.helpers import HI, get, post
from tests.gateway_harness import make_config, until

if TYPE_CHECKING:
    from modelport.engine import Progress

ROOT = Path(__file__).resolve().parents[2]
TEXT = "one two three four five six seven eight nine ten"


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    """A llama-server binary that is the stand-in child."""
    wrapper = tmp_path / "llama-server"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m tests.fakes.llama_server "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def managed(stand_in: Path, tmp_path: Path, load_s: float) -> str:
    """A configured managed backend whose child loads for `load_s`; the router looks every
    0.1 s, so the listing follows the engine's state closely."""
    return (
        "[discovery]\nrefresh_s = 0.1\n"
        "[[backends]]\n"
        'kind = "managed"\nname = "local"\n'
        f'llama_server = "{stand_in}"\nmodel = "{tmp_path / "fake.gguf"}"\nalias = "fake"\n'
        f'args = ["--fake-load-s", "{load_s}"]\n'
    )


def chat(model: str = "fake") -> dict[str, Any]:
    return {"model": model, "messages": HI, "max_tokens": 16}


async def listed(url: str, model: str) -> dict[str, Any] | None:
    _, _, raw = await get(url, "/v1/models")
    return next((m for m in json.loads(raw)["data"] if m["id"] == model), None)


async def listed_not_ready(url: str, model: str, within: float = 10.0) -> None:
    for _ in range(int(within / 0.05)):
        entry = await listed(url, model)
        if entry is not None and entry["ready"] is False:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{model} never listed as not ready")


async def test_a_request_during_a_start_waits_for_it_and_is_answered(
    gateway: Any, stand_in: Path, tmp_path: Path
) -> None:
    gw, url = await gateway(managed(stand_in, tmp_path, load_s=1.5), server={"start_wait_s": 30})
    first = asyncio.create_task(post(url, "/v1/chat/completions", chat()))  # starts the engine
    await listed_not_ready(url, "fake")
    # Every listing knows the model while it starts, in its own shape.
    _, _, tags = await get(url, "/api/tags")
    assert [m["name"] for m in json.loads(tags)["models"]] == ["fake"]
    _, _, page = await get(url, "/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert [m["id"] for m in json.loads(page)["data"]] == ["fake"]
    status, _, raw = await post(url, "/v1/chat/completions", chat())  # arrives mid-start
    assert status == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == TEXT
    assert (await first)[0] == 200
    assert all(u.breaker.state == "closed" for u in gw.router.upstreams)


async def test_a_start_longer_than_the_bound_is_a_503_with_retry_after_and_the_reason(
    gateway: Any, stand_in: Path, tmp_path: Path
) -> None:
    gw, url = await gateway(managed(stand_in, tmp_path, load_s=30), server={"start_wait_s": 0.3})
    status, headers, raw = await post(url, "/v1/chat/completions", chat())  # starts it
    assert status == 503 and headers["Retry-After"] == "5"
    assert json.loads(raw)["error"]["message"] == "model 'fake' is starting: starting llama-server"
    await listed_not_ready(url, "fake")
    (local,) = gw.router.upstreams
    assert await until(lambda: local.health.last_error == "Loading model", within=10)  # it answers
    ollama = {"model": "fake", "messages": HI, "stream": False}
    anthropic = {"model": "fake", "messages": HI, "max_tokens": 16}
    answers = [
        await post(url, "/v1/chat/completions", chat()),
        await post(url, "/v1/responses", {"model": "fake", "input": "hi"}),
        await post(url, "/api/chat", ollama),
        await post(url, "/v1/messages", anthropic, headers={"anthropic-version": "2023-06-01"}),
    ]
    statuses = [status for status, _, _ in answers]
    assert statuses == [503, 503, 503, 529]  # 529 is Anthropic's "overloaded"
    for _, headers, raw in answers:
        assert headers["Retry-After"] == "5"
        assert "model 'fake' is starting: Loading model" in raw.decode(), raw
    assert json.loads(answers[2][2]) == {"error": "model 'fake' is starting: Loading model"}
    assert json.loads(answers[3][2])["error"]["type"] == "overloaded_error"
    # Waiting for a start is not a fault: the breaker stays closed for when it is ready.
    assert all(u.breaker.state == "closed" for u in gw.router.upstreams)


class SlowEngine:
    """An `EngineSource` whose install takes until `finish` is set: it reports the build at
    40% (the stages and phrasing of `modelport.engine`), then hands over the stand-in."""

    def __init__(self, stand_in: Path, model: Path) -> None:
        self.paths = EnginePaths(stand_in, model, "0" * 64, "built", "stand-in")
        self.finish = threading.Event()
        self.runs = 0
        self.progress: Progress | None = None
        self.cancel: threading.Event | None = None

    def installed(self) -> EnginePaths | None:
        return self.paths if self.finish.is_set() else None

    def plan(self, progress: Progress, cancel: threading.Event) -> SlowEngine:
        self.progress, self.cancel = progress, cancel
        return self

    def run(self) -> None:
        self.runs += 1
        assert self.progress is not None
        self.progress("download model", 1.0)
        self.progress("build llama-server", 0.4)
        for _ in range(300):
            if self.finish.wait(0.1):
                return
            if self.cancel is not None and self.cancel.is_set():
                raise EngineInstallError("the engine install was cancelled")
        raise AssertionError("never told to finish")


async def test_a_first_run_serve_binds_at_once_and_serves_once_installed(
    stand_in: Path, tmp_path: Path
) -> None:
    config = make_config("", server={"start_wait_s": 0.3})
    assert not config.backends and config.server.embedded
    engine = SlowEngine(stand_in, tmp_path / "gemma.gguf")
    said: list[str] = []
    gw = Gateway(config, env={}, say=said.append, engine=engine)
    began = time.monotonic()
    url = await gw.start()
    try:
        assert time.monotonic() - began < 5  # not the minutes of a build
        assert (await get(url, "/health"))[0] == 200
        reasons = []
        for _ in range(100):  # the install reports from its thread: a few ms to arrive
            status, _, raw = await get(url, "/ready")
            assert status == 503
            (embedded,) = json.loads(raw)["backends"]
            reasons.append(embedded["last_error"])
            if reasons[-1] == "building llama-server, 40%":
                break
            await asyncio.sleep(0.02)
        assert reasons[-1] == "building llama-server, 40%", reasons
        entry = await listed(url, "gemma-3-270m")
        assert entry is not None and entry["ready"] is False
        status, headers, raw = await post(url, "/v1/chat/completions", chat("gemma-3-270m"))
        assert status == 503 and headers["Retry-After"] == "5"
        reason = "model 'gemma-3-270m' is starting: building llama-server, 40%"
        assert json.loads(raw)["error"]["message"] == reason
        assert "  building llama-server, 40%" in said  # the console hears it too

        engine.finish.set()
        assert await until(lambda: gw.router.ready(), within=15)
        assert (await get(url, "/ready"))[0] == 200
        entry = await listed(url, "gemma-3-270m")
        assert entry is not None and entry["ready"] is True
        status, _, raw = await post(url, "/v1/chat/completions", chat("gemma-3-270m"))
        assert status == 200, raw
        assert engine.runs == 1
    finally:
        await gw.stop(grace_s=0)


async def test_stopping_mid_install_cancels_the_install_rather_than_wait_for_it(
    stand_in: Path, tmp_path: Path
) -> None:
    engine = SlowEngine(stand_in, tmp_path / "gemma.gguf")
    gw = Gateway(make_config(""), env={}, say=lambda _: None, engine=engine)
    await gw.start()
    assert await until(lambda: engine.runs == 1)
    began = time.monotonic()
    await gw.stop(grace_s=0)
    assert time.monotonic() - began < 5
    assert engine.cancel is not None and engine.cancel.is_set()


class BrokenEngine(SlowEngine):
    """An install that fails after the cheap checks passed (the build broke)."""

    def run(self) -> None:
        self.runs += 1
        raise EngineInstallError("cmake build failed (exit 2):\nerror: out of memory")


async def test_a_failed_install_is_said_to_requests_and_tried_again_by_the_next(
    stand_in: Path, tmp_path: Path
) -> None:
    config = make_config("", server={"start_wait_s": 5})
    engine = BrokenEngine(stand_in, tmp_path / "gemma.gguf")
    gw = Gateway(config, env={}, say=lambda _: None, engine=engine)
    url = await gw.start()
    try:
        status, headers, raw = await post(url, "/v1/chat/completions", chat("gemma-3-270m"))
        assert status == 503 and "Retry-After" in headers
        message = json.loads(raw)["error"]["message"]
        assert "the embedded engine could not be installed: cmake build failed" in message
        assert "out of memory" not in message  # one line, not the build's tail
        assert engine.runs == 2  # the start at serve, then this request's
    finally:
        await gw.stop(grace_s=0)


def test_start_wait_is_a_server_setting() -> None:
    assert parse_config("[server]\nstart_wait_s = 2.5\n").server.start_wait_s == 2.5
    assert parse_config("").server.start_wait_s == 60
