"""Ollama's error answers (`{"error": "..."}` or any other body) as our error classes."""

from __future__ import annotations

from collections.abc import Mapping

from modelport.errors import BackendError
from modelport.wire.errors import decode_error_body


def decode_error(
    status: int,
    body: bytes | str,
    *,
    backend_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> BackendError:
    """Ollama's `{"error": "..."}` (or any body) as our error class."""
    return decode_error_body(status, body, backend_id=backend_id, headers=headers)
