"""OpenAI chat-completions and embeddings codec: wire JSON <-> canonical types.

Pure: bytes and dicts in, canonical objects out, and back. Every OpenAI-compatible
engine (llama.cpp, vLLM, Ollama /v1, LM Studio, OpenRouter, Venice, OpenAI) goes
through here, so the decoders accept each engine's variant (see docs/wire.md) and the
encoders write what the official SDKs expect. One module per concern:

    finish          finish_reason words
    structs         typed wire structs, usage, tool-call arguments
    request         client body -> ChatRequest (validated)
    request_encode  ChatRequest -> engine body
    response        chat.completion both ways
    stream_decode   SSE frames -> events
    stream_encode   events -> SSE bytes
    errors          error bodies both ways
    embeddings      /v1/embeddings (not part of the Codec protocol)
    models          /v1/models and /v1/models/{id} objects (imported by path)
    codec           CODEC, the dialect's `Codec`

Two fields are ours, not OpenAI's: `reasoning_signature` beside `reasoning_content`
(on stream deltas, response messages and request messages) carries
`Thinking.signature`, so that an Anthropic thinking block survives a trip through
the OpenAI format. Clients and engines that do not know it ignore it.
"""

from __future__ import annotations

from modelport.wire.openai.codec import CODEC, OpenAICodec
from modelport.wire.openai.embeddings import (
    decode_embed_request,
    decode_embed_response,
    encode_embed_request,
    encode_embed_response,
)
from modelport.wire.openai.errors import decode_error, encode_error, error_status
from modelport.wire.openai.finish import finish_reason_from
from modelport.wire.openai.request import decode_request
from modelport.wire.openai.request_encode import encode_request
from modelport.wire.openai.response import decode_response, encode_response
from modelport.wire.openai.stream_decode import StreamDecoder, decode_stream
from modelport.wire.openai.stream_encode import StreamEncoder, encode_stream

__all__ = [
    "CODEC",
    "OpenAICodec",
    "StreamDecoder",
    "StreamEncoder",
    "decode_embed_request",
    "decode_embed_response",
    "decode_error",
    "decode_request",
    "decode_response",
    "decode_stream",
    "encode_embed_request",
    "encode_embed_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "encode_stream",
    "error_status",
    "finish_reason_from",
]
