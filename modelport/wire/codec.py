"""The protocols every client dialect implements; see docs/wire-codecs.md.

A dialect is a package under modelport/wire/ exposing one `CODEC` that satisfies `Codec`;
the registry in modelport/wire/__init__.py maps each WireFormat to it. Code outside
wire/ asks the registry for a codec and calls these methods; it never branches on the
format to decode or encode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from modelport.errors import BackendError
from modelport.types import ChatRequest, ChatResponse, Event, WireFormat
from modelport.wire.errors import decode_error_body
from modelport.wire.sse import Frame, SSEDecoder


class Framer(Protocol):
    """Bytes in, frames out (SSEDecoder, NDJSONDecoder); keeps unfinished tails between reads."""

    def feed(self, chunk: bytes) -> list[Frame]: ...

    def close(self) -> list[Frame]: ...


class StreamDecoder(Protocol):
    """One frame at a time in, canonical events out; the last event is Done.

    `close()` at the end of input raises ProtocolError when the stream was cut short, and an
    error frame raises its classified BackendError. `usage_only` tells whether the frame
    last fed carried nothing but usage (OpenAI's include_usage chunk), so a relay can keep
    it from a client that did not ask for it.
    """

    usage_only: bool

    def feed(self, frame: Frame) -> list[Event]: ...

    def close(self) -> list[Event]: ...


class StreamEncoder(Protocol):
    """Canonical events in, the dialect's stream bytes out."""

    def encode(self, event: Event) -> bytes: ...

    def error(self, err: BackendError) -> bytes:
        """An error frame; the stream ends with it."""
        ...


class Codec(Protocol):
    """One client dialect: requests, responses, streams and errors, between bytes and types."""

    @property
    def format(self) -> WireFormat: ...

    def decode_request(self, body: bytes | dict[str, Any]) -> ChatRequest: ...

    def encode_request(self, request: ChatRequest) -> dict[str, Any]: ...

    def decode_response(self, body: bytes | dict[str, Any]) -> ChatResponse: ...

    def encode_response(
        self, response: ChatResponse, *, request: ChatRequest | None = None
    ) -> bytes:
        """A whole answer; `request` is the client's own, decoded (the Responses dialect
        echoes its settings and maps tool names back), None when it is not at hand."""
        ...

    def framer(self) -> Framer:
        """A fresh framer for this dialect's streams."""
        ...

    def stream_decoder(self, *, backend_id: str | None = None) -> StreamDecoder: ...

    def stream_encoder(
        self,
        *,
        request_id: str,
        model: str,
        include_usage: bool = True,
        request: ChatRequest | None = None,
    ) -> StreamEncoder:
        """An encoder for one answer; it builds the answer's id from `request_id`.
        `request` is the client's decoded request, as for `encode_response`."""
        ...

    def decode_error(
        self,
        status: int,
        body: bytes | str,
        *,
        backend_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> BackendError: ...

    def encode_error(self, err: BackendError) -> bytes: ...

    def error_status(self, err: BackendError) -> int:
        """The HTTP status this dialect's clients expect for `err`."""
        ...


class SSECodecBase:
    """What every dialect streaming SSE shares: the framer and the one error-body parser.

    A dialect's codec class inherits these and adds its own requests, responses, stream
    coders and error bodies."""

    def framer(self) -> SSEDecoder:
        return SSEDecoder()

    def decode_error(
        self,
        status: int,
        body: bytes | str,
        *,
        backend_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> BackendError:
        return decode_error_body(status, body, backend_id=backend_id, headers=headers)
