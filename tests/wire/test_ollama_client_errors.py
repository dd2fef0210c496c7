"""Ollama's client-side errors: `{"error": "<message>"}` with the HTTP status, worded as
Ollama's server/routes.go words them (a missing model is 404 "model 'x' not found")."""

from __future__ import annotations

import json

from modelport.errors import BackendError, InvalidRequest, ModelNotFound, QueueFull
from modelport.types import WireFormat
from modelport.wire import codec_for

CODEC = codec_for(WireFormat.OLLAMA)


def test_a_model_not_served_is_ollamas_404_wording_with_our_hint_kept() -> None:
    err = ModelNotFound("model 'qwen' is not served here; did you mean 'qwen3'?")
    assert CODEC.error_status(err) == 404
    assert json.loads(CODEC.encode_error(err)) == {
        "error": "model 'qwen' not found; did you mean 'qwen3'?"
    }


def test_a_bad_request_is_400_with_the_message_alone() -> None:
    err = InvalidRequest("messages: must be an array", param="messages")
    assert CODEC.error_status(err) == 400
    assert json.loads(CODEC.encode_error(err)) == {"error": "messages: must be an array"}


def test_a_full_queue_is_503_as_ollamas_own_server_busy() -> None:
    assert CODEC.error_status(QueueFull("too many requests")) == 503


def test_a_stream_error_is_one_ndjson_line() -> None:
    line = CODEC.stream_encoder(request_id="", model="").error(BackendError("boom"))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"error": "boom"}
