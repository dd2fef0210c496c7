"""Passthrough: a client's body relayed to an engine that speaks its format, metered on the
way. Chat (when the backend speaks the client's dialect) and legacy completions (always)
answer this way; the model is renamed on the way in and back when an alias chose it."""

from __future__ import annotations

import msgspec

from modelport.router import Route
from modelport.service.attempt import Attempt
from modelport.service.candidates import Answer, Lease
from modelport.service.pipeline import RelaySource
from modelport.service.reply import SSE
from modelport.types import RelayContext, RelayedFormat


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
    chunks = aiter(relay)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    attempt.first_byte()
    return Answer(relay.status, content_type=SSE, stream=RelaySource(first, chunks))


def with_model(body: bytes, model: str) -> bytes:
    """The same JSON object with its `model` member replaced."""
    payload = msgspec.json.decode(body)
    if isinstance(payload, dict) and "model" in payload:
        payload["model"] = model
        return msgspec.json.encode(payload)
    return body
