"""Slow and idle clients (slowloris) and the connection cap, over raw sockets.

Short timeouts here; the defaults (60 s head, 60 s body, 75 s keep-alive, 1024
connections) are nginx's and say the same thing at human scale.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from modelport.config import ConfigError, parse_config
from tests.fakes import Reply
from tests.gateway_harness import until

QUICK = {"header_timeout_s": 0.5, "body_timeout_s": 0.5, "keepalive_timeout_s": 0.5}
GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
CHAT_HEAD = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
)


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


class Raw:
    """One client connection, bytes in and out, and the time it took the server to hang up."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_within(self, seconds: float) -> float:
        """Read until the server closes; how long it took (fails after `seconds`)."""
        started = time.monotonic()
        async with asyncio.timeout(seconds):
            while await self.reader.read(65536):
                pass
        return time.monotonic() - started

    async def response(self, seconds: float = 5.0) -> bytes:
        """One whole response with a Content-Length (a /health answer)."""
        async with asyncio.timeout(seconds):
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            return head + await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def connect() -> AsyncIterator[Any]:
    opened: list[Raw] = []

    async def open_to(url: str) -> Raw:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        opened.append(Raw(reader, writer))
        return opened[-1]

    yield open_to
    for raw in opened:
        raw.close()


async def test_a_slow_head_is_cut_off(gateway, connect) -> None:
    _, url = await gateway(server=QUICK)
    raw = await connect(url)
    await raw.send(b"GET /health HTTP/1.1\r\n")
    trickle = asyncio.create_task(_trickle(raw, b"X-Slow: " + b"a" * 40))
    took = await raw.closed_within(3.0)
    trickle.cancel()
    assert 0.4 <= took < 2.0


async def test_a_silent_connection_is_cut_off_after_the_header_timeout(gateway, connect) -> None:
    _, url = await gateway(server={**QUICK, "keepalive_timeout_s": 30})
    raw = await connect(url)
    assert await raw.closed_within(3.0) < 2.0  # no request at all: the head timer, not 30 s


async def test_a_slow_body_is_cut_off(gateway, connect) -> None:
    _, url = await gateway(server={**QUICK, "header_timeout_s": 30, "keepalive_timeout_s": 30})
    raw = await connect(url)
    await raw.send(CHAT_HEAD % 1000 + b'{"model": "m", ')
    trickle = asyncio.create_task(_trickle(raw, b" " * 40))
    took = await raw.closed_within(3.0)
    trickle.cancel()
    assert took < 2.0


async def test_an_idle_keep_alive_connection_is_closed(gateway, connect) -> None:
    _, url = await gateway(server={**QUICK, "header_timeout_s": 30})
    raw = await connect(url)
    for _ in range(2):  # kept alive between requests that come in time
        await raw.send(GET_HEALTH)
        assert (await raw.response()).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.2)
    assert await raw.closed_within(3.0) < 2.0


async def test_slow_clients_leave_no_open_files_behind(gateway, connect) -> None:
    gw, url = await gateway(server=QUICK)
    gc.collect()  # what earlier tests left for the collector closes now, not mid-count
    await asyncio.sleep(0.3)
    baseline = open_files()
    clients = [await connect(url) for _ in range(30)]
    for index, raw in enumerate(clients):
        if index % 3 == 1:
            await raw.send(b"GET /health HTTP/1.1\r\nHost: 127")  # a head that never ends
        elif index % 3 == 2:
            await raw.send(CHAT_HEAD % 500 + b"{")  # a body that never ends
    server = gw._runner.server if gw._runner is not None else None
    assert server is not None
    # The gateway accepts them as its loop gets to them.
    assert await until(lambda: len(server.connections) == 30, within=3.0)
    assert open_files() >= baseline + 60  # each connection: our end and the gateway's
    await asyncio.gather(*(raw.closed_within(3.0) for raw in clients))
    for raw in clients:
        raw.close()
    await asyncio.sleep(0.2)
    assert open_files() <= baseline + 2


async def test_the_cap_holds_and_a_waiting_client_is_served_when_one_leaves(
    gateway, connect
) -> None:
    gw, url = await gateway(server={"max_connections": 3, "header_timeout_s": 10})
    holders = [await connect(url) for _ in range(3)]
    for raw in holders[1:]:
        await raw.send(b"GET /health HTTP/1.1\r\n")  # mid-head, holding their place
    # The first is a keep-alive client: it is served again and again at the cap.
    for _ in range(3):
        await holders[0].send(GET_HEALTH)
        assert (await holders[0].response()).startswith(b"HTTP/1.1 200")
    waiting = await connect(url)  # the kernel completes the handshake; we do not accept
    await waiting.send(GET_HEALTH)
    with pytest.raises(TimeoutError):
        await waiting.response(seconds=0.5)
    assert gw._runner is not None and gw._runner.server is not None
    assert len(gw._runner.server.connections) == 3
    holders[1].close()
    assert (await waiting.response(seconds=3.0)).startswith(b"HTTP/1.1 200")
    assert len(gw._runner.server.connections) == 3


async def test_a_stream_longer_than_every_timeout_is_not_cut(fake_engine, gateway, connect) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    vllm.default_reply = Reply(text="slow " * 20, chunk_chars=5, delay_s=0.1)  # about 2 s
    _, url = await gateway(
        backends=[{"kind": "vllm", "url": vllm.url}],
        server={"header_timeout_s": 0.3, "body_timeout_s": 0.3, "keepalive_timeout_s": 0.3},
    )
    raw = await connect(url)
    body = b'{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    started = time.monotonic()
    await raw.send(CHAT_HEAD % len(body) + body)
    answer = b""
    async with asyncio.timeout(10):
        while b"[DONE]" not in answer:
            chunk = await raw.reader.read(65536)
            assert chunk, answer  # the gateway hung up mid-stream
            answer += chunk
    assert time.monotonic() - started > 1.0
    assert answer.count(b"slow") == 20


@pytest.mark.parametrize(
    "line",
    [
        "header_timeout_s = 0",
        "body_timeout_s = -1",
        "keepalive_timeout_s = nan",
        "max_connections = 0",
        "max_frame_mb = 0",
        "max_upstream_body_mb = -2",
    ],
)
def test_the_limits_are_checked(line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[server]\n{line}\n", env={})
    assert caught.value.key == "server." + line.split(" ")[0]
    assert caught.value.problem.startswith("expected a")  # a known key, out of range


async def _trickle(raw: Raw, data: bytes) -> None:
    for byte in data:
        await raw.send(bytes([byte]))
        await asyncio.sleep(0.1)
