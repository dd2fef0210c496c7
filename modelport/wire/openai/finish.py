"""OpenAI finish_reason words <-> canonical finish reasons."""

from __future__ import annotations

from collections.abc import Mapping

from modelport.types import (
    FinishReason,
)

REASONS: Mapping[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}
# What we write for each canonical reason; OpenAI has no word for cancelled or error.
_WORDS: Mapping[FinishReason, str] = {
    FinishReason.STOP: "stop",
    FinishReason.LENGTH: "length",
    FinishReason.TOOL_CALLS: "tool_calls",
    FinishReason.CONTENT_FILTER: "content_filter",
    FinishReason.CANCELLED: "stop",
    FinishReason.ERROR: "stop",
}
_OPENAI_WORDS = frozenset(("stop", "length", "tool_calls", "content_filter"))


def finish_reason_from(raw: str | None) -> FinishReason:
    """The engine's word as a canonical reason; words we do not know mean a normal stop."""
    return REASONS.get(raw, FinishReason.STOP) if raw else FinishReason.STOP


def finish_word(reason: FinishReason, raw: str | None) -> str:
    """Keep the engine's own word when it is an OpenAI word that means the same thing."""
    if raw in _OPENAI_WORDS and REASONS[raw] is reason:
        return raw
    return _WORDS[reason]
