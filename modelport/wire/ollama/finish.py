"""Ollama done_reason words -> canonical finish reasons."""

from __future__ import annotations

from collections.abc import Mapping

from modelport.types import (
    FinishReason,
)

_REASONS: Mapping[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    # A request that only loads or unloads a model ends normally with no output.
    "load": FinishReason.STOP,
    "unload": FinishReason.STOP,
}


def finish_reason_from(raw: str | None, *, called_tools: bool = False) -> FinishReason:
    """Ollama says "stop" after tool calls; we say TOOL_CALLS, as clients expect."""
    reason = _REASONS.get(raw, FinishReason.STOP) if raw else FinishReason.STOP
    if called_tools and reason is FinishReason.STOP:
        return FinishReason.TOOL_CALLS
    return reason
