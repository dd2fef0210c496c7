"""The OpenAI chat-completions dialect as one `Codec` (see modelport.wire.codec)."""

from __future__ import annotations

from typing import Any

from modelport.errors import BackendError
from modelport.types import ChatRequest, ChatResponse, WireFormat
from modelport.wire.codec import Codec, SSECodecBase
from modelport.wire.openai.errors import encode_error, error_status
from modelport.wire.openai.request import decode_request
from modelport.wire.openai.request_encode import encode_request
from modelport.wire.openai.response import decode_response, encode_response
from modelport.wire.openai.stream_decode import StreamDecoder
from modelport.wire.openai.stream_encode import StreamEncoder


class OpenAICodec(SSECodecBase):
    """Stateless: each stream gets its own framer, decoder and encoder."""

    @property
    def format(self) -> WireFormat:
        return WireFormat.OPENAI

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
        return StreamDecoder()  # errors get their backend id where the stream is read

    def stream_encoder(
        self,
        *,
        request_id: str,
        model: str,
        include_usage: bool = True,
        request: ChatRequest | None = None,
    ) -> StreamEncoder:
        return StreamEncoder(id=f"chatcmpl-{request_id}", model=model, include_usage=include_usage)

    def encode_error(self, err: BackendError) -> bytes:
        return encode_error(err)

    def error_status(self, err: BackendError) -> int:
        return error_status(err)


CODEC: Codec = OpenAICodec()  # typed, so mypy checks the class against the protocol
