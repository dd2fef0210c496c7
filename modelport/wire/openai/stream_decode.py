"""OpenAI stream chunks in, canonical events out (the hot path: one call per token)."""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.errors import (
    ProtocolError,
)
from modelport.types import (
    Done,
    Event,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from modelport.wire.arguments import parse_arguments
from modelport.wire.ids import mint_tool_id
from modelport.wire.openai.errors import payload_error
from modelport.wire.openai.finish import finish_reason_from, matched_stop
from modelport.wire.openai.structs import (
    CHUNK,
    StreamChoice,
    WireCall,
    encode_json,
    usage_from,
)
from modelport.wire.sse import Frame, SSEDecoder


class _OpenCall:
    """A tool call being assembled from fragments; Start waits until its name is known."""

    __slots__ = ("arguments", "id", "name", "started")

    def __init__(self, id: str | None) -> None:
        self.id = id or mint_tool_id("call_")
        self.name: str | None = None
        self.arguments: list[str] = []
        self.started = False


class StreamDecoder:
    """OpenAI stream chunks in, canonical events out; feed one SSE frame at a time."""

    __slots__ = (
        "_calls",
        "_done",
        "_finish",
        "_last_index",
        "_stop_sequence",
        "_usage",
        "id",
        "model",
        "usage_only",
    )

    def __init__(self) -> None:
        self.usage_only = False  # the last chunk had `choices: []` and usage: include_usage's
        self.id: str | None = None
        self.model: str | None = None
        self._calls: dict[int, _OpenCall] = {}
        self._last_index: int | None = None
        self._finish: str | None = None
        self._stop_sequence: str | None = None
        self._usage: Usage | None = None
        self._done = False

    def feed(self, frame: Frame) -> list[Event]:
        self.usage_only = False
        data = frame.data
        if frame.event == "error":  # some engines name their error frames
            raise payload_error(_json_or_text(data), data)
        if self._done:
            return []
        if data == "[DONE]":
            if self._finish is None:
                raise ProtocolError("stream sent [DONE] without a finish_reason")
            return self._finish_events()
        try:
            chunk = CHUNK.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if not data.strip():  # an empty keep-alive `data:` line
                return []
            raise ProtocolError(f"unreadable stream chunk: {exc}", raw=data) from None
        if chunk.error is not None:
            raise payload_error(chunk.error, data)
        if self.id is None:
            self.id = chunk.id
        if self.model is None:
            self.model = chunk.model
        if chunk.usage is not None:
            self._usage = usage_from(chunk.usage)
            self.usage_only = chunk.choices == []
        events: list[Event] = []
        for choice in chunk.choices or ():
            if not choice.index:
                self._choice(choice, events)
        return events

    def close(self) -> list[Event]:
        """At end of input: the final Done if a finish was seen, else the stream was cut."""
        if self._done:
            return []
        if self._finish is None:
            raise ProtocolError("stream ended without a finish")
        return self._finish_events()

    def _choice(self, choice: StreamChoice, events: list[Event]) -> None:
        delta = choice.delta
        if delta is not None:
            thinking = delta.reasoning_content or delta.reasoning
            if thinking or delta.reasoning_signature:
                events.append(ThinkingDelta(thinking or "", delta.reasoning_signature))
            text = delta.content or delta.refusal
            if text:
                events.append(TextDelta(text))
            if delta.tool_calls:
                for fragment in delta.tool_calls:
                    self._fragment(fragment, events)
        if choice.finish_reason and self._finish is None:
            self._finish = choice.finish_reason
            self._stop_sequence = matched_stop(choice.finish_reason, choice.stop_reason)
            self._end_calls(events)

    def _fragment(self, fragment: WireCall, events: list[Event]) -> None:
        index = self._index_of(fragment)
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _OpenCall(fragment.id)
        function = fragment.function
        if function is None:
            return
        if call.name is None and function.name:
            call.name = function.name
        arguments = function.arguments
        if isinstance(arguments, dict):
            arguments = encode_json(arguments).decode()
        if arguments:
            call.arguments.append(arguments)
        if not call.started and call.name is not None:
            call.started = True
            events.append(ToolCallStart(index, call.id, call.name))
            if call.arguments:
                events.append(ToolCallDelta(index, "".join(call.arguments)))
        elif call.started and arguments:
            events.append(ToolCallDelta(index, arguments))

    def _index_of(self, fragment: WireCall) -> int:
        """The fragment's index; engines that omit it mean a new call when the id is new."""
        index = fragment.index
        if index is None:
            known = {c.id for c in self._calls.values()}
            if (fragment.id and fragment.id not in known) or self._last_index is None:
                index = len(self._calls)
            else:
                index = self._last_index
        self._last_index = index
        return index

    def _end_calls(self, events: list[Event]) -> None:
        for index in sorted(self._calls):
            call = self._calls[index]
            if call.name is None:
                raise ProtocolError(f"tool call at index {index} has no function name")
            arguments = parse_arguments("".join(call.arguments), call.name)
            events.append(ToolCallEnd(index, call.id, call.name, arguments))
        self._calls.clear()

    def _finish_events(self) -> list[Event]:
        events: list[Event] = []
        self._end_calls(events)
        raw = self._finish
        events.append(Done(finish_reason_from(raw), self._usage, raw, self._stop_sequence))
        self._done = True
        return events


def decode_stream(body: bytes) -> list[Event]:
    """A whole SSE body (a test capture, a buffered reply) as events."""
    framer = SSEDecoder()
    decoder = StreamDecoder()
    events: list[Event] = []
    for frame in [*framer.feed(body), *framer.close()]:
        events.extend(decoder.feed(frame))
    events.extend(decoder.close())
    return events


def _json_or_text(data: str) -> Any:
    try:
        value = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data
    return value.get("error", value) if isinstance(value, dict) else value
