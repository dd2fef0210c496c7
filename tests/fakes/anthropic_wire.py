"""Anthropic messages writer (SSE events and whole messages) in each engine's flavour.

Flavours: "anthropic" (the real API: pings, signature_delta, empty first partial_json,
cumulative usage in message_delta), "llamacpp" (no ping, bare error object), "vllm"
(vLLM error type names), "ollama" and "lmstudio" (plain).
"""

from __future__ import annotations

from typing import Any

from .core import Reply, anthropic_stop, args_json, chunks, rand_alnum, split3, sse

Frame = tuple[bytes, bool]


def flavour(kind: str) -> str:
    if kind.startswith("vllm"):
        return "vllm"
    return kind if kind in ("anthropic", "llamacpp") else "plain"


def message_id(kind: str) -> str:
    if kind == "llamacpp":
        return "chatcmpl-" + rand_alnum(32)
    return "msg_" + rand_alnum(24)


def tool_use_id(given: str | None) -> str:
    return given if given is not None else "toolu_01" + rand_alnum(22)


def _usage(fl: str, n_in: int, n_out: int) -> dict[str, Any]:
    if fl == "llamacpp":
        return {"cache_read_input_tokens": 0, "input_tokens": n_in, "output_tokens": n_out}
    return {
        "input_tokens": n_in,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": n_out,
    }


def _event(obj: dict[str, Any]) -> bytes:
    return sse(obj, event=obj["type"])


def stream_frames(kind: str, reply: Reply, model: str) -> tuple[list[Frame], list[bytes]]:
    fl = flavour(kind)
    n_in, n_out = reply.usage
    frames: list[Frame] = []

    def add(obj: dict[str, Any], content: bool = False) -> None:
        frames.append((_event(obj), content))

    start_usage = _usage(fl, n_in, 1 if fl == "anthropic" else 0)
    add(
        {
            "type": "message_start",
            "message": {
                "id": message_id(kind),
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        }
    )
    if fl == "anthropic":
        add({"type": "ping"})

    index = 0
    pinged = fl != "anthropic"

    def delta(obj: dict[str, Any]) -> None:
        nonlocal pinged
        add({"type": "content_block_delta", "index": index, "delta": obj}, content=True)
        if not pinged:  # the real API may put a ping anywhere, so put one mid-block
            pinged = True
            add({"type": "ping"})

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        add({"type": "content_block_start", "index": index, "content_block": start})
        for obj in deltas:
            delta(obj)
        add({"type": "content_block_stop", "index": index})
        index += 1

    if reply.thinking:
        deltas = [
            {"type": "thinking_delta", "thinking": t}
            for t in chunks(reply.thinking, reply.chunk_chars)
        ]
        if fl == "anthropic":
            deltas.append({"type": "signature_delta", "signature": reply.signature})
        block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
    if reply.text or not reply.tool_calls:
        block(
            {"type": "text", "text": ""},
            [{"type": "text_delta", "text": t} for t in chunks(reply.text, reply.chunk_chars)],
        )
    for given_id, name, arguments in reply.tool_calls:
        pieces = split3(args_json(arguments))
        if fl == "anthropic":
            pieces.insert(0, "")
        block(
            {"type": "tool_use", "id": tool_use_id(given_id), "name": name, "input": {}},
            [{"type": "input_json_delta", "partial_json": p} for p in pieces],
        )

    # llama-server's message_delta has output_tokens only (docs/captures/llamacpp_anthropic_*)
    end_usage = {"output_tokens": n_out} if fl != "anthropic" else _usage(fl, n_in, n_out)
    stop_reason, stop_sequence = anthropic_stop(reply, fl)
    add(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": end_usage,
        }
    )
    add({"type": "message_stop"})
    return frames, [sse(stream_error(fl, reply.error_message), event="error")]


def stream_error(fl: str, message: str) -> dict[str, Any]:
    if fl == "llamacpp":  # llama-server's quirk: the bare error object
        return {"code": 500, "message": message, "type": "server_error"}
    etype = {"anthropic": "overloaded_error", "vllm": "InternalServerError"}.get(fl, "api_error")
    return {"type": "error", "error": {"type": etype, "message": message}}


def message(kind: str, reply: Reply, model: str) -> dict[str, Any]:
    fl = flavour(kind)
    content: list[dict[str, Any]] = []
    if reply.thinking:
        content.append(
            {"type": "thinking", "thinking": reply.thinking, "signature": reply.signature}
        )
    if reply.text or not reply.tool_calls:
        content.append({"type": "text", "text": reply.text})
    for given_id, name, arguments in reply.tool_calls:
        content.append(
            {"type": "tool_use", "id": tool_use_id(given_id), "name": name, "input": arguments}
        )
    stop_reason, stop_sequence = anthropic_stop(reply, fl)
    return {
        "id": message_id(kind),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": _usage(fl, *reply.usage),
    }
