"""Shared by the Responses codec tests: encode event lists, decode SSE bodies."""

from __future__ import annotations

from collections.abc import Iterable

from modelport.types import ChatRequest, Event
from modelport.wire import responses
from modelport.wire.sse import SSEDecoder


def encode_events(
    events: Iterable[Event], request: ChatRequest | None = None, id: str = "resp_x"
) -> bytes:
    encoder = responses.StreamEncoder(id=id, model="m", request=request, created=1)
    return b"".join(encoder.encode(e) for e in events)


def decode_body(body: bytes, *, bytewise: bool = False) -> list[Event]:
    framer = SSEDecoder()
    decoder = responses.StreamDecoder()
    events: list[Event] = []
    step = 1 if bytewise else max(1, len(body))
    for i in range(0, len(body), step):
        for frame in framer.feed(body[i : i + step]):
            events += decoder.feed(frame)
    for frame in framer.close():
        events += decoder.feed(frame)
    return events + decoder.close()
