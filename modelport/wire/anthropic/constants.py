"""Anthropic constants shared by the dialect's modules."""

from __future__ import annotations

from typing import Any

import msgspec

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # sent when a canonical request has no max_tokens
REDACTED_PREFIX = "redacted_thinking:"

json_encode = msgspec.json.Encoder().encode
json_decode = msgspec.json.Decoder().decode

# An empty-object schema: what a tool without parameters is sent with (Anthropic needs `type`).
EMPTY_SCHEMA: dict[str, Any] = {"type": "object"}
