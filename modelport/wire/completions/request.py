"""A legacy completions body, checked before any engine sees it (wire/validate.py wording).

The body is an object, `model` names a model, `prompt` is one of the four shapes OpenAI
takes, and the basic fields have the types and ranges of OpenAI's API reference (`VALUES`:
a temperature of 1e308 or a max_tokens of 2**64 never reaches an engine). Engine fields are
the engine's to judge: the body is relayed as it came.
"""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.wire.validate import (
    BOOLEAN,
    INT32_MAX,
    OBJECT,
    SEED,
    STRING,
    STRING_OR_ARRAY,
    Check,
    at,
    check_values,
    expected,
    fail,
    integer,
    load_body,
    non_empty_text,
    number,
    optional_bool,
    optional_text,
    required,
    strings,
    token_ids,
)

# OpenAI's legacy completions reference: max_tokens at least 0, temperature 0 to 2, top_p 0
# to 1, penalties -2 to 2, n 1 to 128, best_of 0 to 20, logprobs 0 to 5.
VALUES: dict[str, Check] = {
    "model": STRING,
    "suffix": STRING,
    "stream": BOOLEAN,
    "stream_options": OBJECT,
    "echo": BOOLEAN,
    "max_tokens": integer(0, INT32_MAX),
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "n": integer(1, 128),
    "best_of": integer(0, 20),
    "logprobs": integer(0, 5),
    "logit_bias": OBJECT,
    "presence_penalty": number(-2, 2),
    "frequency_penalty": number(-2, 2),
    "seed": SEED,
    "stop": STRING_OR_ARRAY,
    "user": STRING,
}

PROMPT_SHAPES = (
    "a string, an array of strings, an array of token ids or an array of token-id arrays"
)


class CompletionsRequest(msgspec.Struct, frozen=True):
    """What the gateway needs of a legacy completions body: where it goes and how it answers.

    `fields` are the top-level members set to something (not null, false or ""): a suffix
    of "" (the cursor at the end of a file) asks for nothing an engine could drop."""

    model: str
    stream: bool
    fields: frozenset[str]


def check_request(body: bytes | dict[str, Any]) -> CompletionsRequest:
    """The body's model, stream flag and set fields; InvalidRequest naming what is wrong."""
    obj = load_body(body)
    check_values(VALUES, obj)
    model = non_empty_text(obj, "model", "model")
    _check_prompt(required(obj, "prompt", "prompt"))
    stream = optional_bool(obj, "stream", "stream") is True
    optional_text(obj, "suffix", "suffix")
    fields = frozenset(k for k, v in obj.items() if v is not None and v is not False and v != "")
    return CompletionsRequest(model, stream, fields)


def _check_prompt(prompt: Any) -> None:
    """OpenAI's four shapes: text, texts, token ids, token-id arrays."""
    if isinstance(prompt, str):
        return
    if not isinstance(prompt, list):
        expected("prompt", PROMPT_SHAPES, prompt)
    if not prompt:
        fail("prompt", "must not be empty")
    first = prompt[0]
    if isinstance(first, str):
        strings(prompt, "prompt")
    elif isinstance(first, list):
        for i, tokens in enumerate(prompt):
            token_ids(tokens, at("prompt", i))
    else:
        token_ids(prompt, "prompt")
