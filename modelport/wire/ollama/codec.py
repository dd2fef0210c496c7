"""Ollama's native dialect as codecs: the engine side (ENGINE_CODEC: NDJSON frames, stream
decoder, error bodies, for backends) and the client side (CODEC: /api/chat as one `Codec`).
"""

from __future__ import annotations

from typing import Any

from modelport.errors import InvalidRequest
from modelport.types import ChatRequest, RelayContext, WireFormat
from modelport.wire.codec import (
    ClientCodecBase,
    Codec,
    EngineCodec,
    EngineCodecBase,
    RelayRequest,
)
from modelport.wire.ollama import errors, response
from modelport.wire.ollama.request import encode_chat_request
from modelport.wire.ollama.stream_decode import StreamDecoder
from modelport.wire.ollama.stream_encode import StreamEncoder
from modelport.wire.sse import NDJSONDecoder
from modelport.wire.validate import load_body

NDJSON = "application/x-ndjson"


class OllamaEngineCodec(EngineCodecBase):
    """Stateless: each stream gets its own framer and decoder; errors use the one parser."""

    def framer(self) -> NDJSONDecoder:
        return NDJSONDecoder()

    def stream_decoder(self, *, backend_id: str | None = None) -> StreamDecoder:
        return StreamDecoder(backend_id=backend_id)


ENGINE_CODEC: EngineCodec = OllamaEngineCodec()  # typed, so mypy checks it


def relay_stream(payload: dict[str, Any]) -> bool:
    """Ollama streams unless told `"stream": false` (a missing or null `stream` streams)."""
    return payload.get("stream") is not False


class OllamaCodec(OllamaEngineCodec, ClientCodecBase):
    """/api/chat as a client dialect. Stateless: the NDJSON framer and decoder of the
    engine side, the relay helpers every client dialect shares."""

    format = WireFormat.OLLAMA
    relay_path = "/api/chat"  # below the server root: Ollama's API has no /v1 base
    stream_content_type = NDJSON

    encode_error = staticmethod(errors.encode_error)
    error_status = staticmethod(errors.error_status)
    decode_response = staticmethod(response.decode_response)

    def decode_request(self, body: bytes | dict[str, Any]) -> ChatRequest:
        if isinstance(body, bytes):
            load_body(body)  # the validators' wording for a body that is no JSON object
        raise InvalidRequest("/api/chat is not served yet")

    def encode_request(self, request: ChatRequest) -> dict[str, Any]:
        return encode_chat_request(request, stream=request.stream)

    def encode_response(self, response_: Any, *, request: ChatRequest | None = None) -> bytes:
        return response.encode_response(response_)

    def stream_encoder(
        self,
        *,
        request_id: str,
        model: str,
        include_usage: bool = True,
        request: ChatRequest | None = None,
    ) -> StreamEncoder:
        # Ollama's done line always carries its counts (include_usage has no say).
        return StreamEncoder(model=model)

    def prepare_relay(
        self, body: bytes, *, api_key: str | None = None, context: RelayContext | None = None
    ) -> RelayRequest:
        """The body goes on untouched: Ollama's done line carries the counts unasked."""
        stream = relay_stream(load_body(body))
        return self.relayed(body, stream, api_key, context)


CODEC: Codec = OllamaCodec()  # typed, so mypy checks the class against the protocol
