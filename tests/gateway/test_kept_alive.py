"""Back-to-back requests through the gateway to an engine that closes after a stream.

llama-server closes its connection right after a streamed answer while announcing
keep-alive (docs/wire.md); the request that took that connection from the gateway's pool
failed: a 502 with one backend, a needless fallback with two. The fake llamacpp engine
closes the same way. Every dialect's path is here: relayed (OpenAI chat, Anthropic
Messages) and transcoded (Ollama's /api/chat), streamed and whole in turn.
"""

from __future__ import annotations

import aiohttp

from tests.fakes import Reply
from tests.gateway.helpers import HI, backend, chat_requests

TEXT = "one two three"


def _body(path: str, stream: bool) -> dict[str, object]:
    body: dict[str, object] = {"model": "gemma", "messages": HI, "stream": stream}
    if path == "/v1/messages":
        body["max_tokens"] = 16
    return body


async def _ask(session: aiohttp.ClientSession, url: str, path: str, stream: bool) -> str:
    async with session.post(url + path, json=_body(path, stream)) as response:
        text = await response.text()
        assert response.status == 200, text
        return response.headers.get("x-modelport-backend", "")


async def test_alternating_streamed_and_whole_requests_never_fail(fake_engine, gateway) -> None:  # type: ignore[no-untyped-def]
    llama = await fake_engine("llamacpp", models=["gemma"])
    llama.default_reply = Reply(text=TEXT, chunk_chars=4)
    # Its close comes a little after the last chunk, as when llama-server's HTTP thread runs
    # late on a busy machine: the next request is certain to take the connection first.
    llama.close_after_stream_s = 0.1
    spare = await fake_engine("llamacpp", models=["gemma"])  # a fallback must not be needed
    _gw, url = await gateway(
        backends=[
            backend("llamacpp", llama, name="llama", priority=5),
            backend("llamacpp", spare, name="spare"),
        ]
    )
    paths = ("/v1/chat/completions", "/v1/messages", "/api/chat")
    served: set[str] = set()
    async with aiohttp.ClientSession() as session:
        for turn in range(24):
            served.add(await _ask(session, url, paths[turn % 3], stream=turn % 2 == 0))
    assert served == {f"llamacpp:{llama.url}"}  # was: 502s, or the spare's answers
    assert len(chat_requests(llama)) == 24  # each reached the engine once
    assert not chat_requests(spare)
