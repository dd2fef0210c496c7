"""Ollama codec round trips (hypothesis): event streams through the native wire."""

from __future__ import annotations

from hypothesis import given

from modelport.types import Done, Event, FinishReason, TextDelta, ThinkingDelta, ToolCallEnd, Usage
from tests.strategies import event_streams, normalize
from tests.wire.ollama.helpers import chunk, decode, done


def encode_stream(events: list[Event]) -> list[bytes]:
    """Canonical events as Ollama would send them: whole calls, counts on the done line."""
    lines: list[bytes] = []
    for event in events:
        if isinstance(event, ThinkingDelta):
            lines.append(chunk("", thinking=event.text))
        elif isinstance(event, TextDelta):
            lines.append(chunk(event.text))
        elif isinstance(event, ToolCallEnd):
            call = {"id": event.id, "function": {"name": event.name, "arguments": event.arguments}}
            lines.append(chunk("", tool_calls=[call]))
        elif isinstance(event, Done):
            usage = event.usage
            lines.append(
                done(
                    event.raw_reason,
                    usage.input_tokens if usage else None,
                    usage.output_tokens if usage else None,
                )
            )
    return lines


OLLAMA_REASONS = {FinishReason.STOP: "stop", FinishReason.LENGTH: "length"}


@given(event_streams(reasons=OLLAMA_REASONS, interleave=False, signatures=False))
def test_stream_round_trip(events: list[Event]) -> None:
    decoded = decode(*encode_stream(events))
    want, got = normalize(events), normalize(decoded)
    assert (got.text, got.thinking, got.tool_calls) == (want.text, want.thinking, want.tool_calls)
    expected_finish = want.finish_reason
    if want.tool_calls and expected_finish is FinishReason.STOP:
        expected_finish = FinishReason.TOOL_CALLS
    assert got.finish_reason is expected_finish
    u = want.usage
    assert got.usage == (Usage(u.input_tokens, u.output_tokens) if u else None)
