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
    expected,
    load_body,
    non_empty_text,
    optional_int,
    refused_by,
    required,
)

# What an embeddings request may hold besides `user`, which is dropped (docs/fields.md).
_CARRIED_FIELDS = "an embeddings request carries model, input, dimensions and encoding_format"

JSONObject = dict[str, Any]


def decode_embed_request(body: bytes | dict[str, Any]) -> EmbedRequest:
    """An embeddings body; token-array inputs are refused (no engine here takes them)."""
    obj = load_body(body)
    for key, value in obj.items():  # every engine gets the same request: one fate per field
        if key not in EMBED_FIELDS.by_path:
            refused_by(key, value, "the embeddings of any engine here", _CARRIED_FIELDS)
    model = non_empty_text(obj, "model", "model")
    raw = required(obj, "input", "input")
    if isinstance(raw, str):
        inputs: tuple[str, ...] = (raw,)
    elif isinstance(raw, list) and raw and all(isinstance(s, str) for s in raw):
        inputs = tuple(raw)
    else:
        expected("input", "a string or a non-empty array of strings", raw)
    dimensions = optional_int(obj, "dimensions", "dimensions")
    return EmbedRequest(model=model, inputs=inputs, dimensions=dimensions)


def encode_embed_request(req: EmbedRequest) -> dict[str, Any]:
    body: JSONObject = {"model": req.model, "input": list(req.inputs)}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    return body


class _EmbeddingItem(msgspec.Struct):
    embedding: list[float] | str
    index: int | None = None


class _EmbedResponse(msgspec.Struct):
    data: list[_EmbeddingItem]
    model: str | None = None
    usage: WireUsage | None = None


_EMBED_RESPONSE = msgspec.json.Decoder(_EmbedResponse)


def _vector(embedding: list[float] | str) -> tuple[float, ...]:
    """Float arrays as they are; base64 is little-endian float32, as OpenAI sends it."""
    if isinstance(embedding, str):
        raw = base64.b64decode(embedding)
        return struct.unpack(f"<{len(raw) // 4}f", raw)
    return tuple(embedding)


def decode_embed_response(body: bytes | dict[str, Any]) -> EmbedResult:
    resp: _EmbedResponse = decode_struct(_EMBED_RESPONSE, _EmbedResponse, body)
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
