"""OpenAI's legacy completions (`POST /v1/completions`) as a relay-only format.

No canonical form and no transcoding: the client's body goes to an engine that serves the
endpoint itself (a profile's `completions` column), metered on the way. So this package is
a `RelayCodec` (validation, relay preparation, the metering decoder, OpenAI's error bodies)
and no more; docs/wire-codecs.md says why.

    request         check_request: the minimal validation before any engine sees a body
    stream_decode   legacy completion chunks and whole answers -> usage and finish reason
    codec           CODEC, the RelayCodec
"""

from __future__ import annotations

from modelport.wire.completions.codec import CODEC
from modelport.wire.completions.request import CompletionsRequest, check_request

__all__ = ["CODEC", "CompletionsRequest", "check_request"]
