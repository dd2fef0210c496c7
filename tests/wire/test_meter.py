"""The passthrough meter counts what the transcoding path would count, from real bytes."""

from __future__ import annotations

import pytest

from modelport import Done, FinishReason, ProtocolError, RateLimited, Usage, WireFormat
from modelport.wire import anthropic, openai
from modelport.wire.meter import Meter
from tests.captures import CAPTURES


def metered(format: WireFormat, body: bytes, *, stream: bool = True) -> Meter:
    """Feed one byte at a time; what the meter lets through must be the body itself."""
    meter = Meter(format, stream=stream)
    out = [meter.feed(body[i : i + 1]) for i in range(len(body))]
    out.append(meter.close())
    if meter.outcome() is None:
        assert b"".join(out) == body
    return meter


@pytest.mark.parametrize(
    ("name", "format", "decode"),
    [
        ("llamacpp_openai_stream.sse", WireFormat.OPENAI, openai.decode_stream),
        ("llamacpp_anthropic_stream.sse", WireFormat.ANTHROPIC, anthropic.decode_stream),
    ],
)
def test_meter_agrees_with_the_decoder_on_captures(name: str, format: WireFormat, decode) -> None:  # type: ignore[no-untyped-def]
    body = (CAPTURES / name).read_bytes()
    done = decode(body)[-1]
    assert isinstance(done, Done)
    meter = metered(format, body)
    assert meter.outcome() is None
    assert meter.usage == done.usage and meter.usage is not None
    assert meter.usage.input_tokens == 26  # the same prompt in both formats
    assert meter.finish_reason is FinishReason.LENGTH


def test_non_streaming_capture() -> None:
    body = (CAPTURES / "llamacpp_openai_response.json").read_bytes()
    meter = metered(WireFormat.OPENAI, body, stream=False)
    assert meter.outcome() is None
    assert meter.usage == openai.decode_response(body).usage


def test_cut_stream_is_a_protocol_error() -> None:
    body = (CAPTURES / "llamacpp_openai_stream.sse").read_bytes()
    meter = metered(WireFormat.OPENAI, body[: len(body) // 2])
    assert isinstance(meter.outcome(), ProtocolError)


def test_error_frame_is_classified_and_not_forwarded() -> None:
    body = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"x",'
        b'"role":"assistant","content":[],"usage":{"input_tokens":3,"output_tokens":0}}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error",'
        b'"message":"slow down"}}\n\n'
    )
    meter = Meter(WireFormat.ANTHROPIC, stream=True)
    forwarded = meter.feed(body) + meter.close()
    assert isinstance(meter.outcome(), RateLimited)
    assert forwarded.startswith(b"event: message_start") and b"slow down" not in forwarded


def test_usage_counts_cache_reads_as_input() -> None:
    body = (
        b'{"id":"m","type":"message","role":"assistant","model":"x","content":[],'
        b'"stop_reason":"end_turn","usage":{"input_tokens":5,"cache_read_input_tokens":21,'
        b'"output_tokens":4}}'
    )
    meter = metered(WireFormat.ANTHROPIC, body, stream=False)
    assert meter.usage == Usage(26, 4, 21, 0)
