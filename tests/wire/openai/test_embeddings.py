"""OpenAI codec, embeddings: requests and responses (floats and base64)."""

from __future__ import annotations

import json

import pytest

from modelport.errors import InvalidRequest
from modelport.types import EmbedRequest, EmbedResult, Usage
from modelport.wire import openai

# ---------------------------------------------------------------------------
# Embeddings


def test_embed_request_round_trip_and_validation():
    req = openai.decode_embed_request(b'{"model": "e", "input": "hello", "dimensions": 8}')
    assert req == EmbedRequest(model="e", inputs=("hello",), dimensions=8)
    assert openai.encode_embed_request(req) == {"model": "e", "input": ["hello"], "dimensions": 8}
    assert openai.decode_embed_request(openai.encode_embed_request(req)) == req
    # Token ids ([1, 2]) are accepted since issue 10, point 4; an empty array is still refused.
    for bad, param in [({"model": "e", "input": []}, "input"), ({"input": "x"}, "model")]:
        with pytest.raises(InvalidRequest) as info:
            openai.decode_embed_request(bad)
        assert info.value.param == param


def test_embed_response_round_trip_and_order():
    res = EmbedResult(vectors=((0.1, -2.5), (3.0, 0.0)), model="e", usage=Usage(input_tokens=4))
    assert openai.decode_embed_response(openai.encode_embed_response(res)) == res
    body = {
        "object": "list",
        "data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}],
        "model": "e",
    }
    assert openai.decode_embed_response(body) == EmbedResult(vectors=((1.0,), (2.0,)), model="e")


def test_embed_response_base64():
    res = EmbedResult(vectors=((0.5, -1.25, 2.0),), model="e")
    body = openai.encode_embed_response(res, encoding_format="base64")
    assert json.loads(body)["data"][0]["embedding"] == "AAAAPwAAoL8AAABA"
    assert openai.decode_embed_response(body) == res
