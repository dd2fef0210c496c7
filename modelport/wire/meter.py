"""Metering for passthrough: watch relayed bytes for usage, finish reason and failure.

The relay path hands an engine's bytes to the client untouched, a whole frame at a time.
The meter reads each frame with the format's own codec (its framer and stream decoder,
about a microsecond a chunk), so a relayed request is counted exactly as a transcoded one
would be. It also decides what may go on: an engine's error frame stops the stream (the
gateway writes the error in the client's own format instead), and a usage-only frame
(the decoder says which) that only metering asked for is kept from a client that did not.

Frames are cut out of the raw bytes at SSE blank lines, or at line ends for a dialect
whose streams are NDJSON (Ollama's: its codec's `stream_content_type` says so), where each
line is a frame: its counts ride on the `done: true` line, a failure is an `error` line.

An engine whose wire is off in a way the client would see (a profile quirk) gets a
`FrameFixup`: the meter hands it each frame it has read and sends what it returns instead
(wire/anthropic/relay_fixup.py). Without one, no frame is ever re-encoded.

`WholeFrames` is the same SSE framing without the metering: bytes already metered (a
modelport agent's relay job, at the hub) cut back into whole frames only.
"""

from __future__ import annotations

from typing import Protocol

from modelport.errors import BackendError, ProtocolError
from modelport.types import Done, Event, FinishReason, RelayedFormat, Usage
from modelport.wire import relay_codec_for
from modelport.wire.sse import MAX_FRAME_BYTES, Frame, frame_too_large


class FrameFixup(Protocol):
    """Rewrites the frames of one relayed answer that a quirk of its engine got wrong."""

    # The SSE event names of the frames it reads; the meter hands it no other (a set
    # lookup per frame is cheaper than a call).
    events: frozenset[str | None]

    def frame(self, frame: Frame) -> bytes | None:
        """The bytes to send instead of this (already metered) frame, None to send it."""
        ...

    def whole(self, body: bytes) -> bytes | None:
        """A whole answer's replacement, or None to send it as it came."""
        ...


def _frame_end(buffer: bytes, start: int, crlf: bool) -> int:
    """Where the first complete SSE frame after `start` ends (after its blank line), or -1."""
    lf = buffer.find(b"\n\n", start)
    if not crlf:
        return lf + 2 if lf >= 0 else -1
    cr = buffer.find(b"\r\n\r\n", start)
    ends = [i + n for i, n in ((lf, 2), (cr, 4)) if i >= 0]
    return min(ends) if ends else -1


def _line_end(buffer: bytes, start: int, crlf: bool) -> int:
    """Where the first complete NDJSON line after `start` ends (after its newline), or -1."""
    end = buffer.find(b"\n", start)
    return end + 1 if end >= 0 else -1


NDJSON = "application/x-ndjson"
_TAIL = 3  # the longest boundary ("\r\n\r\n") less one byte


class Meter:
    """`feed()` bytes in, bytes safe to forward out; after `close()`, `outcome()` tells."""

    def __init__(
        self,
        format: RelayedFormat,
        *,
        stream: bool,
        drop_usage_chunk: bool = False,
        fixup: FrameFixup | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        self.format = format
        self.max_frame_bytes = max_frame_bytes
        self.stream = stream
        self.drop_usage_chunk = drop_usage_chunk
        self._fixup = fixup
        self._codec = relay_codec_for(format)
        ndjson = self._codec.stream_content_type == NDJSON
        self._boundary = _line_end if ndjson else _frame_end
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None
        self.raw_reason: str | None = None
        self.error: BackendError | None = None
        self._done = False
        self._frames = self._codec.framer()
        self._frames.max_frame_bytes = max_frame_bytes
        self._decoder = self._codec.stream_decoder()
        # The unfinished frame: its reads, their size, and its last bytes (where a boundary
        # split across two reads begins).
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._pending_tail = b""
        self._crlf = False  # once an engine sends CR, look for CRLF boundaries too
        self._body: list[bytes] = []

    def feed(self, chunk: bytes) -> bytes:
        """Take what arrived; return the complete frames that may go to the client."""
        if not self.stream:
            self._body.append(chunk)
            return b""
        if self.error is not None:
            return b""
        crlf = self._crlf = self._crlf or b"\r" in chunk
        search = 0
        if self._pending:
            # A boundary may straddle the reads: look at the pending tail and the new bytes
            # only, so a frame that takes many reads is scanned once, not once per read.
            probe = self._pending_tail + chunk
            if self._boundary(probe, 0, crlf) < 0:
                self._keep(chunk, probe)
                return b""
            search = self._pending_size - len(self._pending_tail)
            self._pending.append(chunk)
            chunk = b"".join(self._pending)
            self._pending, self._pending_size, self._pending_tail = [], 0, b""
        buffer = chunk
        size = len(buffer)
        # No frame in a read under the cap can be over it: the common case tests no frame.
        capped = size > self.max_frame_bytes
        edits: list[tuple[int, int, bytes]] = []  # frames dropped (b"") or rewritten
        start = 0
        # One forward scan per read: a read holding many frames costs linear, not quadratic.
        while (end := self._boundary(buffer, search, crlf)) >= 0:
            if capped and end - start > self.max_frame_bytes:
                self.error = frame_too_large(self.max_frame_bytes)
                break
            replacement = self._forward(buffer[start:end])
            if replacement is not None:
                edits.append((start, end, replacement))
            start = search = end
            if self.error is not None:
                break
        if start < size and self.error is None:
            rest = buffer[start:]
            self._keep(rest, rest)
        if not edits:
            return buffer[:start]
        kept, cursor = [], 0
        for begin, finish, replacement in edits:
            kept.append(buffer[cursor:begin])
            kept.append(replacement)
            cursor = finish
        kept.append(buffer[cursor:start])
        return b"".join(kept)

    def _keep(self, chunk: bytes, probe: bytes) -> None:
        """Hold an unfinished frame's bytes, up to the frame cap."""
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        self._pending_tail = probe[-_TAIL:]
        if self._pending_size > self.max_frame_bytes:
            self.error = frame_too_large(self.max_frame_bytes)
            self._pending, self._pending_size = [], 0

    def close(self) -> bytes:
        """The body has ended: the last bytes to forward (a whole body when not streaming)."""
        if not self.stream:
            body = b"".join(self._body)
            self._body = []
            self._whole(body)
            if self.error is not None:
                return b""
            fixed = self._fixup.whole(body) if self._fixup is not None else None
            return body if fixed is None else fixed
        tail = b""
        if self._pending and self.error is None:
            raw = b"".join(self._pending)
            self._pending, self._pending_size, self._pending_tail = [], 0, b""
            replacement = self._forward(raw + b"\n\n", flush=True)
            tail = raw if replacement is None else replacement
        if self.error is None and not self._done:
            try:
                self._take(self._decoder.close())
            except BackendError as exc:
                self.error = exc
        if self.error is None and not self._done:
            self.error = ProtocolError("the engine's stream ended without its terminal frame")
        return tail

    def outcome(self) -> BackendError | None:
        """The failure the answer carried or implied, or None when it ended properly."""
        return self.error

    def _forward(self, raw: bytes, *, flush: bool = False) -> bytes | None:
        """Meter one raw frame; None when it goes to the client as it came, else what goes
        instead (b"": nothing)."""
        if self._done:
            return None  # after the terminal frame: trailing [DONE] and the like
        frames = self._frames.feed(raw)
        if flush:
            frames += self._frames.close()
        replacement: bytes | None = None
        for frame in frames:
            try:
                events = self._decoder.feed(frame)
            except BackendError as exc:
                self.error = exc
                return b""
            if self.drop_usage_chunk and self._decoder.usage_only:
                replacement = b""
            elif self._fixup is not None and frame.event in self._fixup.events:
                replacement = self._fixup.frame(frame)
            self._take(events)
        return replacement

    def _take(self, events: list[Event]) -> None:
        for item in events:
            if isinstance(item, Done):
                self._finish(item.usage, item.finish_reason, item.raw_reason)
                self._done = True

    def _whole(self, body: bytes) -> None:
        try:
            response = self._codec.decode_response(body)
        except ProtocolError as exc:
            self.error = ProtocolError(f"unreadable answer: {exc.message}", raw=body)
            return
        except BackendError as exc:
            self.error = exc  # an error object under a 2xx status
            return
        self._finish(response.usage, response.finish_reason, response.raw_reason)

    def _finish(self, usage: Usage | None, reason: FinishReason, raw: str | None) -> None:
        self.usage = usage
        self.finish_reason = reason
        self.raw_reason = raw


_FRAME_ENDS = (b"\n\n", b"\r\n\r\n")


class WholeFrames:
    """Whole SSE frames out of chunks that end where a frame ends, but for a frame cut in
    pieces (a hub relaying a modelport agent's relay job: hub/backend.py `RelayedJob`),
    with no frame read: the common chunk costs one `endswith`. A cut frame's pieces wait
    in a list and each new piece is searched once (with the last bytes before it, as the
    Meter's pending frame is), so a frame of many pieces costs linear time. Bounded by
    the frame cap."""

    __slots__ = ("_max", "_pieces", "_size", "_tail")

    def __init__(self, max_frame: int) -> None:
        self._max = max_frame
        self._pieces: list[bytes] = []  # the cut frame's start
        self._size = 0
        self._tail = b""

    @property
    def pending(self) -> bool:
        return bool(self._pieces)

    def feed(self, data: bytes) -> bytes:
        """The whole frames `data` completes (b"" while a cut frame's rest has not come)."""
        if not self._pieces and data.endswith(_FRAME_ENDS):
            return data  # the common case: one test a chunk
        probe = self._tail + data
        end = _last_frame_end(probe)
        if end == 0:
            self._keep(data, probe)
            return b""
        if self._pieces:
            data = b"".join([*self._pieces, data])
            end += self._size - len(self._tail)
            self._pieces, self._size, self._tail = [], 0, b""
        if end < len(data):
            rest = data[end:]
            self._keep(rest, rest)
        return data[:end]

    def close(self) -> bytes:
        """What is left at the job's end (a last frame without its blank line)."""
        rest = b"".join(self._pieces)
        self._pieces, self._size, self._tail = [], 0, b""
        return rest

    def _keep(self, piece: bytes, probe: bytes) -> None:
        self._pieces.append(piece)
        self._size += len(piece)
        self._tail = probe[-_TAIL:]
        if self._size > self._max:
            raise frame_too_large(self._max)


def _last_frame_end(data: bytes) -> int:
    """Where the last complete SSE frame in `data` ends (after its blank line), or 0."""
    lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
