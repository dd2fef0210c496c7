"""Streams cut short: clients leaving, deadlines, and engine failures mid-stream."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.fakes import Reply
from tests.gateway.helpers import (
    HI,
    SLOW,
    anthropic_error_frame,
    backend,
    chat_body,
    chat_path,
    chat_requests,
    get,
    openai_error_frame,
    post,
    sample,
    scrape,
    sse_frames,
)
from tests.gateway_harness import settled, until

# == 6. cancellation =============================================================================


# (client format, engine kind): passthrough when the engine speaks the client's format.
PATHS = [
    pytest.param("openai", "vllm", id="openai-passthrough"),
    pytest.param("anthropic", "anthropic", id="anthropic-passthrough"),
    pytest.param("openai", "anthropic", id="openai-to-anthropic"),
    pytest.param("anthropic", "localai", id="anthropic-to-openai"),
]


async def one_backend(fake_engine, gateway, kind: str, **server: Any) -> tuple[Any, Any, str]:
    key = "sk-ant-upstream" if kind == "anthropic" else None
    fake = await fake_engine(kind, models=["m"], api_key=key)
    extra = {"api_key_env": "UP_KEY"} if key else {}
    gw, url = await gateway(
        backends=[backend(kind, fake, **extra)], server=server, env={"UP_KEY": key or ""}
    )
    return fake, gw, url


@pytest.mark.parametrize(("fmt", "kind"), PATHS)
async def test_client_leaving_mid_stream_cancels_upstream(
    fake_engine, gateway, fmt: str, kind: str
) -> None:
    fake, gw, url = await one_backend(fake_engine, gateway, kind)
    fake.default_reply = SLOW
    session = aiohttp.ClientSession()
    try:
        resp = await session.post(url + chat_path(fmt), json=chat_body(fmt, stream=True))
        assert resp.status == 200
        assert await resp.content.readany()
        resp.close()  # drop the connection mid-stream
    finally:
        await session.close()
    started = time.monotonic()
    assert await fake.wait_disconnects(1, within=1.0) == 1
    assert time.monotonic() - started < 1.0
    assert await settled(gw) == [(0, 0)]


@pytest.mark.parametrize(("fmt", "kind"), PATHS)
async def test_client_leaving_before_the_first_byte_cancels_upstream(
    fake_engine, gateway, fmt: str, kind: str
) -> None:
    fake, gw, url = await one_backend(fake_engine, gateway, kind)
    fake.default_reply = Reply(hang=True)
    async with aiohttp.ClientSession() as session:
        request = asyncio.create_task(
            session.post(url + chat_path(fmt), json=chat_body(fmt, stream=True))
        )
        assert await until(lambda: bool(chat_requests(fake)))
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    assert await fake.wait_disconnects(1, within=1.0) == 1
    assert await settled(gw) == [(0, 0)]


@pytest.mark.parametrize(("fmt", "kind"), [PATHS[0], PATHS[2]])
async def test_stream_without_include_usage_gets_no_usage_chunk(
    fake_engine, gateway, clients, fmt: str, kind: str
) -> None:
    """OpenAI sends the usage chunk (empty `choices`) only to a client that asked for it;
    clients that read `chunk.choices[0]` break on one they did not ask for."""
    _fake, gw, url = await one_backend(fake_engine, gateway, kind)
    status, _, raw = await post(url, chat_path(fmt), chat_body(fmt, stream=True))
    assert status == 200
    chunks = [json.loads(d) for _, d in sse_frames(raw) if d != "[DONE]"]
    assert chunks and all(c["choices"] for c in chunks), raw
    assert all(c.get("usage") is None for c in chunks), raw
    assert sse_frames(raw)[-1] == (None, "[DONE]")
    # The gateway still meters the request.
    _, _, text = await get(url, "/metrics")
    tokens = sample(
        scrape(text.decode()),
        "modelport_tokens_total",
        model="m",
        backend=gw.router.upstreams[0].backend.id,
        direction="out",
    )
    assert tokens == 5


# == 7. deadlines ================================================================================


@pytest.mark.parametrize(("fmt", "kind"), PATHS)
async def test_deadline_ends_a_stream_with_an_error_event(
    fake_engine, gateway, fmt: str, kind: str
) -> None:
    fake, gw, url = await one_backend(fake_engine, gateway, kind, request_timeout_s=0.5)
    fake.default_reply = Reply(text="tick " * 10, chunk_chars=2, delay_s=0.1)
    started = time.monotonic()
    status, _, raw = await post(url, chat_path(fmt), chat_body(fmt, stream=True))
    assert time.monotonic() - started < 1.5
    assert status == 200
    if fmt == "openai":
        error = openai_error_frame(raw)
        assert error["code"] == "timeout"
    else:
        error = anthropic_error_frame(raw)
        assert error["type"] == "timeout_error"
    assert await settled(gw) == [(0, 0)]


@pytest.mark.parametrize(("fmt", "kind"), PATHS)
async def test_deadline_on_a_whole_answer_is_504(fake_engine, gateway, fmt: str, kind: str) -> None:
    fake, gw, url = await one_backend(fake_engine, gateway, kind, request_timeout_s=0.5)
    fake.default_reply = Reply(text="tick " * 10, chunk_chars=2, delay_s=0.1)
    started = time.monotonic()
    status, headers, raw = await post(url, chat_path(fmt), chat_body(fmt, stream=False))
    assert time.monotonic() - started < 1.5
    assert status == 504, raw
    assert headers["x-request-id"]
    if fmt == "openai":
        assert json.loads(raw)["error"]["code"] == "timeout"
    else:
        assert json.loads(raw)["error"]["type"] == "timeout_error"
    assert await fake.wait_disconnects(1, within=1.0) == 1  # the engine was told to stop
    assert await settled(gw) == [(0, 0)]


# == 8. failures mid-stream ======================================================================


@pytest.mark.parametrize("fault", ["fail", "drop"])
@pytest.mark.parametrize(
    ("fmt", "kind"),
    [
        *PATHS,
        pytest.param("openai", "llamacpp", id="openai-passthrough-llamacpp"),
        pytest.param("anthropic", "llamacpp", id="anthropic-passthrough-llamacpp"),
    ],
)
async def test_failure_mid_stream_ends_with_an_error_event(
    fake_engine, gateway, clients, fmt: str, kind: str, fault: str
) -> None:
    fake, gw, url = await one_backend(fake_engine, gateway, kind)
    fake.default_reply = Reply(
        text="partial answer here",
        chunk_chars=3,
        fail_after_chunks=2 if fault == "fail" else None,
        drop_after_chunks=2 if fault == "drop" else None,
    )
    status, _, raw = await post(url, chat_path(fmt), chat_body(fmt, stream=True))
    assert status == 200
    assert b"par" in raw
    if fmt == "openai":
        openai_error_frame(raw)
        stream = await clients("openai", url).chat.completions.create(
            model="m", messages=HI, stream=True
        )
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
    else:
        anthropic_error_frame(raw)
        with pytest.raises(anthropic.APIError):
            async with clients("anthropic", url).messages.stream(
                model="m", max_tokens=100, messages=HI
            ) as stream:
                await stream.get_final_message()
    assert await settled(gw) == [(0, 0)]
