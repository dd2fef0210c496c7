"""Ollama's error bodies: an engine's error in, a client's error body out.

Reading is the one shared parser (modelport.wire.errors). Writing is Ollama's own shape,
as server/routes.go answers: `{"error": "<message>"}` with the HTTP status, and a model
it does not have is 404 `{"error": "model 'x' not found"}`. Inside a stream that already
started, the same object is one NDJSON line.
"""

from __future__ import annotations

import msgspec

from modelport.errors import BackendError, ModelNotFound, QueueFull
from modelport.scrub import public_message
from modelport.wire.errors import decode_error_body

# Every dialect reads engine error bodies with the one shared parser.
decode_error = decode_error_body

_encode = msgspec.json.Encoder().encode
# How the router words a model it does not serve (service/candidates.py), and the hint
# that may follow it; Ollama's clients get Ollama's own wording with the hint kept.
_NOT_SERVED = " is not served here"


def error_message(err: BackendError) -> str:
    """The client-facing message: ours, scrubbed, in Ollama's words where it has some."""
    message = public_message(err.message)
    if isinstance(err, ModelNotFound) and _NOT_SERVED in message:
        head, _, hint = message.partition(_NOT_SERVED)
        return f"{head} not found{hint}"  # "model 'x' not found; did you mean ...?"
    return message


def encode_error(err: BackendError) -> bytes:
    """`{"error": "<message>"}`: all an Ollama client reads (ollama-python's ResponseError
    takes `error` and the status)."""
    return _encode({"error": error_message(err)})


def error_status(err: BackendError) -> int:
    """The error's own status, except a full admission queue: Ollama answers its own
    (ErrMaxQueue, "server busy") 503, not 429."""
    return 503 if isinstance(err, QueueFull) else err.status


__all__ = ["decode_error", "encode_error", "error_message", "error_status"]
