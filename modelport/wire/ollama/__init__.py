"""Ollama's native API codec: /api/chat, /api/embed, /api/show, errors.

Pure: canonical objects in, JSON-ready dicts out, and NDJSON frames back to events.
Ollama differs from the OpenAI wire in ways this package absorbs (see docs/wire.md):
tool calls arrive whole in one line with arguments as an object and often no id,
images are bare base64 strings, sampling settings live under `options`, usage is
`prompt_eval_count`/`eval_count`, and a failure mid-stream is a line `{"error": ...}`
under HTTP 200.

Both sides: backends read engines with ENGINE_CODEC, and clients that speak Ollama's
API to the gateway (WireFormat.OLLAMA) are served by CODEC, whose errors are Ollama's
`{"error": "..."}` with the HTTP status and whose streams are NDJSON lines.

    finish          done_reason words
    request         ChatRequest -> /api/chat body
    stream_decode   NDJSON frames -> events; `stream: false` answers
    embeddings      /api/embed
    errors          error bodies, both ways (encode_error, error_status for clients)
    stream_encode   events -> NDJSON lines (chat and generate shapes)
    response        whole answers, both ways
    request_decode  a client's /api/chat body -> ChatRequest (and what generate shares)
    generate        a client's /api/generate body -> ChatRequest, and back
    codec           ENGINE_CODEC for backends; CODEC (/api/chat) and GENERATE_CODEC
                    (/api/generate, WireFormat.OLLAMA_GENERATE), the client dialects
    show            /api/show: context window and capabilities
"""

from __future__ import annotations

from modelport.wire.ollama.codec import CODEC, ENGINE_CODEC, GENERATE_CODEC
from modelport.wire.ollama.embeddings import decode_embed_response, encode_embed_request
from modelport.wire.ollama.errors import decode_error
from modelport.wire.ollama.finish import finish_reason_from
from modelport.wire.ollama.request import OPTION_KEYS, encode_chat_request
from modelport.wire.ollama.show import capabilities_from_show, context_window_from_show
from modelport.wire.ollama.stream_decode import StreamDecoder, decode_chat_response, decode_stream

__all__ = [
    "CODEC",
    "ENGINE_CODEC",
    "GENERATE_CODEC",
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
