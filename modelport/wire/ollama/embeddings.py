"""/api/embed requests and answers."""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.errors import ProtocolError, Unsupported
from modelport.types import (
    EmbedRequest,
    EmbedResult,
    Usage,
)

JSONObject = dict[str, Any]


def encode_embed_request(req: EmbedRequest) -> JSONObject:
    """Ollama's /api/embed takes text only: its handler answers 400 "invalid input type" to
    anything but strings (server/routes.go, EmbedHandler), so token ids are refused here."""
    if req.tokens:
        raise Unsupported("`input`: Ollama's /api/embed embeds text only, not token ids")
    body: JSONObject = {"model": req.model, "input": list(req.inputs)}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    return body


class _Embed(msgspec.Struct):
    embeddings: list[list[float]]
    model: str = ""
    prompt_eval_count: int | None = None
    error: Any = None


_EMBED = msgspec.json.Decoder(_Embed)


def decode_embed_response(body: bytes) -> EmbedResult:
    try:
        parsed = _EMBED.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"unreadable embeddings answer: {exc}", raw=body) from None
    usage = None if parsed.prompt_eval_count is None else Usage(parsed.prompt_eval_count, 0)
    return EmbedResult(
        vectors=tuple(tuple(v) for v in parsed.embeddings), model=parsed.model, usage=usage
    )
