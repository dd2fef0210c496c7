"""The Backend protocol every engine adapter implements, and the Relay it returns.

A backend owns the I/O to one engine. It offers two paths (docs/architecture.md):
`stream()` decodes the engine's wire into canonical events, and `relay()` hands the
engine's bytes through untouched when the caller already speaks the engine's format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from modelport.types import (
    BackendHealth,
    BackendModel,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResult,
    Event,
    FinishReason,
    RelayContext,
    RelayedFormat,
    Usage,
)
from modelport.wire.fields import Target


class Relay(Protocol):
    """Raw passthrough of one request: iterate the engine's bytes as they arrive.

    Once iteration ends, `usage` and `finish_reason` hold what the stream said. A stream
    that carries an error, breaks, or ends without its terminal frame raises a BackendError
    from the iterator after the last good frame; the engine's own error frame is not among
    the bytes, so the caller can report the error in its client's format.
    """

    @property
    def status(self) -> int: ...

    @property
    def content_type(self) -> str: ...

    @property
    def usage(self) -> Usage | None: ...

    @property
    def finish_reason(self) -> FinishReason | None: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    kind: str
    id: str
    formats: frozenset[RelayedFormat]  # client dialects, and relay-only formats
    # The dialect a transcoded request is sent in: what decides each client field's fate
    # (modelport/wire/fields.py).
    transcodes_to: Target

    @property
    def url(self) -> str | None:
        """Where the engine listens; None for in-process backends (the mock). Read-only
        here, so a class may hold a plain `str`."""
        ...

    async def list_models(self) -> list[BackendModel]: ...

    async def health(self) -> BackendHealth: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[Event]: ...

    async def chat(self, request: ChatRequest) -> ChatResponse: ...

    async def embed(self, request: EmbedRequest) -> EmbedResult: ...

    def relays(self, format: RelayedFormat, request: ChatRequest) -> bool:
        """Whether `request`, decoded from a client body in `format`, passes through: the
        backend speaks the format, and its engine honours there what the request asks (an
        engine whose profile knows otherwise says False, and the request is transcoded)."""
        ...

    async def relay(
        self, format: RelayedFormat, body: bytes, context: RelayContext | None = None
    ) -> Relay:
        """Pass a client's body (in `format`, which this backend speaks) through to the
        engine, with what `context` carries of the client's request (query, dialect headers)."""
        ...

    async def count_tokens(self, request: ChatRequest) -> int:
        """Input tokens `request` would cost, as the engine counts them. An engine that
        cannot count raises Unsupported before any I/O."""
        ...

    async def aclose(self) -> None: ...
