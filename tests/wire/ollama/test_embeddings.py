"""Ollama codec, embeddings: /api/embed requests and responses."""

from __future__ import annotations

import pytest

from modelport.errors import ProtocolError
from modelport.types import EmbedRequest, Usage
from modelport.wire import ollama


def test_embed_request() -> None:
    assert ollama.encode_embed_request(
        EmbedRequest(model="e", inputs=("a", "b"), dimensions=64)
    ) == {
        "model": "e",
        "input": ["a", "b"],
        "dimensions": 64,
    }
    assert ollama.encode_embed_request(EmbedRequest(model="e", inputs=("a",))) == {
        "model": "e",
        "input": ["a"],
    }


def test_decode_embed_response() -> None:
    body = (
        b'{"model":"e","embeddings":[[0.5,-1],[2,0.25]],"total_duration":1,"prompt_eval_count":6}'
    )
    result = ollama.decode_embed_response(body)
    assert result.vectors == ((0.5, -1.0), (2.0, 0.25))
    assert (result.model, result.usage) == ("e", Usage(6, 0))
    with pytest.raises(ProtocolError):
        ollama.decode_embed_response(b'{"embedding": [1]}')
