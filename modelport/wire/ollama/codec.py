"""Ollama's native dialect as a backend reads it: NDJSON streams and its error bodies.

Engine side only (see the package docstring): an `EngineCodec`, not yet a client `Codec`.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelport.errors import BackendError
from modelport.wire.codec import EngineCodec
from modelport.wire.ollama.errors import decode_error
from modelport.wire.ollama.stream_decode import StreamDecoder
from modelport.wire.sse import NDJSONDecoder


class OllamaEngineCodec:
    """Stateless: each stream gets its own framer and decoder."""

    def framer(self) -> NDJSONDecoder:
        return NDJSONDecoder()

    def stream_decoder(self, *, backend_id: str | None = None) -> StreamDecoder:
        return StreamDecoder(backend_id=backend_id)

    def decode_error(
        self,
        status: int,
        body: bytes | str,
        *,
        backend_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> BackendError:
        return decode_error(status, body, backend_id=backend_id, headers=headers)


ENGINE_CODEC: EngineCodec = OllamaEngineCodec()  # typed, so mypy checks it
