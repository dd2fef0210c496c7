"""The embeddings endpoint: requests and answers, floats or base64."""

from __future__ import annotations

import base64
import struct
from typing import Any

import msgspec

from modelport.types import (
    EmbedRequest,
    EmbedResult,
    Usage,
)
from modelport.wire.openai.fields import EMBED_FIELDS
from modelport.wire.openai.structs import (
    WireUsage,
    decode_struct,
    encode_json,
)
from modelport.wire.validate import (
    at,
    check_values,
    expected,
    fail,
    load_body,
    non_empty_text,
    optional_int,
    refused_by,
    required,
    strings,
    token_ids,
)

# What an embeddings request may hold besides `user`, which is dropped (docs/fields.md).
_CARRIED_FIELDS = "an embeddings request carries model, input, dimensions and encoding_format"

JSONObject = dict[str, Any]


INPUT_SHAPES = (
    "a string, a non-empty array of strings, an array of token ids or an array of token-id arrays"
)


def decode_embed_request(body: bytes | dict[str, Any]) -> EmbedRequest:
    """An embeddings body. `input` takes OpenAI's four shapes: text, texts, one token-id
    array, or token-id arrays (langchain's OpenAIEmbeddings sends these by default)."""
    obj = load_body(body)
    check_values(EMBED_FIELDS.values, obj)
    for key, value in obj.items():  # every engine gets the same request: one fate per field
        if key not in EMBED_FIELDS.by_path:
            refused_by(key, value, "the embeddings of any engine here", _CARRIED_FIELDS)
    model = non_empty_text(obj, "model", "model")
    raw = required(obj, "input", "input")
    dimensions = optional_int(obj, "dimensions", "dimensions")
    if isinstance(raw, str):
        return EmbedRequest(model=model, inputs=(raw,), dimensions=dimensions)
    if not isinstance(raw, list):
        expected("input", INPUT_SHAPES, raw)
    if not raw:
        fail("input", "must not be empty")
    if isinstance(raw[0], str):
        return EmbedRequest(model=model, inputs=strings(raw, "input"), dimensions=dimensions)
    if isinstance(raw[0], list):
        tokens = tuple(token_ids(item, at("input", i)) for i, item in enumerate(raw))
    else:
        tokens = (token_ids(raw, "input"),)  # one input given as token ids
    return EmbedRequest(model=model, inputs=(), dimensions=dimensions, tokens=tokens)


def encode_embed_request(req: EmbedRequest) -> dict[str, Any]:
    """Text as texts; token ids as an array of token-id arrays (one per input), which every
    engine that takes token ids reads (OpenAI, vLLM, llama-server)."""
    inputs: list[Any] = [list(t) for t in req.tokens] if req.tokens else list(req.inputs)
    body: JSONObject = {"model": req.model, "input": inputs}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    return body


class _EmbeddingItem(msgspec.Struct):
    embedding: list[float] | str
    index: int | None = None


class EmbedResponse(msgspec.Struct):
    data: list[_EmbeddingItem]
    model: str | None = None
    usage: WireUsage | None = None


_EMBED_RESPONSE = msgspec.json.Decoder(EmbedResponse)


def _vector(embedding: list[float] | str) -> tuple[float, ...]:
    """Float arrays as they are; base64 is little-endian float32, as OpenAI sends it."""
    if isinstance(embedding, str):
        raw = base64.b64decode(embedding)
        return struct.unpack(f"<{len(raw) // 4}f", raw)
    return tuple(embedding)


def decode_embed_response(body: bytes | dict[str, Any]) -> EmbedResult:
    resp: EmbedResponse = decode_struct(_EMBED_RESPONSE, EmbedResponse, body)
    items = sorted(resp.data, key=lambda item: -1 if item.index is None else item.index)
    usage = resp.usage
    return EmbedResult(
        vectors=tuple(_vector(item.embedding) for item in items),
        model=resp.model or "",
        usage=Usage(input_tokens=usage.prompt_tokens or 0) if usage else None,
    )


def _embedding_json(vector: tuple[float, ...], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return list(vector)


def encode_embed_response(res: EmbedResult, *, encoding_format: str = "float") -> bytes:
    """An embeddings list; `encoding_format="base64"` is what the openai SDK asks for by default."""
    data = [
        {"object": "embedding", "index": i, "embedding": _embedding_json(v, encoding_format)}
        for i, v in enumerate(res.vectors)
    ]
    body: JSONObject = {"object": "list", "data": data, "model": res.model}
    if res.usage is not None:
        tokens = res.usage.input_tokens
        body["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return encode_json(body)
