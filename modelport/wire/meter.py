"""Metering for passthrough: watch relayed bytes for usage, finish reason and failure.

The relay path hands an engine's bytes to the client untouched. The meter reads the same
bytes with the format's own stream decoder (about a microsecond a chunk), so a relayed
request is counted exactly as a transcoded one would be: same usage, same finish reason,
same error class.
"""

from __future__ import annotations

from modelport.errors import BackendError, ProtocolError
from modelport.types import Done, Event, FinishReason, Usage, WireFormat
from modelport.wire import anthropic, openai
from modelport.wire.sse import SSEDecoder


class Meter:
    """Feed it the relayed bytes, then `close()`; `outcome()` tells how the answer ended."""

    def __init__(self, format: WireFormat, *, stream: bool) -> None:
        self.format = format
        self.stream = stream
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None
        self.raw_reason: str | None = None
        self.error: BackendError | None = None
        # True when the engine sent the error as a frame: the client has already seen it.
        self.error_in_stream = False
        self._done = False
        self._frames = SSEDecoder() if stream else None
        self._openai = openai.StreamDecoder()
        self._anthropic = anthropic.StreamDecoder()
        self._body: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        if self._frames is None:
            self._body.append(chunk)
            return
        if self.error is None:
            for frame in self._frames.feed(chunk):
                self._frame(frame.event, frame.data)

    def close(self) -> None:
        """Call once the body has ended."""
        if self._frames is None:
            self._whole(b"".join(self._body))
            self._body = []
            return
        for frame in self._frames.close():
            self._frame(frame.event, frame.data)
        if self.error is None and not self._done:
            decoder = self._openai if self.format is WireFormat.OPENAI else self._anthropic
            try:
                self._take(decoder.close())
            except BackendError as exc:
                self.error = exc
        if self.error is None and not self._done:
            self.error = ProtocolError("the engine's stream ended without its terminal frame")

    def outcome(self) -> BackendError | None:
        """The failure the answer carried or implied, or None when it ended properly."""
        return self.error

    def _frame(self, event: str | None, data: str) -> None:
        if self.error is not None or self._done:
            return
        try:
            if self.format is WireFormat.OPENAI:
                events = self._openai.feed(data)
            else:
                events = self._anthropic.feed(event, data)
        except BackendError as exc:
            self.error = exc
            # A ProtocolError is our reading of bad bytes; anything else is the engine's
            # own error frame, which went to the client with the rest.
            self.error_in_stream = not isinstance(exc, ProtocolError)
            return
        self._take(events)

    def _take(self, events: list[Event]) -> None:
        for item in events:
            if isinstance(item, Done):
                self._finish(item.usage, item.finish_reason, item.raw_reason)
                self._done = True

    def _whole(self, body: bytes) -> None:
        decode = (
            openai.decode_response
            if self.format is WireFormat.OPENAI
            else anthropic.decode_response
        )
        try:
            response = decode(body)
        except BackendError as exc:
            self.error = ProtocolError(f"unreadable answer: {exc.message}", raw=body)
            return
        self._finish(response.usage, response.finish_reason, response.raw_reason)

    def _finish(self, usage: Usage | None, reason: FinishReason, raw: str | None) -> None:
        self.usage = usage
        self.finish_reason = reason
        self.raw_reason = raw
