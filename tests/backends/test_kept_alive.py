"""A kept-alive connection the engine already closed: the request goes again, on a new one.

llama-server closes its connection right after a streamed answer while its headers say
`Keep-Alive` (docs/wire.md); the next request that takes that connection from the pool met a
closed socket ("Server disconnected") and failed. HTTPClient now sends such a request once
more on a new connection, and only then: never on a fresh connection, never after a byte of
an answer. The raw servers below misbehave at exactly one point; the fake llama-server
plays the real one's close.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from modelport.backends import connect
from modelport.backends.http import HTTPClient
from modelport.errors import BackendError, Unreachable
from modelport.types import ChatRequest, Message, TextDelta
from tests.fakes import Reply

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

# cpp-httplib's headers for a whole answer (llama-server b11434, docs/wire.md).
OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: 2\r\nKeep-Alive: timeout=5, max=100\r\n\r\n{}"
)


def _decode_error(status: int, body: bytes, **kw: object) -> BackendError:
    return BackendError(f"status {status}")


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    await reader.readexactly(int(length.group(1)) if length else 0)


async def _wait_for_next_request(reader: asyncio.StreamReader) -> None:
    """Until the client's next request starts to arrive (none of it is read as a request):
    the close that follows is then certain to meet it, as on a real engine it can."""
    await reader.read(1)


async def _answer_then_close_unread(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    # A connection the engine is done with though it said keep-alive: the next request
    # arrives on a socket nobody reads any more.
    await _read_request(r)
    w.write(OK)
    await w.drain()
    await _wait_for_next_request(r)


async def _answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    while True:
        await _read_request(r)
        w.write(OK)
        await w.drain()


async def _close_at_once(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await _wait_for_next_request(r)  # a fresh connection dropped with no answer


async def _answer_then_half_an_answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await _read_request(r)
    w.write(OK)
    await w.drain()
    await _read_request(r)  # the engine read this one and began to answer
    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    await w.drain()


class Server:
    """A raw HTTP server on 127.0.0.1 whose n-th connection runs the n-th handler (the last
    one for any after), counting the connections it accepted."""

    def __init__(self, *handlers: Handler) -> None:
        self.handlers = handlers
        self.connections = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        handler = self.handlers[min(self.connections, len(self.handlers) - 1)]
        self.connections += 1
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[tuple[Server, HTTPClient]]]]:
    made: list[tuple[Server, HTTPClient]] = []

    async def start(*handlers: Handler) -> tuple[Server, HTTPClient]:
        server = Server(*handlers)
        client = HTTPClient(await server.start(), backend_id="b")
        made.append((server, client))
        return server, client

    yield start
    for server, client in made:
        await client.aclose()
        await server.stop()


async def _post(client: HTTPClient) -> bytes:
    return await client.fetch("POST", "/v1/chat/completions", body={}, decode_error=_decode_error)


async def test_a_request_on_a_closed_kept_alive_connection_goes_again_on_a_new_one(
    serve: Callable[..., Awaitable[tuple[Server, HTTPClient]]],
) -> None:
    server, client = await serve(_answer_then_close_unread, _answer)
    assert await _post(client) == b"{}"
    assert await _post(client) == b"{}"  # was: Unreachable "Server disconnected"
    assert server.connections == 2
    # The one new connection served that request alone; the pool goes on as usual.
    assert await _post(client) == b"{}"
    assert await _post(client) == b"{}"
    assert server.connections == 3


async def test_a_fresh_connection_dropped_before_an_answer_is_not_retried(
    serve: Callable[..., Awaitable[tuple[Server, HTTPClient]]],
) -> None:
    server, client = await serve(_close_at_once)
    with pytest.raises(Unreachable, match="Server disconnected"):
        await _post(client)
    assert server.connections == 1


async def test_no_retry_after_a_byte_of_the_answer(
    serve: Callable[..., Awaitable[tuple[Server, HTTPClient]]],
) -> None:
    server, client = await serve(_answer_then_half_an_answer, _answer)
    assert await _post(client) == b"{}"
    with pytest.raises(BackendError):
        await _post(client)
    assert server.connections == 1


def _request() -> ChatRequest:
    return ChatRequest(model="gemma.gguf", messages=[Message.user("Hi")])


async def test_back_to_back_requests_to_llama_server_never_fail(fake_engine) -> None:  # type: ignore[no-untyped-def]
    # The fake closes after each streamed answer as llama-server does; every request after
    # one took the dead connection and failed ("Server disconnected"), 20 of 20.
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(text="one two three", chunk_chars=4)
    backend = connect(f"llamacpp:{fake.url}")
    try:
        for turn in range(20):
            if turn % 2:
                answer = await backend.chat(_request())
                assert answer.message.text == "one two three"
            else:
                events = [e async for e in backend.stream(_request())]
                text = "".join(e.text for e in events if isinstance(e, TextDelta))
                assert text == "one two three"
    finally:
        await backend.aclose()
    assert len(fake.requests_to("/v1/chat/completions")) == 20  # each reached the engine once
