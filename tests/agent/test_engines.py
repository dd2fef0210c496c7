"""AgentEngines: agent.toml's backends (and engines found on this machine) as the router and
service the agent serves jobs through, and the capabilities frame they add up to.

Engines are protocol fakes (tests/fakes: real aiohttp servers replaying each engine's wire);
what a frame must hold comes from usepod-agent's src/discovery.rs (pricing, dropping a model
priced 0, kind_priority, sorted by model id) and docs/wire.md."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import web

from modelport import __version__
from modelport.agent.config import (
    AgentConfig,
    BackendEntry,
    Limits,
    ModelportSettings,
    ModelPrice,
    Pricing,
)
from modelport.agent.engines import AgentEngines
from modelport.gateway.ledger import earnings_totals
from modelport.records import RequestRecord
from modelport.types import WireFormat
from modelport.wire.provider import Capabilities, CapabilityLimits, encode
from tests.fakes import FakeEngine, Reply

BYOK = ("openrouter", "venice")


class PortEngine(FakeEngine):
    """A FakeEngine that can stop and start again on the same port (an engine restarted),
    and that answers 404 to everything while `hidden` (not started yet: the port is open,
    no engine fingerprint answers)."""

    port = 0
    hidden = False

    async def start(self) -> str:
        if self._runner is not None:
            return self.url
        self._closing = asyncio.Event()
        self._disconnected = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self.url

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if self.hidden:
            return web.Response(status=404)
        return await super()._dispatch(request)


def config(
    tmp_path: Path,
    *entries: BackendEntry,
    pricing: Pricing | None = None,
    discover: bool = False,
    rediscover_s: float = 3600.0,
    max_concurrent: int = 4,
) -> AgentConfig:
    return AgentConfig(
        backends=entries,
        pricing=pricing or Pricing(500_000, 750_000),
        limits=Limits(max_concurrent=max_concurrent, max_tokens_per_minute=200_000),
        modelport=ModelportSettings(
            rediscover_s=rediscover_s,
            discover=discover,
            ledger_path=tmp_path / "agent-ledger.sqlite3",
        ),
    )


def entry(fake: FakeEngine, **kw: object) -> BackendEntry:
    if fake.kind in BYOK:
        return BackendEntry(kind=fake.kind, url=fake.url, api_key_env="BYOK_KEY", **kw)  # type: ignore[arg-type]
    return BackendEntry(kind=fake.kind, url=fake.url, **kw)  # type: ignore[arg-type]


def ignore(record: RequestRecord) -> None:
    pass


@pytest.fixture
async def started() -> AsyncIterator[list[AgentEngines]]:
    engines: list[AgentEngines] = []
    yield engines
    for e in engines:
        await e.aclose()


async def start(started: list[AgentEngines], cfg: AgentConfig, **kw: object) -> AgentEngines:
    kw.setdefault("observe", ignore)
    kw.setdefault("env", {"BYOK_KEY": "sk-byok"})
    kw.setdefault("ports", ())
    engines = await AgentEngines.start(cfg, **kw)  # type: ignore[arg-type]
    started.append(engines)
    return engines


def offered(frame: Capabilities) -> list[tuple[str, str, int | None]]:
    return [(m.model_id, m.backend, m.context_window) for m in frame.models]


async def test_every_engine_kind_is_offered_with_its_real_context_window(
    fake_engine, started, tmp_path: Path
) -> None:
    """Each usepod kind maps to modelport's backend of the same name; each reports its own
    context window (vLLM max_model_len, llama-server /props, LM Studio's loaded context,
    Ollama /api/show, OpenRouter context_length, Venice availableContextTokens)."""
    fakes = []
    for n, kind in enumerate(("vllm", "llamacpp", "lmstudio", "ollama", *BYOK), start=1):
        key = "sk-byok" if kind in BYOK else None
        fakes.append(
            await fake_engine(kind, models=[f"{kind}-m"], context_window=1000 * n, api_key=key)
        )
    cfg = config(tmp_path, *(entry(f) for f in fakes))
    engines = await start(started, cfg)
    frame = engines.capabilities()
    assert offered(frame) == [  # by model id, as discovery.rs sorts them
        ("llamacpp-m", "llamacpp", 2000),
        ("lmstudio-m", "lmstudio", 3000),
        ("ollama-m:latest", "ollama", 4000),
        ("openrouter-m", "openrouter", 5000),
        ("venice-m", "venice", 6000),
        ("vllm-m", "vllm", 1000),
    ]
    assert {(m.input_per_1m, m.output_per_1m, m.max_concurrent) for m in frame.models} == {
        (500_000, 750_000, 4)
    }
    assert frame.limits == CapabilityLimits(max_concurrent_total=4, max_tokens_per_minute=200_000)
    assert (frame.metadata.agent_version, frame.metadata.formats) == (
        __version__,
        ("openai", "anthropic"),
    )
    # The BYOK key read from the variable named reached the vendor, never the frame.
    assert fakes[4].last.headers["Authorization"] == "Bearer sk-byok"
    local = {u.name: u.local for u in engines.router.upstreams}
    assert local == {
        "vllm": True,
        "llamacpp": True,
        "lmstudio": True,
        "ollama": True,
        "openrouter": False,
        "venice": False,
    }


async def test_unknown_context_is_omitted_and_prices_come_from_pricing(
    fake_engine, started, tmp_path: Path
) -> None:
    vllm = await fake_engine("vllm", models=["cheap", "free", "lora-x"])
    pricing = Pricing(
        500_000,
        750_000,
        {"cheap": ModelPrice(300_000, 450_000), "free": ModelPrice(0, 450_000)},
    )
    engines = await start(started, config(tmp_path, entry(vllm), pricing=pricing))
    frame = engines.capabilities()
    # "free" is priced 0: dropped, as discovery.rs drops a model without pricing.
    assert [(m.model_id, m.input_per_1m, m.output_per_1m) for m in frame.models] == [
        ("cheap", 300_000, 450_000),
        ("lora-x", 500_000, 750_000),
    ]
    wire = json.loads(encode(frame))
    by_id = {m["model_id"]: m for m in wire["models"]}
    assert by_id["cheap"]["context_window"] == 4096
    assert "context_window" not in by_id["lora-x"]  # vLLM lists a LoRA with max_model_len null


async def test_one_model_on_several_backends_goes_local_first_in_kind_order(
    fake_engine, started, tmp_path: Path
) -> None:
    """discovery.rs kind_priority: vllm, llamacpp, lmstudio, ollama, venice, openrouter;
    the router tries them in the same order, so the job goes where the frame says."""
    openrouter = await fake_engine("openrouter", models=["shared"], api_key="sk-byok")
    lmstudio = await fake_engine("lmstudio", models=["shared"])
    llamacpp = await fake_engine("llamacpp", models=["shared"])
    cfg = config(tmp_path, entry(openrouter), entry(lmstudio), entry(llamacpp))
    engines = await start(started, cfg)
    assert offered(engines.capabilities()) == [("shared", "llamacpp", 4096)]
    routes = engines.router.resolve("shared")
    assert [r.upstream.name for r in routes] == ["llamacpp", "lmstudio", "openrouter"]

    await llamacpp.stop()
    await lmstudio.stop()
    await engines.router.refresh()
    assert offered(engines.capabilities()) == [("shared", "openrouter", 4096)]


async def test_allow_list_and_skipped_rows(fake_engine, started, tmp_path: Path) -> None:
    vllm = await fake_engine("vllm", models=["a", "b"])
    ollama = await fake_engine("ollama", models=["c"])
    venice = await fake_engine("venice", models=["v"], api_key="sk-byok")
    cfg = config(
        tmp_path,
        entry(vllm, models=("b",)),
        entry(ollama, models=()),  # an empty list allows nothing, as in discovery.rs
        entry(venice),
        BackendEntry(kind="openrouter", api_key_env="UNSET_KEY"),  # no key: skipped
        BackendEntry(kind="vllm"),  # no url: skipped
        BackendEntry(kind="tgi", url=vllm.url),  # unknown kind: skipped
    )
    engines = await start(started, cfg)
    assert [u.name for u in engines.router.upstreams] == ["vllm", "ollama", "venice"]
    assert [m.model_id for m in engines.capabilities().models] == ["b", "v"]


async def test_an_engine_that_goes_and_comes_back_changes_the_frame_twice(
    started, tmp_path: Path
) -> None:
    vllm = PortEngine("vllm", models=["v1"])
    ollama = PortEngine("ollama", models=["o1"])
    await vllm.start()
    await ollama.start()
    try:
        cfg = config(tmp_path, entry(vllm), entry(ollama), rediscover_s=0.1)
        engines = await start(started, cfg)
        frames: asyncio.Queue[Capabilities] = asyncio.Queue()

        async def on_change(frame: Capabilities) -> None:
            await frames.put(frame)

        watch = asyncio.create_task(engines.watch(on_change))
        try:
            await asyncio.sleep(0.5)  # several passes, nothing changed: nothing sent
            assert frames.empty()
            await vllm.stop()
            gone = await asyncio.wait_for(frames.get(), 5)
            assert [m.model_id for m in gone.models] == ["o1:latest"]
            await vllm.start()  # the same port again
            back = await asyncio.wait_for(frames.get(), 5)
            assert [m.model_id for m in back.models] == ["o1:latest", "v1"]
            await asyncio.sleep(0.4)
            assert frames.empty()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
    finally:
        await vllm.stop()
        await ollama.stop()


async def test_a_job_that_finds_its_engine_gone_has_the_frame_sent_again_at_once(
    started, tmp_path: Path
) -> None:
    """Rediscovery is an hour away; the job's Unreachable makes the router look now."""
    vllm = PortEngine("vllm", models=["v1"])
    await vllm.start()
    try:
        engines = await start(started, config(tmp_path, entry(vllm)))
        frames: asyncio.Queue[Capabilities] = asyncio.Queue()

        async def on_change(frame: Capabilities) -> None:
            await frames.put(frame)

        watch = asyncio.create_task(engines.watch(on_change))
        try:
            await vllm.stop()
            body = json.dumps({"model": "v1", "messages": [{"role": "user", "content": "hi"}]})
            reply = await engines.service.chat(WireFormat.OPENAI, body.encode(), request_id="j1")
            assert reply.status == 502
            frame = await asyncio.wait_for(frames.get(), 5)
            assert frame.models == []
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
    finally:
        await vllm.stop()


async def test_a_new_engine_on_a_probed_port_is_served_and_offered(started, tmp_path: Path) -> None:
    llamacpp = PortEngine("llamacpp", models=["configured"])
    newcomer = PortEngine("ollama", models=["found"], context_window=2048)
    newcomer.hidden = True  # the port is open, no Ollama answers there yet
    await llamacpp.start()
    await newcomer.start()
    try:
        cfg = config(tmp_path, entry(llamacpp), discover=True, rediscover_s=0.1)
        # The configured engine's port is never probed; the newcomer's is.
        engines = await start(started, cfg, ports=(llamacpp.port, newcomer.port))
        frames: asyncio.Queue[Capabilities] = asyncio.Queue()

        async def on_change(frame: Capabilities) -> None:
            await frames.put(frame)

        watch = asyncio.create_task(engines.watch(on_change))
        try:
            assert offered(engines.capabilities()) == [("configured", "llamacpp", 4096)]
            newcomer.hidden = False
            frame = await asyncio.wait_for(frames.get(), 5)
            assert offered(frame) == [
                ("configured", "llamacpp", 4096),
                ("found:latest", "ollama", 2048),
            ]
            found = engines.router.by_url(newcomer.url)
            assert found is not None and found.discovered and found.local
            assert found.admission.max_concurrent == 4 and found.admission.max_queue == 0
            assert [u.backend.kind for u in engines.router.upstreams] == ["llamacpp", "ollama"]
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
    finally:
        await llamacpp.stop()
        await newcomer.stop()


async def test_a_failing_on_change_is_tried_again_after_the_next_pass(
    fake_engine, started, tmp_path: Path
) -> None:
    vllm = await fake_engine("vllm", models=["v1"])
    engines = await start(started, config(tmp_path, entry(vllm)))
    calls: asyncio.Queue[int] = asyncio.Queue()

    async def on_change(frame: Capabilities) -> None:
        first = calls.empty() and not sent
        sent.append(len(frame.models))
        await calls.put(len(frame.models))
        if first:
            raise ConnectionResetError("the hub went away")

    sent: list[int] = []
    watch = asyncio.create_task(engines.watch(on_change))
    try:
        await asyncio.sleep(0)  # watch takes the frame it starts from
        await vllm.stop()
        await engines.router.refresh_soon()
        assert await asyncio.wait_for(calls.get(), 5) == 0  # raised
        await engines.router.refresh_soon()
        assert await asyncio.wait_for(calls.get(), 5) == 0  # sent again
        await engines.router.refresh_soon()
        await asyncio.sleep(0.1)
        assert sent == [0, 0]  # then nothing new
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)


async def test_jobs_land_in_the_ledger_with_the_prices_they_ran_at(
    fake_engine, started, tmp_path: Path
) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    vllm.replies.append(Reply(text="hello there", usage=(7, 3)))
    pricing = Pricing(500_000, 750_000, {"m": ModelPrice(300_000, 450_001)})
    records: list[RequestRecord] = []
    cfg = config(tmp_path, entry(vllm), pricing=pricing)
    engines = await start(started, cfg, observe=records.append)
    body = json.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    reply = await engines.service.chat(WireFormat.OPENAI, body.encode(), request_id="job-1")
    assert reply.chunks is not None
    async for _ in reply.chunks:
        pass
    assert [(r.request_id, r.input_tokens, r.output_tokens) for r in records] == [("job-1", 7, 3)]
    await engines.aclose()
    started.remove(engines)
    (row,) = earnings_totals(cfg.modelport.ledger_path)  # type: ignore[arg-type]
    assert (row.model, row.jobs, row.input_tokens, row.output_tokens) == ("m", 1, 7, 3)
    assert row.usdc == Decimal(7 * 300_000 + 3 * 450_001) / Decimal(10**12)


async def test_a_configured_engine_is_not_found_again_under_another_spelling(
    fake_engine, started, tmp_path: Path
) -> None:
    """`http://localhost:PORT` in agent.toml and `http://127.0.0.1:PORT` found by probing
    are one engine: its port is not probed, so it is served (and admitted) once."""
    ollama = await fake_engine("ollama", models=["o"])
    port = int(ollama.url.rsplit(":", 1)[1])
    configured = BackendEntry(kind="ollama", url=f"http://localhost:{port}")
    cfg = config(tmp_path, configured, discover=True)
    engines = await start(started, cfg, ports=(port,))
    await engines.router.refresh()
    assert [(u.name, u.discovered) for u in engines.router.upstreams] == [("ollama", False)]
    assert offered(engines.capabilities()) == [("o:latest", "ollama", 4096)]


async def test_modelports_own_kinds_are_served_not_skipped(
    fake_engine, started, tmp_path: Path
) -> None:
    """agent.toml accepts localai, openai-compatible (a url) and openai, anthropic (a key,
    and a url for a proxy or a test double): each becomes a backend like usepod's kinds."""
    kinds = ("localai", "openai-compatible", "openai", "anthropic")
    # An "openai-compatible" server is played by a vLLM fake (its wire is OpenAI's).
    fakes = [
        await fake_engine(
            "vllm" if kind == "openai-compatible" else kind,
            models=[f"{kind}-m"],
            api_key="sk-byok" if n >= 2 else None,
        )
        for n, kind in enumerate(kinds)
    ]
    entries = [
        BackendEntry(kind=kind, url=f.url, api_key_env="BYOK_KEY" if n >= 2 else None)
        for n, (kind, f) in enumerate(zip(kinds, fakes, strict=True))
    ]
    engines = await start(started, config(tmp_path, *entries))
    assert [u.name for u in engines.router.upstreams] == list(kinds)
    assert sorted(m.model_id for m in engines.capabilities().models) == sorted(
        f"{kind}-m" for kind in kinds
    )
