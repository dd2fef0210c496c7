"""Anthropic Messages API codec: requests, responses, stream events and errors.

Pure: bytes or parsed JSON in, canonical types out, and back. One module per concern:

    constants       API version, default max_tokens, the redacted-thinking prefix
    finish          stop_reason words
    request         client body -> ChatRequest (validated)
    request_encode  ChatRequest -> engine body
    response        /v1/messages answers both ways, usage
    count_tokens    /v1/messages/count_tokens (not part of the Codec protocol)
    models          /v1/models pages and ModelInfo (imported by path)
    stream_decode   SSE frames -> events
    stream_encode   events -> SSE bytes
    errors          error bodies both ways, the statuses Anthropic clients expect
    codec           CODEC, the dialect's `Codec`

Decisions worth knowing:

- Tool results. A user message's `tool_result` blocks become a role "tool" message (one per
  run of consecutive results), so they map onto OpenAI tool messages; the user message's
  other blocks stay a user message, in order. Encoding merges them back into one user message.
- System. A list of system text blocks is joined with a blank line ("\\n\\n"). A role "system"
  message inside `messages` (mid-conversation system messages; Claude Code sends one after
  its first user turn) is a canonical system Message at its place; one that opens the
  conversation is refused (that is what `system` is for). Encoding keeps a system message
  right after a user turn at its place, as the API takes it, and folds one anywhere else
  (before the first turn, after an assistant turn) into the system prompt.
- Thinking. `thinking` and `output_config.effort` are the canonical `Reasoning`: enabled ->
  `budget_tokens`, adaptive -> `adaptive` with the effort, disabled -> effort "none";
  `display` is kept. Adaptive without an effort (the engine's default) and an effort without
  thinking (Anthropic spends it on text too) stay in `extra`.
- Usage. Canonical `input_tokens` counts every prompt token, as OpenAI's `prompt_tokens`
  does; Anthropic's `input_tokens` leaves out cache reads and cache writes, so decoding adds
  them back and encoding subtracts the cache reads. `output_tokens_details.thinking_tokens`
  is the canonical `reasoning_tokens`.
- max_tokens is required by Anthropic: a request without one is sent with DEFAULT_MAX_TOKENS.
- redacted_thinking has no canonical part: it travels as `Thinking(text="", signature=
  REDACTED_PREFIX + data)` (a ThinkingDelta of that shape in streams) and is encoded back to a
  redacted_thinking block, so a conversation sent back to Anthropic keeps it. Base64
  signatures never contain ":", so the prefix cannot collide with a real signature.
- Fields Anthropic has and the canonical request lacks (metadata, context_management,
  top_k, service_tier, `output_config` beside its `format` and effort, ...) travel in
  `extra`; when the service transcodes, the dialect's field table (`fields.py`, rendered
  in docs/fields.md) carries, drops by name or refuses each of them. `cache_control` marks
  on blocks and tools' `defer_loading` are dropped (passthrough keeps them: the raw body
  goes). Blocks and tools the canonical types cannot carry (documents, server tools, file
  sources) raise Unsupported rather than vanish.
"""

from __future__ import annotations

from modelport.wire.anthropic.codec import CODEC, AnthropicCodec
from modelport.wire.anthropic.constants import (
    ANTHROPIC_VERSION,
    DEFAULT_MAX_TOKENS,
    REDACTED_PREFIX,
)
from modelport.wire.anthropic.count_tokens import (
    decode_count_tokens_request,
    decode_count_tokens_response,
    encode_count_tokens_response,
)
from modelport.wire.anthropic.errors import (
    decode_error,
    decode_stream_error,
    encode_error,
    http_status,
)
from modelport.wire.anthropic.finish import stop_reason_to_finish
from modelport.wire.anthropic.request import decode_request
from modelport.wire.anthropic.request_encode import encode_request
from modelport.wire.anthropic.response import decode_response, encode_response
from modelport.wire.anthropic.stream_decode import StreamDecoder, decode_stream
from modelport.wire.anthropic.stream_encode import StreamEncoder, encode_stream

__all__ = [
    "ANTHROPIC_VERSION",
    "CODEC",
    "DEFAULT_MAX_TOKENS",
    "REDACTED_PREFIX",
    "AnthropicCodec",
    "StreamDecoder",
    "StreamEncoder",
    "decode_count_tokens_request",
    "decode_count_tokens_response",
    "decode_error",
    "decode_request",
    "decode_response",
    "decode_stream",
    "decode_stream_error",
    "encode_count_tokens_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "encode_stream",
    "http_status",
    "stop_reason_to_finish",
]
