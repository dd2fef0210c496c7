"""A legacy completions body, checked before any engine sees it (wire/validate.py wording).

Only what the gateway itself relies on is checked: the body is an object, `model` names a
model, `prompt` is one of the four shapes OpenAI takes, `stream` is a boolean and `suffix`
a string. Everything else is the engine's to judge: the body is relayed as it came.
"""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.wire.validate import (
    expected,
    fail,
    load_body,
    non_empty_text,
    optional_bool,
    optional_text,
    required,
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
    if isinstance(prompt, str):
        return
    if not isinstance(prompt, list):
        expected("prompt", PROMPT_SHAPES, prompt)
    if not prompt:
        fail("prompt", "must not be empty")
    first = prompt[0]
    if isinstance(first, str):
        _all(prompt, str, "a string")
    elif isinstance(first, list):
        for i, tokens in enumerate(prompt):
            if not isinstance(tokens, list):
                expected(f"prompt[{i}]", "an array of token ids", tokens)
            _all(tokens, int, "a token id", f"prompt[{i}]")
    else:
        _all(prompt, int, "a token id")


def _all(items: list[Any], kind: type, what: str, param: str = "prompt") -> None:
    """Every item a `kind` (a token id is a non-negative integer, never a boolean)."""
    for i, item in enumerate(items):
        ok = isinstance(item, kind) and not isinstance(item, bool)
        if ok and kind is int and item < 0:
            ok = False
        if not ok:
            expected(f"{param}[{i}]", what, item)
