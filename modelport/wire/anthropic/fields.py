"""Every field of a Messages request and its fate per target (see wire/fields.py).

Sources: the anthropic SDK's `types/message_create_params.py` and
`types/beta/message_create_params.py` (every top-level field, beta ones included), its
content-block and tool params, and the API reference for `temperature`, `top_k`, `top_p`.
"""

from __future__ import annotations

from modelport.wire.fields import (
    CARRIED,
    DROPPED,
    MAPPED,
    REFUSED,
    FieldTable,
    Target,
    carried,
    mapped,
    row,
)
from modelport.wire.validate import (
    ARRAY,
    BOOLEAN,
    INT32_MAX,
    MESSAGES,
    OBJECT,
    STRING,
    STRING_OR_OBJECT,
    STRINGS,
    TOKENS,
    TOOLS,
    Check,
    integer,
    number,
)

_ANTHROPIC_SERVICE = "Anthropic's own service (accounts, billing, routing); no other engine has it"
_CACHE = "a caching hint; local engines cache prompt prefixes themselves"
_DECODER_REFUSES = "no canonical part: refused by the decoder, passthrough included"

# What each field takes, per the API reference: max_tokens at least 1 (and no more than an
# engine holds), temperature and top_p 0 to 1, top_k at least 0.
_VALUES: dict[str, Check] = {
    "model": STRING,
    "messages": MESSAGES,
    "max_tokens": TOKENS,
    "system": Check((str, list), "a string or an array of text blocks"),
    "stop_sequences": STRINGS,
    "stream": BOOLEAN,
    "temperature": number(0, 1),
    "top_p": number(0, 1),
    "top_k": integer(0, INT32_MAX),
    "thinking": OBJECT,
    "output_config": OBJECT,
    "tools": TOOLS,
    "tool_choice": OBJECT,
    "metadata": OBJECT,
    "service_tier": STRING,
    "cache_control": OBJECT,
    "context_management": OBJECT,
    "container": STRING_OR_OBJECT,
    "mcp_servers": ARRAY,
    "inference_geo": STRING,
    "speed": STRING,
    "diagnostics": OBJECT,
    "user_profile_id": STRING,
    "workspace_id": STRING,
}

FIELDS = FieldTable(
    "Anthropic Messages (client dialect)",
    Target.ANTHROPIC,
    (
        row("model", MAPPED, CARRIED, MAPPED, "the route's model name replaces it"),
        row("messages", MAPPED, CARRIED, MAPPED),
        row("max_tokens", MAPPED, CARRIED, mapped("options.num_predict")),
        row("system", mapped("messages[0]"), CARRIED, mapped("messages[0]")),
        row("stop_sequences", mapped("stop"), CARRIED, mapped("options.stop")),
        row("stream", MAPPED, CARRIED, MAPPED),
        row("temperature", MAPPED, CARRIED, mapped("options.temperature")),
        row("top_p", MAPPED, CARRIED, mapped("options.top_p")),
        row("top_k", CARRIED, CARRIED, carried("options.top_k"), "vendor field there", example=40),
        row(
            "thinking",
            mapped("reasoning_effort"),
            CARRIED,
            mapped("think"),
            "a budget becomes the nearest effort (+ `chat_template_kwargs`); adaptive without "
            "an effort is the engine's default (dropped)",
        ),
        row(
            "output_config",
            mapped("response_format"),
            CARRIED,
            mapped("format"),
            "`format` -> the schema; `effort` -> the thinking effort when thinking is on, "
            "dropped otherwise (an effort hint)",
        ),
        row("tools", MAPPED, CARRIED, MAPPED, "client tools; server tools are refused (decoder)"),
        row(
            "tool_choice",
            MAPPED,
            CARRIED,
            MAPPED,
            "Ollama: `none` offers no tools; `any` and a named tool are refused (encoder)",
        ),
        row("metadata", DROPPED, CARRIED, DROPPED, "`user_id`: " + _ANTHROPIC_SERVICE),
        row("service_tier", DROPPED, CARRIED, DROPPED, "Anthropic's capacity tier"),
        row("cache_control", DROPPED, CARRIED, DROPPED, _CACHE),
        row(
            "context_management",
            DROPPED,
            CARRIED,
            DROPPED,
            "server-side context editing (Claude Code sends it): the engine gets the whole "
            "conversation, still a right request",
        ),
        row(
            "container",
            REFUSED,
            CARRIED,
            REFUSED,
            "code-execution containers are Anthropic's",
            example="container_1",
        ),
        row(
            "mcp_servers",
            REFUSED,
            CARRIED,
            REFUSED,
            "MCP servers are called from Anthropic's side",
            example=[{"type": "url", "url": "https://mcp.example", "name": "x"}],
        ),
        row(
            "compaction",
            REFUSED,
            CARRIED,
            REFUSED,
            "a compaction request answers a summary block no other engine makes",
            example={"type": "enabled"},
        ),
        row(
            "thread",
            REFUSED,
            CARRIED,
            REFUSED,
            "conversation state held by Anthropic",
            example={"type": "create"},
        ),
        row("inference_geo", DROPPED, CARRIED, DROPPED, "where Anthropic runs the model"),
        row("speed", DROPPED, CARRIED, DROPPED, "Anthropic's fast mode, a latency choice"),
        row("diagnostics", DROPPED, CARRIED, DROPPED, "Anthropic's prompt-cache diagnostics"),
        row("user_profile_id", DROPPED, CARRIED, DROPPED, _ANTHROPIC_SERVICE),
        row("workspace_id", DROPPED, CARRIED, DROPPED, _ANTHROPIC_SERVICE),
        row("billing_policy", DROPPED, CARRIED, DROPPED, _ANTHROPIC_SERVICE),
        row("fallback_credit_token", DROPPED, CARRIED, DROPPED, _ANTHROPIC_SERVICE),
        row(
            "fallbacks",
            DROPPED,
            CARRIED,
            DROPPED,
            "substitute models when Anthropic's declines for policy; the gateway has its own "
            "candidates",
        ),
        # Nested fields: the decoder reads or refuses them as the row says.
        row(
            "messages[].role",
            MAPPED,
            CARRIED,
            MAPPED,
            "user, assistant, and mid-conversation system messages",
        ),
        row("messages[].content[].text", MAPPED, CARRIED, MAPPED, "text blocks"),
        row(
            "messages[].content[].citations",
            DROPPED,
            CARRIED,
            DROPPED,
            "citations of earlier answers; the text stays",
        ),
        row(
            "messages[].content[].source",
            mapped("image_url"),
            CARRIED,
            mapped("images"),
            "image blocks: base64 or url; a `file` source is refused (decoder); Ollama takes "
            "inline images only (encoder)",
        ),
        row("messages[].content[].tool_use", mapped("tool_calls"), CARRIED, MAPPED),
        row(
            "messages[].content[].tool_result",
            mapped("role: tool"),
            CARRIED,
            mapped("role: tool"),
            "text and image content",
        ),
        row(
            "messages[].content[].is_error",
            DROPPED,
            CARRIED,
            DROPPED,
            "tool results have no such flag there; the result's text says what failed",
        ),
        row(
            "messages[].content[].thinking",
            mapped("reasoning_content"),
            CARRIED,
            mapped("thinking"),
        ),
        row(
            "messages[].content[].signature",
            mapped("reasoning_signature"),
            CARRIED,
            DROPPED,
            "Anthropic's proof of its own thinking; only Anthropic reads it (OpenAI itself "
            "gets no earlier thinking: it refuses the fields)",
        ),
        row(
            "messages[].content[].redacted_thinking",
            mapped("reasoning_signature"),
            CARRIED,
            DROPPED,
            "encrypted thinking only Anthropic reads",
        ),
        row(
            "messages[].content[].cache_control",
            DROPPED,
            CARRIED,
            DROPPED,
            _CACHE,
        ),
        row(
            "messages[].content[].document",
            REFUSED,
            REFUSED,
            REFUSED,
            passthrough=REFUSED,
            note=_DECODER_REFUSES + " (also search_result, container_upload)",
        ),
        row(
            "messages[].content[].server_tool_use",
            REFUSED,
            REFUSED,
            REFUSED,
            passthrough=REFUSED,
            note=_DECODER_REFUSES + " (also *_tool_result of server tools, mcp_tool_use/result)",
        ),
        row(
            "messages[].content[].transformations",
            DROPPED,
            CARRIED,
            DROPPED,
            "how Anthropic's server resizes an image; other engines see it as sent",
        ),
        row(
            "messages[].content[].caller",
            DROPPED,
            CARRIED,
            DROPPED,
            "who called a tool: code execution's callers are Anthropic's (server tools are "
            "refused)",
        ),
        row(
            "messages[].content[].toolset_name",
            DROPPED,
            CARRIED,
            DROPPED,
            "the server toolset of a call; server tools are refused",
        ),
        row("system[].cache_control", DROPPED, CARRIED, DROPPED, _CACHE),
        row("tools[].input_schema", mapped("function.parameters"), CARRIED, MAPPED, "client tools"),
        row(
            "tools[].type",
            REFUSED,
            REFUSED,
            REFUSED,
            passthrough=REFUSED,
            note="server tools (bash, web_search, ...): "
            + _DECODER_REFUSES
            + "; `custom` (or none) is a client tool",
        ),
        row("tools[].cache_control", DROPPED, CARRIED, DROPPED, _CACHE),
        row(
            "tools[].defer_loading",
            DROPPED,
            CARRIED,
            DROPPED,
            "tool search is Anthropic's: the tool is offered like the others",
        ),
        row(
            "tools[].strict",
            DROPPED,
            CARRIED,
            DROPPED,
            "strict schema adherence; engines follow the schema as they can",
        ),
        row(
            "tools[].allowed_callers",
            DROPPED,
            CARRIED,
            DROPPED,
            "which code may call the tool: code execution is Anthropic's",
        ),
        row(
            "tools[].eager_input_streaming",
            DROPPED,
            CARRIED,
            DROPPED,
            "how Anthropic streams a call's input; the gateway streams what the engine sends",
        ),
        row(
            "tools[].input_examples",
            DROPPED,
            CARRIED,
            DROPPED,
            "examples for Anthropic's tool use; the schema and description still go",
        ),
        row(
            "tool_choice.disable_parallel_tool_use",
            mapped("parallel_tool_calls"),
            CARRIED,
            DROPPED,
            "Ollama has no such switch (encoder)",
        ),
        row(
            "thinking.display",
            DROPPED,
            CARRIED,
            DROPPED,
            "other engines show the thinking they do",
        ),
    ),
    _VALUES,
)
