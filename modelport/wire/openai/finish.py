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


def matched_stop(finish: str | None, stop_reason: str | int | None) -> str | None:
    """The stop sequence that ended the answer, when the engine names it: vLLM puts the
    matched stop string in `stop_reason` beside `finish_reason: "stop"`. A token id there
    (a `stop_token_ids` match) is no sequence a client asked for, so it is not one.
    Engines that do not say (llama-server, Ollama, OpenAI) leave us None: an engine cuts the
    stop string from the text, so a stop sequence cannot be told from an end of turn."""
    if finish == "stop" and isinstance(stop_reason, str) and stop_reason:
        return stop_reason
    return None
