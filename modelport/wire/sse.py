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


class _Lines:
    """The unfinished line of a framer: reads kept as they came, joined once at its end."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def split(self, chunk: bytes) -> list[bytes]:
        """The complete lines `chunk` finishes (LF already normalised); keeps the rest."""
        if b"\n" not in chunk:
            self.parts.append(chunk)
            self.size += len(chunk)
            return []
        lines = chunk.split(b"\n")
        if self.parts:
            self.parts.append(lines[0])
            lines[0] = b"".join(self.parts)
        tail = lines.pop()
        self.parts = [tail] if tail else []
        self.size = len(tail)
        return lines

    def take(self) -> bytes:
        tail = b"".join(self.parts)
        self.parts = []
        self.size = 0
        return tail


class SSEDecoder:
    """Bytes in, frames out. Comment lines (`:`) are dropped; `id:` and `retry:` are ignored."""

    __slots__ = ("_data", "_data_size", "_event", "_lines", "_pending_cr", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._lines = _Lines()
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
        frames: list[Frame] = []
        for raw in self._lines.split(chunk):
            self._line(raw, frames)
        if self._data_size + self._lines.size > self.max_frame_bytes:
            raise frame_too_large(self.max_frame_bytes)
        return frames

    def close(self) -> list[Frame]:
        """Flush at end of stream: a last frame without its blank line still counts."""
        frames: list[Frame] = []
        tail = self._lines.take()
        if tail:
            self._line(tail, frames)
        self._line(b"", frames)
        return frames

    def _line(self, raw: bytes, frames: list[Frame]) -> None:
        if not raw:
            if self._data:
                frames.append(Frame(self._event, "\n".join(self._data)))
            self._event = None
            self._data = []
            self._data_size = 0
            return
        if raw[0] == 0x3A:  # ':' comment, e.g. OpenRouter's ": OPENROUTER PROCESSING"
            return
        # Split the field on bytes and decode only the value, straight from the read: a
        # 16 MiB data line is copied once, not three times (decode, partition, slice).
        colon = raw.find(b":")
        if colon < 0:
            name, start = raw, len(raw)
        else:
            name, start = raw[:colon], colon + 1
            if raw[start : start + 1] == b" ":
                start += 1
        if name == b"data":
            self._data.append(str(memoryview(raw)[start:], "utf-8", "replace"))
            self._data_size += len(raw)
            if self._data_size > self.max_frame_bytes:
                raise frame_too_large(self.max_frame_bytes)
        elif name == b"event":
            self._event = raw[start:].decode("utf-8", "replace")


class NDJSONDecoder:
    """Bytes in, complete non-empty lines out as frames (Ollama's native stream)."""

    __slots__ = ("_lines", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._lines = _Lines()

    def feed(self, chunk: bytes) -> list[Frame]:
        lines = self._lines.split(chunk)
        if self._lines.size > self.max_frame_bytes or any(
            len(line) > self.max_frame_bytes for line in lines
        ):
            raise frame_too_large(self.max_frame_bytes)
        return [_line_frame(line) for line in lines if line.strip()]

    def close(self) -> list[Frame]:
        tail = self._lines.take()
        return [_line_frame(tail)] if tail.strip() else []


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
