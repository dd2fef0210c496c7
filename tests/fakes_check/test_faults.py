"""Error shapes by Reply.status in each engine's shape, and the faults a Reply injects."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.fakes import FakeEngine, Reply
from tests.fakes_check.helpers import AV, USER, call, chat, joined, openai_path

# -- error shapes by Reply.status ----------------------------------------------------------


STATUS_CASES = [
    ("llamacpp", 400, lambda b: b["error"]["type"] == "exceed_context_size_error"),
    (
        "llamacpp",
        503,
        lambda b: (
            b["error"] == {"code": 503, "message": "Loading model", "type": "unavailable_error"}
        ),
    ),
    (
        "vllm",
        404,
        lambda b: (
            b["error"]["type"] == "NotFoundError" and "does not exist" in b["error"]["message"]
        ),
    ),
    ("vllm", 401, lambda b: b == {"error": "Unauthorized"}),
    (
        "vllm-old",
        500,
        lambda b: (
            b
            == {
                "object": "error",
                "message": "boom",
                "type": "InternalServerError",
                "param": None,
                "code": 500,
            }
        ),
    ),
    ("openai", 400, lambda b: b["error"]["code"] == "context_length_exceeded"),
    ("openai", 429, lambda b: b["error"]["code"] == "rate_limit_exceeded"),
    ("lmstudio", 404, lambda b: b["error"]["code"] == "model_not_found"),
    ("localai", 500, lambda b: b == {"error": {"code": 500, "message": "boom", "type": ""}}),
    ("ollama", 404, lambda b: b["error"]["type"] == "not_found_error"),
    ("venice", 500, lambda b: b == {"error": "boom"}),
    (
        "openrouter",
        503,
        lambda b: b["error"]["code"] == 503 and b["error"]["metadata"]["provider_name"],
    ),
]


@pytest.mark.parametrize(("kind", "status", "check"), STATUS_CASES)
async def test_reply_status_in_the_engine_shape(
    fake_engine, kind: str, status: int, check: Any
) -> None:
    fake = await fake_engine(kind, models=["m"])
    fake.default_reply = Reply(status=status, retry_after="3")
    answer = await call(fake, "POST", openai_path(kind) + "/chat/completions", chat())
    assert answer.status == status and answer.headers["Retry-After"] == "3"
    assert check(answer.json), answer.json


async def test_custom_error_message_and_body(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"])
    fake.replies.extend(
        [
            Reply(status=404, error_message="gone fishing"),
            Reply(status=502, error_body="<html>Bad Gateway</html>"),
        ]
    )
    custom = await call(fake, "POST", "/v1/chat/completions", chat())
    assert (
        custom.json["error"]["message"] == "gone fishing"
        and custom.json["error"]["type"] == "NotFoundError"
    )
    raw = await call(fake, "POST", "/v1/chat/completions", chat())
    assert (raw.status, raw.raw) == (502, b"<html>Bad Gateway</html>")


# -- faults --------------------------------------------------------------------------------


async def test_replies_are_popped_in_order_then_the_default(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"])
    fake.replies.extend([Reply(text="one"), Reply(text="two")])
    fake.default_reply = Reply(text="default")
    got = []
    for _ in range(3):
        got.append((await call(fake, "POST", "/v1/chat/completions", chat(stream=False))).json)
    assert [g["choices"][0]["message"]["content"] for g in got] == ["one", "two", "default"]
    assert len(fake.replies) == 0
    missing = await call(fake, "POST", "/v1/chat/completions", chat(model="x"))
    assert missing.status == 404  # a refused request consumes no reply


@pytest.mark.parametrize(
    ("kind", "path"),
    [("llamacpp", "/v1/chat/completions"), ("anthropic", "/v1/messages"), ("ollama", "/api/chat")],
)
async def test_drop_after_chunks_cuts_the_body(fake_engine, kind: str, path: str) -> None:
    fake = await fake_engine(kind, models=["m"])
    fake.default_reply = Reply(text="x" * 40, drop_after_chunks=2)
    body = {"model": "m", "max_tokens": 9, "stream": True, "messages": USER}
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with (
            aiohttp.ClientSession() as session,
            session.post(fake.url + path, json=body, headers=AV) as r,
        ):
            assert r.status == 200
            async for piece in r.content.iter_any():
                received += piece
    assert received.count(b"xxxx") == 2
    assert (
        b"[DONE]" not in received
        and b"message_stop" not in received
        and b'"done":true' not in received
    )
    fake.default_reply = Reply(drop_after_chunks=0)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(fake, "POST", path, {**body, "stream": False}, AV)
    assert fake.disconnects == 0  # the server hung up, not the client


async def test_disconnect_is_counted_when_the_client_goes_away(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"])
    fake.default_reply = Reply(text="x" * 400, chunk_chars=1, delay_s=0.01)
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url + "/v1/chat/completions", json=chat()) as r,
    ):
        await r.content.readline()  # one frame, then the client goes away
    assert await fake.wait_disconnects(1) == 1
    fake.default_reply = Reply(text="quick")
    await call(fake, "POST", "/v1/chat/completions", chat())
    await asyncio.sleep(0.05)
    assert fake.disconnects == 1  # a stream read to its end is not a disconnect


async def test_hang_until_the_client_times_out(fake_engine) -> None:
    fake = await fake_engine("ollama", models=["m"])
    fake.default_reply = Reply(hang=True)
    with pytest.raises(asyncio.TimeoutError):
        await call(
            fake,
            "POST",
            "/api/chat",
            {"model": "m", "messages": USER},
            timeout=aiohttp.ClientTimeout(total=0.2),
        )
    assert await fake.wait_disconnects(1) == 1


async def test_hanging_request_does_not_block_stop() -> None:
    fake = FakeEngine("llamacpp")
    await fake.start()
    fake.default_reply = Reply(hang=True)
    session = aiohttp.ClientSession()
    pending = asyncio.ensure_future(session.post(fake.url + "/v1/chat/completions", json=chat()))
    await asyncio.sleep(0.1)
    await asyncio.wait_for(fake.stop(), 3)
    try:  # released at stop: a 503 if it still gets out, else a closed connection
        async with await pending as r:
            assert r.status == 503
    except aiohttp.ClientError:
        pass
    await session.close()


async def test_delay_between_chunks(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(text="abcd", chunk_chars=1, delay_s=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await call(fake, "POST", "/v1/chat/completions", chat())
    assert loop.time() - started >= 0.2


async def test_fail_after_chunks_without_streaming_is_a_500(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(fail_after_chunks=1, error_message="slot died")
    answer = await call(fake, "POST", "/v1/chat/completions", chat(stream=False))
    assert answer.status == 500 and answer.json["error"]["message"] == "slot died"


async def test_fail_after_more_chunks_than_there_are_fails_before_the_finish(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(text="abcd", fail_after_chunks=99)
    answer = await call(fake, "POST", "/v1/chat/completions", chat())
    assert joined(answer, "content") == "abcd"
    assert "error" in answer.chunks[-1] and b"[DONE]" not in answer.raw
    assert not any(c.get("choices") and c["choices"][0]["finish_reason"] for c in answer.chunks)


async def test_loading_toggles_chat(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"], loading=True)
    assert (await call(fake, "POST", "/v1/chat/completions", chat())).status == 503
    fake.loading = False
    assert (await call(fake, "POST", "/v1/chat/completions", chat())).status == 200


# -- the fault matrix's faults (tests/faults) ----------------------------------------------------


async def _raw(fake: FakeEngine, path: str, body: dict[str, Any]) -> tuple[int, bytes, str]:
    """Status, the bytes that came, and how the body ended ("" = cleanly)."""
    received, ended = b"", ""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as session:
        try:
            async with session.post(fake.url + path, json=body, headers=AV) as r:
                status = r.status
                try:
                    async for piece in r.content.iter_any():
                        received += piece
                except (aiohttp.ClientPayloadError, TimeoutError) as exc:
                    ended = type(exc).__name__
        except aiohttp.ServerDisconnectedError:
            return 0, b"", "ServerDisconnectedError"
    return status, received, ended


@pytest.mark.parametrize(
    ("kind", "path"),
    [("vllm", "/v1/chat/completions"), ("anthropic", "/v1/messages"), ("ollama", "/api/chat")],
)
@pytest.mark.parametrize("stream", [True, False])
async def test_matrix_faults(fake_engine, kind: str, path: str, stream: bool) -> None:
    fake = await fake_engine(kind, models=["m"])
    body = {"model": "m", "max_tokens": 9, "stream": stream, "messages": USER}
    terminal = (b"[DONE]", b"message_stop", b'"done":true')

    fake.default_reply = Reply(reset=True)
    assert await _raw(fake, path, body) == (0, b"", "ServerDisconnectedError")

    fake.default_reply = Reply(hang_after_chunks=1)  # some bytes, then nothing
    status, got, ended = await _raw(fake, path, body)
    assert (status, ended) == (200, "TimeoutError") and got
    assert not any(t in got for t in terminal)

    fake.default_reply = Reply(end_after_chunks=1)  # a clean end, no terminal frame
    status, got, ended = await _raw(fake, path, body)
    assert (status, ended) == (200, "") and got and not any(t in got for t in terminal)

    fake.default_reply = Reply(garbage_after_chunks=1)  # a cut frame that is not JSON
    status, got, ended = await _raw(fake, path, body)
    assert (status, ended) == (200, "") and not any(t in got for t in terminal)
    assert (b"con\n" if stream else b"\x00not json") in got

    fake.default_reply = Reply(kill_after_chunks=1)  # the connection drops, the port closes
    status, got, ended = await _raw(fake, path, body)
    assert (status, ended) == (200, "ClientPayloadError") and got
    assert fake.killed is not None
    await fake.killed
    with pytest.raises(aiohttp.ClientConnectorError):
        await call(fake, "POST", path, body, AV)
