"""Incremental framers for Server-Sent Events and NDJSON.

Engines send frames split anywhere across network reads, so both framers keep the
unfinished tail between `feed` calls; fed one byte at a time they give the same frames
as fed the whole body at once.

Linear in the size of a frame however it is cut: the unfinished tail is kept as a list of
reads, joined once when its line ends, and each read is scanned once (a 64 MiB frame in
64 KiB reads used to be copied and rescanned on every read: quadratic, seconds of CPU on
the event loop). An unfinished frame over `max_frame_bytes` is a ProtocolError: one frame
must not hold the gateway's memory hostage.
"""

from __future__ import annotations

from typing import NamedTuple

from modelport.errors import ProtocolError

# The largest frame an engine may send (one SSE event, one NDJSON line); the gateway's
# [server] max_frame_mb sets it for its backends.
MAX_FRAME_BYTES = 16 * 1024 * 1024


class Frame(NamedTuple):
    """One framed unit of a stream, whatever the framing: every stream decoder takes these.

    SSE: the `event:` name (None when absent) and the joined `data:` lines.
    NDJSON: `event` is None and `data` is one line, stripped.
    """

    event: str | None
    data: str


SSEFrame = Frame  # the name the SSE framer's frames had first


def frame_too_large(limit: int) -> ProtocolError:
    """The one wording for a frame over the cap, whichever framer or meter found it."""
    return ProtocolError(f"the engine sent a frame over the {_size(limit)} limit (max_frame_mb)")


def _size(limit: int) -> str:
    mib = limit / (1024 * 1024)
    return f"{mib:g} MiB" if mib >= 1 else f"{limit} bytes"


# A data line longer than this is decoded through a memoryview: one copy, not two.
_BIG_LINE = 64 * 1024


class SSEDecoder:
    """Bytes in, frames out. Comment lines (`:`) are dropped; `id:` and `retry:` are ignored."""

    __slots__ = (
        "_data",
        "_data_size",
        "_event",
        "_parts",
        "_parts_size",
        "_pending_cr",
        "max_frame_bytes",
    )

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._parts: list[bytes] = []  # the unfinished line, as its reads came
        self._parts_size = 0
        self._event: str | None = None
        self._data: list[str] = []
        self._data_size = 0
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[Frame]:
        if not chunk:
            return []  # an empty read must not forget a CR waiting for its LF
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two reads
        self._pending_cr = chunk.endswith(b"\r")
        if b"\r" in chunk:  # only the new bytes: the kept tail never holds a CR
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:
            _keep(self, chunk)
            return []
        lines = chunk.split(b"\n")
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = b"".join(self._parts)
            self._parts, self._parts_size = [], 0
        tail = lines.pop()
        frames = self._lines(lines)
        if tail:
            _keep(self, tail)
        return frames

    def close(self) -> list[Frame]:
        """Flush at end of stream: a last frame without its blank line still counts."""
        lines = [b"".join(self._parts)] if self._parts else []
        self._parts, self._parts_size = [], 0
        lines.append(b"")
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[Frame]:
        """Whole lines to frames. One loop with the open frame in locals, not a method call
        per line: this runs for every line of every stream the gateway meters or decodes.
        Comment lines (`:`) and unknown fields match no branch and are dropped."""
        frames: list[Frame] = []
        event, data, size = self._event, self._data, self._data_size
        limit = self.max_frame_bytes  # the unfinished line was joined in: nothing else held
        for raw in lines:
            if not raw:
                if data:
                    frames.append(Frame(event, "\n".join(data)))
                    data = []
                event, size = None, 0
            elif raw.startswith(b"data:"):
                start = 6 if raw[5:6] == b" " else 5
                length = len(raw)
                if length < _BIG_LINE:
                    data.append(raw[start:].decode("utf-8", "replace"))
                else:
                    data.append(str(memoryview(raw)[start:], "utf-8", "replace"))
                size += length
                if size > limit:
                    self._data, self._data_size = data, size
                    raise frame_too_large(limit)
            elif raw.startswith(b"event:"):
                start = 7 if raw[6:7] == b" " else 6
                event = raw[start:].decode("utf-8", "replace")
            elif raw == b"data":  # a field without a colon has an empty value
                data.append("")
            elif raw == b"event":
                event = ""
        self._event, self._data, self._data_size = event, data, size
        return frames


class NDJSONDecoder:
    """Bytes in, complete non-empty lines out as frames (Ollama's native stream)."""

    __slots__ = ("_data_size", "_parts", "_parts_size", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._parts: list[bytes] = []
        self._parts_size = 0
        self._data_size = 0  # an NDJSON frame is one line: only the unfinished one counts

    def feed(self, chunk: bytes) -> list[Frame]:
        if b"\n" not in chunk:
            _keep(self, chunk)
            return []
        lines = chunk.split(b"\n")
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = b"".join(self._parts)
            self._parts, self._parts_size = [], 0
        tail = lines.pop()
        if tail:
            _keep(self, tail)
        if len(lines[0]) > self.max_frame_bytes:  # the one a tail grew into
            raise frame_too_large(self.max_frame_bytes)
        return [_line_frame(line) for line in lines if line.strip()]

    def close(self) -> list[Frame]:
        tail = b"".join(self._parts)
        self._parts, self._parts_size = [], 0
        return [_line_frame(tail)] if tail.strip() else []


def _keep(framer: SSEDecoder | NDJSONDecoder, piece: bytes) -> None:
    """Hold a read of an unfinished line, up to the frame cap."""
    framer._parts.append(piece)
    framer._parts_size += len(piece)
    if framer._parts_size + framer._data_size > framer.max_frame_bytes:
        raise frame_too_large(framer.max_frame_bytes)


def _line_frame(line: bytes) -> Frame:
    # Whole lines only, so a multi-byte character is never cut in two here.
    return Frame(None, line.strip().decode("utf-8", "replace"))


def encode_sse(data: str | bytes, event: str | None = None) -> bytes:
    """One SSE frame; multi-line data becomes several `data:` lines."""
    if isinstance(data, str):
        data = data.encode()
    if b"\n" in data:
        data = data.replace(b"\n", b"\ndata: ")
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"
