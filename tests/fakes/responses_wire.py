"""OpenAI Responses writer (/v1/responses, SSE and whole), per engine profile.

Written from the openai SDK's types (openai/types/responses/*) and vLLM's Responses server
(vllm/entrypoints/openai/responses/simple_streaming_events.py):

- OpenAI: ids `resp_`, `msg_`, `rs_`, `fc_`; reasoning comes as summary events
  (reasoning_summary_part / reasoning_summary_text); a failure mid-stream is
  `response.failed` with `response.error`.
- vLLM: item ids are bare uuids, call ids `call_<uuid>`; reasoning is a `reasoning_text`
  content part with `response.reasoning_text.delta` events and the item's `content`
  (summary stays empty); a function call's added item already carries its first argument
  fragment; a failure mid-stream is an `error` event.

Every event carries `sequence_number`, counted from 0. The stream never ends with [DONE].
"""

from __future__ import annotations

import uuid
from typing import Any

from .core import Reply, args_json, chunks, now, rand_alnum, split3, sse
from .profiles import Profile

Frame = tuple[bytes, bool]  # (bytes, counts as a content chunk)


def _uuid() -> str:
    return uuid.uuid4().hex


class _Ids:
    def __init__(self, p: Profile) -> None:
        self.vllm = p.kind.startswith("vllm")
        self.response = "resp_" + (_uuid() if self.vllm else rand_alnum(40))

    def item(self, prefix: str) -> str:
        return _uuid() if self.vllm else f"{prefix}_{rand_alnum(40)}"

    def call(self, given: str | None) -> str:
        if given is not None:
            return given
        return f"call_{_uuid()}" if self.vllm else f"call_{rand_alnum(24)}"


def _usage(reply: Reply) -> dict[str, Any]:
    n_in, n_out = reply.usage
    return {
        "input_tokens": n_in,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": n_out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": n_in + n_out,
    }


def _envelope(ids: _Ids, body: dict[str, Any], model: str, status: str) -> dict[str, Any]:
    return {
        "id": ids.response,
        "object": "response",
        "created_at": now(),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": body.get("reasoning"),
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "metadata": body.get("metadata") or {},
    }


def _reasoning_item(ids: _Ids, item_id: str, text: str) -> dict[str, Any]:
    if ids.vllm:
        content = [{"type": "reasoning_text", "text": text}]
        return {"type": "reasoning", "id": item_id, "summary": [], "content": content}
    return {"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": text}]}


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [part],
    }


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> Any:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _final_status(reply: Reply) -> tuple[str, dict[str, Any] | None]:
    if reply.finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    return "completed", None


# -- whole -------------------------------------------------------------------------------


def response(p: Profile, reply: Reply, body: dict[str, Any], model: str) -> dict[str, Any]:
    ids = _Ids(p)
    status, incomplete = _final_status(reply)
    obj = _envelope(ids, body, model, status)
    output: list[dict[str, Any]] = []
    if reply.thinking:
        output.append(_reasoning_item(ids, ids.item("rs"), reply.thinking))
    if reply.text:
        output.append(_message_item(ids.item("msg"), reply.text))
    for given, name, arguments in reply.tool_calls:
        call = _call_item(ids.item("fc"), ids.call(given), name, args_json(arguments), "completed")
        output.append(call)
    obj["output"], obj["incomplete_details"], obj["usage"] = output, incomplete, _usage(reply)
    return obj


# -- streamed ----------------------------------------------------------------------------


class _Stream:
    def __init__(self, p: Profile, body: dict[str, Any], model: str) -> None:
        self.ids = _Ids(p)
        self.body, self.model = body, model
        self.frames: list[Frame] = []
        self.output: list[dict[str, Any]] = []
        self.seq = 0

    def event(self, kind: str, content: bool = False, **fields: Any) -> None:
        obj = {"type": kind, **fields, "sequence_number": self.seq}
        self.seq += 1
        self.frames.append((sse(obj, event=kind), content))

    def envelope(self, status: str) -> dict[str, Any]:
        obj = _envelope(self.ids, self.body, self.model, status)
        obj["output"] = list(self.output)
        return obj

    def reasoning(self, reply: Reply) -> None:
        index, item_id = len(self.output), self.ids.item("rs")
        at = {"item_id": item_id, "output_index": index}
        added = _reasoning_item(self.ids, item_id, "")
        self.event("response.output_item.added", output_index=index, item=added)
        if self.ids.vllm:
            part = {"type": "reasoning_text", "text": ""}
            self.event("response.content_part.added", **at, content_index=0, part=part)
            for piece in chunks(reply.thinking, reply.chunk_chars):
                kind = "response.reasoning_text.delta"
                self.event(kind, True, **at, content_index=0, delta=piece)
            self.event("response.reasoning_text.done", **at, content_index=0, text=reply.thinking)
            done = {"type": "reasoning_text", "text": reply.thinking}
            self.event("response.content_part.done", **at, content_index=0, part=done)
        else:
            part = {"type": "summary_text", "text": ""}
            self.event("response.reasoning_summary_part.added", **at, summary_index=0, part=part)
            for piece in chunks(reply.thinking, reply.chunk_chars):
                kind = "response.reasoning_summary_text.delta"
                self.event(kind, True, **at, summary_index=0, delta=piece)
            kind = "response.reasoning_summary_text.done"
            self.event(kind, **at, summary_index=0, text=reply.thinking)
            done = {"type": "summary_text", "text": reply.thinking}
            self.event("response.reasoning_summary_part.done", **at, summary_index=0, part=done)
        item = _reasoning_item(self.ids, item_id, reply.thinking)
        self.output.append(item)
        self.event("response.output_item.done", output_index=index, item=item)

    def message(self, reply: Reply) -> None:
        index, item_id = len(self.output), self.ids.item("msg")
        at = {"item_id": item_id, "output_index": index, "content_index": 0}
        added = _message_item(item_id, "", "in_progress")
        added["content"] = []
        self.event("response.output_item.added", output_index=index, item=added)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        self.event("response.content_part.added", **at, part=part)
        for piece in chunks(reply.text, reply.chunk_chars):
            self.event("response.output_text.delta", True, **at, delta=piece, logprobs=[])
        self.event("response.output_text.done", **at, text=reply.text, logprobs=[])
        done = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
        self.event("response.content_part.done", **at, part=done)
        item = _message_item(item_id, reply.text)
        self.output.append(item)
        self.event("response.output_item.done", output_index=index, item=item)

    def call(self, given: str | None, name: str, arguments: dict[str, Any]) -> None:
        index, item_id, call_id = len(self.output), self.ids.item("fc"), self.ids.call(given)
        pieces = split3(args_json(arguments))
        first = pieces.pop(0) if self.ids.vllm and pieces else ""
        added = _call_item(item_id, call_id, name, first, "in_progress")
        self.event("response.output_item.added", True, output_index=index, item=added)
        at = {"item_id": item_id, "output_index": index}
        for piece in pieces:
            self.event("response.function_call_arguments.delta", True, **at, delta=piece)
        whole = args_json(arguments)
        self.event("response.function_call_arguments.done", **at, arguments=whole)
        item = _call_item(item_id, call_id, name, whole, "completed")
        self.output.append(item)
        self.event("response.output_item.done", output_index=index, item=item)


def stream_frames(
    p: Profile, reply: Reply, body: dict[str, Any], model: str
) -> tuple[list[Frame], list[bytes]]:
    """The frames of one streamed response, and the frames of its mid-stream failure."""
    s = _Stream(p, body, model)
    s.event("response.created", response=s.envelope("in_progress"))
    s.event("response.in_progress", response=s.envelope("in_progress"))
    if reply.thinking:
        s.reasoning(reply)
    if reply.text:
        s.message(reply)
    for given, name, arguments in reply.tool_calls:
        s.call(given, name, arguments)
    status, incomplete = _final_status(reply)
    final = s.envelope(status)
    final["incomplete_details"], final["usage"] = incomplete, _usage(reply)
    kind = "response.completed" if status == "completed" else "response.incomplete"
    s.event(kind, response=final)
    return s.frames, _failure(p, s, reply.error_message)


def _failure(p: Profile, s: _Stream, message: str) -> list[bytes]:
    if s.ids.vllm:
        obj = {"type": "error", "code": "internal_error", "message": message, "param": None}
        return [sse({**obj, "sequence_number": s.seq}, event="error")]
    failed = s.envelope("failed")
    failed["error"] = {"code": "server_error", "message": message}
    obj = {"type": "response.failed", "response": failed, "sequence_number": s.seq}
    return [sse(obj, event="response.failed")]
