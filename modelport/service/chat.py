"""Chat (/v1/chat/completions, /v1/messages) as the candidate loop's operation.

Relayed when the backend speaks the client's format (bytes pass through, metered on the
way), transcoded otherwise (canonical events re-encoded in the client's format).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import msgspec

from modelport.backends.base import Backend
from modelport.errors import InvalidRequest, ProtocolError
from modelport.router import Route, Router
from modelport.service.attempt import Attempt
from modelport.service.candidates import Answer, Lease, resolve
from modelport.service.pipeline import RelaySource, TranscodedSource
from modelport.service.reply import SSE
from modelport.types import ChatRequest, Event, Image, RelayContext, WireFormat
from modelport.wire import codec_for
from modelport.wire.codec import Codec


class ChatCall:
    """One chat request, decoded in the client's format (the constructor raises if it is
    malformed), and how to ask one candidate for it."""

    passes_over_unsupported = False

    def __init__(
        self, format: WireFormat, body: bytes, context: RelayContext | None = None
    ) -> None:
        self.codec: Codec = codec_for(format)
        self.body = body
        self.context = context  # goes along on passthrough only
        self.request = self.codec.decode_request(body)

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def stream(self) -> bool:
        return self.request.stream

    def routes(self, router: Router) -> list[Route]:
        return chat_routes(router, self.request)

    async def call(self, route: Route, attempt: Attempt, lease: Lease) -> Answer:
        attempt.passthrough = _relays(route.upstream.backend, self.codec.format, self.request)
        if attempt.passthrough:
            return await self._relay(route, attempt, lease)
        return await self._transcode(route, attempt, lease)

    async def _relay(self, route: Route, attempt: Attempt, lease: Lease) -> Answer:
        request = self.request
        renamed = route.model != request.model
        body = _with_model(self.body, route.model) if renamed else self.body
        context = self.context
        if request.stop:  # a relay that fixes stop_sequence names only one asked for
            context = msgspec.structs.replace(
                context or RelayContext(), stop_sequences=request.stop
            )
        relay = await route.upstream.backend.relay(self.codec.format, body, context)

        async def close_relay() -> None:
            await relay.aclose()
            attempt.usage = relay.usage

        lease.close_first(close_relay)
        if not request.stream:
            # A whole answer comes as the meter read it: complete, so its first byte is now.
            whole = b"".join([chunk async for chunk in relay])
            attempt.first_byte()
            if renamed:
                whole = _with_model(whole, request.model)
            return Answer(relay.status, whole, relay.content_type)
        chunks = aiter(relay)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        attempt.first_byte()
        return Answer(relay.status, content_type=SSE, stream=RelaySource(first, chunks))

    async def _transcode(self, route: Route, attempt: Attempt, lease: Lease) -> Answer:
        request = self.request
        # Fields we did not model belong to the client's dialect; another dialect may refuse them.
        upstream_request = msgspec.structs.replace(request, model=route.model, extra={})
        backend = route.upstream.backend
        if not request.stream:
            response = await backend.chat(upstream_request)
            attempt.first_byte()
            attempt.usage = response.usage
            response = msgspec.structs.replace(response, model=request.model)
            return Answer(200, self.codec.encode_response(response, request=request))
        events = aiter(backend.stream(upstream_request))
        lease.close_first(lambda: _close_events(events))
        try:
            first = await anext(events)
        except StopAsyncIteration:
            raise ProtocolError("the engine's stream was empty") from None
        attempt.first_byte()
        include_usage = self.codec.wants_stream_usage(self.body)
        encoder = self.codec.stream_encoder(
            request_id=attempt.request_id,
            model=request.model,
            include_usage=include_usage,
            request=request,
        )
        source = TranscodedSource(first, events, encoder, attempt)
        return Answer(200, content_type=SSE, stream=source)


def _relays(backend: Backend, format: WireFormat, request: ChatRequest) -> bool:
    """Passthrough when the backend speaks the client's format, unless it says this request
    is better transcoded (`relays`, where an engine's profile knows its endpoint for the
    format ignores something the request asks: llama-server's /v1/messages and
    `output_config.format`)."""
    if format not in backend.formats:
        return False
    relays = getattr(backend, "relays", None)
    return relays is None or bool(relays(format, request))


def chat_routes(router: Router, request: ChatRequest) -> list[Route]:
    """The candidates for a chat request: those that can see its images, when it has any."""
    routes = resolve(router, request.model)
    if _has_images(request):
        routes = [r for r in routes if _model_sees(r)]
        if not routes:
            raise InvalidRequest(
                f"model {request.model!r} does not accept images", param="messages"
            )
    return routes


def _has_images(request: ChatRequest) -> bool:
    return any(isinstance(p, Image) for m in request.messages for p in m.content)


def _model_sees(route: Route) -> bool:
    model = route.upstream.models.get(route.model)
    return model is None or model.capabilities.vision


def _with_model(body: bytes, model: str) -> bytes:
    """The same JSON object with its `model` member replaced."""
    payload = msgspec.json.decode(body)
    if isinstance(payload, dict) and "model" in payload:
        payload["model"] = model
        return msgspec.json.encode(payload)
    return body


async def _close_events(events: AsyncIterator[Event]) -> None:
    """Close an engine's event stream; backends return async generators, which can be."""
    if isinstance(events, AsyncGenerator):
        await events.aclose()
