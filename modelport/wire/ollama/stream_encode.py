"""Canonical events in, Ollama NDJSON lines out: /api/chat and /api/generate streams.

One JSON object a line, as server/routes.go writes them: text and thinking as they come
(`message.content` / `message.thinking` for chat, `response` / `thinking` for generate),
each tool call whole in one line (Ollama never splits a call), and a last line with
`done: true`, the done_reason, the counts and the durations in integer nanoseconds. A
failure after the first line is a line `{"error": "..."}` (ollama-python raises it as a
ResponseError).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from modelport.errors import BackendError
from modelport.types import Done, Event, FinishReason, TextDelta, ThinkingDelta, ToolCallEnd, Usage
from modelport.wire.ollama.errors import encode_error

JSONObject = dict[str, Any]
_encode = msgspec.json.Encoder().encode


def created_at() -> str:
    """RFC 3339 in UTC with a Z, as Go's time.Time marshals (ollama-js parses it as a Date)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def done_word(reason: FinishReason, raw: str | None) -> str:
    """Ollama's done_reason: "length" when cut, else "stop" (it says stop after tool calls
    too); the engine's own word when it is one of Ollama's."""
    if raw in ("stop", "length", "load", "unload"):
        return raw
    return "length" if reason is FinishReason.LENGTH else "stop"


def metrics(usage: Usage | None, total_ns: int, first_ns: int | None) -> JSONObject:
    """The counts and durations of the done line (integer nanoseconds): prompt evaluation
    until the first output, evaluation from there to the end, nothing loaded by us."""
    prompt_ns = total_ns if first_ns is None else first_ns
    return {
        "total_duration": total_ns,
        "load_duration": 0,
        "prompt_eval_count": usage.input_tokens if usage else 0,
        "prompt_eval_duration": prompt_ns,
        "eval_count": usage.output_tokens if usage else 0,
        "eval_duration": total_ns - prompt_ns,
    }


def tool_call_json(index: int, id: str, name: str, arguments: dict[str, Any]) -> JSONObject:
    """api/types.go ToolCall: the id (newer builds), the function's index, name, arguments
    as an object."""
    function = {"index": index, "name": name, "arguments": arguments}
    return {"id": id, "function": function} if id else {"function": function}


class StreamEncoder:
    """One answer's events as Ollama lines; `generate` writes /api/generate's shape."""

    __slots__ = ("_done", "_first_ns", "_generate", "_model", "_started_ns")

    def __init__(self, *, model: str, generate: bool = False) -> None:
        self._model = model
        self._generate = generate
        self._started_ns = time.monotonic_ns()
        self._first_ns: int | None = None  # when the first output went out
        self._done = False

    def encode(self, event: Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, TextDelta):
            return self._line(content=event.text) if event.text else b""
        if isinstance(event, ThinkingDelta):
            return self._line(thinking=event.text) if event.text else b""
        if isinstance(event, ToolCallEnd):
            call = tool_call_json(event.index, event.id, event.name, event.arguments)
            return self._line(tool_calls=[call])
        if isinstance(event, Done):
            return self._done_line(event)
        return b""  # a call's start and argument fragments: it goes out whole at its end

    def error(self, err: BackendError) -> bytes:
        self._done = True
        return encode_error(err) + b"\n"

    def _line(self, **fields: Any) -> bytes:
        if self._first_ns is None:
            self._first_ns = time.monotonic_ns() - self._started_ns
        return _encode(self._object(fields, done=False)) + b"\n"

    def _object(self, fields: JSONObject, *, done: bool) -> JSONObject:
        head: JSONObject = {"model": self._model, "created_at": created_at()}
        if self._generate:
            head["response"] = fields.pop("content", "")
            head.update(fields)  # thinking (top level in generate); no tool calls there
            head.pop("tool_calls", None)
        else:
            message: JSONObject = {"role": "assistant", "content": fields.pop("content", "")}
            message.update(fields)
            head["message"] = message
        head["done"] = done
        return head

    def _done_line(self, event: Done) -> bytes:
        self._done = True
        line = self._object({}, done=True)
        line["done_reason"] = done_word(event.finish_reason, event.raw_reason)
        total = time.monotonic_ns() - self._started_ns
        line.update(metrics(event.usage, total, self._first_ns))
        return _encode(line) + b"\n"
