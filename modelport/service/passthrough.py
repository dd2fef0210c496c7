"""Passthrough: a client's body relayed to an engine that speaks its format, metered on the
way. Chat (when the backend speaks the client's dialect) and legacy completions (always)
answer this way; the model is renamed on the way in and back when an alias chose it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from modelport.router import Route
from modelport.service.attempt import Attempt
from modelport.service.candidates import Answer, Lease
from modelport.service.pipeline import RelaySource
from modelport.types import RelayContext, RelayedFormat
from modelport.wire import relay_codec_for


async def relay_answer(
    route: Route,
    attempt: Attempt,
    lease: Lease,
    format: RelayedFormat,
    body: bytes,
    *,
    model: str,
    stream: bool,
    context: RelayContext | None = None,
) -> Answer:
    """Up to the first byte of the engine's answer to `body` (asking for `model`, which the
    route may name otherwise); the relay's usage reaches the attempt when the lease ends."""
    renamed = route.model != model
    sent = with_model(body, route.model) if renamed else body
    relay = await route.upstream.backend.relay(format, sent, context)

    async def close_relay() -> None:
        await relay.aclose()
        attempt.usage = relay.usage

    lease.close_first(close_relay)
    if not stream:
        # A whole answer comes as the meter read it: complete, so its first byte is now.
        whole = b"".join([chunk async for chunk in relay])
        attempt.first_byte()
        if renamed:
            whole = with_model(whole, model)
        return Answer(relay.status, whole, relay.content_type)
    chunks: AsyncIterator[bytes] = aiter(relay)
    if renamed:
        chunks = RenamedChunks(chunks, route.model, model)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    attempt.first_byte()
    content_type = relay_codec_for(format).stream_content_type
    return Answer(relay.status, content_type=content_type, stream=RelaySource(first, chunks))


def with_model(body: bytes, model: str) -> bytes:
    """The same JSON object with its `model` member replaced."""
    payload = msgspec.json.decode(body)
    if isinstance(payload, dict) and "model" in payload:
        payload["model"] = model
        return msgspec.json.encode(payload)
    return body


class RenamedChunks:
    """A relayed stream with the engine's model name turned back into the client's (an
    alias): every line of Ollama's NDJSON names the model, as OpenAI's chunks and
    Anthropic's message_start do. A relay yields whole frames, so a name is never split;
    a name inside generated text is escaped (`\\"model\\"`) and never matches."""

    __slots__ = ("_names", "_rest")

    def __init__(self, rest: AsyncIterator[bytes], engine_model: str, client_model: str) -> None:
        self._rest = rest
        old, new = msgspec.json.encode(engine_model), msgspec.json.encode(client_model)
        self._names = [
            (b'"model":' + old, b'"model":' + new),
            (b'"model": ' + old, b'"model": ' + new),
        ]

    def __aiter__(self) -> RenamedChunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._rest.__anext__()
        for old, new in self._names:
            chunk = chunk.replace(old, new)
        return chunk
