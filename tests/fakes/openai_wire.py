"""OpenAI chat-completions writer (SSE and whole responses) and embeddings, per engine profile."""

from __future__ import annotations

import json
from typing import Any

from .core import (
    Reply,
    args_json,
    chunks,
    embed_inputs,
    fake_vector,
    now,
    openai_finish,
    rand_alnum,
    rand_lower,
    split3,
    sse,
    vector_b64,
    word_tokens,
)
from .profiles import Profile

Frame = tuple[bytes, bool]  # (bytes, counts as a content chunk)
DONE = b"data: [DONE]\n\n"


def completion_id(p: Profile) -> str:
    if p.kind == "llamacpp":
        return "chatcmpl-" + rand_alnum(32)
    if p.kind == "openrouter":
        return f"gen-{now()}-{rand_alnum(20)}"
    if p.kind == "ollama":
        return f"chatcmpl-{rand_lower(3)}"
    return p.id_prefix + rand_alnum(29)


def tool_call_id(p: Profile, given: str | None) -> str:
    if given is not None:
        return given
    if p.kind == "llamacpp":
        return rand_alnum(32)
    if p.kind.startswith("vllm"):
        return "chatcmpl-tool-" + rand_lower(32)
    if p.kind == "ollama":
        return "call_" + rand_lower(8)
    return "call_" + rand_alnum(24)


def usage(p: Profile, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        **p.usage_extra,
    }


def llamacpp_timings(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "cache_n": 0,
        "prompt_n": input_tokens,
        "prompt_ms": 12.5,
        "prompt_per_token_ms": 12.5 / max(1, input_tokens),
        "prompt_per_second": input_tokens / 0.0125,
        "predicted_n": output_tokens,
        "predicted_ms": 80.0,
        "predicted_per_token_ms": 80.0 / max(1, output_tokens),
        "predicted_per_second": output_tokens / 0.08,
    }


class _Envelope:
    """Builds chunk and response objects with one id, clock and model, in the engine's key order."""

    def __init__(self, p: Profile, model: str) -> None:
        self.p = p
        self.id = completion_id(p)
        self.created = now()
        self.model = model

    def wrap(self, choices: list[dict[str, Any]], obj: str) -> dict[str, Any]:
        if self.p.kind == "llamacpp":  # key order of the capture
            return {
                "choices": choices,
                "created": self.created,
                "id": self.id,
                "model": self.model,
                **self.p.chunk_extra,
                "object": obj,
            }
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            **self.p.chunk_extra,
            "choices": choices,
        }

    def choice(
        self, key: str, value: dict[str, Any], finish: str | None, stop: str | int | None = None
    ) -> dict[str, Any]:
        if self.p.kind == "llamacpp":
            return {"finish_reason": finish, "index": 0, key: value}
        out = {"index": 0, key: value, **self.p.choice_extra, "finish_reason": finish}
        if "native_finish_reason" in out:
            out["native_finish_reason"] = finish
        if self.p.kind.startswith("vllm") and finish is not None:
            # vLLM: the matched stop string or stop token id, None for EOS
            # (vllm/entrypoints/openai/chat_completion/protocol.py, stop_reason)
            out["stop_reason"] = stop
        return out


# -- streaming ---------------------------------------------------------------------------------


def stream_frames(
    p: Profile, reply: Reply, body: dict[str, Any], model: str
) -> tuple[list[Frame], list[bytes]]:
    """The frames of one streamed chat completion, and the frames of its mid-stream error."""
    env = _Envelope(p, model)
    opts = body.get("stream_options") or {}
    include_usage = bool(opts.get("include_usage"))
    continuous = (
        include_usage and bool(opts.get("continuous_usage_stats")) and p.kind.startswith("vllm")
    )
    n_in, n_out = reply.usage
    frames: list[Frame] = []
    produced = 0

    def chunk(delta: dict[str, Any], finish: str | None = None, content: bool = True) -> None:
        nonlocal produced
        stop = reply.stop_sequence if finish is not None else None
        obj = env.wrap([env.choice("delta", delta, finish, stop)], "chat.completion.chunk")
        if p.kind == "openai" and include_usage:
            obj["usage"] = None
        if continuous:
            produced += 1 if content else 0
            obj["usage"] = usage(p, n_in, min(produced, n_out) if finish is None else n_out)
        frames.append((sse(obj), content))
        if content and p.sse_comment and sum(1 for _, c in frames if c) == 1:
            frames.append((p.sse_comment, False))  # OpenRouter keeps comments coming mid-stream

    if p.sse_comment:
        frames.append((p.sse_comment, False))
    if p.role_delta is not None:
        chunk(dict(p.role_delta), content=False)
    base: dict[str, Any] = {"role": "assistant", "content": ""} if p.role_in_every_delta else {}

    if p.reasoning_field:
        for piece in chunks(reply.thinking, reply.chunk_chars):
            delta = {**base, p.reasoning_field: piece}
            if p.kind == "openrouter":
                delta["reasoning_details"] = [
                    {"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}
                ]
            chunk(delta)
    for piece in chunks(reply.text, reply.chunk_chars):
        chunk({**base, "content": piece})
    for index, (given_id, name, arguments) in enumerate(reply.tool_calls):
        call_id = tool_call_id(p, given_id)
        if p.tool_calls_whole:
            call = {
                "id": call_id,
                "index": index,
                "type": "function",
                "function": {"name": name, "arguments": args_json(arguments)},
            }
            chunk({**base, "tool_calls": [call]})
            continue
        first = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        chunk({**base, "tool_calls": [first]})
        for piece in split3(args_json(arguments)):
            chunk({**base, "tool_calls": [{"index": index, "function": {"arguments": piece}}]})

    chunk(dict(p.finish_delta), finish=openai_finish(reply), content=False)
    if include_usage:
        obj = env.wrap([], "chat.completion.chunk")
        obj["usage"] = usage(p, n_in, n_out)
        if p.kind == "llamacpp":
            obj["timings"] = llamacpp_timings(n_in, n_out)
        frames.append((sse(obj), False))
    frames.append((DONE, False))

    error = [sse(stream_error(p, reply.error_message, env))]
    if p.done_after_error:
        error.append(DONE)  # vLLM sends [DONE] after its error frame
    return frames, error


def stream_error(p: Profile, message: str, env: _Envelope) -> Any:
    """The payload of the `data:` frame an engine sends when generation fails mid-stream."""
    kind = p.kind
    if kind == "llamacpp":
        return {"error": {"code": 500, "message": message, "type": "server_error"}}
    if kind == "vllm":
        return {
            "error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}
        }
    if kind == "vllm-old":
        return {
            "error": {
                "object": "error",
                "message": message,
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        }
    if kind == "openai":  # spaced JSON, as OpenAI sends this one
        return json.dumps({"error": {"message": message, "type": "server_error"}})
    if kind == "localai":
        return {"error": {"code": 500, "message": message, "type": ""}}
    if kind == "openrouter":
        return {
            "id": env.id,
            "object": "chat.completion.chunk",
            "created": env.created,
            "model": env.model,
            "provider": "FakeProvider",
            "error": {"code": 502, "message": message},
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": ""},
                    "finish_reason": "error",
                    "native_finish_reason": "error",
                }
            ],
        }
    if kind == "venice":
        return {"error": message}
    if kind == "ollama":
        return {"error": {"message": message, "type": "api_error", "param": None, "code": None}}
    return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


# -- whole responses ---------------------------------------------------------------------------


def response(p: Profile, reply: Reply, body: dict[str, Any], model: str) -> dict[str, Any]:
    env = _Envelope(p, model)
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if p.reasoning_field and reply.thinking:
        message[p.reasoning_field] = reply.thinking
    if p.kind == "openai":
        message["refusal"] = None
        message["annotations"] = []
    if p.kind == "openrouter":
        message["refusal"] = None
        message["reasoning"] = reply.thinking or None
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": tool_call_id(p, given_id),
                "type": "function",
                "function": {"name": name, "arguments": args_json(arguments)},
            }
            for given_id, name, arguments in reply.tool_calls
        ]
        if p.kind == "ollama":
            for index, call in enumerate(message["tool_calls"]):
                call["index"] = index
    choice = env.choice("message", message, openai_finish(reply), reply.stop_sequence)
    obj = env.wrap([choice], "chat.completion")
    obj["usage"] = usage(p, *reply.usage)
    if p.kind == "llamacpp":
        obj["timings"] = llamacpp_timings(*reply.usage)
    if p.kind == "venice":
        obj["venice_parameters"] = {
            "include_venice_system_prompt": True,
            "web_search_citations": [],
        }
    return obj


# -- embeddings ------------------------------------------------------------------------------


def embeddings(p: Profile, body: dict[str, Any], model: str) -> dict[str, Any]:
    texts = embed_inputs(body.get("input"))
    dim = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 8
    as_b64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = fake_vector(text, dim)
        data.append(
            {
                "object": "embedding",
                "index": index,
                "embedding": vector_b64(vector) if as_b64 else vector,
            }
        )
    tokens = word_tokens(texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
