"""SSE and NDJSON framers: however the bytes are split, the same frames come out."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelport.wire.sse import Frame, NDJSONDecoder, SSEDecoder, SSEFrame, encode_sse
from tests.captures import CAPTURES


def sse_whole(body: bytes) -> list[SSEFrame]:
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.close()


def sse_pieces(pieces: list[bytes]) -> list[SSEFrame]:
    decoder = SSEDecoder()
    frames: list[SSEFrame] = []
    for piece in pieces:
        frames += decoder.feed(piece)
    return frames + decoder.close()


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


@st.composite
def splits(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """`body` cut at random points into non-empty pieces."""
    cuts = draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=12, unique=True))
    bounds = [0, *sorted(c for c in cuts if c < len(body)), len(body)]
    return [body[a:b] for a, b in pairwise(bounds) if b > a]


# Data lines: anything but line breaks, including non-ASCII (split mid-character below).
line_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=12
)


@st.composite
def sse_bodies(draw: st.DrawFn) -> tuple[bytes, list[SSEFrame]]:
    """An SSE body in one line-ending style, with comments, and the frames it must give."""
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines: list[str] = []
    expected: list[SSEFrame] = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            lines.append(": keep-alive " + draw(line_text))
        event = draw(st.none() | st.sampled_from(["message_start", "ping", "error"]))
        if event is not None:
            lines.append(f"event: {event}")
        data = draw(st.lists(line_text, min_size=1, max_size=3))
        lines.extend(f"data: {d}" for d in data)
        lines.append("")
        expected.append(SSEFrame(event, "\n".join(data)))
    body = newline.join(lines)
    if lines and draw(st.booleans()):
        body = body.removesuffix(newline)  # the last frame loses its blank line
    return body.encode(), expected


@given(sse_bodies(), st.data())
def test_sse_same_frames_however_split(case: tuple[bytes, list[SSEFrame]], data: st.DataObject):
    body, expected = case
    assert sse_whole(body) == expected
    assert sse_pieces(bytewise(body)) == expected
    assert sse_pieces(data.draw(splits(body))) == expected


def test_sse_comments_events_and_multiline_data():
    body = (
        b": OPENROUTER PROCESSING\n\n"
        b"event: content_block_delta\n"
        b"data: first\n"
        b"data:second\n"
        b"id: 7\n"
        b"retry: 100\n"
        b"\n"
        b"data: {}\n\n"
    )
    assert sse_whole(body) == [
        SSEFrame("content_block_delta", "first\nsecond"),
        SSEFrame(None, "{}"),
    ]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_sse_line_endings(newline: bytes):
    body = newline.join([b"data: a", b"data: b", b"", b"event: e", b"data: c", b"", b""])
    expected = [SSEFrame(None, "a\nb"), SSEFrame("e", "c")]
    assert sse_whole(body) == expected
    assert sse_pieces(bytewise(body)) == expected


def test_sse_crlf_split_between_reads():
    assert sse_pieces([b"data: a\r", b"\n\r", b"\n"]) == [SSEFrame(None, "a")]


def test_sse_last_frame_without_blank_line():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n\ndata: two") == [SSEFrame(None, "one")]
    assert decoder.close() == [SSEFrame(None, "two")]


def test_sse_only_one_leading_space_is_stripped():
    assert sse_whole(b"data:  two spaces\n\n") == [SSEFrame(None, " two spaces")]


def test_sse_event_without_data_is_not_dispatched():
    assert sse_whole(b"event: ping\n\ndata: x\n\n") == [SSEFrame(None, "x")]


def test_sse_multibyte_character_split_across_reads():
    body = "data: héllo ✓\n\n".encode()
    assert sse_pieces(bytewise(body)) == [SSEFrame(None, "héllo ✓")]


def test_sse_empty_read_between_cr_and_lf():
    pieces = [b"data: a\r", b"", b"\ndata: b\r\n\r\n"]
    assert sse_pieces(pieces) == [SSEFrame(None, "a\nb")]


@pytest.mark.parametrize("name", ["llamacpp_openai_stream.sse", "llamacpp_anthropic_stream.sse"])
def test_sse_real_capture_bytewise(name: str):
    body = (CAPTURES / name).read_bytes()
    whole = sse_whole(body)
    assert len(whole) > 5
    assert sse_pieces(bytewise(body)) == whole


def test_sse_openai_capture_frames():
    frames = sse_whole((CAPTURES / "llamacpp_openai_stream.sse").read_bytes())
    assert len(frames) == 16  # role, 12 tokens, finish, usage, [DONE]
    assert frames[-1] == SSEFrame(None, "[DONE]")
    assert all(f.event is None for f in frames)


def test_encode_sse_round_trip():
    body = encode_sse("line one\nline two", event="message_delta") + encode_sse(b"{}")
    assert body == b"event: message_delta\ndata: line one\ndata: line two\n\ndata: {}\n\n"
    assert sse_whole(body) == [
        SSEFrame("message_delta", "line one\nline two"),
        SSEFrame(None, "{}"),
    ]


# ---------------------------------------------------------------------------
# NDJSON


def ndjson_pieces(pieces: list[bytes]) -> list[bytes]:
    decoder = NDJSONDecoder()
    frames: list[Frame] = []
    for piece in pieces:
        frames += decoder.feed(piece)
    return [frame.data.encode() for frame in frames + decoder.close()]


@given(
    st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), max_size=5),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
    st.data(),
)
def test_ndjson_same_lines_however_split(
    objects: list[dict[str, int]], newline: bytes, trailing: bool, data: st.DataObject
):
    lines = [json.dumps(o).encode() for o in objects]
    body = newline.join(lines) + (newline if trailing else b"")
    assert ndjson_pieces([body]) == lines
    assert ndjson_pieces(bytewise(body)) == lines
    assert ndjson_pieces(data.draw(splits(body))) == lines


def test_ndjson_blank_lines_and_last_line_without_newline():
    body = b'{"a":1}\n\n  \n{"done":true}'
    assert ndjson_pieces([body]) == [b'{"a":1}', b'{"done":true}']
    assert ndjson_pieces(bytewise(body)) == [b'{"a":1}', b'{"done":true}']
