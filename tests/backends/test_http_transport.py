"""The one transport map: every way a connection fails reaches backends as our own error.

Each case is a real socket on 127.0.0.1 that misbehaves at one point of the exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from modelport.backends.http import HTTPClient, iter_body
from modelport.errors import BackendError, ProtocolError, TimedOut, Unreachable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 1000\r\n\r\n"


def _decode_error(status: int, body: bytes, **kw: object) -> BackendError:
    return BackendError(f"status {status}")


async def _read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def _cut_after_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(HEAD + b"data: {}\n\n")
    await writer.drain()
    writer.transport.abort()  # a reset in the middle of the promised 1000 bytes


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await asyncio.sleep(30)


async def _silent_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(HEAD + b"data: {}\n\n")
    await writer.drain()
    await asyncio.sleep(30)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []
    handlers: set[asyncio.Task[None]] = set()

    async def start(handler: Handler) -> str:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_refused_is_unreachable(refused_url: str) -> None:
    client = HTTPClient(refused_url, backend_id="b")
    try:
        with pytest.raises(Unreachable, match="cannot connect") as caught:
            await client.fetch("GET", "/x", decode_error=_decode_error)
        assert caught.value.backend_id == "b"
    finally:
        await client.aclose()


async def test_no_answer_is_timed_out(serve: Callable[[Handler], Awaitable[str]]) -> None:
    client = HTTPClient(await serve(_silent), backend_id="b")
    try:
        with pytest.raises(TimedOut, match="no answer"):
            await client.fetch("GET", "/x", decode_error=_decode_error, time_limit=0.3)
    finally:
        await client.aclose()


async def test_reset_while_reading_whole_body_is_protocol_error(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    client = HTTPClient(await serve(_cut_after_headers), backend_id="b")
    try:
        with pytest.raises(ProtocolError, match="answer broke off") as caught:
            await client.fetch("GET", "/x", decode_error=_decode_error)
        assert caught.value.backend_id == "b"
        # the engine's failure, not the request's: the next candidate may answer (issue 11
        # fault matrix: an engine killed halfway through a whole body)
        assert caught.value.retryable
    finally:
        await client.aclose()


async def test_reset_mid_stream_is_protocol_error(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    client = HTTPClient(await serve(_cut_after_headers), backend_id="b")
    try:
        response = await client.open("GET", "/x", decode_error=_decode_error)
        got: list[bytes] = []
        with pytest.raises(ProtocolError, match="stream broke off"):
            async for chunk in iter_body(response, "b"):
                got.append(chunk)
        response.close()
        assert b"".join(got) == b"data: {}\n\n"  # what arrived before the reset is kept
    finally:
        await client.aclose()


async def test_stall_mid_stream_is_timed_out(serve: Callable[[Handler], Awaitable[str]]) -> None:
    client = HTTPClient(await serve(_silent_mid_body), backend_id="b", read_timeout=0.3)
    try:
        response = await client.open("GET", "/x", decode_error=_decode_error)
        with pytest.raises(TimedOut, match="mid-stream"):
            async for _ in iter_body(response, "b"):
                pass
        response.close()
    finally:
        await client.aclose()


async def test_probe_maps_the_same_way(refused_url: str) -> None:
    client = HTTPClient(refused_url, backend_id="b")
    try:
        with pytest.raises(Unreachable, match="cannot connect"):
            await client.probe("/health")
    finally:
        await client.aclose()
