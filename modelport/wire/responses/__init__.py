"""OpenAI Responses API codec (/v1/responses): wire JSON <-> canonical types.

Pure, no I/O. A client dialect (Codex CLI, the openai SDK's `client.responses`,
langchain-openai, pydantic-ai) transcoded to whatever an engine speaks, and the dialect of
engines that serve /v1/responses themselves (OpenAI, OpenRouter, vLLM), whose streams the
passthrough meter reads. Stateless: nothing is stored, so `previous_response_id` and
`conversation` are refused by name. One module per concern:

    tools           function and custom tools, namespaces unwrapped, hosted tools dropped
    items           `input` items -> messages
    request         client body -> ChatRequest (validated)
    request_encode  ChatRequest -> engine body
    envelope        the Response object's ids, status, usage and echoed settings
    response        whole Response objects both ways
    stream_decode   SSE events -> canonical events
    stream_encode   canonical events -> SSE events, numbered
    errors          the OpenAI error body and the stream error code
    codec           CODEC, the dialect's `Codec`
"""

from __future__ import annotations

from modelport.wire.responses.codec import CODEC, ResponsesCodec
from modelport.wire.responses.errors import encode_error, error_status
from modelport.wire.responses.request import decode_request
from modelport.wire.responses.request_encode import encode_request
from modelport.wire.responses.response import decode_response, encode_response
from modelport.wire.responses.stream_decode import StreamDecoder
from modelport.wire.responses.stream_encode import StreamEncoder

__all__ = [
    "CODEC",
    "ResponsesCodec",
    "StreamDecoder",
    "StreamEncoder",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "error_status",
]
