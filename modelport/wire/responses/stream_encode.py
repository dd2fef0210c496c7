"""Canonical events in, Responses SSE bytes out: the full event sequence, numbered.

    response.created, response.in_progress
    per output item: response.output_item.added ... response.output_item.done
      reasoning: reasoning_summary_part.added, reasoning_summary_text.delta/done,
                 reasoning_summary_part.done
      message:   content_part.added, output_text.delta/done, content_part.done
      call:      function_call_arguments.delta/done
    response.completed (response.incomplete when cut by length), with usage

A failure ends the stream with an `error` event and, once the answer has started,
`response.failed`: never a completion. The hot path (a text or argument delta) is a
byte template built when its item opens, the delta's JSON and the sequence number.
"""

from __future__ import annotations

import time
from typing import Any

from modelport.errors import BackendError
from modelport.scrub import public_message
from modelport.types import (
    ChatRequest,
    Done,
    Event,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from modelport.wire.responses.envelope import (
    Echo,
    encode_json,
    message_item,
    output_text,
    reasoning_item,
    status_of,
    usage_json,
)
from modelport.wire.responses.errors import error_code, failed_code

JSONObject = dict[str, Any]
_json_str = encode_json


def _frame(kind: str, body: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + body + b"\n\n"


def _delta_prefix(kind: str, fields: JSONObject, extra: str = "") -> bytes:
    """A delta frame up to its delta's value: built once per item, reused per token."""
    head = encode_json({"type": kind, **fields})[:-1]
    return b"event: " + kind.encode() + b"\ndata: " + head + extra.encode() + b',"delta":'


class _Call:
    __slots__ = ("arguments", "call_id", "custom", "id", "name", "output_index", "prefix")

    def __init__(self, item: JSONObject, name: str, output_index: int, custom: bool) -> None:
        self.call_id, self.id, self.name = item["call_id"], item["id"], name
        self.output_index, self.custom = output_index, custom
        self.arguments: list[str] = []
        fields = {"item_id": self.id, "output_index": output_index}
        self.prefix = _delta_prefix("response.function_call_arguments.delta", fields)


class StreamEncoder:
    """One answer's events as Responses SSE; one instance per stream."""

    __slots__ = (
        "_calls",
        "_created",
        "_done",
        "_echo",
        "_id",
        "_model",
        "_open",
        "_open_id",
        "_open_index",
        "_output",
        "_prefix",
        "_seq",
        "_signature",
        "_started",
        "_suffix",
        "_texts",
    )

    def __init__(
        self,
        *,
        id: str,
        model: str,
        request: ChatRequest | None = None,
        created: int | None = None,
    ) -> None:
        self._id, self._model = id, model
        self._suffix = id[len("resp_") :] if id.startswith("resp_") else id
        self._echo = Echo(request)
        self._created = int(time.time()) if created is None else created
        self._seq = 0
        self._signature: str | None = None
        self._started = self._done = False
        self._output: list[JSONObject | None] = []  # finished items by output index
        self._open: str | None = None  # "message" or "reasoning": the open text item
        self._open_id = ""
        self._open_index = 0
        self._prefix = b""  # the open text item's delta frame up to the delta
        self._texts: list[str] = []
        self._calls: dict[int, _Call] = {}  # canonical index -> open call

    # -- framing -----------------------------------------------------------------

    def _event(self, kind: str, fields: JSONObject) -> bytes:
        seq = self._seq
        self._seq = seq + 1
        return _frame(kind, encode_json({"type": kind, **fields, "sequence_number": seq}))

    def _delta(self, prefix: bytes, delta: str) -> bytes:
        seq = self._seq
        self._seq = seq + 1
        return prefix + _json_str(delta) + b',"sequence_number":' + str(seq).encode() + b"}\n\n"

    def _snapshot(self, status: str) -> JSONObject:
        output = [item for item in self._output if item is not None]
        return self._echo.response(
            id=self._id, model=self._model, created=self._created, status=status, output=output
        )

    # -- the protocol --------------------------------------------------------------

    def encode(self, event: Event) -> bytes:
        if self._done:
            return b""
        out = b"" if self._started else self._start()
        if isinstance(event, TextDelta):
            return out + self._text("message", event.text) if event.text else out
        if isinstance(event, ThinkingDelta):
            if event.signature:
                self._signature = event.signature  # Anthropic's: goes out as encrypted_content
            if event.text or (event.signature and self._open != "reasoning"):
                return out + self._text("reasoning", event.text)
            return out
        if isinstance(event, ToolCallStart):
            return out + self._close_text() + self._call_start(event.index, event.id, event.name)
        if isinstance(event, ToolCallDelta):
            return out + self._call_delta(event.index, event.arguments)
        if isinstance(event, ToolCallEnd):
            return out + self._call_end(event)
        return out + self._finish(event)

    def error(self, err: BackendError) -> bytes:
        """An `error` event, then `response.failed` when the answer had started."""
        self._done = True
        message, code = public_message(err.message), error_code(err)
        out = self._event("error", {"code": code, "message": message, "param": None})
        if self._started:
            response = self._snapshot("failed")
            response["error"] = {"code": failed_code(err), "message": message}
            out += self._event("response.failed", {"response": response})
        return out

    # -- items -----------------------------------------------------------------------

    def _start(self) -> bytes:
        self._started = True
        created = self._event("response.created", {"response": self._snapshot("in_progress")})
        return created + self._event(
            "response.in_progress", {"response": self._snapshot("in_progress")}
        )

    def _new_index(self) -> int:
        self._output.append(None)
        return len(self._output) - 1

    def _text(self, kind: str, text: str) -> bytes:
        out = b""
        if self._open != kind:
            out = self._close_text() + self._open_text(kind)
        if not text:
            return out  # a signature alone opens the item; no empty delta goes out
        self._texts.append(text)
        return out + self._delta(self._prefix, text)

    def _open_text(self, kind: str) -> bytes:
        index = self._new_index()
        self._open, self._open_index, self._texts = kind, index, []
        if kind == "message":
            item_id = self._open_id = f"msg_{self._suffix}_{index}"
            item = message_item(item_id, "", "in_progress")
            item["content"] = []
            part = {"item_id": item_id, "output_index": index, "content_index": 0}
            added = self._event("response.output_item.added", {"output_index": index, "item": item})
            added += self._event("response.content_part.added", {**part, "part": output_text("")})
            delta_kind, extra = "response.output_text.delta", ',"logprobs":[]'
        else:
            item_id = self._open_id = f"rs_{self._suffix}_{index}"
            item = reasoning_item(item_id, "")
            part = {"item_id": item_id, "output_index": index, "summary_index": 0}
            added = self._event("response.output_item.added", {"output_index": index, "item": item})
            summary = {"type": "summary_text", "text": ""}
            added += self._event("response.reasoning_summary_part.added", {**part, "part": summary})
            delta_kind, extra = "response.reasoning_summary_text.delta", ""
        self._prefix = _delta_prefix(delta_kind, part, extra)
        return added

    def _close_text(self) -> bytes:
        kind = self._open
        if kind is None:
            return b""
        self._open = None
        text, index, item_id = "".join(self._texts), self._open_index, self._open_id
        if kind == "message":
            part = {"item_id": item_id, "output_index": index, "content_index": 0}
            out = self._event("response.output_text.done", {**part, "text": text, "logprobs": []})
            out += self._event("response.content_part.done", {**part, "part": output_text(text)})
            item = message_item(item_id, text)
        else:
            part = {"item_id": item_id, "output_index": index, "summary_index": 0}
            summary = {"type": "summary_text", "text": text}
            out = self._event("response.reasoning_summary_text.done", {**part, "text": text})
            out += self._event("response.reasoning_summary_part.done", {**part, "part": summary})
            item = reasoning_item(item_id, text, self._signature)
        self._output[index] = item
        return out + self._event("response.output_item.done", {"output_index": index, "item": item})

    # -- function calls ------------------------------------------------------------

    def _call_start(self, index: int, call_id: str, name: str) -> bytes:
        if index in self._calls:
            return b""
        output_index = self._new_index()
        item = self._echo.call_item(call_id, name, "", "in_progress")
        custom = self._echo.is_custom(name)
        self._calls[index] = _Call(item, name, output_index, custom)
        return self._event(
            "response.output_item.added", {"output_index": output_index, "item": item}
        )

    def _call_delta(self, index: int, arguments: str) -> bytes:
        call = self._calls.get(index)
        if call is None or not arguments:
            return b""
        call.arguments.append(arguments)
        # A custom tool's input is a string inside the engine's JSON: it goes out whole, at the end.
        return b"" if call.custom else self._delta(call.prefix, arguments)

    def _call_end(self, event: ToolCallEnd) -> bytes:
        out = b""
        if event.index not in self._calls:
            out = self._close_text() + self._call_start(event.index, event.id, event.name)
        call = self._calls[event.index]
        if not call.arguments and event.arguments:
            out += self._call_delta(event.index, encode_json(event.arguments).decode())
        return out + self._call_done(event.index)

    def _call_done(self, index: int) -> bytes:
        call = self._calls.pop(index)
        arguments = "".join(call.arguments)
        item = self._echo.call_item(call.call_id, call.name, arguments, "completed")
        at = {"item_id": call.id, "output_index": call.output_index}
        if call.custom:
            text = item["input"]
            out = (
                self._event("response.custom_tool_call_input.delta", {**at, "delta": text})
                if text
                else b""
            )
            out += self._event("response.custom_tool_call_input.done", {**at, "input": text})
        else:
            out = self._event(
                "response.function_call_arguments.done", {**at, "arguments": arguments}
            )
        self._output[call.output_index] = item
        done = {"output_index": call.output_index, "item": item}
        return out + self._event("response.output_item.done", done)

    # -- the end ---------------------------------------------------------------------

    def _finish(self, done: Done) -> bytes:
        out = self._close_text()
        for index in sorted(self._calls):
            out += self._call_done(index)
        self._done = True
        status, incomplete = status_of(done.finish_reason)
        response = self._snapshot(status)
        response["incomplete_details"] = incomplete
        if done.usage is not None:
            response["usage"] = usage_json(done.usage)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._event(kind, {"response": response})
