"""Metering for passthrough: read just enough of a relayed body to know usage and outcome.

The relay path hands an engine's bytes to the client untouched; a meter watches the same
bytes and keeps the token usage, the finish reason, whether the terminal frame came and
any error frame the engine sent. It decodes only the few fields it needs.
"""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.errors import BackendError, ProtocolError
from modelport.types import FinishReason, Usage, WireFormat
from modelport.wire import anthropic, openai
from modelport.wire.sse import SSEDecoder


class _OpenAIUsage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: dict[str, Any] | None = None
    completion_tokens_details: dict[str, Any] | None = None


class _OpenAIChoice(msgspec.Struct):
    finish_reason: str | None = None


class _OpenAIChunk(msgspec.Struct):
    choices: list[_OpenAIChoice] | None = None
    usage: _OpenAIUsage | None = None
    error: Any = None


class _AnthropicUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _AnthropicMessage(msgspec.Struct):
    usage: _AnthropicUsage | None = None
    stop_reason: str | None = None


class _AnthropicFrame(msgspec.Struct):
    type: str = ""
    message: _AnthropicMessage | None = None
    delta: _AnthropicMessage | None = None
    usage: _AnthropicUsage | None = None
    stop_reason: str | None = None
    content: Any = None
    error: Any = None


_openai_chunk = msgspec.json.Decoder(_OpenAIChunk)
_anthropic_frame = msgspec.json.Decoder(_AnthropicFrame)


def _openai_usage(u: _OpenAIUsage) -> Usage:
    cached = (u.prompt_tokens_details or {}).get("cached_tokens") or 0
    reasoning = (u.completion_tokens_details or {}).get("reasoning_tokens") or 0
    return Usage(u.prompt_tokens, u.completion_tokens, int(cached), int(reasoning))


class Meter:
    """Feed it the relayed bytes; afterwards read usage, finish_reason and error."""

    def __init__(self, format: WireFormat, *, stream: bool) -> None:
        self.format = format
        self.stream = stream
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None
        self.raw_reason: str | None = None
        self.error: BackendError | None = None
        self.terminal = False
        self._sse = SSEDecoder() if stream else None
        self._body: list[bytes] = []
        self._input_tokens = 0
        self._cache_read = 0

    def feed(self, chunk: bytes) -> None:
        if self._sse is None:
            self._body.append(chunk)
            return
        for frame in self._sse.feed(chunk):
            self._frame(frame.event, frame.data)

    def close(self) -> None:
        """Call at the end of the body; afterwards `outcome()` tells success or failure."""
        if self._sse is None:
            self._whole(b"".join(self._body))
            self._body = []
            return
        for frame in self._sse.close():
            self._frame(frame.event, frame.data)

    def outcome(self) -> BackendError | None:
        """The failure the stream carried or implied, or None when it ended properly."""
        if self.error is not None:
            return self.error
        if not self.terminal:
            return ProtocolError("the engine's stream ended without its terminal frame")
        if self.finish_reason is None:
            return ProtocolError("the engine's stream ended without a finish reason")
        return None

    # -- OpenAI ------------------------------------------------------------------

    def _frame(self, event: str | None, data: str) -> None:
        if self.format is WireFormat.OPENAI:
            self._openai_frame(data)
        else:
            self._anthropic_frame(event, data)

    def _openai_frame(self, data: str) -> None:
        if data == "[DONE]":
            self.terminal = True
            return
        try:
            chunk = _openai_chunk.decode(data)
        except msgspec.DecodeError:
            return
        if chunk.error is not None:
            self._openai_error(data)
            return
        self._openai_chunk(chunk)

    def _openai_chunk(self, chunk: _OpenAIChunk) -> None:
        if chunk.usage is not None:
            self.usage = _openai_usage(chunk.usage)
        for choice in chunk.choices or ():
            if choice.finish_reason:
                self.raw_reason = choice.finish_reason
                self.finish_reason = openai.finish_reason_from(choice.finish_reason)

    def _openai_error(self, data: str) -> None:
        self.error = openai.decode_error(500, data.encode())

    # -- Anthropic ---------------------------------------------------------------

    def _anthropic_frame(self, event: str | None, data: str) -> None:
        name = event or ""
        if name not in ("message_start", "message_delta", "message_stop", "error", ""):
            return  # content deltas: nothing to meter
        try:
            frame = _anthropic_frame.decode(data)
        except msgspec.DecodeError:
            return
        kind = name or frame.type
        if kind == "message_start" and frame.message is not None:
            self._anthropic_usage(frame.message.usage)
        elif kind == "message_delta":
            self._anthropic_usage(frame.usage)
            if frame.delta is not None and frame.delta.stop_reason:
                self._anthropic_stop(frame.delta.stop_reason)
        elif kind == "message_stop":
            self.terminal = True
        elif kind == "error":
            self.error = anthropic.decode_error(500, data.encode())

    def _anthropic_usage(self, u: _AnthropicUsage | None) -> None:
        if u is None:
            return
        if u.input_tokens is not None:
            self._input_tokens = u.input_tokens
        if u.cache_read_input_tokens is not None:
            self._cache_read = u.cache_read_input_tokens
        output = u.output_tokens if u.output_tokens is not None else 0
        if self.usage is not None and u.output_tokens is None:
            output = self.usage.output_tokens
        self.usage = Usage(self._input_tokens, output, self._cache_read)

    def _anthropic_stop(self, reason: str) -> None:
        self.raw_reason = reason
        self.finish_reason = anthropic.stop_reason_to_finish(reason)

    # -- whole bodies --------------------------------------------------------------

    def _whole(self, body: bytes) -> None:
        self.terminal = True
        if self.format is WireFormat.OPENAI:
            try:
                chunk = _openai_chunk.decode(body)
            except msgspec.DecodeError:
                self.error = ProtocolError("the engine's answer is not JSON", raw=body)
                return
            self._openai_chunk(chunk)
        else:
            self._anthropic_whole(body)
        if self.error is None and self.finish_reason is None:
            self.finish_reason = FinishReason.STOP

    def _anthropic_whole(self, body: bytes) -> None:
        try:
            message = msgspec.json.decode(body, type=_AnthropicMessage)
        except msgspec.DecodeError:
            self.error = ProtocolError("the engine's answer is not JSON", raw=body)
            return
        self._anthropic_usage(message.usage)
        if message.stop_reason:
            self._anthropic_stop(message.stop_reason)
