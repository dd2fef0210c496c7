"""/v1/messages/count_tokens: not part of the Codec protocol."""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.errors import (
    ProtocolError,
)
from modelport.types import (
    ChatRequest,
)
from modelport.wire.anthropic.constants import (
    json_encode,
)
from modelport.wire.anthropic.request import decode_request_object
from modelport.wire.validate import (
    load_body,
)


def decode_count_tokens_request(body: bytes | dict[str, Any]) -> ChatRequest:
    """A /v1/messages/count_tokens body: a messages body without max_tokens."""
    return decode_request_object(load_body(body), count_tokens=True)


def encode_count_tokens_response(input_tokens: int) -> bytes:
    return json_encode({"input_tokens": input_tokens})


def decode_count_tokens_response(body: bytes, *, backend_id: str | None = None) -> int:
    """`{"input_tokens": N}` -> N; anything else is a ProtocolError."""
    try:
        tokens = msgspec.json.decode(body).get("input_tokens")
    except (msgspec.DecodeError, AttributeError):
        tokens = None
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        raise ProtocolError("unreadable count_tokens answer", backend_id=backend_id, raw=body)
    return tokens
