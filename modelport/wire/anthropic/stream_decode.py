"""Anthropic stream frames in, canonical events out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from modelport.errors import (
    BackendError,
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
from modelport.wire.anthropic.constants import (
    REDACTED_PREFIX,
    json_decode,
)
from modelport.wire.anthropic.errors import decode_stream_error
from modelport.wire.anthropic.finish import stop_reason_to_finish
from modelport.wire.ids import mint_tool_id
from modelport.wire.sse import Frame, SSEDecoder

# Frames are decoded into one flat typed struct: every event kind fits,
# fields it lacks stay None, and msgspec skips what we do not read.


class WireUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    output_tokens_details: dict[str, Any] | None = None


class WireMessage(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: WireUsage | None = None


class WireBlock(msgspec.Struct):
    type: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None


class WireDelta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None


class WireFrame(msgspec.Struct):
    type: str | None = None
    index: int | None = None
    delta: WireDelta | None = None
    content_block: WireBlock | None = None
    message: WireMessage | None = None
    usage: WireUsage | None = None
    error: Any = None


_decode_frame = msgspec.json.Decoder(WireFrame).decode

_KNOWN_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    }
)


class _OpenTool:
    """A tool_use block between its start and stop: argument fragments gather here."""

    __slots__ = ("id", "index", "input", "name", "parts")

    def __init__(self, index: int, id: str, name: str, input: Any) -> None:
        self.index = index
        self.id = id
        self.name = name
        self.input = input
        self.parts: list[str] = []


class StreamDecoder:
    """Anthropic stream frames in, canonical events out; Done comes with message_stop."""

    usage_only = False  # Anthropic has no usage-only frame to keep from a client

    def __init__(self, *, backend_id: str | None = None) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self._backend_id = backend_id
        self._tools: dict[int, _OpenTool] = {}  # by block index
        self._other_blocks: set[int] = set()  # server-tool blocks whose deltas we skip
        self._tool_count = 0
        self._usage: dict[str, int] = {}
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._done = False

    def feed(self, frame: Frame) -> list[Event]:
        """One SSE frame: its `event:` name and `data:` payload."""
        event, data = frame.event, frame.data
        if event == "error":
            raise self._stream_error(data)
        if self._done:
            return []
        try:
            wire = _decode_frame(data)
        except msgspec.ValidationError:
            return self._odd_frame(event, data)
        except msgspec.DecodeError:
            if data.strip() == "[DONE]" or (event is not None and event not in _KNOWN_EVENTS):
                return []  # vLLM ends some streams with it; unknown events may carry anything
            raise self._broken(f"stream event {event!r} is not valid JSON", data) from None
        kind = wire.type or event
        if kind == "content_block_delta":
            return self._delta(wire)
        if kind == "content_block_start":
            return self._block_start(wire)
        if kind == "content_block_stop":
            return self._block_stop(wire)
        if kind == "message_start":
            self._message_start(wire)
        elif kind == "message_delta":
            self._message_delta(wire)
        elif kind == "message_stop":
            return self._finish()
        elif kind == "error":
            raise self._stream_error(data)
        return []  # ping and events we do not know

    def close(self) -> list[Event]:
        """End of the byte stream: without message_stop this was not a complete answer."""
        if not self._done:
            raise self._broken("stream ended without message_stop")
        return []

    def _delta(self, frame: WireFrame) -> list[Event]:
        delta = frame.delta
        if delta is None:
            return []
        kind = delta.type
        if kind == "text_delta":
            return [TextDelta(delta.text)] if delta.text is not None else []
        if kind == "input_json_delta":
            return self._arguments(frame.index, delta.partial_json or "")
        if kind == "thinking_delta":
            return [ThinkingDelta(delta.thinking)] if delta.thinking is not None else []
        if kind == "signature_delta" and delta.signature:
            return [ThinkingDelta("", delta.signature)]
        return []  # citations_delta and other kinds we do not model

    def _arguments(self, index: int | None, fragment: str) -> list[Event]:
        tool = self._tools.get(index) if index is not None else None
        if tool is None:
            if index in self._other_blocks:
                return []
            raise self._broken(
                f"input_json_delta for block {index}, which is not an open tool_use block"
            )
        if not fragment:
            return []
        tool.parts.append(fragment)
        return [ToolCallDelta(tool.index, fragment)]

    def _block_start(self, frame: WireFrame) -> list[Event]:
        block = frame.content_block
        if block is None or frame.index is None:
            raise self._broken("content_block_start without index or content_block")
        kind = block.type
        if kind == "text":
            return [TextDelta(block.text)] if block.text else []
        if kind == "thinking":
            events: list[Event] = [ThinkingDelta(block.thinking)] if block.thinking else []
            if block.signature:
                events.append(ThinkingDelta("", block.signature))
            return events
        if kind == "redacted_thinking":
            return [ThinkingDelta("", REDACTED_PREFIX + (block.data or ""))]
        if kind == "tool_use":
            return [self._tool_start(frame.index, block)]
        self._other_blocks.add(frame.index)
        return []

    def _tool_start(self, block_index: int, block: WireBlock) -> ToolCallStart:
        tool = _OpenTool(
            self._tool_count, block.id or mint_tool_id("toolu_"), block.name or "", block.input
        )
        self._tool_count += 1
        self._tools[block_index] = tool
        return ToolCallStart(tool.index, tool.id, tool.name)

    def _block_stop(self, frame: WireFrame) -> list[Event]:
        tool = self._tools.pop(frame.index, None) if frame.index is not None else None
        return [self._tool_end(tool)] if tool is not None else []

    def _tool_end(self, tool: _OpenTool) -> ToolCallEnd:
        """Joined fragments parsed; with none, the input the block started with, else {}."""
        joined = "".join(tool.parts)
        if not joined:
            arguments = tool.input if isinstance(tool.input, dict) else {}
            return ToolCallEnd(tool.index, tool.id, tool.name, arguments)
        try:
            parsed: Any = json_decode(joined)
        except msgspec.DecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise self._broken(
                f"tool call {tool.name!r} ({tool.id}) arguments are not a JSON object: "
                f"{joined[:200]!r}",
                joined,
            )
        return ToolCallEnd(tool.index, tool.id, tool.name, parsed)

    def _message_start(self, frame: WireFrame) -> None:
        message = frame.message
        if message is None:
            return
        self.id = message.id or self.id
        self.model = message.model or self.model
        self._add_usage(message.usage)

    def _message_delta(self, frame: WireFrame) -> None:
        if frame.delta is not None and frame.delta.stop_reason is not None:
            self._stop_reason = frame.delta.stop_reason
            self._stop_sequence = frame.delta.stop_sequence
        self._add_usage(frame.usage)

    def _add_usage(self, usage: WireUsage | None) -> None:
        """Counts are cumulative: the latest value of each field wins."""
        if usage is None:
            return
        for field in usage.__struct_fields__:
            value = getattr(usage, field)
            if isinstance(value, int):
                self._usage[field] = value
        details = usage.output_tokens_details
        if details is not None and isinstance(details.get("thinking_tokens"), int):
            self._usage["thinking_tokens"] = details["thinking_tokens"]

    def _finish(self) -> list[Event]:
        """message_stop: calls a sloppy engine left open are closed first, then Done."""
        events: list[Event] = [self._tool_end(t) for _, t in sorted(self._tools.items())]
        self._tools.clear()
        self._done = True
        usage = self._final_usage()
        reason = self._stop_reason
        events.append(Done(stop_reason_to_finish(reason), usage, reason, self._stop_sequence))
        return events

    def _final_usage(self) -> Usage | None:
        u = self._usage
        if not u:
            return None
        cache_read = u.get("cache_read_input_tokens", 0)
        cache_write = u.get("cache_creation_input_tokens", 0)
        return Usage(
            input_tokens=u.get("input_tokens", 0) + cache_read + cache_write,
            output_tokens=u.get("output_tokens", 0),
            cache_read_tokens=cache_read,
            reasoning_tokens=u.get("thinking_tokens", 0),
        )

    def _odd_frame(self, event: str | None, data: str) -> list[Event]:
        """A frame that did not fit the typed shape: a bare error, or an event we do not know."""
        obj = json_decode(data)
        if isinstance(obj, dict) and _looks_like_error(obj):
            raise self._stream_error(data)
        kind = obj.get("type") if isinstance(obj, dict) else None
        if (kind or event) in _KNOWN_EVENTS:
            raise self._broken(f"malformed {kind or event} event", data)
        return []

    def _broken(self, message: str, raw: str | None = None) -> ProtocolError:
        return ProtocolError(message, backend_id=self._backend_id, raw=raw)

    def _stream_error(self, data: str) -> BackendError:
        return decode_stream_error(data, backend_id=self._backend_id)


def _looks_like_error(obj: Mapping[str, Any]) -> bool:
    return obj.get("type") == "error" or "error" in obj or ("message" in obj and "code" in obj)


def decode_stream(body: bytes, *, backend_id: str | None = None) -> list[Event]:
    """A whole stream body at once: for tests and for engines that answer in one piece."""
    framer = SSEDecoder()
    decoder = StreamDecoder(backend_id=backend_id)
    events: list[Event] = []
    for frame in [*framer.feed(body), *framer.close()]:
        events.extend(decoder.feed(frame))
    events.extend(decoder.close())
    return events
