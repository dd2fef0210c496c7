"""Canonical events in, OpenAI SSE bytes out, framed as OpenAI itself frames them."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from modelport.errors import (
    BackendError,
)
from modelport.types import (
    Done,
    Event,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from modelport.wire.openai.errors import encode_error
from modelport.wire.openai.finish import finish_word
from modelport.wire.openai.structs import (
    encode_json,
    usage_json,
)

JSONObject = dict[str, Any]


class StreamEncoder:
    """Canonical events in, OpenAI SSE bytes out, framed as OpenAI itself frames them."""

    __slots__ = ("_done", "_head", "_include_usage", "_index", "_sent", "_started", "_tail")

    def __init__(
        self, *, id: str, model: str, created: int | None = None, include_usage: bool = True
    ) -> None:
        stamp = int(time.time()) if created is None else created
        head = encode_json(
            {"id": id, "object": "chat.completion.chunk", "created": stamp, "model": model}
        )
        # Every chunk shares this prefix; only the choices (or usage) differ.
        self._head = b"data: " + head[:-1] + b","
        self._tail = b"\n\n"
        self._include_usage = include_usage
        self._started = False
        self._done = False
        self._index: dict[int, int] = {}  # canonical tool index -> wire index
        self._sent: set[int] = set()  # wire indices whose arguments went out

    def encode(self, event: Event) -> bytes:
        if self._done:
            return b""
        out = b""
        if not self._started:
            self._started = True
            out = self._delta({"role": "assistant", "content": ""})
        return out + self._event(event)

    def error(self, err: BackendError) -> bytes:
        """An error frame; the stream ends here, without [DONE]."""
        self._done = True
        return b"data: " + encode_error(err) + b"\n\n"

    def _event(self, event: Event) -> bytes:
        if isinstance(event, TextDelta):
            return self._delta({"content": event.text}) if event.text else b""
        if isinstance(event, ThinkingDelta):
            return self._thinking(event)
        if isinstance(event, ToolCallStart):
            return self._start(event.index, event.id, event.name)
        if isinstance(event, ToolCallDelta):
            return self._arguments(event.index, event.arguments)
        if isinstance(event, ToolCallEnd):
            return self._end(event)
        return self._finish(event)

    def _delta(self, delta: JSONObject, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return self._head + b'"choices":[' + encode_json(choice) + b"]}" + self._tail

    def _thinking(self, event: ThinkingDelta) -> bytes:
        if not event.text and not event.signature:
            return b""
        delta: JSONObject = {"reasoning_content": event.text}
        if event.signature:
            delta["reasoning_signature"] = event.signature
        return self._delta(delta)

    def _wire_index(self, index: int) -> int:
        """Wire indices count from 0 in order of appearance, whatever the source numbered."""
        wire = self._index.get(index)
        if wire is None:
            wire = self._index[index] = len(self._index)
        return wire

    def _start(self, index: int, id: str, name: str) -> bytes:
        if index in self._index:
            return b""
        function = {"name": name, "arguments": ""}
        call = {
            "index": self._wire_index(index),
            "id": id,
            "type": "function",
            "function": function,
        }
        return self._delta({"tool_calls": [call]})

    def _arguments(self, index: int, arguments: str) -> bytes:
        if not arguments:
            return b""
        wire = self._wire_index(index)
        self._sent.add(wire)
        return self._delta({"tool_calls": [{"index": wire, "function": {"arguments": arguments}}]})

    def _end(self, event: ToolCallEnd) -> bytes:
        """Nothing, unless the arguments never went out as deltas (a whole call at once)."""
        out = self._start(event.index, event.id, event.name)
        if self._wire_index(event.index) not in self._sent and event.arguments:
            out += self._arguments(event.index, encode_json(event.arguments).decode())
        return out

    def _finish(self, done: Done) -> bytes:
        self._done = True
        out = self._delta({}, finish_word(done.finish_reason, done.raw_reason))
        if self._include_usage and done.usage is not None:
            usage = encode_json(usage_json(done.usage))
            out += self._head + b'"choices":[],"usage":' + usage + b"}" + self._tail
        return out + b"data: [DONE]\n\n"


def encode_stream(events: Iterable[Event], *, id: str, model: str) -> bytes:
    """A whole event list as one SSE body."""
    encoder = StreamEncoder(id=id, model=model)
    return b"".join(encoder.encode(e) for e in events)
