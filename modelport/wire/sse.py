"""Incremental framers for Server-Sent Events and NDJSON.

Engines send frames split anywhere across network reads, so both framers keep the
unfinished tail between `feed` calls; fed one byte at a time they give the same frames
as fed the whole body at once.
"""

from __future__ import annotations

from typing import NamedTuple


class Frame(NamedTuple):
    """One framed unit of a stream, whatever the framing: every stream decoder takes these.

    SSE: the `event:` name (None when absent) and the joined `data:` lines.
    NDJSON: `event` is None and `data` is one line, stripped.
    """

    event: str | None
    data: str


SSEFrame = Frame  # the name the SSE framer's frames had first


class SSEDecoder:
    """Bytes in, frames out. Comment lines (`:`) are dropped; `id:` and `retry:` are ignored."""

    __slots__ = ("_buffer", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[Frame]:
        if not chunk:
            return []  # an empty read must not forget a CR waiting for its LF
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two reads
        self._pending_cr = chunk.endswith(b"\r")
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        frames: list[Frame] = []
        for raw in lines:
            self._line(raw, frames)
        return frames

    def close(self) -> list[Frame]:
        """Flush at end of stream: a last frame without its blank line still counts."""
        frames: list[Frame] = []
        if self._buffer:
            self._line(self._buffer, frames)
            self._buffer = b""
        self._line(b"", frames)
        return frames

    def _line(self, raw: bytes, frames: list[Frame]) -> None:
        if not raw:
            if self._data:
                frames.append(Frame(self._event, "\n".join(self._data)))
            self._event = None
            self._data = []
            return
        if raw[0] == 0x3A:  # ':' comment, e.g. OpenRouter's ": OPENROUTER PROCESSING"
            return
        line = raw.decode("utf-8", "replace")
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value


class NDJSONDecoder:
    """Bytes in, complete non-empty lines out as frames (Ollama's native stream)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Frame]:
        buffer = self._buffer + chunk
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        return [_line_frame(line) for line in lines if line.strip()]

    def close(self) -> list[Frame]:
        tail, self._buffer = self._buffer, b""
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
