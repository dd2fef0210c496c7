"""HTTPRelay: an engine's response body passed through byte for byte, metered on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from modelport.backends.http import iter_body
from modelport.types import FinishReason, Usage, WireFormat
from modelport.wire.meter import Meter


class HTTPRelay:
    """Iterate to get the bytes; then `usage`, `finish_reason` and `error_sent` are known.

    If the stream carried an error frame, that frame is among the bytes yielded (so the
    client has already seen it, `error_sent` is True) and the error is raised after it.
    A stream cut short raises ProtocolError after the last byte that did arrive.
    """

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        format: WireFormat,
        *,
        stream: bool,
        backend_id: str,
    ) -> None:
        self._response = response
        self._meter = Meter(format, stream=stream)
        self.backend_id = backend_id
        self.status = response.status
        self.content_type = response.headers.get(
            "Content-Type", "text/event-stream" if stream else "application/json"
        )
        self.error_sent = False

    @property
    def usage(self) -> Usage | None:
        return self._meter.usage

    @property
    def finish_reason(self) -> FinishReason | None:
        return self._meter.finish_reason

    async def __aiter__(self) -> AsyncIterator[bytes]:
        completed = False
        try:
            async for chunk in iter_body(self._response, self.backend_id):
                self._meter.feed(chunk)
                yield chunk
            self._meter.close()
            completed = True
        finally:
            if completed:
                self._response.release()
            else:
                # Dropping the connection is how the engine learns to stop generating.
                self._response.close()
        error = self._meter.outcome()
        if error is not None:
            error.backend_id = error.backend_id or self.backend_id
            self.error_sent = self._meter.error_in_stream
            raise error

    async def aclose(self) -> None:
        self._response.close()
