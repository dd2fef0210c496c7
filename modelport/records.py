"""What happened to one request, as the gateway tells its metrics and usage ledger."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished request. Never holds a body, a prompt or a key: only their outcome."""

    request_id: str
    format: str  # "openai" | "anthropic": the client's wire format
    endpoint: str  # "chat" | "embeddings" | "count_tokens"
    model: str  # the model the client asked for
    backend: str  # backend id that served it, "" when none was reached
    status: int  # HTTP status the client got (200 even when a stream failed midway)
    stream: bool = False
    passthrough: bool = False
    key_id: str = ""  # which configured key was used (the env var's name), "" without auth
    input_tokens: int = 0
    output_tokens: int = 0
    ttft_ms: float | None = None  # time to the first byte of the answer
    duration_ms: float = 0.0
    error: str = ""  # error class name when it failed, also mid-stream
    time: float = field(default_factory=time.time)  # unix seconds at the start
    # The price the serving backend advertised for the model (USDC micro-units per million
    # tokens), when it advertises one: a hub agent does. Earnings are settled from these.
    price_in_per_1m: int | None = None
    price_out_per_1m: int | None = None
