"""Malformed HTTP (issue 11, point 5): one log line, no header values, nothing echoed.

Raw sockets, because no HTTP client will send these bytes. Each request carries the
client's key in an Authorization header; aiohttp's default handling logged a traceback
quoting the raw bytes (key included) and echoed them in the 400's body.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import pytest

from tests.gateway.helpers import backend, chat_requests

CLIENT_KEY = "sk-client-5ecret0123456789"
AUTH = f"Authorization: Bearer {CLIENT_KEY}"

MALFORMED = {
    # bare LF line endings (what a naive client or a mangling proxy sends)
    "bare-lf": f"GET /v1/models HTTP/1.1\nHost: localhost\n{AUTH}\n\n".encode(),
    # a request line that is not one
    "bad-request-line": f"GET /v1/models HTTP/9 9 9\r\n{AUTH}\r\n\r\n".encode(),
    # a method with a character no method has
    "bad-method": f"G@T /v1/models HTTP/1.1\r\n{AUTH}\r\n\r\n".encode(),
    # a header line over aiohttp's 8190-byte limit
    "oversized-header": (f"GET /v1/models HTTP/1.1\r\n{AUTH}\r\nX-Big: " + "a" * 9000).encode()
    + b"\r\n\r\n",
    # smuggling shape: Content-Length and Transfer-Encoding together
    "cl-and-te": (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n{AUTH}\r\n"
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ).encode(),
    # a chunk size that is not hex, with the key in the body
    "bad-chunk": (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n{AUTH}\r\n"
        f"Transfer-Encoding: chunked\r\n\r\nzz\r\n{CLIENT_KEY}\r\n0\r\n\r\n"
    ).encode(),
}


async def _send(url: str, raw: bytes) -> bytes:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_request_gets_one_log_line_and_no_echo(
    fake_engine, gateway, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(
        backends=[backend("vllm", vllm)], env={"MODELPORT_API_KEY": CLIENT_KEY}
    )
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    answer = await _send(url, MALFORMED[case])

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0], answer
    assert CLIENT_KEY.encode() not in answer
    assert b"Authorization" not in answer and b"/v1/" not in body, answer
    assert body == b"400 Bad Request: malformed HTTP request (" + body[41:-2] + b")\n", body

    lines = [r for r in caplog.records if r.name.startswith(("aiohttp", "modelport"))]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    (line,) = lines
    assert line.exc_info is None and "\n" not in line.getMessage(), line.getMessage()
    assert "malformed HTTP request from 127.0.0.1" in line.getMessage()
    assert CLIENT_KEY not in caplog.text
    assert "Authorization" not in caplog.text
    assert not chat_requests(vllm)  # nothing reached an engine


async def test_the_connection_is_closed_and_the_gateway_keeps_serving(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    await _send(url, MALFORMED["bare-lf"])  # read() returned: the gateway closed it
    host = urlsplit(url).netloc
    request = f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    answer = await _send(url, request.encode())
    assert answer.startswith(b"HTTP/1.1 200 "), answer
