"""Ollama's native API codec: /api/chat, /api/embed, /api/show, errors.

Pure: canonical objects in, JSON-ready dicts out, and NDJSON frames back to events.
Ollama differs from the OpenAI wire in ways this package absorbs (see docs/wire.md):
tool calls arrive whole in one line with arguments as an object and often no id,
images are bare base64 strings, sampling settings live under `options`, usage is
`prompt_eval_count`/`eval_count`, and a failure mid-stream is a line `{"error": ...}`
under HTTP 200.

Engine side only for now: there is no WireFormat for it, so no CODEC in the registry.
Its stream decoder already takes the same `Frame` as every dialect's (see
modelport.wire.codec), so making it a client dialect is adding the client-side modules
(request decode, response and stream encode), a `CODEC`, and its registry row.

    finish          done_reason words
    request         ChatRequest -> /api/chat body
    stream_decode   NDJSON frames -> events; `stream: false` answers
    embeddings      /api/embed
    errors          error bodies
    codec           ENGINE_CODEC: framer, stream decoder and errors for backends
    show            /api/show: context window and capabilities
"""

from __future__ import annotations

from modelport.wire.ollama.codec import ENGINE_CODEC
from modelport.wire.ollama.embeddings import decode_embed_response, encode_embed_request
from modelport.wire.ollama.errors import decode_error
from modelport.wire.ollama.finish import finish_reason_from
from modelport.wire.ollama.request import OPTION_KEYS, encode_chat_request
from modelport.wire.ollama.show import capabilities_from_show, context_window_from_show
from modelport.wire.ollama.stream_decode import StreamDecoder, decode_chat_response, decode_stream

__all__ = [
    "ENGINE_CODEC",
    "OPTION_KEYS",
    "StreamDecoder",
    "capabilities_from_show",
    "context_window_from_show",
    "decode_chat_response",
    "decode_embed_response",
    "decode_error",
    "decode_stream",
    "encode_chat_request",
    "encode_embed_request",
    "finish_reason_from",
]
