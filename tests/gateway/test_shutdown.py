"""Graceful shutdown: slow streams end with an error, short ones finish within the grace."""

from __future__ import annotations

import asyncio
import time

import aiohttp
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
    openai_error_frame,
    sse_frames,
)

# == 11. graceful shutdown =======================================================================


async def read_until_closed(resp: aiohttp.ClientResponse) -> bytes:
    """Whatever arrives until the body ends or the connection drops."""
    got = b""
    try:
        while chunk := await resp.content.readany():
            got += chunk
    except aiohttp.ClientPayloadError:
        pass
    return got


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_stop_ends_a_slow_stream_with_an_error(fake_engine, gateway, fmt: str) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    vllm.default_reply = SLOW
    gw, url = await gateway(backends=[backend("vllm", vllm)])
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + chat_path(fmt), json=chat_body(fmt, stream=True)) as resp,
    ):
        assert resp.status == 200
        first = await resp.content.readany()
        reader = asyncio.create_task(read_until_closed(resp))  # reads as the bytes arrive
        started = time.monotonic()
        await gw.stop(grace_s=0.3)
        took = time.monotonic() - started
        rest = await asyncio.wait_for(reader, 2.0)
    assert 0.25 <= took < 2.0
    body = first + rest
    assert len(sse_frames(rest)) >= 4  # the stream went on during the grace
    if fmt == "openai":
        error = openai_error_frame(body)
        assert error["code"] == "service_unavailable"
    else:
        error = anthropic_error_frame(body)
        assert error["type"] == "overloaded_error"
    assert await vllm.wait_disconnects(1, within=1.0) == 1


async def test_stop_lets_a_stream_finish_within_the_grace(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    vllm.default_reply = Reply(text="quick " * 4, chunk_chars=4, delay_s=0.05)  # ~0.3 s
    gw, url = await gateway(backends=[backend("vllm", vllm)])
    stream = await clients("openai", url).chat.completions.create(
        model="m", messages=HI, stream=True
    )
    chunks = aiter(stream)
    text = (await anext(chunks)).choices[0].delta.content or ""
    started = time.monotonic()
    stopping = asyncio.create_task(gw.stop(grace_s=3.0))
    text += "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    await stopping
    assert text == "quick " * 4
    assert time.monotonic() - started < 1.5  # stop returns once the stream is done
    # No new requests once stopped.
    with pytest.raises(openai.APIConnectionError):
        await clients("openai", url).chat.completions.create(model="m", messages=HI)
