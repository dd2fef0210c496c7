"""Ids we mint for tool calls that arrived without one.

Engines such as Ollama (and some llama.cpp builds) give tool calls no id, yet every call a
client sees must carry one so that its result can name it. Each dialect keeps the shape its
ids had: "call_" and 24 hex digits for OpenAI, "toolu_" and 24 for Anthropic, "call_" and 32
for Ollama (a uuid's worth, as Ollama's own ids are).
"""

from __future__ import annotations

import secrets


def mint_tool_id(prefix: str, *, hex_digits: int = 24) -> str:
    """`prefix` and random hex digits: unique enough for the calls of one conversation."""
    return prefix + secrets.token_hex(hex_digits // 2)
