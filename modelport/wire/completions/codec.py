"""Legacy completions as a `RelayCodec` (see modelport.wire.codec): relayed, never transcoded."""

from __future__ import annotations

import msgspec

from modelport.types import RelayContext, RelayFormat
from modelport.wire.codec import RelayCodec, RelayRequest, SSECodecBase
from modelport.wire.completions.request import check_request
from modelport.wire.completions.stream_decode import StreamDecoder, decode_response
from modelport.wire.openai import errors
from modelport.wire.openai.codec import CODEC as CHAT_CODEC
from modelport.wire.validate import relay_body


class CompletionsCodec(SSECodecBase):
    """Stateless; OpenAI's error bodies and its opt-in stream usage, as the client expects."""

    format = RelayFormat.COMPLETIONS
    relay_path = "/completions"

    decode_response = staticmethod(decode_response)
    encode_error = staticmethod(errors.encode_error)
    error_status = staticmethod(errors.error_status)
    wants_stream_usage = staticmethod(CHAT_CODEC.wants_stream_usage)

    def stream_decoder(self, *, backend_id: str | None = None) -> StreamDecoder:
        return StreamDecoder()

    def prepare_relay(
        self, body: bytes, *, api_key: str | None = None, context: RelayContext | None = None
    ) -> RelayRequest:
        """Checked (check_request), then as chat does: a stream asks for usage (the meter
        needs it) and its usage chunk is kept from a client that did not ask. The set fields
        go along, so a backend can refuse one its engine would drop."""
        payload = relay_body(body)  # CompletionsCall checked it: parsed, not walked again
        checked = check_request(payload)
        options = payload.get("stream_options") or {}
        if not checked.stream or options.get("include_usage") is True:
            return self.relayed(body, checked.stream, api_key, context, fields=checked.fields)
        payload["stream_options"] = {**options, "include_usage": True}
        return self.relayed(
            msgspec.json.encode(payload),
            True,
            api_key,
            context,
            drop_usage_chunk=True,
            fields=checked.fields,
        )


CODEC: RelayCodec = CompletionsCodec()  # typed, so mypy checks the class against the protocol
