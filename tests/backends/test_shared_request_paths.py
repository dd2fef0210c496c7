"""The request paths every backend now shares (HTTPClient.answer, open_relay): what changed.

AnthropicBackend used to scrub a malformed answer's error without naming itself, and to
forward a relay body that was JSON but not an object; it now goes through the same paths
as the other backends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from modelport import ChatRequest, InvalidRequest, Message, ProtocolError, WireFormat
from modelport.backends.anthropic import AnthropicBackend
from tests.fakes import Reply

KEY = "sk-ant-test"


@pytest.fixture
async def serve_text() -> AsyncIterator[Callable[[str, bytes], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(path: str, body: bytes) -> str:
        async def answer(request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        app = web.Application()
        app.router.add_post(path, answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_anthropic_malformed_answer_names_the_backend(serve_text) -> None:  # type: ignore[no-untyped-def]
    url = await serve_text("/v1/messages", b"not json at all")
    backend = AnthropicBackend(url, api_key=KEY)
    request = ChatRequest(model="claude-x", messages=(Message.user("hi"),))
    try:
        with pytest.raises(ProtocolError) as caught:
            await backend.chat(request)
    finally:
        await backend.aclose()
    assert caught.value.backend_id == backend.id


async def test_anthropic_relay_refuses_a_body_that_is_not_an_object(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("anthropic", models=["claude-x"], api_key=KEY)
    fake.default_reply = Reply(text="never sent")
    backend = AnthropicBackend(fake.url, api_key=KEY)
    try:
        with pytest.raises(InvalidRequest, match="JSON object") as caught:
            await backend.relay(WireFormat.ANTHROPIC, b"[1, 2]")
    finally:
        await backend.aclose()
    assert caught.value.backend_id == backend.id
    assert fake.requests == []  # refused before any I/O, as OpenAICompatBackend does
