"""The OpenAI chat-completions dialect as one `Codec` (see modelport.wire.codec)."""

from __future__ import annotations

import msgspec

from modelport.types import ChatRequest, RelayContext, WireFormat
from modelport.wire.codec import Codec, RelayRequest, SSECodecBase
from modelport.wire.openai import errors, request, request_encode, response
from modelport.wire.openai.fields import FIELDS
from modelport.wire.openai.stream_decode import StreamDecoder
from modelport.wire.openai.stream_encode import StreamEncoder
from modelport.wire.validate import relay_body


class _StreamOptions(msgspec.Struct):
    include_usage: bool = False


class _UsageAsked(msgspec.Struct):
    stream_options: _StreamOptions | None = None


_usage_asked = msgspec.json.Decoder(_UsageAsked)


class OpenAICodec(SSECodecBase):
    """Stateless: each stream gets its own framer, decoder and encoder."""

    format = WireFormat.OPENAI
    relay_path = "/chat/completions"
    stream_end = b"data: [DONE]"

    # The dialect's concern modules, bound as the protocol names them.
    decode_request = staticmethod(request.decode_request)
    fields = FIELDS
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

    def wants_stream_usage(self, body: bytes) -> bool:
        """OpenAI's usage chunk is opt-in: `stream_options.include_usage`."""
        try:
            options = _usage_asked.decode(body).stream_options
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        return options is not None and options.include_usage

    def prepare_relay(
        self, body: bytes, *, api_key: str | None = None, context: RelayContext | None = None
    ) -> RelayRequest:
        """A stream is sent asking for usage (the meter needs it); the usage chunk is then
        kept from a client that did not ask. The key travels as the backend's bearer."""
        payload = relay_body(body)  # decode_request checked it: parsed, not walked again
        stream = payload.get("stream") is True
        options = payload.get("stream_options") or {}
        if not stream or options.get("include_usage") is True:
            return self.relayed(body, stream, api_key, context)
        payload["stream_options"] = {**options, "include_usage": True}
        body = msgspec.json.encode(payload)
        return self.relayed(body, True, api_key, context, drop_usage_chunk=True)


CODEC: Codec = OpenAICodec()  # typed, so mypy checks the class against the protocol
