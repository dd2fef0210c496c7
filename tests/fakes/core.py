"""Shared pieces of the protocol fakes: the scripted reply, the request record, chunking,
ids, deterministic embeddings and the hand-built JSON/SSE/NDJSON encoders.

Nothing here imports modelport: the fakes build their bytes by hand so that they cannot share
a bug with our codecs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import string
import struct
import time
from dataclasses import dataclass, field
from typing import Any

#: `Reply.error_message` default. While it is left at this value, errors whose wording carries
#: meaning (400 context overflow, 404 model, 401 auth, 402 credits, 503 loading) use the
#: engine's own words; any other value is sent verbatim.
DEFAULT_ERROR_MESSAGE = "boom"


@dataclass
class Reply:
    """What the fake answers to one chat request (OpenAI chat, Anthropic messages, Ollama chat)."""

    text: str = "Hello from the fake."
    thinking: str = ""
    tool_calls: list[tuple[str | None, str, dict[str, Any]]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: tuple[int, int] = (7, 5)
    chunk_chars: int = 4
    delay_s: float = 0.0
    status: int = 200
    error_message: str = DEFAULT_ERROR_MESSAGE
    retry_after: str | None = None
    fail_after_chunks: int | None = None
    drop_after_chunks: int | None = None
    hang: bool = False
    # -- faults of the fault matrix (tests/faults): each fires once `N` content chunks have
    # gone (for a whole body: halfway through it), or at once for `reset`.
    #: close the connection before any status line, as a crashing engine does
    reset: bool = False
    #: stop sending (the connection stays open) until the client leaves or the fake stops
    hang_after_chunks: int | None = None
    #: one frame that is not JSON (`data: {"choices": [` / a cut NDJSON line), then the rest
    garbage_after_chunks: int | None = None
    #: end the body cleanly (chunked terminator) with no finish, [DONE] or message_stop
    end_after_chunks: int | None = None
    #: the engine process dies: the connection drops and the port refuses from then on
    kill_after_chunks: int | None = None
    #: sent verbatim instead of the engine's error shape when `status` is not 200
    #: (dict/list: JSON; str/bytes: as is)
    error_body: Any = None
    #: Anthropic thinking-block signature (signature_delta)
    signature: str = "fake-signature"
    #: the stop sequence that ended the answer (a str), or a vLLM stop token id (an int).
    #: Each engine says it its own way: vLLM in `choices[].stop_reason`; the Anthropic API
    #: as stop_reason "stop_sequence" + `stop_sequence`; llama-server's /v1/messages as
    #: stop_reason "end_turn" + `stop_sequence` (docs/captures/llamacpp_anthropic_*_stop.*);
    #: engines that do not say (llama-server's and Ollama's Chat Completions) ignore it.
    stop_sequence: str | int | None = None
    #: write each frame in pieces of this many bytes, yielding between them (a large frame
    #: reaching the gateway over many network reads, as a real engine's big chunk does);
    #: None: one write a frame
    write_bytes: int | None = None


class Headers(dict[str, str]):
    """A plain dict of request headers with case-insensitive lookups (keys stored lowercase)."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__((k.lower(), v) for k, v in dict(items).items())

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: Headers
    json: Any | None
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


# -- encoders ----------------------------------------------------------------------------


def dumps(obj: Any) -> str:
    """Compact JSON, as llama.cpp, vLLM, Ollama, OpenAI and Anthropic put it on the wire."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse(obj: Any, event: str | None = None) -> bytes:
    """One SSE frame: optional `event:` line, one `data:` line, blank line."""
    data = obj if isinstance(obj, str) else dumps(obj)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


def ndjson(obj: Any) -> bytes:
    return (dumps(obj) + "\n").encode()


# -- chunking ------------------------------------------------------------------------------


def chunks(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def split3(text: str) -> list[str]:
    """Split a string into (at most) three non-empty pieces, like argument fragments."""
    if len(text) < 3:
        return [text] if text else []
    step = math.ceil(len(text) / 3)
    return chunks(text, step)


def args_json(arguments: dict[str, Any]) -> str:
    return dumps(arguments)


# -- ids and clocks --------------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits


def rand_alnum(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def rand_lower(n: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def now() -> int:
    return int(time.time())


def iso_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


# -- embeddings --------------------------------------------------------------------------------


def fake_vector(text: str, dim: int = 8) -> list[float]:
    """Deterministic embedding of `text`: the same text always gives the same vector."""
    raw = hashlib.shake_256(text.encode()).digest(dim * 2)
    return [
        round(int.from_bytes(raw[i : i + 2], "big") / 32767.5 - 1.0, 6)
        for i in range(0, dim * 2, 2)
    ]


def vector_b64(vector: list[float]) -> str:
    """OpenAI `encoding_format: base64`: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def embed_inputs(value: Any) -> list[str]:
    """One text per input; token ids (OpenAI's `[9906, 1917]` is one input of two tokens,
    `[[9906, 1917], [17]]` two inputs) stand as their JSON, so each gets its own vector."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return [dumps(value)]
        return [v if isinstance(v, str) else dumps(v) for v in value]
    return []


def text_only(value: Any) -> bool:
    """Ollama's EmbedHandler (server/routes.go) takes a string or an array of strings only."""
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def word_tokens(texts: list[str]) -> int:
    return sum(max(1, len(t.split())) for t in texts)


# -- token estimates (for context-window checks and count_tokens) -----------------------------

_SKIP_KEYS = frozenset(
    {
        "images",
        "image_url",
        "source",
        "data",
        "url",
        "signature",
        "model",
        "role",
        "type",
        "id",
        "tool_call_id",
        "tool_use_id",
        "name",
        "media_type",
        "cache_control",
    }
)


def _text_chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_chars(v) for v in value)
    if isinstance(value, dict):
        return sum(_text_chars(v) for k, v in value.items() if k not in _SKIP_KEYS)
    return 0


def estimate_prompt_tokens(body: Any) -> int:
    """About four characters a token over the text of messages, system and tools."""
    if not isinstance(body, dict):
        return 1
    chars = sum(_text_chars(body.get(k)) for k in ("messages", "system", "tools", "prompt"))
    return chars // 4 + 1


# -- finish reasons per wire -----------------------------------------------------------------


def openai_finish(reply: Reply) -> str:
    if reply.finish_reason is not None:
        return reply.finish_reason
    return "tool_calls" if reply.tool_calls else "stop"


_TO_ANTHROPIC = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def anthropic_stop(reply: Reply, flavour: str = "anthropic") -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) as the flavour writes them: llama-server says "end_turn"
    beside the sequence that matched (captured), the real API says "stop_sequence"."""
    if isinstance(reply.stop_sequence, str):
        reason = "end_turn" if flavour == "llamacpp" else "stop_sequence"
        return reason, reply.stop_sequence
    return _anthropic_reason(reply), None


def _anthropic_reason(reply: Reply) -> str:
    if reply.finish_reason is not None:
        return _TO_ANTHROPIC.get(reply.finish_reason, reply.finish_reason)
    return "tool_use" if reply.tool_calls else "end_turn"


def ollama_done_reason(reply: Reply) -> str:
    if reply.finish_reason in (None, "tool_calls"):
        return "stop"
    return reply.finish_reason
