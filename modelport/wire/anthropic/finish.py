"""Anthropic stop_reason words <-> canonical finish reasons."""

from __future__ import annotations

from modelport.types import (
    FinishReason,
)

FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
_STOP_REASON = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.CONTENT_FILTER: "refusal",
}


def stop_reason_to_finish(raw: str | None) -> FinishReason:
    """Anthropic's stop_reason in the canonical vocabulary; unknown words count as a stop."""
    if raw is None:
        return FinishReason.STOP
    return FINISH.get(raw, FinishReason.STOP)


def stop_reason_for(finish: FinishReason, raw: str | None) -> str:
    """Keep the engine's own word when it is Anthropic's and agrees with the finish reason."""
    if raw in FINISH and FINISH[raw] == finish:
        return raw
    return _STOP_REASON.get(finish, "end_turn")


def stop_fields(
    finish: FinishReason, raw: str | None, stop_sequence: str | None
) -> tuple[str, str | None]:
    """`stop_reason` and `stop_sequence` as Anthropic pairs them: a matched sequence is named
    with stop_reason "stop_sequence", and a sequence is never named beside another reason.
    When the engine did not say which sequence matched (llama-server's and Ollama's Chat
    Completions), the stop stays "end_turn": we cannot tell a stop sequence from an end of
    turn, since the engine cuts the sequence from the text."""
    if finish is FinishReason.STOP and stop_sequence:
        return "stop_sequence", stop_sequence
    return stop_reason_for(finish, raw), None
