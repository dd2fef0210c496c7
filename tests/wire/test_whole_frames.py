"""The reassembly of a hub's relay job frames (wire/meter.py `WholeFrames`): chunks
cut anywhere come out as whole SSE frames, byte for byte, LF or CRLF; a frame in many
pieces costs linear time (each piece searched once), and over the cap it fails."""

from __future__ import annotations

import time

import pytest

from modelport.errors import ProtocolError
from modelport.wire.meter import WholeFrames

LF = b'data: {"a":1}\n\ndata: {"b":"x\\ny"}\n\ndata: [DONE]\n\n'
CRLF = LF.replace(b"\n\n", b"\r\n\r\n")


@pytest.mark.parametrize("stream", [LF, CRLF], ids=["lf", "crlf"])
def test_every_cut_gives_the_same_bytes_in_whole_frames(stream: bytes) -> None:
    for size in (1, 2, 3, 5):
        for start in range(len(stream)):
            pieces = [stream[:start]] + [
                stream[i : i + size] for i in range(start, len(stream), size)
            ]
            frames = WholeFrames(1 << 20)
            out = [frames.feed(p) for p in pieces if p]
            assert not frames.pending and frames.close() == b""
            assert b"".join(out) == stream
            assert all(o.endswith((b"\n\n", b"\r\n\r\n")) for o in out if o)


def test_a_last_frame_without_its_blank_line_comes_at_the_close() -> None:
    frames = WholeFrames(1 << 20)
    assert frames.feed(b"data: 1\n\ndata: 2") == b"data: 1\n\n"
    assert frames.pending and frames.close() == b"data: 2"


def test_a_frame_over_the_cap_fails() -> None:
    frames = WholeFrames(1000)
    frames.feed(b"data: " + b"x" * 600)
    with pytest.raises(ProtocolError, match="frame over"):
        frames.feed(b"x" * 600)


def test_a_frame_in_many_pieces_costs_linear_time() -> None:
    """16 MiB in 64 pieces of 256 KiB (an agent's cut): joined once, each piece searched
    once. Rejoining and rescanning the whole start at each piece took 0.47 s here."""
    piece = b"x" * (256 * 1024)
    frames = WholeFrames(32 << 20)
    started = time.perf_counter()
    assert frames.feed(b"data: ") == b""
    for _ in range(64):
        assert frames.feed(piece) == b""
    whole = frames.feed(b"\n\n")
    took = time.perf_counter() - started
    assert len(whole) == 6 + 64 * len(piece) + 2
    assert took < 0.15, f"{took:.3f} s"
