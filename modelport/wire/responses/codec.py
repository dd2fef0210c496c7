"""The OpenAI Responses dialect as one `Codec` (see modelport.wire.codec)."""

from __future__ import annotations

from modelport.types import ChatRequest, WireFormat
from modelport.wire.codec import Codec, SSECodecBase
from modelport.wire.responses import errors, request, request_encode, response
from modelport.wire.responses.fields import FIELDS
from modelport.wire.responses.stream_decode import StreamDecoder
from modelport.wire.responses.stream_encode import StreamEncoder


class ResponsesCodec(SSECodecBase):
    """Stateless: each stream gets its own framer, decoder and encoder. Relayed bodies go
    on untouched (SSECodecBase.prepare_relay): usage always rides on response.completed."""

    format = WireFormat.RESPONSES
    relay_path = "/responses"

    # The dialect's concern modules, bound as the protocol names them.
    decode_request = staticmethod(request.decode_request)
    fields = FIELDS
    encode_request = staticmethod(request_encode.encode_request)
    decode_response = staticmethod(response.decode_response)
    encode_response = staticmethod(response.encode_response)
    encode_error = staticmethod(errors.encode_error)
    error_status = staticmethod(errors.error_status)

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
        # Usage always rides on response.completed; `include_usage` is chat completions' opt-in.
        return StreamEncoder(id=f"resp_{request_id}", model=model, request=request)


CODEC: Codec = ResponsesCodec()  # typed, so mypy checks the class against the protocol
