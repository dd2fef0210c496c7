"""A tool call's arguments as an engine sent them (JSON text or an object) -> a dict.

Engine output, so what cannot be read is a ProtocolError naming the tool; a client's
arguments are validated by its dialect's request decoder instead.
"""

from __future__ import annotations

from typing import Any

import msgspec

from modelport.errors import ProtocolError


def parse_arguments(raw: Any, name: str) -> dict[str, Any]:
    """An object as it is; JSON text decoded; nothing at all is no arguments."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ProtocolError(
                f"tool call {name!r}: arguments are not valid JSON: {exc}"
            ) from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"tool call {name!r}: arguments are not a JSON object")
    return raw
