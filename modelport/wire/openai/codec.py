"""The OpenAI chat-completions dialect as one `Codec` (see modelport.wire.codec)."""

from __future__ import annotations

import msgspec

from modelport.types import ChatRequest, WireFormat
from modelport.wire.codec import Codec, RelayRequest, SSECodecBase, relay_payload
from modelport.wire.openai import errors, request, request_encode, response
from modelport.wire.openai.stream_decode import StreamDecoder
from modelport.wire.openai.stream_encode import StreamEncoder


class OpenAICodec(SSECodecBase):
    """Stateless: each stream gets its own framer, decoder and encoder."""

    format = WireFormat.OPENAI
    relay_path = "/chat/completions"

    # The dialect's concern modules, bound as the protocol names them.
    decode_request = staticmethod(request.decode_request)
    encode_request = staticmethod(request_encode.encode_request)
    decode_response = staticmethod(response.decode_response)
    encode_response = staticmethod(response.encode_response)
    encode_error = staticmethod(errors.encode_error)
    error_status = staticmethod(errors.error_status)

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

    def prepare_relay(self, body: bytes, *, api_key: str | None = None) -> RelayRequest:
        """A stream is sent asking for usage (the meter needs it); the usage chunk is then
        kept from a client that did not ask. The key travels as the backend's bearer."""
        payload = relay_payload(body)
        stream = payload.get("stream") is True
        options = payload.get("stream_options") or {}
        if not stream or options.get("include_usage") is True:
            return RelayRequest(body, stream=stream)
        payload["stream_options"] = {**options, "include_usage": True}
        return RelayRequest(msgspec.json.encode(payload), stream=True, drop_usage_chunk=True)


CODEC: Codec = OpenAICodec()  # typed, so mypy checks the class against the protocol
