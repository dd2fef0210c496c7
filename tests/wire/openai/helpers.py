"""Shared by the OpenAI codec tests: decode an SSE body fed to the decoder one byte at a time."""

from __future__ import annotations

from modelport.types import Event
from modelport.wire import openai
from modelport.wire.sse import SSEDecoder


def bytewise_events(body: bytes) -> list[Event]:
    framer = SSEDecoder()
    decoder = openai.StreamDecoder()
    events: list[Event] = []
    for i in range(len(body)):
        for frame in framer.feed(body[i : i + 1]):
            events += decoder.feed(frame)
    for frame in framer.close():
        events += decoder.feed(frame)
    return events + decoder.close()
