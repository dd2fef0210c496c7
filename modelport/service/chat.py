"""Chat (/v1/chat/completions, /v1/messages) as the candidate loop's operation.

Relayed when the backend speaks the client's format (bytes pass through, metered on the
way), transcoded otherwise (canonical events re-encoded in the client's format).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator

import msgspec

from modelport.errors import ImagesRefused, ProtocolError
from modelport.router import Route, Router
from modelport.service.attempt import Attempt
from modelport.service.candidates import Answer, Lease, able, resolve
from modelport.service.passthrough import relay_answer
from modelport.service.pipeline import TranscodedSource
from modelport.types import AnswerTiming, ChatRequest, Event, Image, RelayContext, WireFormat
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
        self.decoded_ns = time.monotonic_ns()  # whole answers' durations count from here
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
        backend = route.upstream.backend
        # Passthrough unless the engine says this request is better transcoded (`relays`).
        attempt.passthrough = backend.relays(self.codec.format, self.request)
        try:
            if attempt.passthrough:
                return await self._relay(route, attempt, lease)
            return await self._transcode(route, attempt, lease)
        except ImagesRefused as exc:
            raise images_refused(self.request.model, exc) from None

    async def _relay(self, route: Route, attempt: Attempt, lease: Lease) -> Answer:
        request = self.request
        context = self.context
        if request.stop:  # a relay that fixes stop_sequence names only one asked for
            context = msgspec.structs.replace(
                context or RelayContext(), stop_sequences=request.stop
            )
        return await relay_answer(
            route,
            attempt,
            lease,
            self.codec.format,
            self.body,
            model=request.model,
            stream=request.stream,
            context=context,
        )

    async def _transcode(self, route: Route, attempt: Attempt, lease: Lease) -> Answer:
        request = self.request
        backend = route.upstream.backend
        # The fields the decoder did not model: each carried, dropped by name or refused, as
        # the client dialect's field table says for the engine's dialect (docs/fields.md).
        extra = self.codec.upstream_extra(request, backend.transcodes_to, backend.kind)
        upstream_request = msgspec.structs.replace(request, model=route.model, extra=extra)
        if not request.stream:
            asked_ns = time.monotonic_ns()
            response = await backend.chat(upstream_request)
            answered_ns = time.monotonic_ns()
            attempt.first_byte()
            attempt.usage = response.usage
            response = msgspec.structs.replace(response, model=request.model)
            timing = AnswerTiming(
                total_ns=answered_ns - self.decoded_ns,
                load_ns=asked_ns - self.decoded_ns,
                engine_ns=answered_ns - asked_ns,
            )
            return Answer(200, self.codec.encode_response(response, request=request, timing=timing))
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
        return Answer(200, content_type=self.codec.stream_content_type, stream=source)


def chat_routes(router: Router, request: ChatRequest) -> list[Route]:
    """The candidates for a chat request: when it has images, those that can see them or
    may (nothing says they cannot)."""
    routes = resolve(router, request.model)
    if _has_images(request):
        refusal = f"model {request.model!r} does not accept images"
        routes = able(routes, "vision", refusal, param="messages")
    return routes


def _has_images(request: ChatRequest) -> bool:
    return any(isinstance(p, Image) for m in request.messages for p in m.content)


def images_refused(model: str, exc: ImagesRefused) -> ImagesRefused:
    """The engine's refusal of the images, said as the gateway says it, naming the model."""
    refused = ImagesRefused(
        f"model {model!r} does not accept images (the engine said: {exc.message})",
        backend_id=exc.backend_id,
        raw=exc.raw,
    )
    return refused


async def _close_events(events: AsyncIterator[Event]) -> None:
    """Close an engine's event stream; backends return async generators, which can be."""
    if isinstance(events, AsyncGenerator):
        await events.aclose()
