"""What the service hands the HTTP layer, and failures in the client's own format."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Protocol

from modelport.errors import BackendError, Overloaded, RateLimited, UpstreamAuthError
from modelport.types import WireFormat
from modelport.wire import codec_for

SSE = "text/event-stream"
JSON = "application/json"


class Chunks(Protocol):
    """A stream reply's body. Iterate it, then always `aclose()` it once writing stops,
    read to the end or not: that closes the upstream, frees the slot, records the request.
    `failure` is the error a failed body ended with, once it has: its last chunk was that
    error's frame in the client's format."""

    failure: BackendError | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def __anext__(self) -> Awaitable[bytes]: ...

    async def aclose(self) -> None: ...


@dataclass
class Reply:
    """What the HTTP layer writes: a status, headers, and a whole body or a chunk stream."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: Chunks | None = None
    content_type: str = JSON


def retry_after(err: BackendError) -> float | None:
    """Seconds the client should wait before trying again, when the failure says so.

    The one place that decides the Retry-After header: an engine's 429 or 503 passes its
    own on, a 429 for a model held off by one says the wait left, our own queue says 1.
    """
    if isinstance(err, RateLimited | Overloaded):
        return err.retry_after
    return None


def error_headers(err: BackendError) -> dict[str, str]:
    """The headers a failure adds: Retry-After (whole seconds, rounded up so a client that
    waits that long finds the wait over), and `x-should-retry: false` where retrying cannot
    help (the OpenAI and Anthropic SDKs obey it over their retry-on-5xx rule)."""
    headers: dict[str, str] = {}
    wait = retry_after(err)
    if wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    if isinstance(err, UpstreamAuthError):
        headers["x-should-retry"] = "false"
    return headers


def error_status(format: WireFormat, err: BackendError) -> int:
    return codec_for(format).error_status(err)


def error_reply(format: WireFormat, err: BackendError, headers: dict[str, str]) -> Reply:
    """A failure as a whole answer in the client's format, with Retry-After when it has one."""
    codec = codec_for(format)
    headers = {**headers, **error_headers(err)}
    return Reply(status=codec.error_status(err), headers=headers, body=codec.encode_error(err))


def stream_error(format: WireFormat, err: BackendError) -> bytes:
    """An error frame for a stream that is already under way, in the client's format."""
    return codec_for(format).stream_encoder(request_id="", model="").error(err)
