"""MockBackend: scripted events and each fault it can inject."""

from __future__ import annotations

import time

import pytest

from modelport import (
    ChatRequest,
    Done,
    FinishReason,
    Message,
    MockBackend,
    Overloaded,
    ProtocolError,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from modelport.backends.base import Backend

REQUEST = ChatRequest(model="mock-model", messages=(Message.user("hi"),))


async def test_plays_the_script_and_collects() -> None:
    script = [
        TextDelta("Hi"),
        ToolCallStart(0, "call_1", "lookup"),
        ToolCallEnd(0, "call_1", "lookup", {"q": "x"}),
        Done(FinishReason.TOOL_CALLS, Usage(4, 2), "tool_calls"),
    ]
    backend = MockBackend(script)
    assert isinstance(backend, Backend)
    assert [e async for e in backend.stream(REQUEST)] == script
    response = await backend.chat(REQUEST)
    assert response.message.text == "Hi"
    assert response.message.tool_calls[0].arguments == {"q": "x"}
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.usage == Usage(4, 2)
    assert backend.requests == [REQUEST, REQUEST]


async def test_fail_before_the_stream() -> None:
    backend = MockBackend(fail_before=Overloaded("busy"))
    with pytest.raises(Overloaded):
        [e async for e in backend.stream(REQUEST)]


async def test_drop_after_n_events() -> None:
    backend = MockBackend([TextDelta("a"), TextDelta("b"), Done(FinishReason.STOP)], drop_after=1)
    seen = []
    with pytest.raises(ProtocolError, match="after 1 events"):
        async for event in backend.stream(REQUEST):
            seen.append(event)
    assert seen == [TextDelta("a")]
    with pytest.raises(ProtocolError):
        await backend.chat(REQUEST)


async def test_delay_per_event_and_cancel_count() -> None:
    backend = MockBackend([TextDelta("a")] * 5 + [Done(FinishReason.STOP)], delay_s=0.02)
    started = time.perf_counter()
    stream = backend.stream(REQUEST)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert time.perf_counter() - started >= 0.02
    assert backend.cancelled == 1


async def test_not_ready() -> None:
    health = await MockBackend(ready=False).health()
    assert (health.alive, health.ready) == (True, False)
    assert (await MockBackend().health()).ready
