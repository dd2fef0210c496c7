"""The Anthropic Messages dialect as one `Codec` (see modelport.wire.codec)."""

from __future__ import annotations

from modelport.types import ChatRequest, WireFormat
from modelport.wire.anthropic import errors, request, request_encode, response
from modelport.wire.anthropic.constants import ANTHROPIC_VERSION
from modelport.wire.anthropic.fields import FIELDS
from modelport.wire.anthropic.stream_decode import StreamDecoder
from modelport.wire.anthropic.stream_encode import StreamEncoder
from modelport.wire.codec import Codec, SSECodecBase


class AnthropicCodec(SSECodecBase):
    """Stateless: each stream gets its own framer, decoder and encoder."""

    format = WireFormat.ANTHROPIC
    relay_path = "/messages"
    stream_end = b"event: message_stop"
    # Claude Code names its betas and version; an engine that speaks Messages may act on them.
    forwarded_headers = frozenset({"anthropic-beta", "anthropic-version"})

    # The dialect's concern modules, bound as the protocol names them.
    decode_request = staticmethod(request.decode_request)
    fields = FIELDS
    encode_request = staticmethod(request_encode.encode_request)
    decode_response = staticmethod(response.decode_response)
    encode_response = staticmethod(response.encode_response)
    encode_error = staticmethod(errors.encode_error)
    error_status = staticmethod(errors.http_status)

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
        # Anthropic streams always carry usage (SSECodecBase.wants_stream_usage says so).
        return StreamEncoder(id=f"msg_{request_id}", model=model)

    def relay_headers(self, api_key: str | None) -> dict[str, str]:
        """The version header, and the key as `x-api-key`, where Anthropic clients put it.
        The body goes on untouched: Anthropic streams always carry usage."""
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers


CODEC: Codec = AnthropicCodec()  # typed, so mypy checks the class against the protocol
