"""Legacy completion answers in, what metering needs out: text, finish reason, usage.

A streamed answer is `data:` chunks of `{"object": "text_completion", "choices": [{"text",
"index", "finish_reason"}], ...}` ending with `data: [DONE]`. Where usage comes differs:
llama-server puts it on the chunk that finishes; vLLM, OpenAI and Ollama send a chunk of its
own (`choices: []`) when `stream_options.include_usage` asks (Ollama also puts zero usage on
every chunk then, so the last usage seen wins). An `error` member is the engine's error.
"""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.errors import ProtocolError
from modelport.types import ChatResponse, Done, Event, Message, Text, TextDelta, Usage
from modelport.wire.openai.errors import payload_error
from modelport.wire.openai.finish import finish_reason_from
from modelport.wire.openai.structs import WireUsage, decode_struct, encode_json, usage_from
from modelport.wire.sse import Frame


class _Choice(msgspec.Struct):
    text: str | None = None
    index: int | None = None
    finish_reason: str | None = None


class Completion(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[_Choice] | None = None
    usage: WireUsage | None = None
    error: Any = None


_COMPLETION = msgspec.json.Decoder(Completion)


class StreamDecoder:
    """Legacy completion chunks in, canonical events out; Done comes with `[DONE]` (or the
    end of input), after any usage chunk."""

    __slots__ = ("_done", "_finish", "_usage", "usage_only")

    def __init__(self) -> None:
        self.usage_only = False
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._done = False

    def feed(self, frame: Frame) -> list[Event]:
        self.usage_only = False
        data = frame.data
        if self._done:
            return []
        if data == "[DONE]":
            return self._finished()
        try:
            chunk = _COMPLETION.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if not data.strip():
                return []
            raise ProtocolError(f"unreadable completion chunk: {exc}", raw=data) from None
        if chunk.error is not None:
            raise payload_error(chunk.error, data)
        if chunk.usage is not None:
            self._usage = usage_from(chunk.usage)
            self.usage_only = not chunk.choices
        events: list[Event] = []
        for choice in chunk.choices or ():
            if choice.finish_reason and self._finish is None:
                self._finish = choice.finish_reason
            if choice.text and not choice.index:
                events.append(TextDelta(choice.text))
        return events

    def close(self) -> list[Event]:
        return [] if self._done else self._finished()

    def _finished(self) -> list[Event]:
        if self._finish is None:
            raise ProtocolError("the completion stream ended without a finish_reason")
        self._done = True
        return [Done(finish_reason_from(self._finish), self._usage, self._finish)]


def decode_response(body: bytes | dict[str, Any]) -> ChatResponse:
    """A whole `text_completion`: the first choice's text, its finish reason and the usage."""
    resp: Completion = decode_struct(_COMPLETION, Completion, body)
    if resp.error is not None:
        raise payload_error(resp.error, body if isinstance(body, bytes) else encode_json(body))
    choice = next((c for c in resp.choices or () if not c.index), None)
    if choice is None:
        raise ProtocolError("the completion has no choices[0]")
    return ChatResponse(
        id=resp.id or "",
        model=resp.model or "",
        message=Message("assistant", (Text(choice.text or ""),)),
        finish_reason=finish_reason_from(choice.finish_reason),
        usage=usage_from(resp.usage) if resp.usage else None,
        raw_reason=choice.finish_reason,
    )
