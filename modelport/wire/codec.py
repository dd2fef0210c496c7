"""The protocols every client dialect implements; see docs/wire-codecs.md.

A dialect is a package under modelport/wire/ exposing one `CODEC` that satisfies `Codec`;
the registry in modelport/wire/__init__.py maps each WireFormat to it. Code outside
wire/ asks the registry for a codec and calls these methods; it never branches on the
format to decode or encode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import msgspec

from modelport.errors import BackendError
from modelport.types import (
    AnswerTiming,
    ChatRequest,
    ChatResponse,
    Event,
    RelayContext,
    RelayFormat,
    WireFormat,
)
from modelport.wire.errors import decode_error_body
from modelport.wire.fields import FieldTable, Target, check_target_range, upstream_extra
from modelport.wire.sse import Frame, SSEDecoder
from modelport.wire.validate import relay_body


class Framer(Protocol):
    """Bytes in, frames out (SSEDecoder, NDJSONDecoder); keeps unfinished tails between reads.

    An unfinished frame over `max_frame_bytes` raises ProtocolError."""

    max_frame_bytes: int

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


class EngineCodec(Protocol):
    """What a backend needs to read an engine's answers in a dialect: frames, events, errors.

    Every client dialect's `Codec` is one; a dialect only engines speak (Ollama's native API)
    can be one without the client side."""

    def framer(self) -> Framer:
        """A fresh framer for this dialect's streams."""
        ...

    def stream_decoder(self, *, backend_id: str | None = None) -> StreamDecoder: ...

    def decode_error(
        self,
        status: int,
        body: bytes | str,
        *,
        backend_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> BackendError: ...


class RelayRequest(msgspec.Struct, frozen=True):
    """A client's body as it goes on to an engine that speaks the client's dialect.

    A Struct, not a frozen dataclass: one is built per relayed request."""

    body: bytes  # the client's own bytes unless the dialect had to add a field
    stream: bool
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    query: str = ""  # the client's query string, passed on as it came
    # Usage was asked for only to meter the answer: the relay keeps its chunk from the client.
    drop_usage_chunk: bool = False
    # The top-level fields the client set (not null, false or ""), where the codec reads them
    # (legacy completions): a backend refuses a body that sets one its engine drops.
    fields: frozenset[str] = frozenset()


class RelayCodec(EngineCodec, Protocol):
    """What relaying one endpoint needs: its path, the body made ready, and what the meter
    reads (frames, a whole answer, errors). A relay-only format (legacy completions) is just
    this; every client dialect's `Codec` is one too."""

    @property
    def format(self) -> WireFormat | RelayFormat: ...

    @property
    def relay_path(self) -> str:
        """The engine endpoint that takes this dialect's bodies, below the API base (`/v1`):
        `/chat/completions`, `/messages`, `/completions`."""
        ...

    @property
    def stream_content_type(self) -> str:
        """The Content-Type of this dialect's streams: `text/event-stream` for SSE,
        `application/x-ndjson` for Ollama's lines."""
        ...

    @property
    def forwarded_headers(self) -> frozenset[str]:
        """The client headers (lower case) a passthrough carries to the engine: the
        dialect's own, such as `anthropic-beta`; never credentials."""
        ...

    @property
    def stream_end(self) -> bytes | None:
        """How the line of a stream's last frame begins, where a byte search can find it
        without parsing (a JSON string holds no raw newline, so no text can fake it at a
        line's start): OpenAI's `data: [DONE]`, Anthropic's `event: message_stop`. None
        for a dialect whose end only a parse can tell."""
        ...

    def prepare_relay(
        self, body: bytes, *, api_key: str | None = None, context: RelayContext | None = None
    ) -> RelayRequest:
        """A client's body made ready to relay: what must be added for metering, the headers
        this dialect needs (its version, and `api_key` where it carries its own), and what
        `context` brought from the client (its query string and forwarded headers)."""
        ...

    def decode_response(self, body: bytes | dict[str, Any]) -> ChatResponse:
        """A whole answer, as far as metering needs it (usage, finish reason)."""
        ...

    def wants_stream_usage(self, body: bytes) -> bool:
        """Whether the client that sent `body` expects its stream to carry usage (the
        `include_usage` its stream encoder is given)."""
        ...

    def encode_error(self, err: BackendError) -> bytes: ...

    def error_status(self, err: BackendError) -> int:
        """The HTTP status this dialect's clients expect for `err`."""
        ...


class Codec(RelayCodec, Protocol):
    """One client dialect: requests, responses, streams and errors, between bytes and types."""

    @property
    def format(self) -> WireFormat: ...

    def decode_request(self, body: bytes | dict[str, Any]) -> ChatRequest: ...

    def upstream_extra(self, request: ChatRequest, target: Target, engine: str) -> dict[str, Any]:
        """The request's `extra` as an engine of `target` gets it when transcoded: each
        field carried, dropped by name or refused naming `engine`, as the dialect's field
        table says (docs/fields.md)."""
        ...

    def encode_request(self, request: ChatRequest) -> dict[str, Any]: ...

    def encode_response(
        self,
        response: ChatResponse,
        *,
        request: ChatRequest | None = None,
        timing: AnswerTiming | None = None,
    ) -> bytes:
        """A whole answer; `request` is the client's own, decoded (the Responses dialect
        echoes its settings and maps tool names back), None when it is not at hand;
        `timing` how long it took, for a dialect whose answers say (Ollama's durations)."""
        ...

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


class EngineCodecBase:
    """The one error-body parser: every dialect reads an engine's error bodies with it."""

    def decode_error(
        self,
        status: int,
        body: bytes | str,
        *,
        backend_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> BackendError:
        return decode_error_body(status, body, backend_id=backend_id, headers=headers)


class ClientCodecBase(EngineCodecBase):
    """What every client dialect shares whatever its stream framing: the error-body parser
    and a relay that passes the body on untouched.

    A dialect's codec class inherits these and adds its framer, `format`, `relay_path`,
    requests, responses, stream coders and error bodies (and `relay_headers` when it
    needs any)."""

    forwarded_headers: frozenset[str] = frozenset()
    stream_end: bytes | None = None
    # Every field the dialect accepts and its fate per target (wire/fields.py); a dialect
    # without a table (None) sends no `extra` to an engine of another dialect.
    fields: FieldTable | None = None

    def upstream_extra(self, request: ChatRequest, target: Target, engine: str) -> dict[str, Any]:
        check_target_range(request.temperature, target, engine)
        if self.fields is None:
            return {}
        return upstream_extra(self.fields, request.extra, target, engine)

    def prepare_relay(
        self, body: bytes, *, api_key: str | None = None, context: RelayContext | None = None
    ) -> RelayRequest:
        payload = relay_body(body)  # checked by decode_request already: parsed, not walked
        stream = payload.get("stream") is True
        return self.relayed(body, stream, api_key, context)

    def relayed(
        self,
        body: bytes,
        stream: bool,
        api_key: str | None,
        context: RelayContext | None,
        *,
        drop_usage_chunk: bool = False,
        fields: frozenset[str] = frozenset(),
    ) -> RelayRequest:
        """The RelayRequest for a body ready to go: the dialect's headers, then the client's
        forwarded ones over them (a client's own `anthropic-version` wins), and its query."""
        headers = self.relay_headers(api_key)
        if context is None:  # the common case: the client sent nothing to carry along
            return RelayRequest(
                body, stream, headers, drop_usage_chunk=drop_usage_chunk, fields=fields
            )
        for name, value in context.headers.items():
            if name.lower() in self.forwarded_headers:
                headers[name.lower()] = value
        return RelayRequest(body, stream, headers, context.query, drop_usage_chunk, fields)

    def relay_headers(self, api_key: str | None) -> dict[str, str]:
        """Headers a relayed body needs beside the backend's own (none by default)."""
        return {}

    def wants_stream_usage(self, body: bytes) -> bool:
        """Streams carry usage unless the dialect makes it opt-in."""
        return True


class SSECodecBase(ClientCodecBase):
    """A client dialect that streams SSE (OpenAI's, Anthropic's, Responses)."""

    stream_content_type = "text/event-stream"

    def framer(self) -> SSEDecoder:
        return SSEDecoder()
