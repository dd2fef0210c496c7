"""Pure codecs between wire bytes and the canonical types. No I/O happens here.

The registry: `CODECS` maps each client WireFormat to its dialect's codec, and
`codec_for(format)` returns one. A dialect package is imported on first use, so
`import modelport` stays cheap. Adding a dialect is a new package plus one row in
`_DIALECTS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from modelport.types import RelayedFormat, RelayFormat, WireFormat

if TYPE_CHECKING:
    from modelport.wire.codec import Codec, RelayCodec

__all__ = ["CODECS", "codec_for", "relay_codec_for"]

# WireFormat -> the package whose `CODEC` speaks it (`package:NAME` for another name).
_DIALECTS: Mapping[WireFormat, str] = {
    WireFormat.OPENAI: "modelport.wire.openai",
    WireFormat.ANTHROPIC: "modelport.wire.anthropic",
    WireFormat.RESPONSES: "modelport.wire.responses",
    WireFormat.OLLAMA: "modelport.wire.ollama",
    WireFormat.OLLAMA_GENERATE: "modelport.wire.ollama:GENERATE_CODEC",
}


class _Registry(Mapping[WireFormat, "Codec"]):
    """A read-only mapping that imports a dialect package the first time it is asked for."""

    def __init__(self, dialects: Mapping[WireFormat, str]) -> None:
        self._dialects = dialects
        self.loaded: dict[WireFormat, Codec] = {}

    def __getitem__(self, format: WireFormat) -> Codec:
        codec = self.loaded.get(format)
        if codec is None:
            codec = self.load(format)
        return codec

    def load(self, format: WireFormat) -> Codec:
        """Import a dialect's package; its codec is a plain dict lookup from then on."""
        package, _, name = self._dialects[format].partition(":")
        codec: Codec = getattr(importlib.import_module(package), name or "CODEC")
        self.loaded[format] = codec
        return codec

    def __iter__(self) -> Iterator[WireFormat]:
        return iter(self._dialects)

    def __len__(self) -> int:
        return len(self._dialects)


_REGISTRY = _Registry(_DIALECTS)
CODECS: Mapping[WireFormat, Codec] = _REGISTRY
_LOADED = _REGISTRY.loaded  # asked several times a request: a plain dict lookup, no Mapping


def codec_for(format: WireFormat) -> Codec:
    """The codec of a client dialect; KeyError for a format no dialect speaks."""
    codec = _LOADED.get(format)
    return codec if codec is not None else _REGISTRY.load(format)


# RelayFormat -> the package whose `CODEC` (a RelayCodec) relays it. Not in CODECS: those
# formats have no client codec (nothing transcodes to or from them).
_RELAY_ONLY: Mapping[RelayFormat, str] = {
    RelayFormat.COMPLETIONS: "modelport.wire.completions",
}
_RELAY_LOADED: dict[RelayFormat, RelayCodec] = {}


def relay_codec_for(format: RelayedFormat) -> RelayCodec:
    """What relaying `format` needs: a client dialect's codec, or a relay-only format's."""
    if isinstance(format, WireFormat):
        return codec_for(format)
    codec = _RELAY_LOADED.get(format)
    if codec is None:
        codec = _RELAY_LOADED[format] = importlib.import_module(_RELAY_ONLY[format]).CODEC
    return codec
