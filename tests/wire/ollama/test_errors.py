"""Ollama codec, errors: the engine's error bodies become our errors."""

from __future__ import annotations

from modelport.errors import InvalidRequest, ModelNotFound, Overloaded
from modelport.wire import ollama

# -- errors ------------------------------------------------------------------------------


def test_decode_error_shapes() -> None:
    missing = ollama.decode_error(
        404, b'{"error":"model \'llama9\' not found"}', backend_id="ollama:x"
    )
    assert isinstance(missing, ModelNotFound)
    assert (missing.message, missing.status, missing.backend_id) == (
        "model 'llama9' not found",
        404,
        "ollama:x",
    )
    bad = ollama.decode_error(
        400, b'{"error":"registry.ollama.ai/library/x does not support tools"}'
    )
    assert isinstance(bad, InvalidRequest) and bad.message.endswith("does not support tools")
    plain = ollama.decode_error(502, b"Bad Gateway")
    assert (type(plain).__name__, plain.message, plain.retryable) == (
        "BackendError",
        "Bad Gateway",
        True,
    )
    empty = ollama.decode_error(500, b"")
    assert empty.message == "HTTP 500"
    busy = ollama.decode_error(503, b'{"error":"busy"}', headers={"Retry-After": "3"})
    assert isinstance(busy, Overloaded) and busy.retry_after == 3.0
