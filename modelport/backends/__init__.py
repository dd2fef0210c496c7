"""I/O to engines. `connect("vllm:http://127.0.0.1:8000")` picks the adapter for a kind."""

from __future__ import annotations

from modelport.backends.base import Backend, Relay
from modelport.backends.profiles import KINDS
from modelport.errors import InvalidRequest

__all__ = ["Backend", "Relay", "connect", "kinds", "parse_spec"]


def kinds() -> list[str]:
    """Every kind `connect` accepts: the OpenAI-compatible profiles and the native adapters."""
    return list(KINDS)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """ "KIND" or "KIND:URL" -> (kind, url or None). The URL keeps its own colons."""
    kind, sep, url = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in kinds():
        raise InvalidRequest(
            f"unknown backend kind {kind!r}; known kinds: {', '.join(kinds())}", param="backend"
        )
    url = url.strip()
    if sep and not url:
        raise InvalidRequest(f"backend {spec!r} has an empty URL", param="backend")
    return kind, url or None


def connect(spec: str, *, api_key: str | None = None, name: str | None = None) -> Backend:
    """A backend for "KIND[:URL]"; KIND alone uses the profile's default URL.

    "managed[:PATH]" runs a llama-server of our own on the GGUF file at PATH (the bundled
    model when no path is given), once `modelport engine install` has put it in place.
    """
    kind, url = parse_spec(spec)
    return KINDS[kind].build(kind, url, api_key, name)
