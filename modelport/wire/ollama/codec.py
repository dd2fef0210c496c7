"""Ollama's native dialect as codecs: the engine side (ENGINE_CODEC: NDJSON frames, stream
decoder, error bodies, for backends) and the client side: CODEC speaks /api/chat and
GENERATE_CODEC /api/generate, each one `Codec`.
"""

from __future__ import annotations

from typing import Any

from modelport.types import AnswerTiming, ChatRequest, ChatResponse, RelayContext, WireFormat
from modelport.wire.codec import (
    ClientCodecBase,
    Codec,
    EngineCodec,
    EngineCodecBase,
    RelayRequest,
)
from modelport.wire.fields import Target, check_target_range, upstream_extra
from modelport.wire.ollama import errors, generate, request_decode, response
from modelport.wire.ollama.fields import FIELDS
from modelport.wire.ollama.request import encode_chat_request
from modelport.wire.ollama.stream_decode import StreamDecoder
from modelport.wire.ollama.stream_encode import StreamEncoder
from modelport.wire.sse import NDJSONDecoder
from modelport.wire.validate import relay_body

NDJSON = "application/x-ndjson"


class OllamaEngineCodec(EngineCodecBase):
    """Stateless: each stream gets its own framer and decoder; errors use the one parser."""

    def framer(self) -> NDJSONDecoder:
        return NDJSONDecoder()

    def stream_decoder(self, *, backend_id: str | None = None) -> StreamDecoder:
        return StreamDecoder(backend_id=backend_id)


ENGINE_CODEC: EngineCodec = OllamaEngineCodec()  # typed, so mypy checks it


class OllamaCodec(OllamaEngineCodec, ClientCodecBase):
    """/api/chat as a client dialect. Stateless: the NDJSON framer and decoder of the
    engine side, the relay helpers every client dialect shares."""

    format = WireFormat.OLLAMA
    relay_path = "/api/chat"  # below the server root: Ollama's API has no /v1 base
    stream_content_type = NDJSON
    generates = False  # /api/generate's shapes: `prompt` in, `response` out
    fields = FIELDS

    encode_error = staticmethod(errors.encode_error)
    error_status = staticmethod(errors.error_status)
    decode_response = staticmethod(response.decode_response)
    decode_request = staticmethod(request_decode.decode_request)

    def encode_request(self, request: ChatRequest) -> dict[str, Any]:
        return encode_chat_request(request, stream=request.stream)

    def encode_response(
        self,
        response_: ChatResponse,
        *,
        request: ChatRequest | None = None,
        timing: AnswerTiming | None = None,
    ) -> bytes:
        return response.encode_response(response_, generate=self.generates, timing=timing)

    def stream_encoder(
        self,
        *,
        request_id: str,
        model: str,
        include_usage: bool = True,
        request: ChatRequest | None = None,
    ) -> StreamEncoder:
        # Ollama's done line always carries its counts (include_usage has no say).
        return StreamEncoder(model=model, generate=self.generates)

    def prepare_relay(
        self, body: bytes, *, api_key: str | None = None, context: RelayContext | None = None
    ) -> RelayRequest:
        """The body goes on untouched: Ollama's done line carries the counts unasked, and a
        missing or null `stream` streams."""
        stream = relay_body(body).get("stream") is not False  # decode_request walked it
        return self.relayed(body, stream, api_key, context)

    def upstream_extra(self, request: ChatRequest, target: Target, engine: str) -> dict[str, Any]:
        """`extra` with each of its `options` under its own row (`options.seed`), so the table
        decides each: carried under the target's name, dropped or refused by name."""
        if target is Target.OLLAMA:
            return dict(request.extra)  # the Ollama encoder puts `options` back in place
        check_target_range(request.temperature, target, engine)
        flat = {k: v for k, v in request.extra.items() if k != "options"}
        options = request.extra.get("options")
        if isinstance(options, dict):
            flat.update({f"options.{k}": v for k, v in options.items()})
        return upstream_extra(FIELDS, flat, target, engine)


class OllamaGenerateCodec(OllamaCodec):
    """/api/generate: a one-user-message chat in, `response` out."""

    format = WireFormat.OLLAMA_GENERATE
    relay_path = "/api/generate"
    generates = True

    decode_request = staticmethod(generate.decode_request)

    def encode_request(self, request: ChatRequest) -> dict[str, Any]:
        return generate.encode_request(request)


CODEC: Codec = OllamaCodec()  # typed, so mypy checks the class against the protocol
GENERATE_CODEC: Codec = OllamaGenerateCodec()
