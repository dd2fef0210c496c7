"""The Anthropic Messages dialect as one `Codec` (see modelport.wire.codec)."""

from __future__ import annotations

from typing import Any

from modelport.errors import BackendError
from modelport.types import ChatRequest, ChatResponse, WireFormat
from modelport.wire.anthropic.errors import encode_error, http_status
from modelport.wire.anthropic.request import decode_request
from modelport.wire.anthropic.request_encode import encode_request
from modelport.wire.anthropic.response import decode_response, encode_response
from modelport.wire.anthropic.stream_decode import StreamDecoder
from modelport.wire.anthropic.stream_encode import StreamEncoder
from modelport.wire.codec import Codec, SSECodecBase


class AnthropicCodec(SSECodecBase):
    """Stateless: each stream gets its own framer, decoder and encoder."""

    @property
    def format(self) -> WireFormat:
        return WireFormat.ANTHROPIC

    def decode_request(self, body: bytes | dict[str, Any]) -> ChatRequest:
        return decode_request(body)

    def encode_request(self, request: ChatRequest) -> dict[str, Any]:
        return encode_request(request)

    def decode_response(self, body: bytes | dict[str, Any]) -> ChatResponse:
        return decode_response(body)

    def encode_response(
        self, response: ChatResponse, *, request: ChatRequest | None = None
    ) -> bytes:
        return encode_response(response)

    def stream_decoder(self, *, backend_id: str | None = None) -> StreamDecoder:
        return StreamDecoder(backend_id=backend_id)

    def stream_encoder(
        self,
        *,
        request_id: str,
        model: str,
        include_usage: bool = True,
        request: ChatRequest | None = None,
    ) -> StreamEncoder:
        # Anthropic streams always carry usage; `include_usage` is OpenAI's opt-in.
        return StreamEncoder(id=f"msg_{request_id}", model=model)

    def encode_error(self, err: BackendError) -> bytes:
        return encode_error(err)

    def error_status(self, err: BackendError) -> int:
        return http_status(err)


CODEC: Codec = AnthropicCodec()  # typed, so mypy checks the class against the protocol
