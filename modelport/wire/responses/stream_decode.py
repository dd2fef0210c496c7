"""Responses SSE frames in, canonical events out: for engines that serve /v1/responses
(the passthrough meter reads their streams with it) and for tests.

Output items map by their `output_index`: a function_call item opens a tool call, its
argument deltas follow, its `output_item.done` ends it. Text and reasoning (summary or
raw reasoning text, as vLLM sends it) come as deltas. `response.completed` and
`response.incomplete` end the stream with usage; `response.failed` and `error` raise the
classified error. Events we do not model (queued, in_progress, annotations, hosted tool
progress, ...) are passed over.
"""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.errors import BackendError, ProtocolError
from modelport.types import (
    Done,
    Event,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from modelport.wire.errors import error_from_payload
from modelport.wire.responses.response import CALL_ITEMS, call_from, finish_from, usage_from
from modelport.wire.sse import Frame

_decode = msgspec.json.Decoder().decode

_TEXT = "response.output_text.delta"
_THINKING = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_ENDS = frozenset({"response.completed", "response.incomplete"})

# The `code` of a Responses error (OpenAI's words, and ours from errors.error_code) ->
# the error type word the shared classifier reads.
_CODE_TYPES = {
    "rate_limit_exceeded": "rate_limit_error",
    "service_unavailable": "unavailable_error",
    "server_is_overloaded": "unavailable_error",
    "slow_down": "rate_limit_error",
    "context_length_exceeded": "invalid_request_error",
    "invalid_request_error": "invalid_request_error",
    "invalid_prompt": "invalid_request_error",
    "model_not_found": "not_found_error",
    "timeout": "timeout_error",
}


class StreamDecoder:
    """Responses events in, canonical events out; feed one SSE frame at a time."""

    __slots__ = ("_backend_id", "_called", "_calls", "_done", "usage_only")

    def __init__(self, *, backend_id: str | None = None) -> None:
        self._backend_id = backend_id
        self._calls: dict[int, str] = {}  # output index -> call id, for open calls
        self._called = False  # a function call went by (completed may omit its output)
        self._done = False
        self.usage_only = False  # usage rides on response.completed, never alone

    def feed(self, frame: Frame) -> list[Event]:
        if self._done or not frame.data or frame.data == "[DONE]":
            return []
        try:
            data = _decode(frame.data)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"unreadable stream event: {exc}", raw=frame.data) from None
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or frame.event
        if kind == _TEXT:
            delta = data.get("delta")
            return [TextDelta(delta)] if isinstance(delta, str) and delta else []
        if kind in _THINKING:
            delta = data.get("delta")
            return [ThinkingDelta(delta)] if isinstance(delta, str) and delta else []
        if kind == "response.function_call_arguments.delta":
            return self._arguments(data)
        if kind in ("response.output_item.added", "response.output_item.done"):
            return self._item(kind, data)
        if kind in _ENDS:
            return self._end(data.get("response"))
        if kind in ("error", "response.failed"):
            raise self._error(data, frame.data)
        return []

    def close(self) -> list[Event]:
        if not self._done:
            raise ProtocolError("the engine's stream ended before response.completed")
        return []

    def _arguments(self, data: dict[str, Any]) -> list[Event]:
        index = data.get("output_index")
        delta = data.get("delta")
        if index in self._calls and isinstance(delta, str) and delta:
            return [ToolCallDelta(index, delta)]
        return []

    def _item(self, kind: str, data: dict[str, Any]) -> list[Event]:
        item, index = data.get("item"), data.get("output_index")
        if not isinstance(item, dict):
            return []
        if item.get("type") == "reasoning" and kind == "response.output_item.done":
            signature = item.get("encrypted_content")
            return [ThinkingDelta("", signature)] if isinstance(signature, str) else []
        if item.get("type") not in CALL_ITEMS:
            return []
        if not isinstance(index, int):
            return []
        if kind == "response.output_item.added":
            # Its arguments may already hold the first fragment (vLLM): not JSON yet.
            call = call_from({**item, "arguments": None, "input": ""})
            self._calls[index] = call.id
            self._called = True
            events: list[Event] = [ToolCallStart(index, call.id, call.name)]
            first = item.get("arguments") if item.get("type") == "function_call" else None
            if isinstance(first, str) and first:
                events.append(ToolCallDelta(index, first))
            return events
        call = call_from(item)
        call_id = self._calls.pop(index, call.id)
        return [ToolCallEnd(index, call_id, call.name, call.arguments)]

    def _end(self, response: Any) -> list[Event]:
        self._done = True
        response = response if isinstance(response, dict) else {}
        output = response.get("output") or []
        has_calls = self._called or any(
            isinstance(i, dict) and i.get("type") in CALL_ITEMS for i in output
        )
        status = response.get("status")
        parts = (call_from({"name": ""}),) if has_calls else ()
        reason = finish_from(status, response.get("incomplete_details"), parts)
        raw = status if isinstance(status, str) else None
        return [Done(reason, usage_from(response.get("usage")), raw)]

    def _error(self, data: dict[str, Any], raw: str) -> BackendError:
        if data.get("type") == "response.failed" or "response" in data:
            response = data.get("response") or {}
            error = response.get("error") if isinstance(response, dict) else None
            found = error if isinstance(error, dict) else {}
        else:
            found = data
        payload = {k: v for k, v in found.items() if k in ("message", "code", "param")}
        payload.setdefault("message", "the engine's response failed")
        # Responses errors carry a code, not a type: the type word says the status.
        payload["type"] = _CODE_TYPES.get(str(payload.get("code")), "server_error")
        return error_from_payload({"error": payload}, raw, backend_id=self._backend_id)
