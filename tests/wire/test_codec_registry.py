"""The codec registry and the one Frame every stream decoder takes."""

from __future__ import annotations

import pytest

from modelport.errors import Overloaded
from modelport.types import Done, FinishReason, TextDelta, WireFormat
from modelport.wire import CODECS, codec_for
from modelport.wire.sse import Frame, NDJSONDecoder, SSEDecoder


@pytest.mark.parametrize("format", list(WireFormat))
def test_every_wire_format_has_a_codec_that_says_its_format(format: WireFormat) -> None:
    codec = codec_for(format)
    assert codec is CODECS[format]
    assert codec.format is format
    # Each framer matches the content type its streams are served as (Ollama's are NDJSON).
    framer = NDJSONDecoder if codec.stream_content_type == "application/x-ndjson" else SSEDecoder
    assert isinstance(codec.framer(), framer)
    assert codec.stream_content_type in ("text/event-stream", "application/x-ndjson")


def test_registry_lists_each_format_once() -> None:
    assert sorted(CODECS) == sorted(WireFormat)
    assert len(CODECS) == len(WireFormat)


def test_stream_encoders_build_their_ids_from_the_request_id() -> None:
    openai = codec_for(WireFormat.OPENAI).stream_encoder(request_id="r1", model="m")
    anthropic = codec_for(WireFormat.ANTHROPIC).stream_encoder(request_id="r1", model="m")
    assert b'"id":"chatcmpl-r1"' in openai.encode(TextDelta("hi"))
    assert b'"id":"msg_r1"' in anthropic.encode(TextDelta("hi"))


@pytest.mark.parametrize("format", list(WireFormat))
def test_a_codec_round_trips_its_own_stream_through_framer_and_decoder(
    format: WireFormat,
) -> None:
    codec = codec_for(format)
    encoder = codec.stream_encoder(request_id="r", model="m")
    body = encoder.encode(TextDelta("hello")) + encoder.encode(Done(FinishReason.STOP))
    framer, decoder = codec.framer(), codec.stream_decoder(backend_id="b")
    events = [e for frame in framer.feed(body) + framer.close() for e in decoder.feed(frame)]
    events += decoder.close()
    assert events[0] == TextDelta("hello")
    assert isinstance(events[-1], Done) and events[-1].finish_reason is FinishReason.STOP


def test_ndjson_lines_are_frames_without_an_event_name() -> None:
    framer = NDJSONDecoder()
    assert framer.feed(b'{"a": 1}\r\n  \n{"b"') == [Frame(None, '{"a": 1}')]
    assert framer.close() == [Frame(None, '{"b"')]


def test_openai_decoder_raises_a_named_error_frame_itself() -> None:
    """New: an `event: error` frame fed to the decoder raises (before, only decode_stream
    looked at the event name; Framed and the meter passed the data alone)."""
    decoder = codec_for(WireFormat.OPENAI).stream_decoder()
    with pytest.raises(Overloaded):
        decoder.feed(Frame("error", '{"message": "busy", "type": "overloaded_error"}'))


def test_openai_decoder_says_which_frame_held_only_usage() -> None:
    decoder = codec_for(WireFormat.OPENAI).stream_decoder()
    decoder.feed(Frame(None, '{"choices": [{"index": 0, "delta": {"content": "a"}}]}'))
    assert decoder.usage_only is False
    decoder.feed(Frame(None, '{"choices": [], "usage": {"prompt_tokens": 1}}'))
    assert decoder.usage_only is True
