"""TEMPORARY: `codec_for(format)` over today's codec modules, until the typed codec lands.

The codecs are being restructured (branch wt-wire) into a typed protocol with this exact
interface. Everything in modelport.service imports `codec_for`, `Codec` and `StreamEncoder`
from here only, so the merge replaces this one module (and its imports) and nothing else.
"""

from __future__ import annotations

from typing import Protocol

from modelport.errors import BackendError
from modelport.types import ChatRequest, ChatResponse, Event, WireFormat
from modelport.wire import anthropic, openai


class StreamEncoder(Protocol):
    """Canonical events in, one client dialect's stream bytes out."""

    def encode(self, event: Event) -> bytes: ...

    def error(self, err: BackendError) -> bytes: ...


class Codec(Protocol):
    """One client dialect: requests in, answers and errors out. Never does I/O."""

    @property
    def format(self) -> WireFormat: ...

    def decode_request(self, body: bytes) -> ChatRequest: ...

    def encode_response(self, response: ChatResponse) -> bytes: ...

    def stream_encoder(
        self, *, request_id: str, model: str, include_usage: bool = True
    ) -> StreamEncoder: ...

    def encode_error(self, err: BackendError) -> bytes: ...

    def error_status(self, err: BackendError) -> int: ...


class _OpenAICodec:
    format = WireFormat.OPENAI

    def decode_request(self, body: bytes) -> ChatRequest:
        return openai.decode_request(body)

    def encode_response(self, response: ChatResponse) -> bytes:
        return openai.encode_response(response)

    def stream_encoder(
        self, *, request_id: str, model: str, include_usage: bool = True
    ) -> StreamEncoder:
        return openai.StreamEncoder(
            id=f"chatcmpl-{request_id}", model=model, include_usage=include_usage
        )

    def encode_error(self, err: BackendError) -> bytes:
        return openai.encode_error(err)

    def error_status(self, err: BackendError) -> int:
        return err.status


class _AnthropicCodec:
    format = WireFormat.ANTHROPIC

    def decode_request(self, body: bytes) -> ChatRequest:
        return anthropic.decode_request(body)

    def encode_response(self, response: ChatResponse) -> bytes:
        return anthropic.encode_response(response)

    def stream_encoder(
        self, *, request_id: str, model: str, include_usage: bool = True
    ) -> StreamEncoder:
        return anthropic.StreamEncoder(id=f"msg_{request_id}", model=model)

    def encode_error(self, err: BackendError) -> bytes:
        return anthropic.encode_error(err)

    def error_status(self, err: BackendError) -> int:
        return anthropic.http_status(err)


_CODECS: dict[WireFormat, Codec] = {
    WireFormat.OPENAI: _OpenAICodec(),
    WireFormat.ANTHROPIC: _AnthropicCodec(),
}


def codec_for(format: WireFormat) -> Codec:
    return _CODECS[format]
