"""A scripted backend with fault injection, for tests and demos.

It plays a fixed list of canonical events and can fail in each way a real engine
fails: before the stream, midway, slowly, or by not being ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from modelport.backends.base import Relay
from modelport.errors import BackendError, ProtocolError, Unsupported
from modelport.types import (
    BackendHealth,
    BackendModel,
    Capabilities,
    ChatRequest,
    ChatResponse,
    Done,
    EmbedRequest,
    EmbedResult,
    Event,
    FinishReason,
    RelayContext,
    RelayedFormat,
    TextDelta,
    Usage,
    collect,
)
from modelport.wire.fields import Target


class MockBackend:
    kind = "mock"
    url: str | None = None  # in-process: nothing to dial
    formats: frozenset[RelayedFormat] = frozenset()
    # Scripted, in-process: it reads what a chat-completions engine would.
    transcodes_to = Target.OPENAI

    def __init__(
        self,
        events: Sequence[Event] | None = None,
        *,
        name: str = "mock",
        models: Sequence[BackendModel] | None = None,
        fail_before: BackendError | None = None,
        drop_after: int | None = None,
        delay_s: float = 0.0,
        ready: bool = True,
        dimensions: int = 4,
    ) -> None:
        self.id = name
        self.events: list[Event] = list(
            events
            if events is not None
            else [TextDelta("Hello"), TextDelta(" world"), Done(FinishReason.STOP, Usage(3, 2))]
        )
        # It embeds (`embed` below), so its model says so: a router that checks what a model
        # can do before it asks sends embeddings here.
        default = BackendModel(
            id="mock-model", context_window=4096, capabilities=Capabilities(embeddings=True)
        )
        self.models = list(models or [default])
        self.fail_before = fail_before
        self.drop_after = drop_after
        self.delay_s = delay_s
        self.ready = ready
        self.dimensions = dimensions
        self.requests: list[ChatRequest] = []
        self.cancelled = 0  # streams whose consumer stopped before the end

    async def list_models(self) -> list[BackendModel]:
        return list(self.models)

    async def health(self) -> BackendHealth:
        return BackendHealth(
            alive=True,
            ready=self.ready,
            latency_ms=0.0,
            last_error=None if self.ready else "not ready",
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        self.requests.append(request)
        if self.fail_before is not None:
            raise self.fail_before
        finished = False
        try:
            for sent, event in enumerate(self.events):
                if self.drop_after is not None and sent >= self.drop_after:
                    raise ProtocolError(
                        f"mock stream dropped after {sent} events", backend_id=self.id
                    )
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                yield event
            finished = True
        finally:
            if not finished:
                self.cancelled += 1

    async def chat(self, request: ChatRequest) -> ChatResponse:
        events = [event async for event in self.stream(request)]
        return collect(events, id="mock-1", model=request.model)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        if self.fail_before is not None:
            raise self.fail_before
        vectors = tuple(
            tuple(float((hash(text) >> (8 * i)) & 0xFF) / 255 for i in range(self.dimensions))
            for text in request.inputs or [str(list(t)) for t in request.tokens]
        )
        return EmbedResult(vectors=vectors, model=request.model, usage=Usage(len(vectors), 0))

    def relays(self, format: RelayedFormat, request: ChatRequest) -> bool:
        return format in self.formats

    async def relay(
        self, format: RelayedFormat, body: bytes, context: RelayContext | None = None
    ) -> Relay:
        raise Unsupported("the mock backend has no wire format", backend_id=self.id)

    async def count_tokens(self, request: ChatRequest) -> int:
        raise Unsupported("the mock backend cannot count tokens", backend_id=self.id)

    async def aclose(self) -> None:
        return None
