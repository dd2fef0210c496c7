"""Every field of a /v1/responses request and its fate per target (see wire/fields.py).

Sources: the openai SDK's `types/responses/response_create_params.py` (every top-level
field) and its input-item and tool params; Codex CLI's `client_metadata` from
docs/captures/clients. Passthrough is the Responses relay (OpenAI, OpenRouter, vLLM).
"""

from __future__ import annotations

from typing import Any

from modelport.wire.fields import (
    CARRIED,
    DROPPED,
    MAPPED,
    REFUSED,
    FieldTable,
    mapped,
    row,
)
from modelport.wire.validate import (
    ARRAY,
    BOOLEAN,
    INT32_MAX,
    OBJECT,
    STRING,
    STRING_OR_OBJECT,
    TOOLS,
    Check,
    integer,
    number,
)

_CACHE = "a caching hint; local engines cache prompt prefixes themselves"
_OPENAI_SERVICE = "OpenAI's own service (logs, abuse monitoring, accounts)"
_STATE = "needs state this gateway does not keep: refused by the decoder, passthrough included"


def _asks_no_logprobs(value: Any) -> bool:
    """`include` asks for nothing an engine of another dialect gives, but logprobs."""
    return not (isinstance(value, list) and "message.output_text.logprobs" in value)


# What each field takes, per the API reference (the openai SDK's docstrings): temperature 0
# to 2, top_p 0 to 1, top_logprobs 0 to 20, max_output_tokens at least 16.
_VALUES: dict[str, Check] = {
    "model": STRING,
    "input": Check((str, list), "a string or an array of input items"),
    "instructions": STRING,
    "tools": TOOLS,
    "tool_choice": STRING_OR_OBJECT,
    "parallel_tool_calls": BOOLEAN,
    "max_output_tokens": integer(16, INT32_MAX),
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "text": OBJECT,
    "reasoning": OBJECT,
    "stream": BOOLEAN,
    "top_logprobs": integer(0, 20),
    "include": ARRAY,
    "moderation": OBJECT,
    "store": BOOLEAN,
    "metadata": OBJECT,
    "user": STRING,
    "safety_identifier": STRING,
    "client_metadata": OBJECT,
    "prompt_cache_key": STRING,
    "prompt_cache_retention": STRING,
    "prompt_cache_options": OBJECT,
    "service_tier": STRING,
    "truncation": STRING,
    "stream_options": OBJECT,
    "max_tool_calls": integer(1, INT32_MAX),
    "context_management": ARRAY,
    "image": OBJECT,
    "background_options": OBJECT,
    "previous_response_id": STRING,
    "conversation": STRING_OR_OBJECT,
    "prompt": OBJECT,
    "background": BOOLEAN,
}

FIELDS = FieldTable(
    "Responses API (client dialect)",
    None,
    (
        row("model", MAPPED, MAPPED, MAPPED, "the route's model name replaces it"),
        row("input", mapped("messages"), mapped("messages"), mapped("messages")),
        row("instructions", mapped("system message"), mapped("system"), mapped("system message")),
        row("tools", MAPPED, MAPPED, MAPPED, "function, custom and namespace tools"),
        row("tool_choice", MAPPED, MAPPED, MAPPED),
        row("parallel_tool_calls", MAPPED, mapped("tool_choice"), DROPPED, "Ollama has no switch"),
        row(
            "max_output_tokens",
            mapped("max_tokens"),
            mapped("max_tokens"),
            mapped("options.num_predict"),
        ),
        row("temperature", MAPPED, MAPPED, mapped("options.temperature")),
        row("top_p", MAPPED, MAPPED, mapped("options.top_p")),
        row(
            "text",
            mapped("response_format"),
            mapped("output_config.format"),
            mapped("format"),
            "`format`; `verbosity` is dropped (a length hint)",
        ),
        row(
            "reasoning",
            mapped("reasoning_effort"),
            mapped("thinking"),
            mapped("think"),
            "`effort`; `summary` is dropped: thinking always comes back as the summary",
        ),
        row("stream", MAPPED, MAPPED, MAPPED),
        row(
            "top_logprobs",
            REFUSED,
            REFUSED,
            REFUSED,
            "the engine does not return token log probabilities",
            inert=(0,),
            example=2,
        ),
        row(
            "include",
            REFUSED,
            REFUSED,
            REFUSED,
            "only `message.output_text.logprobs` is refused; the rest asks for nothing "
            "another engine has (encrypted reasoning, search results): dropped",
            passthrough=CARRIED,
            inert=_asks_no_logprobs,
            example=["message.output_text.logprobs"],
        ),
        row(
            "moderation",
            REFUSED,
            REFUSED,
            REFUSED,
            "OpenAI's moderation policy; no other engine moderates",
            example={"model": "omni-moderation-latest"},
        ),
        row("store", DROPPED, DROPPED, DROPPED, "nothing is stored here"),
        row("metadata", DROPPED, DROPPED, DROPPED, "tags for stored responses: nothing is stored"),
        row("user", DROPPED, DROPPED, DROPPED, _OPENAI_SERVICE),
        row("safety_identifier", DROPPED, DROPPED, DROPPED, _OPENAI_SERVICE),
        row("client_metadata", DROPPED, DROPPED, DROPPED, "Codex's session ids, for OpenAI's logs"),
        row("prompt_cache_key", DROPPED, DROPPED, DROPPED, _CACHE),
        row("prompt_cache_retention", DROPPED, DROPPED, DROPPED, _CACHE),
        row("prompt_cache_options", DROPPED, DROPPED, DROPPED, _CACHE),
        row("service_tier", DROPPED, DROPPED, DROPPED, "OpenAI's processing tier"),
        row(
            "truncation",
            DROPPED,
            DROPPED,
            DROPPED,
            "an engine refuses a prompt too long for it (400) instead of truncating",
        ),
        row("stream_options", DROPPED, DROPPED, DROPPED, "`include_obfuscation`: OpenAI's padding"),
        row(
            "max_tool_calls",
            DROPPED,
            DROPPED,
            DROPPED,
            "it counts hosted tool calls, which never happen here",
        ),
        row(
            "context_management",
            DROPPED,
            DROPPED,
            DROPPED,
            "server-side compaction: the engine gets the whole conversation",
        ),
        row("image", DROPPED, DROPPED, DROPPED, "OpenAI's image-context compression"),
        row("access_programs", DROPPED, DROPPED, DROPPED, _OPENAI_SERVICE),
        row("background_options", DROPPED, DROPPED, DROPPED, "`background` itself is refused"),
        row("previous_response_id", REFUSED, REFUSED, REFUSED, passthrough=REFUSED, note=_STATE),
        row("conversation", REFUSED, REFUSED, REFUSED, passthrough=REFUSED, note=_STATE),
        row("prompt", REFUSED, REFUSED, REFUSED, passthrough=REFUSED, note=_STATE),
        row(
            "background",
            REFUSED,
            REFUSED,
            REFUSED,
            passthrough=REFUSED,
            note=_STATE + " (`false` is fine)",
            inert=(False,),
        ),
        # Nested fields: the decoder reads, drops or refuses them as the row says.
        row(
            "input[].type",
            MAPPED,
            MAPPED,
            MAPPED,
            "message, function_call(_output), custom_tool_call(_output), additional_tools; "
            "`reasoning` items and hosted-tool call items are dropped; `item_reference` is "
            "refused (decoder)",
        ),
        row(
            "input[].content[].image_url",
            mapped("image_url"),
            mapped("source"),
            mapped("images"),
            "Ollama: inline images only (encoder)",
        ),
        row("input[].content[].detail", DROPPED, DROPPED, DROPPED, "a resolution hint"),
        row(
            "input[].encrypted_content",
            DROPPED,
            DROPPED,
            DROPPED,
            "OpenAI's encrypted reasoning (an Anthropic signature is kept)",
        ),
        row(
            "tools[].type",
            MAPPED,
            MAPPED,
            MAPPED,
            "hosted tools (web_search, file_search, mcp, ...) are dropped: the engine cannot "
            "run them",
        ),
        row("tools[].strict", DROPPED, DROPPED, DROPPED, "engines follow the schema as they can"),
        row(
            "tools[].external_web_access",
            DROPPED,
            DROPPED,
            DROPPED,
            "a hosted web_search setting (Codex)",
        ),
        row("text.verbosity", DROPPED, DROPPED, DROPPED, "a length hint"),
        row("reasoning.summary", DROPPED, DROPPED, DROPPED, "thinking comes back as the summary"),
        row(
            "reasoning.context",
            DROPPED,
            DROPPED,
            DROPPED,
            "Codex's hint for OpenAI's reasoning state",
        ),
    ),
    _VALUES,
)
