"""Discovery against protocol fakes on free ports: kinds by fingerprint, never by port."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from modelport.discovery import DEFAULT_PORTS, Answer, Found, discover, fingerprint, identify
from tests.fakes import FakeEngine

FakeFactory = Callable[..., Awaitable[FakeEngine]]

pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """An unclosed session warns only when collected: collect while the filters are on."""
    yield
    gc.collect()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def closed_ports(n: int) -> list[int]:
    """Ports that were free a moment ago; bound all at once so they differ."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """A throwaway aiohttp app on a free loopback port; yields its URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def hello_app(*, models: bool = False) -> web.Application:
    """Not an engine: 200 "hello" to every path, and optionally a bare /v1/models."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def model_list(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "plain-1", "object": "model"}]})

    app = web.Application()
    if models:
        app.router.add_get("/v1/models", model_list)
    app.router.add_route("*", "/{tail:.*}", hello)
    return app


def ids(found: Found) -> list[str]:
    return [m.id for m in found.models]


# ---------------------------------------------------------------------------
# Each engine by its fingerprint


@pytest.mark.parametrize(
    ("fake_kind", "kind", "models"),
    [
        ("llamacpp", "llamacpp", ["gemma.gguf"]),
        ("vllm", "vllm", ["Qwen/Qwen3-0.6B", "other/model"]),
        ("vllm-old", "vllm", ["Qwen/Qwen3-0.6B"]),
        ("lmstudio", "lmstudio", ["qwen/qwen3-4b", "google/gemma-3-4b"]),
        ("localai", "localai", ["qwen3-0.6b"]),
        ("ollama", "ollama", ["llama3.2:latest", "qwen3:4b"]),
        ("openai", "openai-compatible", ["gpt-4o-mini"]),
    ],
)
async def test_each_kind_found_by_fingerprint(
    fake_engine: FakeFactory, fake_kind: str, kind: str, models: list[str]
) -> None:
    fake = await fake_engine(fake_kind, models=models)
    found = await discover(ports=[port_of(fake.url)])
    assert len(found) == 1
    (engine,) = found
    assert (engine.kind, engine.url, engine.ready, engine.error) == (kind, fake.url, True, None)
    assert ids(engine) == models
    assert engine.latency_ms is not None and 0 < engine.latency_ms < 1000


async def test_plain_openai_compatible_server(fake_engine: FakeFactory) -> None:
    async with serve(hello_app(models=True)) as url:
        found = await discover(ports=[port_of(url)])
    assert [(f.kind, f.url, f.ready, ids(f)) for f in found] == [
        ("openai-compatible", url, True, ["plain-1"])
    ]


async def test_kind_does_not_follow_the_port(fake_engine: FakeFactory) -> None:
    """Several engines at once, each on a port that is another's default elsewhere."""
    fakes = {k: await fake_engine(k) for k in ("ollama", "llamacpp", "vllm", "lmstudio", "localai")}
    found = await discover(ports=[port_of(f.url) for f in fakes.values()])
    assert [(f.kind, f.url) for f in found] == [(k, f.url) for k, f in fakes.items()]


# ---------------------------------------------------------------------------
# Traps


async def test_llamacpp_while_loading_is_llamacpp_not_ready(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("llamacpp", loading=True)
    (engine,) = await discover(ports=[port_of(fake.url)])
    assert (engine.kind, engine.url, engine.ready) == ("llamacpp", fake.url, False)
    assert engine.error is not None and "Loading model" in engine.error

    fake.loading = False
    (engine,) = await discover(ports=[port_of(fake.url)])
    assert (engine.kind, engine.ready, engine.error) == ("llamacpp", True, None)
    assert ids(engine) == ["gemma.gguf"]


async def test_llamacpp_is_not_taken_for_ollama(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("llamacpp")
    async with aiohttp.ClientSession() as session, session.get(fake.url + "/api/tags") as r:
        assert r.status == 200  # the trap is armed: it does answer Ollama's model list
    (engine,) = await discover(ports=[port_of(fake.url)])
    assert engine.kind == "llamacpp"


async def test_llamacpp_behind_a_key_is_found_by_health_and_model_list(
    fake_engine: FakeFactory,
) -> None:
    """/props needs the key; /health and /v1/models stay public."""
    fake = await fake_engine("llamacpp", api_key="sk-local")
    (engine,) = await discover(ports=[port_of(fake.url)])
    assert (engine.kind, engine.ready) == ("llamacpp", True)
    assert ids(engine) == ["gemma.gguf"]


async def test_lmstudio_root_answers_anything_but_is_not_used(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("lmstudio", models=["qwen/qwen3-4b"])
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/readyz", "/health", "/version"):
            async with session.get(fake.url + path) as r:
                assert r.status == 200  # the trap: every path answers 200
    (engine,) = await discover(ports=[port_of(fake.url)])
    assert engine.kind == "lmstudio"


async def test_hello_server_is_not_an_engine() -> None:
    async with serve(hello_app()) as url:
        found = await discover(ports=[port_of(url)])
    assert found == []


async def test_non_http_service_is_not_an_engine() -> None:
    """Something that greets in its own protocol (SSH, Redis ...) and hangs up."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.perf_counter()
        found = await discover(ports=[port], timeout=0.3)
        elapsed = time.perf_counter() - started
    finally:
        server.close()
        await server.wait_closed()
    assert found == []
    assert elapsed < 1.0


async def test_vllm_behind_a_key_is_found_without_models(fake_engine: FakeFactory) -> None:
    """/version and /health are public; a locked model list is an error, not an exception."""
    fake = await fake_engine("vllm", api_key="sk-vllm")
    (engine,) = await discover(ports=[port_of(fake.url)])
    assert (engine.kind, engine.url, engine.ready, engine.models) == ("vllm", fake.url, True, [])
    assert engine.error is not None


# ---------------------------------------------------------------------------
# Models and context windows


async def test_llamacpp_context_is_the_runtime_one(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("llamacpp", context_window=2048, train_context=32768)
    (engine,) = await discover(ports=[port_of(fake.url)])
    assert [(m.id, m.context_window) for m in engine.models] == [("gemma.gguf", 2048)]


async def test_vllm_context_is_max_model_len(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("vllm", models=["Qwen/Qwen3-0.6B"], context_window=8192)
    (engine,) = await discover(ports=[port_of(fake.url)])
    assert [(m.id, m.context_window) for m in engine.models] == [("Qwen/Qwen3-0.6B", 8192)]


async def test_ollama_models_with_context_and_loaded(fake_engine: FakeFactory) -> None:
    fake = await fake_engine(
        "ollama", models=["llama3.2", "qwen3:4b"], not_loaded=["qwen3:4b"], context_window=4096
    )
    (engine,) = await discover(ports=[port_of(fake.url)])
    assert [(m.id, m.context_window, m.loaded) for m in engine.models] == [
        ("llama3.2:latest", 4096, True),  # /api/ps: the context allocated
        ("qwen3:4b", 4096 * 8, False),  # /api/show: the trained one
    ]


async def test_lmstudio_models_with_context_and_state(fake_engine: FakeFactory) -> None:
    fake = await fake_engine(
        "lmstudio",
        models=["qwen/qwen3-4b", "google/gemma-3-4b"],
        not_loaded=["google/gemma-3-4b"],
        context_window=4096,
        train_context=32768,
    )
    (engine,) = await discover(ports=[port_of(fake.url)])
    assert [(m.id, m.context_window, m.loaded) for m in engine.models] == [
        ("qwen/qwen3-4b", 4096, True),  # loaded: the context it was loaded with
        ("google/gemma-3-4b", 32768, False),  # not loaded: the most it can take
    ]


async def test_to_json(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("vllm", models=["m1"], context_window=1000)
    (engine,) = await discover(ports=[port_of(fake.url)])
    data = engine.to_json()
    assert isinstance(data["latency_ms"], float)
    data["latency_ms"] = None
    assert data == {
        "kind": "vllm",
        "url": fake.url,
        "ready": True,
        "latency_ms": None,
        "models": [{"id": "m1", "context_window": 1000, "loaded": None}],
        "error": None,
    }


# ---------------------------------------------------------------------------
# Where to look


async def test_extra_urls_with_or_without_v1(fake_engine: FakeFactory) -> None:
    a = await fake_engine("vllm")
    b = await fake_engine("localai")
    found = await discover(ports=[], extra_urls=[a.url + "/v1/", b.url, a.url])
    assert [(f.kind, f.url) for f in found] == [("vllm", a.url), ("localai", b.url)]


async def test_mixed_ports_report_only_engines(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("ollama")
    (closed,) = closed_ports(1)
    async with serve(hello_app()) as hello:
        found = await discover(ports=[closed, port_of(hello), port_of(fake.url)])
    assert [(f.kind, f.url) for f in found] == [("ollama", fake.url)]


async def test_fingerprint_of_nothing_is_none(refused_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        assert await fingerprint(session, refused_url, timeout=0.5) is None


async def test_fingerprint_names_kind_and_latency(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("lmstudio")
    async with aiohttp.ClientSession() as session:
        result = await fingerprint(session, fake.url + "/v1", timeout=0.5)
    assert result is not None
    kind, latency_ms = result
    assert kind == "lmstudio"
    assert 0 < latency_ms < 500


def test_default_ports() -> None:
    assert DEFAULT_PORTS == (11434, 8080, 9931, 8000, 1234)


# ---------------------------------------------------------------------------
# Rules alone (no I/O): the order and the guards


def answers(**by_path: tuple[int, bytes]) -> dict[str, Answer | None]:
    """Keyword names stand for paths: root="/", v1_models="/v1/models", ..."""
    paths = {"root": "/", "v1_models": "/v1/models", "api_v0_models": "/api/v0/models"}
    out: dict[str, Answer | None] = {}
    for name, (status, body) in by_path.items():
        out[paths.get(name, "/" + name)] = Answer(status, body, 1.0)
    return out


def test_rules_catch_all_server_with_readyz_is_not_localai() -> None:
    everything = (200, b"OK")
    catch_all = answers(readyz=everything, **{"modelport-discovery-canary": everything})
    assert identify(catch_all) is None
    assert identify(answers(readyz=everything, v1_models=(200, b'{"data":[]}'))) == "localai"


def test_rules_version_alone_is_not_vllm() -> None:
    assert identify(answers(version=(200, b'{"version":"1.0"}'))) is None
    models = (200, b'{"data":[{"id":"m","max_model_len":4096}]}')
    assert identify(answers(version=(200, b'{"version":"1.0"}'), v1_models=models)) == "vllm"


def test_rules_health_json_alone_is_not_llamacpp() -> None:
    assert identify(answers(health=(200, b'{"status":"ok"}'))) is None
    loading = b'{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}'
    assert identify(answers(health=(503, loading))) == "llamacpp"


def test_rules_ollama_first() -> None:
    props = (200, b'{"default_generation_settings":{"n_ctx":8}}')
    assert identify(answers(root=(200, b"Ollama is running"), props=props)) == "ollama"
    assert identify(answers(root=(200, b"Ollama is running?"))) == "ollama"
    assert identify(answers(root=(404, b"Ollama is running"))) is None


# ---------------------------------------------------------------------------
# Timing: nothing costs nothing, many cost about one


async def test_closed_ports_return_nothing_quickly() -> None:
    ports = closed_ports(5)
    started = time.perf_counter()
    found = await discover(ports=ports)
    elapsed = time.perf_counter() - started
    assert found == []
    assert elapsed < 1.0


class SlowEngine(FakeEngine):
    """A fake with network latency, so that time measures waiting and not our CPU.

    Fakes share the test's event loop; without a delay, ten fakes' server work alone
    would cost ten times one fake's, whatever discovery does.
    """

    delay_s = 0.1

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.delay_s)
        return await super()._dispatch(request)


async def best_of(runs: int, ports: list[int]) -> tuple[float, list[Found]]:
    times, found = [], []
    for _ in range(runs):
        started = time.perf_counter()
        found = await discover(ports=ports)
        times.append(time.perf_counter() - started)
    return min(times), found


async def test_ten_engines_cost_about_as_much_as_one() -> None:
    kinds = ["llamacpp", "vllm", "lmstudio", "localai", "ollama"] * 2
    fakes = [SlowEngine(k) for k in kinds]
    try:
        for fake in fakes:
            await fake.start()
        one, found = await best_of(3, [port_of(fakes[0].url)])
        assert [f.kind for f in found] == ["llamacpp"]
        ten, found = await best_of(3, [port_of(f.url) for f in fakes])
        assert [f.kind for f in found] == kinds
    finally:
        for fake in fakes:
            await fake.stop()
    # Done one after another, ten would cost ten times one.
    assert ten < 2.5 * one, f"one engine {one * 1000:.0f} ms, ten {ten * 1000:.0f} ms"


async def test_ports_may_be_a_generator_and_host_a_name() -> None:
    found = await discover("localhost", (p for p in closed_ports(2)), timeout=0.2)
    assert found == []
