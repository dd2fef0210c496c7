"""Ollama native writer: /api/chat and /api/generate NDJSON lines and whole answers,
/api/embed. Shapes from ollama/ollama server/routes.go and api/types.go (ChatResponse,
GenerateResponse, Metrics), as docs/wire.md records them."""

from __future__ import annotations

from typing import Any

from .core import (
    Reply,
    chunks,
    embed_inputs,
    fake_vector,
    iso_now,
    ndjson,
    ollama_done_reason,
    word_tokens,
)

Frame = tuple[bytes, bool]


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    calls = []
    for index, (given_id, name, arguments) in enumerate(reply.tool_calls):
        call: dict[str, Any] = {"function": {"index": index, "name": name, "arguments": arguments}}
        if given_id is not None:
            call = {"id": given_id, **call}
        calls.append(call)
    return calls


def _final(reply: Reply, model: str, message: dict[str, Any]) -> dict[str, Any]:
    n_in, n_out = reply.usage
    return {
        "model": model,
        "created_at": iso_now(),
        "message": message,
        "done_reason": ollama_done_reason(reply),
        "done": True,
        "total_duration": 123456789,
        "load_duration": 1234567,
        "prompt_eval_count": n_in,
        "prompt_eval_duration": 2345678,
        "eval_count": n_out,
        "eval_duration": 98765432,
    }


def _thinks(body: dict[str, Any]) -> bool:
    think = body.get("think")
    return bool(think) and think not in ("false", "none")


def stream_frames(
    reply: Reply, body: dict[str, Any], model: str
) -> tuple[list[Frame], list[bytes]]:
    frames: list[Frame] = []

    def line(message: dict[str, Any]) -> None:
        obj = {
            "model": model,
            "created_at": iso_now(),
            "message": {"role": "assistant", **message},
            "done": False,
        }
        frames.append((ndjson(obj), True))

    if _thinks(body):
        for piece in chunks(reply.thinking, reply.chunk_chars):
            line({"content": "", "thinking": piece})
    for piece in chunks(reply.text, reply.chunk_chars):
        line({"content": piece})
    if reply.tool_calls:  # whole, in one line
        line({"content": "", "tool_calls": _tool_calls(reply)})
    frames.append((ndjson(_final(reply, model, {"role": "assistant", "content": ""})), False))
    return frames, [ndjson({"error": reply.error_message})]


def _generate_final(reply: Reply, body: dict[str, Any], model: str, text: str) -> dict[str, Any]:
    """Generate's last line: `response` at top level, and `context` (token ids of prompt and
    answer) unless `raw`."""
    final = _final(reply, model, {})
    del final["message"]
    final = {"model": model, "created_at": final.pop("created_at"), "response": text, **final}
    if not body.get("raw"):
        final["context"] = [1, 2, 3]
    return final


def generate_frames(
    reply: Reply, body: dict[str, Any], model: str
) -> tuple[list[Frame], list[bytes]]:
    frames: list[Frame] = []

    def line(fields: dict[str, Any]) -> None:
        obj = {"model": model, "created_at": iso_now(), "response": "", **fields, "done": False}
        frames.append((ndjson(obj), True))

    if _thinks(body):
        for piece in chunks(reply.thinking, reply.chunk_chars):
            line({"thinking": piece})
    for piece in chunks(reply.text, reply.chunk_chars):
        line({"response": piece})
    frames.append((ndjson(_generate_final(reply, body, model, "")), False))
    return frames, [ndjson({"error": reply.error_message})]


def generate_response(reply: Reply, body: dict[str, Any], model: str) -> dict[str, Any]:
    final = _generate_final(reply, body, model, reply.text)
    if _thinks(body) and reply.thinking:
        final["thinking"] = reply.thinking
    return final


def response(reply: Reply, body: dict[str, Any], model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if _thinks(body) and reply.thinking:
        message["thinking"] = reply.thinking
    if reply.tool_calls:
        message["tool_calls"] = _tool_calls(reply)
    return _final(reply, model, message)


def embed(body: dict[str, Any], model: str) -> dict[str, Any]:
    texts = embed_inputs(body.get("input"))
    dim = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 8
    return {
        "model": model,
        "embeddings": [fake_vector(t, dim) for t in texts],
        "total_duration": 14143917,
        "load_duration": 1019500,
        "prompt_eval_count": word_tokens(texts),
    }
