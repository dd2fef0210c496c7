"""Ollama's error answers (`{"error": "..."}` or any other body) as our error classes."""

from __future__ import annotations

from modelport.wire.errors import decode_error_body

# Every dialect reads engine error bodies with the one shared parser.
decode_error = decode_error_body

__all__ = ["decode_error"]
