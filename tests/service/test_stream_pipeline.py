"""The stream pipeline's guarantees, in process (modelport/service/pipeline.py).

The gateway tests cover them end to end; these pin the ones a timing change would break
quietly: one write per upstream read, a deadline that never cancels the consumer's own
time, and a body closed unread that still ends its request exactly once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from modelport.errors import ProtocolError
from modelport.service.attempt import Attempt, Deadline
from modelport.service.pipeline import RelaySource, StreamBody, TranscodedSource
from modelport.types import Done, Event, FinishReason, TextDelta, Usage, WireFormat
from modelport.wire import anthropic, openai


def attempt(format: WireFormat = WireFormat.OPENAI) -> Attempt:
    return Attempt(format, "chat", "req-1", "")


class Ends:
    """Counts the request's end, as the service's `_end` would be called."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


async def test_a_burst_of_events_goes_out_as_one_write() -> None:
    finished = asyncio.Event()

    async def events() -> AsyncIterator[Event]:
        for i in range(5):
            yield TextDelta(f"t{i}")  # one upstream read brought five events
        await finished.wait()
        yield TextDelta("late")
        yield Done(FinishReason.STOP, Usage(3, 6))

    stream = events()
    first = await anext(stream)
    at = attempt()
    encoder = openai.StreamEncoder(id="chatcmpl-1", model="m")
    source = TranscodedSource(first, stream, encoder, at)
    burst = await source.__anext__()
    assert [f"t{i}" in burst.decode() for i in range(5)] == [True] * 5
    finished.set()
    rest = await source.__anext__()
    assert b"late" in rest and rest.endswith(b"data: [DONE]\n\n")
    with pytest.raises(StopAsyncIteration):
        await source.__anext__()
    assert at.usage == Usage(3, 6)
    await source.aclose()


async def test_the_deadline_never_cancels_the_consumers_own_time() -> None:
    async def rest() -> AsyncIterator[bytes]:
        yield b"two"

    at, ends = attempt(), Ends()
    deadline = Deadline(asyncio.get_running_loop().time() + 0.05, 0.05)
    body = StreamBody(RelaySource(b"one", rest()), at, deadline, ends)
    assert await anext(body) == b"one"
    await asyncio.sleep(0.1)  # "writing to the client" as the deadline passes: not cancelled
    frame = await anext(body)
    assert json.loads(frame.removeprefix(b"data: "))["error"]["code"] == "timeout"
    with pytest.raises(StopAsyncIteration):
        await anext(body)
    assert (at.error, ends.calls) == ("TimedOut", 1)


async def test_the_deadline_ends_a_wait_for_the_upstream_with_an_error_frame() -> None:
    async def silent() -> AsyncIterator[bytes]:
        await asyncio.sleep(10)
        yield b"never"

    at, ends = attempt(WireFormat.ANTHROPIC), Ends()
    deadline = Deadline(asyncio.get_running_loop().time() + 0.05, 0.05)
    body = StreamBody(RelaySource(b"", silent()), at, deadline, ends)
    frame = await asyncio.wait_for(anext(body), 1.0)
    assert frame.startswith(b"event: error")
    await body.aclose()
    assert (at.error, ends.calls) == ("TimedOut", 1)


async def test_a_failure_mid_stream_ends_with_an_error_frame_never_a_success() -> None:
    async def failing() -> AsyncIterator[Event]:
        yield TextDelta("part")
        raise ProtocolError("the engine went away")

    stream = failing()
    first = await anext(stream)
    at, ends = attempt(WireFormat.ANTHROPIC), Ends()
    encoder = anthropic.StreamEncoder(id="msg_1", model="m")
    source = TranscodedSource(first, stream, encoder, at)
    deadline = Deadline(asyncio.get_running_loop().time() + 5, 5)
    chunks = [chunk async for chunk in StreamBody(source, at, deadline, ends)]
    assert b"part" in chunks[0]
    assert chunks[-1].startswith(b"event: error")
    assert not any(b"message_stop" in chunk for chunk in chunks)
    assert (at.error, ends.calls) == ("ProtocolError", 1)


async def test_a_body_closed_unread_stops_the_producer_and_ends_once() -> None:
    stopped = asyncio.Event()

    async def endless() -> AsyncIterator[Event]:
        try:
            while True:
                yield TextDelta("x")
                await asyncio.sleep(0.01)
        finally:
            stopped.set()

    stream = endless()
    first = await anext(stream)
    at, ends = attempt(), []

    async def end() -> None:
        ends.append(stopped.is_set())

    encoder = openai.StreamEncoder(id="chatcmpl-1", model="m")
    source = TranscodedSource(first, stream, encoder, at)
    deadline = Deadline(asyncio.get_running_loop().time() + 5, 5)
    body = StreamBody(source, at, deadline, end)
    await asyncio.sleep(0.03)  # the producer reads ahead meanwhile
    await body.aclose()
    await body.aclose()
    assert ends == [True]  # once, and the engine's stream had stopped by then
    assert at.error == "Cancelled"
    with pytest.raises(StopAsyncIteration):
        await anext(body)
