"""The fault matrix's faults (tests/faults), played by FakeEngine once a reply's headers are
out: a stall, a garbled or cut frame, a clean end with no terminal frame, the engine dying.

Each fires once `N` content chunks have gone (for a whole body: halfway through it). What a
dying engine looks like (the connection drops mid-body, the port refuses from then on) is
what kill -9 of llama-server does to a client.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from .core import Reply

if TYPE_CHECKING:
    from .engine import FakeEngine


def body_fault(reply: Reply) -> tuple[str, int] | None:
    """The matrix fault a reply carries once its headers are out: (kind, after N chunks)."""
    for kind, after in (
        ("hang", reply.hang_after_chunks),
        ("garbage", reply.garbage_after_chunks),
        ("end", reply.end_after_chunks),
        ("kill", reply.kill_after_chunks),
    ):
        if after is not None:
            return kind, after
    return None


async def break_stream(
    fake: FakeEngine, request: web.Request, resp: web.StreamResponse, fault: str, wire: str
) -> web.StreamResponse:
    """One mid-stream fault, once the headers and some chunks are out."""
    if fault == "hang":
        await fake.hang()
        return resp
    if fault == "kill":
        return kill(fake, request, resp)
    if fault == "garbage":  # a frame cut short: SSE for the HTTP wires, a line for Ollama's
        cut = (
            b'{"model":"m","message":{"con\n'
            if wire == "ollama"
            else b'data: {"choices":[{"delta":{"con\n\n'
        )
        await resp.write(cut)
    await resp.write_eof()  # "end": a clean end of the body with no terminal frame
    return resp


async def whole_with_fault(
    fake: FakeEngine, request: web.Request, reply: Reply, body: bytes
) -> web.StreamResponse:
    """A whole body's fault: the status line and headers go, then half the body, then the
    fault (a stall, the engine dying, a garbled or cut body)."""
    fault = body_fault(reply)
    assert fault is not None
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    if fault[0] == "hang":
        await fake.hang()
        return resp
    if fault[0] == "kill":
        return kill(fake, request, resp)
    if fault[0] == "garbage":
        await resp.write(b"\x00not json")
    await resp.write_eof()
    return resp


def kill(fake: FakeEngine, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
    """The engine process dies mid-answer: this connection drops, and the listening socket
    closes, so later connections are refused (as after kill -9 of llama-server)."""
    fake.drop(request, resp)
    fake.killed = asyncio.ensure_future(fake.stop())
    return resp
