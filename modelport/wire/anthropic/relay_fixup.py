"""Fix-ups of a relayed /v1/messages answer, for engines whose Messages wire is off.

Passthrough hands an engine's bytes on untouched; these are the exceptions, asked for by
the engine's profile (backends/profiles.py) and applied by the meter (wire/meter.py), one
frame at a time. Only two frames of a stream are ever handed here (`events`: message_start
for its usage, message_delta to rewrite it); every other frame costs the meter one set lookup.

- `complete_usage`: llama-server's message_delta carries `output_tokens` only, so clients
  that read the final usage from message_delta (langchain-anthropic) see 0 input tokens.
  The official API repeats the cumulative usage there (input, cache and output counts), so
  message_delta gets the usage the gateway metered: message_start's, then the engine's own.
- `fix_stop_sequence`: llama-server answers a matched stop sequence with stop_reason
  "end_turn" beside `stop_sequence: "<the sequence>"`. The client gets stop_reason
  "stop_sequence" when the sequence is one it asked for, and `stop_sequence: null` with any
  other reason (a sequence it never asked for cannot have matched).
"""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.wire.anthropic.constants import json_encode
from modelport.wire.anthropic.response import usage_body, usage_from
from modelport.wire.sse import Frame, encode_sse

_decode = msgspec.json.decode


class MessagesFixup:
    """One relayed answer's fix-ups; `frame()` for a stream, `whole()` for a whole answer."""

    __slots__ = ("_start_usage", "complete_usage", "fix_stop_sequence", "stop_sequences")

    events: frozenset[str | None] = frozenset({"message_start", "message_delta"})

    def __init__(
        self,
        *,
        complete_usage: bool = False,
        fix_stop_sequence: bool = False,
        stop_sequences: tuple[str, ...] = (),
    ) -> None:
        self.complete_usage = complete_usage
        self.fix_stop_sequence = fix_stop_sequence
        self.stop_sequences = stop_sequences
        self._start_usage: dict[str, Any] = {}

    def frame(self, frame: Frame) -> bytes | None:
        """The bytes to send instead of this frame, or None to send it as it came."""
        event = frame.event
        if event == "message_start":
            if self.complete_usage:
                self._remember_start(frame.data)
            return None
        if event != "message_delta":
            return None
        payload = _object(frame.data)
        if payload is None:
            return None  # not ours to judge: the meter's decoder reports unreadable frames
        changed = self._fix_stop(payload.get("delta"))
        if self.complete_usage:
            changed = self._complete(payload) or changed
        return encode_sse(json_encode(payload), "message_delta") if changed else None

    def whole(self, body: bytes) -> bytes | None:
        """A whole answer rewritten, or None when it needs nothing (its usage is complete:
        llama-server's whole answers carry input and output counts)."""
        payload = _object(body)
        if payload is None or payload.get("type") != "message":
            return None
        return json_encode(payload) if self._fix_stop(payload) else None

    def _remember_start(self, data: str) -> None:
        payload = _object(data)
        message = payload.get("message") if payload else None
        usage = message.get("usage") if isinstance(message, dict) else None
        if isinstance(usage, dict):
            self._start_usage = usage

    def _complete(self, payload: dict[str, Any]) -> bool:
        """message_delta's usage as the official API sends it: cumulative, every count."""
        own = payload.get("usage")
        merged = {**self._start_usage, **(own if isinstance(own, dict) else {})}
        complete = usage_body(usage_from(merged))
        if own == complete:
            return False
        payload["usage"] = complete
        return True

    def _fix_stop(self, holder: Any) -> bool:
        """Pair stop_reason and stop_sequence as Anthropic does (see the module's note)."""
        if not self.fix_stop_sequence or not isinstance(holder, dict):
            return False
        reason, sequence = holder.get("stop_reason"), holder.get("stop_sequence")
        if sequence is None:
            return False
        if sequence in self.stop_sequences and reason in ("end_turn", "stop_sequence"):
            fixed: tuple[Any, Any] = ("stop_sequence", sequence)
        else:
            fixed = ("end_turn" if reason == "stop_sequence" else reason, None)
        if fixed == (reason, sequence):
            return False
        holder["stop_reason"], holder["stop_sequence"] = fixed
        return True


def _object(data: str | bytes) -> dict[str, Any] | None:
    try:
        value = _decode(data)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None
