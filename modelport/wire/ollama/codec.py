"""Ollama's native dialect as a backend reads it: NDJSON streams and its error bodies.

Engine side only (see the package docstring): an `EngineCodec`, not yet a client `Codec`.
"""

from __future__ import annotations

from modelport.wire.codec import EngineCodec, EngineCodecBase
from modelport.wire.ollama.stream_decode import StreamDecoder
from modelport.wire.sse import NDJSONDecoder


class OllamaEngineCodec(EngineCodecBase):
    """Stateless: each stream gets its own framer and decoder; errors use the one parser."""

    def framer(self) -> NDJSONDecoder:
        return NDJSONDecoder()

    def stream_decoder(self, *, backend_id: str | None = None) -> StreamDecoder:
        return StreamDecoder(backend_id=backend_id)


ENGINE_CODEC: EngineCodec = OllamaEngineCodec()  # typed, so mypy checks it
