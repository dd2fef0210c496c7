"""Admission through the gateway: per-backend concurrency, a bounded queue, and slots that are
always given back (after successes, errors, cancellations and timeouts)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from modelport.types import WireFormat
from tests.fakes import FakeEngine, Reply
from tests.gateway_harness import admission_state, settled, until

HI = [{"role": "user", "content": "hi"}]
SLOW = Reply(text="slow " * 40, chunk_chars=2, delay_s=0.05)  # about five seconds of stream
OPENAI_BODY = {"model": "m", "messages": HI, "stream": True}
ANTHROPIC_BODY = {"model": "m", "max_tokens": 50, "messages": HI, "stream": True}


def limited(fake: FakeEngine, kind: str = "vllm", **limits: Any) -> dict[str, Any]:
    return {"kind": kind, "url": fake.url, **limits}


class Holder:
    """A raw client holding one slot with a stream it reads one chunk of."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession()
        self.response: aiohttp.ClientResponse | None = None

    async def open(self, url: str, path: str = "/v1/chat/completions", body: Any = None) -> None:
        self.response = await self.session.post(url + path, json=body or OPENAI_BODY)
        assert self.response.status == 200
        assert await self.response.content.readany()

    async def close(self) -> None:
        if self.response is not None:
            self.response.close()
        await self.session.close()


@pytest.fixture
async def holder() -> AsyncIterator[Holder]:
    h = Holder()
    yield h
    await h.close()


async def test_full_backend_answers_429_and_529_at_once(
    fake_engine, gateway, clients, holder: Holder
) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    vllm.default_reply = SLOW
    gw, url = await gateway(backends=[limited(vllm, max_concurrent=1, max_queue=0)])
    await holder.open(url)
    assert admission_state(gw) == [(1, 0)]

    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        await clients("openai", url).chat.completions.create(model="m", messages=HI)
    assert time.monotonic() - started < 0.5
    assert caught.value.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    assert caught.value.body["type"] == "rate_limit_error"
    assert caught.value.response.headers["x-request-id"]

    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as err:
        await clients("anthropic", url).messages.create(model="m", max_tokens=5, messages=HI)
    assert time.monotonic() - started < 0.5
    assert err.value.status_code == 529
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "overloaded_error"
    assert err.value.response.headers["Retry-After"] == "1"

    # Streams and embeddings meet the same limit.
    with pytest.raises(openai.RateLimitError):
        await clients("openai", url).chat.completions.create(model="m", messages=HI, stream=True)
    with pytest.raises(openai.RateLimitError):
        await clients("openai", url).embeddings.create(model="m", input="x")
    assert len([r for r in vllm.requests if r.method == "POST"]) == 1  # only the holder's

    await holder.close()
    assert await settled(gw) == [(0, 0)]
    vllm.default_reply = Reply(text="free again")
    reply = await clients("openai", url).chat.completions.create(model="m", messages=HI)
    assert reply.choices[0].message.content == "free again"
    assert await settled(gw) == [(0, 0)]


async def test_a_full_backend_falls_back_to_another(
    fake_engine, gateway, clients, holder: Holder
) -> None:
    busy = await fake_engine("vllm", models=["m"])
    spare = await fake_engine("localai", models=["m"])
    busy.default_reply = SLOW
    gw, url = await gateway(
        backends=[
            limited(busy, max_concurrent=1, max_queue=0, priority=5),
            limited(spare, kind="localai"),
        ]
    )
    await holder.open(url)
    raw = await clients("openai", url).chat.completions.with_raw_response.create(
        model="m", messages=HI
    )
    assert raw.headers["x-modelport-backend"] == f"localai:{spare.url}"
    await holder.close()
    assert await settled(gw) == [(0, 0), (0, 0)]


async def test_queued_request_waits_then_gets_the_error(
    fake_engine, gateway, clients, holder: Holder
) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    vllm.default_reply = SLOW
    gw, url = await gateway(
        backends=[limited(vllm, max_concurrent=1, max_queue=1, queue_timeout_s=0.3)]
    )
    await holder.open(url)
    oc = clients("openai", url)

    async def timed(coro: Any) -> tuple[float, BaseException | None]:
        started = time.monotonic()
        try:
            await coro
        except Exception as exc:
            return time.monotonic() - started, exc
        return time.monotonic() - started, None

    queued = asyncio.create_task(timed(oc.chat.completions.create(model="m", messages=HI)))
    assert await until(lambda: admission_state(gw) == [(1, 1)])
    # The queue is full now: a third request is refused at once.
    took, exc = await timed(
        clients("anthropic", url).messages.create(model="m", max_tokens=5, messages=HI)
    )
    assert took < 0.25
    assert isinstance(exc, anthropic.APIStatusError) and exc.status_code == 529
    took, exc = await queued
    assert 0.25 <= took < 1.5
    assert isinstance(exc, openai.RateLimitError)
    assert exc.response.headers["Retry-After"] == "1"
    assert admission_state(gw) == [(1, 0)]

    await holder.close()
    assert await settled(gw) == [(0, 0)]


async def test_queued_request_gets_the_slot_when_it_frees(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    vllm.default_reply = Reply(text="abcdefgh", chunk_chars=2, delay_s=0.1)  # ~0.4 s each
    gw, url = await gateway(
        backends=[limited(vllm, max_concurrent=1, max_queue=2, queue_timeout_s=5)]
    )
    oc = clients("openai", url)

    async def ask() -> str:
        stream = await oc.chat.completions.create(model="m", messages=HI, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    started = time.monotonic()
    answers = await asyncio.gather(ask(), ask(), ask())
    assert answers == ["abcdefgh"] * 3
    assert time.monotonic() - started >= 1.1  # one after the other, not side by side
    assert await settled(gw) == [(0, 0)]


async def test_slots_come_back_after_errors_cancels_and_timeouts(
    fake_engine, gateway, clients
) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    claude = await fake_engine("anthropic", models=["c"], api_key="k")
    gw, url = await gateway(
        backends=[
            limited(vllm, max_concurrent=1, max_queue=1, queue_timeout_s=5),
            {
                "kind": "anthropic",
                "url": claude.url,
                "api_key_env": "K",
                "max_concurrent": 1,
                "max_queue": 1,
            },
        ],
        server={"request_timeout_s": 0.6},
        env={"K": "k"},
    )
    oc = clients("openai", url)
    ac = clients("anthropic", url)

    # Upstream errors before any byte, streamed and not, both paths.
    for status in (400, 500, 503):
        vllm.replies.append(Reply(status=status))
        with pytest.raises(openai.APIStatusError):
            await oc.chat.completions.create(model="m", messages=HI)
        claude.replies.append(Reply(status=status))
        with pytest.raises(openai.APIStatusError):
            await oc.chat.completions.create(model="c", messages=HI, stream=True)
    # Failures mid-stream.
    for fault in ({"fail_after_chunks": 1}, {"drop_after_chunks": 1}):
        vllm.replies.append(Reply(text="abcdefgh", **fault))
        with pytest.raises(openai.APIError):
            async for _ in await oc.chat.completions.create(model="m", messages=HI, stream=True):
                pass
        claude.replies.append(Reply(text="abcdefgh", **fault))
        with pytest.raises(openai.APIError):
            async for _ in await oc.chat.completions.create(model="c", messages=HI, stream=True):
                pass
    # Deadlines: before the first byte and mid-stream.
    vllm.replies.append(Reply(hang=True))
    with pytest.raises(openai.APIStatusError) as caught:
        await oc.chat.completions.create(model="m", messages=HI)
    assert caught.value.status_code == 504
    claude.replies.append(Reply(text="tick " * 10, chunk_chars=1, delay_s=0.05))
    with pytest.raises(anthropic.APIError):
        async with ac.messages.stream(model="c", max_tokens=50, messages=HI) as stream:
            await stream.get_final_message()
    # A client that leaves while queued, and one that leaves mid-stream.
    vllm.replies.append(SLOW)
    async with aiohttp.ClientSession() as session:
        holding = await session.post(url + "/v1/chat/completions", json=OPENAI_BODY)
        assert await holding.content.readany()
        waiting = asyncio.create_task(
            session.post(url + "/v1/messages", json={**ANTHROPIC_BODY, "model": "m"})
        )
        assert await until(lambda: admission_state(gw)[0] == (1, 1))
        waiting.cancel()  # leaves while queued
        with pytest.raises(asyncio.CancelledError):
            await waiting
        holding.close()  # leaves mid-stream
    assert await settled(gw) == [(0, 0), (0, 0)]

    # Nothing leaked: with max_concurrent=1, each backend still serves.
    reply = await oc.chat.completions.create(model="m", messages=HI)
    assert reply.choices[0].message.content == "Hello from the fake."
    msg = await ac.messages.create(model="c", max_tokens=5, messages=HI)
    assert msg.content[0].text == "Hello from the fake."
    assert await settled(gw) == [(0, 0), (0, 0)]


async def test_a_stream_reply_closed_unread_frees_its_slot(fake_engine, gateway) -> None:
    """The HTTP layer may close a Reply's chunks without reading them (the client left
    before the headers went out): the slot and the upstream connection must still go."""
    vllm = await fake_engine("vllm", models=["m"])
    claude = await fake_engine("anthropic", models=["c"], api_key="k")
    vllm.default_reply = claude.default_reply = SLOW
    gw, _url = await gateway(
        backends=[
            limited(vllm, max_concurrent=1),
            {"kind": "anthropic", "url": claude.url, "api_key_env": "K", "max_concurrent": 1},
        ],
        env={"K": "k"},
    )
    replies = []  # kept alive, so that no garbage collection closes anything for us
    for model in ("m", "c"):  # passthrough, then transcoding
        body = json.dumps({**OPENAI_BODY, "model": model}).encode()
        reply = await gw.service.chat(WireFormat.OPENAI, body)
        assert reply.status == 200 and reply.chunks is not None
        replies.append(reply)
        await reply.chunks.aclose()  # type: ignore[attr-defined]
    assert await settled(gw, within=1.0) == [(0, 0), (0, 0)]
    assert await vllm.wait_disconnects(1, within=1.0) == 1
    assert await claude.wait_disconnects(1, within=1.0) == 1
