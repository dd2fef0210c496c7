"""A legacy completions body, checked before any engine sees it (wire/validate.py wording).

Only what the gateway itself relies on is checked: the body is an object, `model` names a
model, `prompt` is one of the four shapes OpenAI takes, `stream` is a boolean and `suffix`
a string. Everything else is the engine's to judge: the body is relayed as it came.
"""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.wire.validate import (
    at,
    expected,
    fail,
    load_body,
    non_empty_text,
    optional_bool,
    optional_text,
    required,
    strings,
    token_ids,
)

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
