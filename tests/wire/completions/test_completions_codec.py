"""Legacy completions as a relay-only format: validation, relay preparation, and metering of
real llama-server bytes (docs/captures/llamacpp_completions_*)."""

from __future__ import annotations

import json

import pytest

from modelport.errors import InvalidRequest, ProtocolError, RateLimited
from modelport.types import FinishReason, RelayFormat, TextDelta, Usage, WireFormat
from modelport.wire import CODECS, relay_codec_for
from modelport.wire.completions import CODEC, check_request
from modelport.wire.meter import Meter
from modelport.wire.sse import Frame
from tests.captures import CAPTURES

STREAM = (CAPTURES / "llamacpp_completions_stream.sse").read_bytes()
WHOLE = (CAPTURES / "llamacpp_completions_response.json").read_bytes()


def test_registry_relays_it_but_no_client_dialect_is_it() -> None:
    assert relay_codec_for(RelayFormat.COMPLETIONS) is CODEC
    assert CODEC.format is RelayFormat.COMPLETIONS and CODEC.relay_path == "/completions"
    assert RelayFormat.COMPLETIONS not in CODECS  # nothing transcodes to or from it
    assert relay_codec_for(WireFormat.OPENAI) is CODECS[WireFormat.OPENAI]


def metered(body: bytes, *, stream: bool = True, drop: bool = False) -> tuple[Meter, bytes]:
    """One byte at a time, as a slow engine would send them."""
    meter = Meter(RelayFormat.COMPLETIONS, stream=stream, drop_usage_chunk=drop)
    out = [meter.feed(body[i : i + 1]) for i in range(len(body))]
    out.append(meter.close())
    return meter, b"".join(out)


def test_meter_reads_the_captured_stream() -> None:
    meter, out = metered(STREAM)
    assert meter.outcome() is None
    assert out == STREAM  # llama-server's usage rides on the finishing chunk: nothing held back
    assert meter.usage == Usage(input_tokens=8, output_tokens=3)
    assert meter.finish_reason is FinishReason.LENGTH


def test_meter_reads_the_captured_whole_answer() -> None:
    meter, out = metered(WHOLE, stream=False)
    assert meter.outcome() is None and out == WHOLE
    assert meter.usage == Usage(input_tokens=8, output_tokens=3, cache_read_tokens=3)
    assert CODEC.decode_response(WHOLE).message.text == "\n    return"


def test_a_usage_only_chunk_asked_for_metering_is_kept_from_the_client() -> None:
    body = (
        b'data: {"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"hi",'
        b'"finish_reason":"stop"}]}\n\n'
        b'data: {"id":"cmpl-1","object":"text_completion","choices":[],'
        b'"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}\n\n'
        b"data: [DONE]\n\n"
    )
    meter, out = metered(body, drop=True)
    assert meter.usage == Usage(input_tokens=4, output_tokens=1)
    assert b'"choices":[]' not in out and out.endswith(b"data: [DONE]\n\n")


def test_error_frames_and_cut_streams() -> None:
    error = b'data: {"error":{"message":"slow down","type":"rate_limit_error","code":429}}\n\n'
    meter, out = metered(error)
    assert isinstance(meter.outcome(), RateLimited) and out == b""
    meter, _ = metered(STREAM[: len(STREAM) // 3])
    assert isinstance(meter.outcome(), ProtocolError)


def test_decoder_gives_the_text() -> None:
    decoder = CODEC.stream_decoder()
    events = decoder.feed(Frame(None, '{"choices":[{"text":"a","index":0}]}'))
    assert events == [TextDelta("a")]


def test_prepare_relay_asks_for_usage_on_streams_and_says_which_fields_are_set() -> None:
    body = json.dumps({"model": "m", "prompt": "x", "stream": True, "suffix": "", "echo": False})
    prepared = CODEC.prepare_relay(body.encode())
    assert json.loads(prepared.body)["stream_options"] == {"include_usage": True}
    assert prepared.stream and prepared.drop_usage_chunk
    assert prepared.fields == {"model", "prompt", "stream"}  # "" and false ask for nothing
    asked = json.dumps({"model": "m", "prompt": "x", "suffix": "}", "stream": False}).encode()
    prepared = CODEC.prepare_relay(asked)
    assert prepared.body == asked and not prepared.stream and "suffix" in prepared.fields


@pytest.mark.parametrize("prompt", ["x", "", ["a", "b"], [9906, 1917], [[9906, 1917], [17]], [0]])
def test_the_four_prompt_shapes_openai_takes(prompt) -> None:  # type: ignore[no-untyped-def]
    assert check_request({"model": "m", "prompt": prompt}).model == "m"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "prompt": [True]}, "prompt[0]"),
        ({"model": "m", "prompt": 3}, "prompt"),
        ({"model": "", "prompt": "x"}, "model"),
    ],
)
def test_bad_prompts_and_models(body, param) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest) as info:
        check_request(body)
    assert info.value.param == param
