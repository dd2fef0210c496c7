"""Canonical events in, Anthropic SSE bytes out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
)
from modelport.wire.anthropic.constants import (
    REDACTED_PREFIX,
    json_encode,
)
from modelport.wire.anthropic.errors import encode_error
from modelport.wire.anthropic.finish import stop_fields
from modelport.wire.anthropic.response import usage_body
from modelport.wire.ids import mint_tool_id
from modelport.wire.sse import encode_sse


class _PendingCall:
    """A tool call that cannot stream yet because another tool_use block is open."""

    __slots__ = ("end", "id", "index", "name", "parts")

    def __init__(self, index: int, id: str, name: str) -> None:
        self.index = index
        self.id = id
        self.name = name
        self.parts: list[str] = []
        self.end: ToolCallEnd | None = None


_TEXT_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


class StreamEncoder:
    """Canonical events in, Anthropic SSE bytes out.

    Anthropic blocks cannot interleave, so while one tool call streams, others (OpenAI sends
    parallel calls interleaved) wait in order, and text or thinking that arrives meanwhile
    waits until no call is open. Nothing is dropped; order across blocks may change.
    """

    def __init__(self, *, id: str, model: str, input_tokens: int = 0) -> None:
        self.id = id
        self.model = model
        self.input_tokens = input_tokens
        self._started = False
        self._finished = False
        self._block = -1  # index of the last block opened
        self._open: str | None = None  # kind of the open block: text, thinking, tool_use
        self._live: _PendingCall | None = None  # the call whose block is open
        self._live_has_arguments = False
        self._waiting: dict[int, _PendingCall] = {}
        self._held: list[TextDelta | ThinkingDelta] = []

    def encode(self, event: Event) -> bytes:
        """SSE bytes for one event; b"" when it only changes state or waits."""
        if self._finished:
            return b""
        if isinstance(event, TextDelta) and self._open == "text":
            return self._text_frame(event.text)  # the hot path: one more token of text
        out: list[bytes] = []
        if not self._started:
            out.append(self._message_start())
        self._dispatch(event, out)
        return b"".join(out)

    def error(self, err: BackendError) -> bytes:
        """An `error` frame; the stream ends with it (no message_stop follows)."""
        self._finished = True
        return encode_sse(encode_error(err), "error")

    def _dispatch(self, event: Event, out: list[bytes]) -> None:
        if isinstance(event, TextDelta | ThinkingDelta):
            if self._live is not None:
                self._held.append(event)
            else:
                self._content(event, out)
        elif isinstance(event, ToolCallStart):
            self._call_start(event, out)
        elif isinstance(event, ToolCallDelta):
            self._call_delta(event, out)
        elif isinstance(event, ToolCallEnd):
            self._call_end(event, out)
        else:
            self._done(event, out)

    def _message_start(self) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        return _frame("message_start", {"type": "message_start", "message": message})

    def _content(self, event: TextDelta | ThinkingDelta, out: list[bytes]) -> None:
        if isinstance(event, TextDelta):
            self._ensure_block("text", {"type": "text", "text": ""}, out)
            out.append(self._text_frame(event.text))
            return
        signature = event.signature
        if signature and signature.startswith(REDACTED_PREFIX) and not event.text:
            self._redacted(signature[len(REDACTED_PREFIX) :], out)
            return
        self._ensure_block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
        if event.text or not signature:
            out.append(self._delta({"type": "thinking_delta", "thinking": event.text}))
        if signature:
            out.append(self._delta({"type": "signature_delta", "signature": signature}))

    def _redacted(self, data: str, out: list[bytes]) -> None:
        self._ensure_block("redacted_thinking", {"type": "redacted_thinking", "data": data}, out)
        self._close_block(out)

    def _ensure_block(self, kind: str, block: dict[str, Any], out: list[bytes]) -> None:
        if self._open == kind and kind in ("text", "thinking"):
            return  # text and thinking continue their block; tool calls always get a new one
        self._close_block(out)
        self._block += 1
        self._open = kind
        payload = {"type": "content_block_start", "index": self._block, "content_block": block}
        out.append(_frame("content_block_start", payload))

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is None:
            return
        self._open = None
        out.append(
            _frame("content_block_stop", {"type": "content_block_stop", "index": self._block})
        )

    def _text_frame(self, text: str) -> bytes:
        return (
            _TEXT_DELTA_HEAD
            + str(self._block).encode()
            + b',"delta":{"type":"text_delta","text":'
            + json_encode(text)
            + b"}}\n\n"
        )

    def _delta(self, delta: dict[str, Any]) -> bytes:
        payload = {"type": "content_block_delta", "index": self._block, "delta": delta}
        return _frame("content_block_delta", payload)

    # Tool calls ---------------------------------------------------------

    def _call_start(self, event: ToolCallStart, out: list[bytes]) -> None:
        call = _PendingCall(event.index, event.id or mint_tool_id("toolu_"), event.name)
        if self._live is None:
            self._open_call(call, out)
        elif event.index != self._live.index and event.index not in self._waiting:
            self._waiting[event.index] = call

    def _call_delta(self, event: ToolCallDelta, out: list[bytes]) -> None:
        if self._live is not None and event.index == self._live.index:
            self._arguments(event.arguments, out)
        elif event.index in self._waiting:
            self._waiting[event.index].parts.append(event.arguments)
        else:
            raise ProtocolError(f"arguments for tool call {event.index}, which is not open")

    def _call_end(self, event: ToolCallEnd, out: list[bytes]) -> None:
        if self._live is not None and event.index == self._live.index:
            self._close_call(event, out)
            self._drain(out)
            return
        call = self._waiting.get(event.index)
        if call is None:  # an end without a start still carries the whole call
            call = _PendingCall(event.index, event.id or mint_tool_id("toolu_"), event.name)
            self._waiting[event.index] = call
        call.end = event
        if self._live is None:
            self._drain(out)

    def _open_call(self, call: _PendingCall, out: list[bytes]) -> None:
        self._live = call
        self._live_has_arguments = False
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        self._ensure_block("tool_use", block, out)
        for part in call.parts:
            self._arguments(part, out)

    def _arguments(self, fragment: str, out: list[bytes]) -> None:
        if fragment:
            self._live_has_arguments = True
            out.append(self._delta({"type": "input_json_delta", "partial_json": fragment}))

    def _close_call(self, end: ToolCallEnd | None, out: list[bytes]) -> None:
        """Close the live call; arguments no fragment carried go as one delta first."""
        if end is not None and end.arguments and not self._live_has_arguments:
            self._arguments(json_encode(end.arguments).decode(), out)
        self._close_block(out)
        self._live = None

    def _drain(self, out: list[bytes]) -> None:
        """Stream waiting calls in arrival order until one is still open, then held content."""
        while self._waiting:
            index = next(iter(self._waiting))
            call = self._waiting.pop(index)
            self._open_call(call, out)
            if call.end is None:
                return
            self._close_call(call.end, out)
        held, self._held = self._held, []
        for event in held:
            self._content(event, out)

    def _done(self, event: Done, out: list[bytes]) -> None:
        """Flush everything still waiting, close the last block, then the message."""
        if self._live is not None:
            self._close_call(None, out)
        while self._waiting or self._held:
            self._drain(out)
            if self._live is not None:
                self._close_call(None, out)
        self._close_block(out)
        usage = usage_body(event.usage) if event.usage else {"output_tokens": 0}
        stop_reason, stop_sequence = stop_fields(
            event.finish_reason, event.raw_reason, event.stop_sequence
        )
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": usage,
        }
        out.append(_frame("message_delta", delta))
        out.append(_frame("message_stop", {"type": "message_stop"}))
        self._finished = True


def _frame(name: str, payload: dict[str, Any]) -> bytes:
    return encode_sse(json_encode(payload), name)


def encode_stream(events: Iterable[Event], *, id: str, model: str) -> bytes:
    encoder = StreamEncoder(id=id, model=model)
    return b"".join(encoder.encode(e) for e in events)
