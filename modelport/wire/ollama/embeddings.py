"""/api/embed requests and answers: the engine side (a backend asking an Ollama engine) and
the client side (an Ollama client asking the gateway; docs/wire.md, "Ollama's API as served
to clients", from ollama/ollama's EmbedHandler and EmbeddingsHandler)."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from modelport.errors import ProtocolError, Unsupported
from modelport.types import (
    EmbedRequest,
    EmbedResult,
    Usage,
)
from modelport.wire.ollama.values import EMBED_VALUES
from modelport.wire.validate import (
    check_values,
    expected,
    load_body,
    non_empty_text,
    optional,
    optional_bool,
    optional_int,
    optional_text,
)

JSONObject = dict[str, Any]


def encode_embed_request(req: EmbedRequest) -> JSONObject:
    """Ollama's /api/embed takes text only: its handler answers 400 "invalid input type" to
    anything but strings (server/routes.go, EmbedHandler), so token ids are refused here."""
    if req.tokens:
        raise Unsupported(
            "`input`: Ollama's /api/embed embeds text only, not token ids", param="input"
        )
    body: JSONObject = {"model": req.model, "input": list(req.inputs)}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    return body


class OllamaEmbed(msgspec.Struct):
    embeddings: list[list[float]]
    model: str = ""
    prompt_eval_count: int | None = None
    error: Any = None


_EMBED = msgspec.json.Decoder(OllamaEmbed)
_encode = msgspec.json.Encoder().encode


def decode_embed_response(body: bytes) -> EmbedResult:
    try:
        parsed = _EMBED.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"unreadable embeddings answer: {exc}", raw=body) from None
    usage = None if parsed.prompt_eval_count is None else Usage(parsed.prompt_eval_count, 0)
    return EmbedResult(
        vectors=tuple(tuple(v) for v in parsed.embeddings), model=parsed.model, usage=usage
    )


# -- the client side: /api/embed and the older /api/embeddings, as Ollama answers them ------


class EmbedCall(msgspec.Struct, frozen=True, kw_only=True):
    """A client's /api/embed: the canonical request (without `dimensions`: Ollama cuts the
    vectors itself, so no engine is asked to) and how to cut them. `truncate`, `keep_alive`
    and `options` are checked and kept out of it: no engine here takes them."""

    request: EmbedRequest
    dimensions: int | None = None


def decode_embed_call(body: bytes) -> EmbedCall:
    """/api/embed (api.EmbedRequest): `input` a string or an array of strings, `""` and `[]`
    being no input at all, as Ollama takes them."""
    obj = load_body(body)
    check_values(EMBED_VALUES, obj)
    model = non_empty_text(obj, "model", "model")
    raw = obj.get("input")
    if raw is None or raw == "":
        inputs: tuple[str, ...] = ()
    elif isinstance(raw, str):
        inputs = (raw,)
    elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        inputs = tuple(raw)
    else:
        expected("input", "a string or an array of strings", raw)
    dimensions = optional_int(obj, "dimensions", "dimensions")
    _check_common(obj)
    optional_bool(obj, "truncate", "truncate")
    request = EmbedRequest(model=model, inputs=inputs)
    return EmbedCall(request=request, dimensions=dimensions or None)


def decode_embeddings_call(body: bytes) -> EmbedRequest:
    """/api/embeddings (api.EmbeddingRequest): one `prompt`; an empty one is no input."""
    obj = load_body(body)
    check_values(EMBED_VALUES, obj)
    model = non_empty_text(obj, "model", "model")
    prompt = optional_text(obj, "prompt", "prompt")
    _check_common(obj)
    return EmbedRequest(model=model, inputs=(prompt,) if prompt else ())


def _check_common(obj: JSONObject) -> None:
    """`options` is a free map and `keep_alive` seconds or a Go duration string."""
    optional(obj, "options", dict, "an object", "options")
    optional(obj, "keep_alive", (int, float, str), "a number or a duration string", "keep_alive")


def normalized(vector: tuple[float, ...]) -> list[float]:
    """L2-normalised, as Ollama's EmbedHandler answers (a zero vector stays zero)."""
    norm = math.sqrt(sum(v * v for v in vector))
    scale = 1.0 / max(norm, 1e-12)
    return [v * scale for v in vector]


def encode_embed_answer(
    result: EmbedResult,
    *,
    model: str,
    dimensions: int | None,
    total_ns: int,
    load_ns: int,
) -> bytes:
    """api.EmbedResponse: each vector normalised, cut to `dimensions` and normalised again;
    `prompt_eval_count` when the engine counted (Ollama leaves a zero out)."""
    vectors = []
    for vector in result.vectors:
        unit = normalized(vector)
        if dimensions is not None and dimensions < len(unit):
            unit = normalized(tuple(unit[:dimensions]))
        vectors.append(unit)
    body: JSONObject = {
        "model": model,
        "embeddings": vectors,
        "total_duration": total_ns,
        "load_duration": load_ns,
    }
    if result.usage is not None and result.usage.input_tokens:
        body["prompt_eval_count"] = result.usage.input_tokens
    return _encode(body)


def encode_embeddings_answer(result: EmbedResult) -> bytes:
    """api.EmbeddingResponse: the one vector as the engine gave it (not normalised, as
    Ollama's EmbeddingsHandler), `[]` for an empty prompt."""
    vector = list(result.vectors[0]) if result.vectors else []
    return _encode({"embedding": vector})
