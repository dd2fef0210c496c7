"""A body that is not a JSON object reads the same whether it is decoded or relayed: the relay
path uses the validators' wording (wire/validate.py), not a second one of its own."""

from __future__ import annotations

import pytest

from modelport.errors import InvalidRequest
from modelport.types import WireFormat
from modelport.wire import codec_for


def _message(call: object) -> str:
    assert callable(call)
    with pytest.raises(InvalidRequest) as caught:
        call()
    return caught.value.message


@pytest.mark.parametrize("format", list(WireFormat))
@pytest.mark.parametrize("body", [b"{nope", b"[1]", b'"text"'])
def test_relay_and_decode_word_a_bad_body_alike(format: WireFormat, body: bytes) -> None:
    codec = codec_for(format)
    relayed = _message(lambda: codec.prepare_relay(body))
    decoded = _message(lambda: codec.decode_request(body))
    assert relayed == decoded
    assert relayed.startswith("request body ")
