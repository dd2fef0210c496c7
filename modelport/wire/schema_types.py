"""The JSON types of each client dialect's request fields, keyed by field-table path.

The field tables (wire/*/fields.py) say which fields exist and what becomes of each; this
module says only what JSON each one takes, as its decoder reads it (the `optional_int`,
`text`, `strings` ... calls of wire/*/request*.py), so that wire/schemas.py can publish
request schemas a fuzzer can use. A key that names no row of its table is an error at
import time of wire/schemas.py, so the two cannot drift apart.

Types only: ranges (`temperature` 0..2, `top_p` 0..1) belong to request validation (issue
11 point 8); when the rows carry them, the schema builder should take them from there. The
one range here is a decoder's own check today (Anthropic `max_tokens` at least 1).
A field with no entry here is published with its note and no type (any JSON value).
"""

from __future__ import annotations

from typing import Any

JSONSchema = dict[str, Any]

STRING: JSONSchema = {"type": "string"}
NAME: JSONSchema = {"type": "string", "minLength": 1}
INTEGER: JSONSchema = {"type": "integer"}
NUMBER: JSONSchema = {"type": "number"}
BOOLEAN: JSONSchema = {"type": "boolean"}
OBJECT: JSONSchema = {"type": "object"}
STRINGS: JSONSchema = {"type": "array", "items": STRING}
STOP: JSONSchema = {"anyOf": [STRING, STRINGS]}
TOKEN_IDS: JSONSchema = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}


def nullable(schema: JSONSchema) -> JSONSchema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: tuple[str, ...] = (), **properties: JSONSchema) -> JSONSchema:
    schema: JSONSchema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def enum(*values: str) -> JSONSchema:
    return {"type": "string", "enum": list(values)}


def array(items: JSONSchema, min_items: int = 0) -> JSONSchema:
    schema: JSONSchema = {"type": "array", "items": items}
    if min_items:
        schema["minItems"] = min_items
    return schema


_FUNCTION = obj(("name",), name=NAME, description=STRING, parameters=OBJECT)
_OPENAI_TOOL = obj(("function",), type=enum("function"), function=_FUNCTION)
# validate.tool_arguments: a JSON object encoded as a string (or "": none)
ARGUMENTS: JSONSchema = {
    "type": "string",
    "contentMediaType": "application/json",
    "contentSchema": {"type": "object"},
}
_OPENAI_CALL = obj(
    ("id", "function"),
    id=STRING,
    type=enum("function"),
    function=obj(("name",), name=STRING, arguments=ARGUMENTS),
)


def one_of(*branches: JSONSchema) -> JSONSchema:
    """What a member of several kinds needs by its kind (a message by role, a part by type);
    the properties stay those of the table, merged beside it."""
    return {"oneOf": list(branches)}


_OPENAI_PART = {
    "type": "object",
    "required": ["type"],
    **one_of(
        obj(("type", "text"), type=enum("text"), text=STRING),
        obj(("type", "refusal"), type=enum("refusal"), refusal=STRING),
        obj(("type", "image_url"), type=enum("image_url"), image_url=obj(("url",), url=NAME)),
    ),
}
_OPENAI_MESSAGE = {
    "type": "object",
    "required": ["role"],
    **one_of(
        obj(("role",), role=enum("system", "developer")),
        obj(("role", "content"), role=enum("user")),
        obj(("role",), role=enum("assistant")),
        obj(("role", "tool_call_id"), role=enum("tool")),
    ),
}
_NAMED_FUNCTION = obj(
    ("type", "function"), type=enum("function"), function=obj(("name",), name=NAME)
)

# wire/openai/request.py
OPENAI: dict[str, JSONSchema] = {
    "model": NAME,
    "messages": array(_OPENAI_MESSAGE, 1),
    "messages[].role": enum("system", "developer", "user", "assistant", "tool"),
    "messages[].name": STRING,
    "messages[].content": {"anyOf": [STRING, {"type": "null"}, array(_OPENAI_PART)]},
    "messages[].content[].text": STRING,
    "messages[].content[].image_url.url": NAME,
    "messages[].tool_calls": array(_OPENAI_CALL),
    "messages[].tool_call_id": STRING,
    "messages[].reasoning_content": nullable(STRING),
    "max_tokens": INTEGER,
    "max_completion_tokens": INTEGER,
    "temperature": NUMBER,
    "top_p": NUMBER,
    "frequency_penalty": NUMBER,
    "presence_penalty": NUMBER,
    "min_p": NUMBER,
    "typical_p": NUMBER,
    "repetition_penalty": NUMBER,
    "repeat_penalty": NUMBER,
    "top_k": INTEGER,
    "n": INTEGER,
    "seed": INTEGER,
    "top_logprobs": INTEGER,
    "logprobs": BOOLEAN,
    "store": BOOLEAN,
    "stream": BOOLEAN,
    "parallel_tool_calls": BOOLEAN,
    "stop": STOP,
    "stream_options": obj(include_usage=BOOLEAN),
    "response_format": obj(("type",), type=enum("text", "json_object", "json_schema")),
    "reasoning_effort": STRING,
    "tools": array(_OPENAI_TOOL),
    "tool_choice": {"anyOf": [enum("auto", "none", "required"), _NAMED_FUNCTION]},
    "metadata": {"type": "object", "additionalProperties": STRING},
    "user": STRING,
    "safety_identifier": STRING,
    "prompt_cache_key": STRING,
    "service_tier": STRING,
    "verbosity": STRING,
    "modalities": STRINGS,
    "logit_bias": {"type": "object", "additionalProperties": NUMBER},
    "chat_template_kwargs": OBJECT,
}

# wire/openai/embeddings.py
OPENAI_EMBED: dict[str, JSONSchema] = {
    "model": NAME,
    "input": {"anyOf": [STRING, array(STRING, 1), TOKEN_IDS, array(TOKEN_IDS, 1)]},
    "dimensions": INTEGER,
    "encoding_format": enum("float", "base64"),
    "user": STRING,
}

_SOURCE = one_of(
    obj(("type", "data", "media_type"), type=enum("base64"), data=STRING, media_type=STRING),
    obj(("type", "url"), type=enum("url"), url=STRING),
)
_ANTHROPIC_BLOCK = {
    "type": "object",
    "required": ["type"],
    **one_of(
        obj(("type", "text"), type=enum("text"), text=STRING),
        obj(("type", "source"), type=enum("image"), source={"type": "object", **_SOURCE}),
        obj(
            ("type", "id", "name", "input"),
            type=enum("tool_use"),
            id=STRING,
            name=STRING,
            input=OBJECT,
        ),
        obj(("type", "tool_use_id"), type=enum("tool_result"), tool_use_id=STRING),
        obj(("type", "thinking"), type=enum("thinking"), thinking=STRING),
        obj(("type", "data"), type=enum("redacted_thinking"), data=STRING),
    ),
}
_TEXT_BLOCK = obj(("type", "text"), type=enum("text"), text=STRING)

# wire/anthropic/request.py
ANTHROPIC: dict[str, JSONSchema] = {
    "model": NAME,
    "messages": array(obj(("role", "content")), 1),
    "messages[].role": enum("user", "assistant"),
    "messages[].content": {"anyOf": [STRING, array(_ANTHROPIC_BLOCK)]},
    "messages[].content[].text": STRING,
    "messages[].content[].source": obj(("type",), type=enum("base64", "url")),
    "messages[].content[].is_error": BOOLEAN,
    "messages[].content[].thinking": STRING,
    "messages[].content[].signature": STRING,
    "max_tokens": {"type": "integer", "minimum": 1},  # the decoder's own check
    "system": {"anyOf": [STRING, array(_TEXT_BLOCK)]},
    "stop_sequences": STRINGS,
    "stream": BOOLEAN,
    "temperature": NUMBER,
    "top_p": NUMBER,
    "top_k": INTEGER,
    "thinking": {
        "type": "object",
        "required": ["type"],
        **one_of(
            obj(("type", "budget_tokens"), type=enum("enabled"), budget_tokens=INTEGER),
            obj(("type",), type=enum("disabled", "adaptive")),
        ),
    },
    "thinking.display": STRING,
    "output_config": obj(effort=STRING, format=OBJECT),
    "tools": array(obj(("name", "input_schema"), name=NAME, description=STRING)),
    "tools[].input_schema": OBJECT,
    "tools[].type": STRING,
    "tool_choice": obj(("type",), type=enum("auto", "any", "tool", "none"), name=STRING),
    "tool_choice.disable_parallel_tool_use": BOOLEAN,
    "metadata": obj(user_id=nullable(STRING)),
    "service_tier": STRING,
}

# wire/responses/request.py, items.py, tools.py
RESPONSES: dict[str, JSONSchema] = {
    "model": NAME,
    "input": {"anyOf": [STRING, array(OBJECT)]},
    "input[].type": STRING,
    "input[].encrypted_content": STRING,
    "instructions": STRING,
    "tools": array(OBJECT),
    "tools[].type": STRING,
    "tool_choice": {"anyOf": [enum("auto", "none", "required"), OBJECT]},
    "parallel_tool_calls": BOOLEAN,
    "max_output_tokens": INTEGER,
    "temperature": NUMBER,
    "top_p": NUMBER,
    "text": OBJECT,
    "reasoning": obj(effort=nullable(STRING), summary=nullable(STRING)),
    "stream": BOOLEAN,
    "store": BOOLEAN,
    "top_logprobs": INTEGER,
    "include": STRINGS,
    "metadata": {"type": "object", "additionalProperties": STRING},
    "user": STRING,
    "safety_identifier": STRING,
    "prompt_cache_key": STRING,
    "service_tier": STRING,
    "max_tool_calls": INTEGER,
    "background": BOOLEAN,
}

_OLLAMA_CALL = obj(("function",), function=obj(("name",), name=NAME, arguments=OBJECT))

# wire/ollama/request_decode.py and generate.py: /api/chat and /api/generate share it (a
# field of the other endpoint meets its row, as the Ollama field table says).
OLLAMA: dict[str, JSONSchema] = {
    "model": NAME,
    "messages": array(obj(("role",)), 1),
    "messages[].role": enum("system", "user", "assistant", "tool"),
    "messages[].content": STRING,
    "messages[].thinking": STRING,
    "messages[].images": STRINGS,
    "messages[].tool_calls": array(_OLLAMA_CALL),
    "messages[].tool_name": STRING,
    "messages[].tool_call_id": STRING,
    "prompt": STRING,
    "system": STRING,
    "images": STRINGS,
    "tools": array(_OPENAI_TOOL),
    "stream": BOOLEAN,
    "format": {"anyOf": [enum("json"), OBJECT]},
    "think": {"anyOf": [BOOLEAN, enum("low", "medium", "high", "max")]},
    "options": OBJECT,
    "options.temperature": NUMBER,
    "options.top_p": NUMBER,
    "options.num_predict": INTEGER,
    "options.stop": STOP,
    "options.seed": INTEGER,
    "options.top_k": INTEGER,
    "keep_alive": {"anyOf": [STRING, NUMBER]},
    "raw": BOOLEAN,
    "suffix": STRING,
    "template": STRING,
    "context": array({"type": "integer"}),
}

TYPES: dict[str, dict[str, JSONSchema]] = {
    "OpenAI Chat Completions (client dialect)": OPENAI,
    "OpenAI Embeddings (client dialect)": OPENAI_EMBED,
    "Anthropic Messages (client dialect)": ANTHROPIC,
    "Responses API (client dialect)": RESPONSES,
    "Ollama API (client dialect)": OLLAMA,
}
"""Each table's types, by the table's title."""
