"""Typed wire structs for OpenAI answers (one msgspec call a chunk), usage and arguments."""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.errors import (
    ProtocolError,
)
from modelport.types import (
    Usage,
)

JSONObject = dict[str, Any]


class WireFunction(msgspec.Struct):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None


class WireCall(msgspec.Struct):
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: WireFunction | None = None


class Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    reasoning_signature: str | None = None
    refusal: str | None = None
    tool_calls: list[WireCall] | None = None


class StreamChoice(msgspec.Struct):
    index: int | None = 0
    delta: Delta | None = None
    finish_reason: str | None = None
    # vLLM's: the stop string (or stop token id) that ended the answer, None for EOS
    # (vllm/entrypoints/openai/chat_completion/protocol.py). Others never send it.
    stop_reason: str | int | None = None


class PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class WireUsage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: PromptDetails | None = None
    completion_tokens_details: CompletionDetails | None = None


class Chunk(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[StreamChoice] | None = None
    usage: WireUsage | None = None
    error: Any = None


class WireMessage(msgspec.Struct):
    content: str | list[Any] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    reasoning_signature: str | None = None
    refusal: str | None = None
    tool_calls: list[WireCall] | None = None


class Choice(msgspec.Struct):
    index: int | None = 0
    message: WireMessage | None = None
    finish_reason: str | None = None
    stop_reason: str | int | None = None  # vLLM's, as on StreamChoice


class WireResponse(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[Choice] | None = None
    usage: WireUsage | None = None
    error: Any = None


CHUNK = msgspec.json.Decoder(Chunk)
RESPONSE = msgspec.json.Decoder(WireResponse)
_ENCODER = msgspec.json.Encoder()
encode_json = _ENCODER.encode


def usage_from(wire: WireUsage) -> Usage:
    prompt = wire.prompt_tokens_details
    completion = wire.completion_tokens_details
    return Usage(
        input_tokens=wire.prompt_tokens or 0,
        output_tokens=wire.completion_tokens or 0,
        cache_read_tokens=(prompt.cached_tokens or 0) if prompt else 0,
        reasoning_tokens=(completion.reasoning_tokens or 0) if completion else 0,
    )


def usage_json(usage: Usage) -> JSONObject:
    body: JSONObject = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cache_read_tokens:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    if usage.reasoning_tokens:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


def decode_struct(decoder: msgspec.json.Decoder[Any], kind: type[Any], body: Any) -> Any:
    """Engine output into a wire struct; what we cannot read is a ProtocolError."""
    try:
        if isinstance(body, bytes | bytearray | memoryview | str):
            return decoder.decode(body)
        return msgspec.convert(body, kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raw = body if isinstance(body, bytes | str) else None
        raise ProtocolError(
            f"unreadable OpenAI {kind.__name__.strip('_')}: {exc}", raw=raw
        ) from None
