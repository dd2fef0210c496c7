"""Ollama's NDJSON lines in, canonical events out; a `stream: false` answer is one such line.

/api/chat lines carry a `message`, /api/generate lines `response` and `thinking` at top
level: one decoder reads both (a passthrough meters either with it)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from modelport.errors import ProtocolError
from modelport.types import (
    ChatResponse,
    Done,
    Event,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    collect,
)
from modelport.wire.arguments import parse_arguments
from modelport.wire.errors import error_from_payload
from modelport.wire.ids import mint_tool_id
from modelport.wire.ollama.finish import finish_reason_from
from modelport.wire.sse import Frame, NDJSONDecoder


class WireFunction(msgspec.Struct):
    name: str = ""
    arguments: Any = None


class WireCall(msgspec.Struct):
    function: WireFunction
    id: str | None = None


class WireMessage(msgspec.Struct):
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[WireCall] | None = None


class WireLine(msgspec.Struct):
    model: str | None = None
    message: WireMessage | None = None  # /api/chat
    response: str | None = None  # /api/generate: the text at top level, beside `thinking`
    thinking: str | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    error: Any = None


LINE = msgspec.json.Decoder(WireLine)
encode_json = msgspec.json.Encoder().encode


def _usage(line: WireLine) -> Usage | None:
    if line.prompt_eval_count is None and line.eval_count is None:
        return None
    return Usage(line.prompt_eval_count or 0, line.eval_count or 0)


class StreamDecoder:
    """One NDJSON line in, canonical events out; a stream without `done: true` is an error."""

    __slots__ = ("_calls", "backend_id", "done", "model")

    usage_only = False  # Ollama has no usage-only line to keep from a client

    def __init__(self, *, backend_id: str | None = None) -> None:
        self.backend_id = backend_id
        self._calls = 0
        self.done = False
        self.model: str | None = None

    def feed(self, frame: Frame) -> list[Event]:
        line = frame.data.strip()
        if not line or self.done:
            return []
        try:
            parsed = LINE.decode(line)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"unreadable stream line: {exc}", raw=line) from None
        if parsed.error is not None:
            # A failure under HTTP 200: classified by its words, as a server error.
            raise error_from_payload({"error": parsed.error}, line, backend_id=self.backend_id)
        self.model = parsed.model or self.model
        events = self._message(parsed.message) if parsed.message is not None else []
        if parsed.thinking:
            events.append(ThinkingDelta(parsed.thinking))
        if parsed.response:
            events.append(TextDelta(parsed.response))
        if parsed.done:
            self.done = True
            reason = finish_reason_from(parsed.done_reason, called_tools=self._calls > 0)
            events.append(Done(reason, _usage(parsed), parsed.done_reason))
        return events

    def close(self) -> list[Event]:
        if not self.done:
            raise ProtocolError("Ollama's stream ended without its done line")
        return []

    def _message(self, message: WireMessage) -> list[Event]:
        events: list[Event] = []
        if message.thinking:
            events.append(ThinkingDelta(message.thinking))
        if message.content:
            events.append(TextDelta(message.content))
        for call in message.tool_calls or ():
            events.extend(self._call(call))
        return events

    def _call(self, call: WireCall) -> list[Event]:
        """A whole call as start, one delta with all its arguments, end."""
        index, self._calls = self._calls, self._calls + 1
        name = call.function.name
        arguments = parse_arguments(call.function.arguments, name)
        id = call.id or mint_tool_id("call_", hex_digits=32)
        return [
            ToolCallStart(index, id, name),
            ToolCallDelta(index, encode_json(arguments).decode()),
            ToolCallEnd(index, id, name, arguments),
        ]


def decode_stream(body: bytes) -> list[Event]:
    """A whole NDJSON body at once: for tests and for callers holding the body."""
    framer = NDJSONDecoder()
    decoder = StreamDecoder()
    events = [e for frame in [*framer.feed(body), *framer.close()] for e in decoder.feed(frame)]
    return events + decoder.close()


def decode_chat_response(body: bytes) -> ChatResponse:
    """A `stream: false` answer: one object shaped like the stream's done line."""
    decoder = StreamDecoder()
    events = decoder.feed(Frame(None, body.decode("utf-8", "replace"))) + decoder.close()
    return collect(events, id="ollama-" + uuid.uuid4().hex[:24], model=decoder.model or "")
