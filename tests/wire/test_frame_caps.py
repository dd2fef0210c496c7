"""One frame over the cap is a ProtocolError in every framer and in the relay meter, however
its bytes are cut; a frame under it comes out whole from many small reads."""

from __future__ import annotations

import pytest

from modelport.errors import ProtocolError
from modelport.types import WireFormat
from modelport.wire.meter import Meter
from modelport.wire.sse import NDJSONDecoder, SSEDecoder

CAP = 1000


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 64, 4096])
def test_a_frame_under_the_cap_comes_out_whole_from_small_reads(size: int) -> None:
    sse, ndjson = SSEDecoder(CAP), NDJSONDecoder(CAP)
    data = "x" * (CAP - 20)
    sse_frames = [f for p in pieces(f"data: {data}\r\n\r\n".encode(), size) for f in sse.feed(p)]
    nd_frames = [f for p in pieces(f'{{"a":"{data}"}}\n'.encode(), size) for f in ndjson.feed(p)]
    assert [f.data for f in sse_frames] == [data]
    assert [f.data for f in nd_frames] == [f'{{"a":"{data}"}}']


@pytest.mark.parametrize("size", [1, 100, 5000])
@pytest.mark.parametrize("framer", [SSEDecoder, NDJSONDecoder])
def test_a_frame_over_the_cap_is_a_protocol_error(framer: type, size: int) -> None:
    decoder = framer(CAP)
    line = b"data: " + b"x" * (2 * CAP) + b"\n\n"
    with pytest.raises(ProtocolError, match="frame over the 1000 bytes limit"):
        for piece in pieces(line, size):
            decoder.feed(piece)


def test_many_data_lines_count_towards_one_frame() -> None:
    decoder = SSEDecoder(CAP)
    with pytest.raises(ProtocolError):
        decoder.feed(b"data: " + b"x" * 400 + b"\n" * 1 + b"data: " + b"y" * 700 + b"\n")


@pytest.mark.parametrize("fmt", [WireFormat.OPENAI, WireFormat.OLLAMA])
@pytest.mark.parametrize("size", [1, 100, 5000])
def test_the_meter_stops_at_a_frame_over_the_cap(fmt: WireFormat, size: int) -> None:
    meter = Meter(fmt, stream=True, max_frame_bytes=CAP)
    end = b"\n\n" if fmt is WireFormat.OPENAI else b"\n"
    out = b""
    for piece in pieces(b'data: {"x": "' + b"x" * (2 * CAP) + b'"}' + end, size):
        out += meter.feed(piece)
        if meter.error is not None:
            break
    assert isinstance(meter.error, ProtocolError)
    assert "frame over" in meter.error.message
    assert out == b""
