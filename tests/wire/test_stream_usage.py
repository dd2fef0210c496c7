"""Whether a client's stream carries usage is the dialect's word (`Codec.wants_stream_usage`),
so the service asks the codec instead of branching on the format or reading the body."""

from __future__ import annotations

import pytest

from modelport.types import WireFormat
from modelport.wire import CODECS, codec_for

CHAT = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]'


@pytest.mark.parametrize(
    ("tail", "wanted"),
    [
        (b"}", False),
        (b',"stream_options":null}', False),
        (b',"stream_options":{}}', False),
        (b',"stream_options":{"include_usage":false}}', False),
        (b',"stream_options":{"include_usage":true}}', True),
        (b',"stream_options":{"include_usage":"yes"}}', False),
    ],
)
def test_openai_usage_chunk_is_opt_in(tail: bytes, wanted: bool) -> None:
    assert codec_for(WireFormat.OPENAI).wants_stream_usage(CHAT + tail) is wanted


def test_anthropic_streams_always_carry_usage() -> None:
    assert codec_for(WireFormat.ANTHROPIC).wants_stream_usage(b'{"model":"m"}') is True


def test_every_dialect_answers() -> None:
    for codec in CODECS.values():
        assert isinstance(codec.wants_stream_usage(CHAT + b"}"), bool)
