"""Shared by the Anthropic codec tests: an error body in the official API's shape."""

from __future__ import annotations

from typing import Any


def official(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
